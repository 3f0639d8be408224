#!/usr/bin/env bash
# The build is packaging/build.py (Linux, Windows, macOS); this only calls it, for old habits.
#   packaging/build.sh [--cpu-only] [--python PY] [--skip-self-test | --test-only] ...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
exec "$PY" "$ROOT/packaging/build.py" "$@"
