#!/usr/bin/env bash
# Set up (if needed) and open AFPS Inspector on its built-in demo project (scripts/dev.py demo).
# With no display (a headless server), it starts a virtual X display (Xvfb) and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/dev.py demo "$@"
