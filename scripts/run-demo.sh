#!/usr/bin/env bash
# Set up (if needed) and open AFPS Inspector on its built-in demo project.
# With no display (a headless server), it starts a virtual X display (Xvfb) and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(uname -s)" = Linux ]; then
  AFPS_EXTRA_APT="xvfb x11-utils" bash scripts/bootstrap.sh
  if command -v Xvfb >/dev/null 2>&1; then
    export DISPLAY=:${AFPS_XVFB_DISPLAY:-77}
    if ! xdpyinfo -display "$DISPLAY" >/dev/null 2>&1; then
      Xvfb "$DISPLAY" -screen 0 1600x1000x24 >/dev/null 2>&1 &
      sleep 1
    fi
    echo "[demo] no screen found: the app runs on the virtual display $DISPLAY (Xvfb)."
  else
    echo "[demo] no screen and no Xvfb: install xvfb or run on a desktop." >&2
  fi
else
  bash scripts/bootstrap.sh
fi
exec .venv/bin/afps-gui --demo "$@"
