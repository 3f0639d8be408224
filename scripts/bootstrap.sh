#!/usr/bin/env bash
# Set up everything AFPS Inspector needs, idempotently: a virtual environment in .venv with the
# app and its dev tools, and (on Debian/Ubuntu, as root) the X11 libraries Qt needs for a window.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

# A stamp of pyproject.toml: reinstall only when the dependencies changed.
stamp=.venv/.afps-installed
want=$(sha1sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing AFPS Inspector and its dependencies (torch is pinned; about 2 minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  echo "$want" > "$stamp"
fi

# Qt's X11 plugin needs a few system libraries that minimal Linux images lack.
if [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  need=()
  for pkg in libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-shape0 \
             libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libxcb-randr0 libegl1 libgl1 \
             libfontconfig1 libdbus-1-3 ${AFPS_EXTRA_APT:-}; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "[setup] installing system libraries for Qt: ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null \
      || echo "[setup] warning: could not install ${need[*]}; the window may not open (tests still run offscreen)"
  fi
fi
echo "[setup] ready: .venv/bin/afps, .venv/bin/afps-gui"
