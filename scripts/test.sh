#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite headless (scripts/dev.py test).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/dev.py test "$@"
