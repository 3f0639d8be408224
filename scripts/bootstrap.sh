#!/usr/bin/env bash
# Set up everything AFPS Inspector needs, idempotently: a virtual environment in .venv with the
# app and its dev tools, and (on Debian/Ubuntu, as root) the X11 libraries Qt needs for a window.
# Safe to run again: it only installs what is missing. The work is done by scripts/dev.py,
# which the PowerShell scripts (bootstrap.ps1, ...) call too.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/dev.py bootstrap
