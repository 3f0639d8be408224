"""Run a command of the bundle as the inspection PC would: nothing of the build host's Python.

* Everywhere: an empty environment (only what the OS itself needs), a fresh home folder, Qt's
  offscreen platform.
* Linux, where ``unshare -n -m`` is allowed (root): no network, and every Python installation,
  the virtual environments and the source package hidden behind empty bind mounts. A "moved"
  run mounts the bundle read-only at another path and hides the original.
* Elsewhere, a "moved" run copies the bundle to a temporary folder and takes away its write
  bits (which do not stop root: said so in the output).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bundle_plan import current_platform

_ISOLATE = r"""
set -eu
empty=$1; bundle=$2; moved=$3; shift 3
while [ "$1" != "--" ]; do
    if [ -d "$1" ]; then mount --bind "$empty" "$1"; elif [ -e "$1" ]; then mount --bind /dev/null "$1"; fi
    shift
done
shift
if [ -n "$moved" ]; then
    mount --bind "$bundle" "$moved"
    mount -o remount,bind,ro "$moved"
    mount --bind "$empty" "$bundle"
fi
exec "$@"
"""


def can_unshare() -> bool:
    if current_platform() != "linux" or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "-m", "true"], capture_output=True).returncode == 0


def clean_env(home: Path) -> dict[str, str]:
    """What `env -i` leaves, plus the few variables the OS and the test need."""
    env = {"QT_QPA_PLATFORM": "offscreen", "AFPS_HOME": str(home)}
    if current_platform() == "windows":
        root = os.environ.get("SystemRoot", r"C:\Windows")
        env.update(SystemRoot=root, WINDIR=root, SystemDrive=root[:2], TEMP=str(home),
                   TMP=str(home), USERPROFILE=str(home), APPDATA=str(home),
                   LOCALAPPDATA=str(home), PATH=f"{root}\\System32;{root}")  # fmt: skip
    else:
        env.update(HOME=str(home), PATH="/usr/bin:/bin", LANG="C.UTF-8", TMPDIR=str(home))
    return env


def hidden_paths(extra: list[Path]) -> list[str]:
    """Every place a Python could come from on a Linux build host."""
    found = {str(p) for p in extra if p.exists()}
    for pattern in ("/usr/lib/python3*", "/usr/local/lib/python3*", "/usr/bin/python3*",
                    "/usr/local/bin/python3*"):  # fmt: skip
        found.update(str(p) for p in Path("/").glob(pattern.lstrip("/")))
    for p in (Path.home() / ".pyenv", Path.home() / ".local" / "lib"):
        if p.exists():
            found.add(str(p))
    return sorted(p for p in found if p not in ("/", "/usr", "/usr/local"))


class Isolation:
    """Runs commands of one bundle isolated; use as a context manager (temporary folders)."""

    def __init__(self, bundle: Path, hide: list[Path]):
        self.bundle = bundle
        self.unshare = can_unshare()
        self.hide = hidden_paths(hide) if self.unshare else []
        self._tmp = Path(tempfile.mkdtemp(prefix="afps-bundle-test-"))
        self.empty = self._tmp / "empty"
        self.empty.mkdir()

    def describe(self) -> str:
        if self.unshare:
            return f"empty environment, no network (unshare -n); hidden: {' '.join(self.hide)}"
        if current_platform() == "linux":
            return "empty environment only (unshare -n -m is not permitted here)"
        return "empty environment only (no network isolation on this platform)"

    def __enter__(self) -> Isolation:
        return self

    def __exit__(self, *exc) -> None:
        _make_writable(self._tmp)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def run(self, name: str, *args: str, moved=False, quiet=False, capture=False, timeout=900):
        """Run the bundle's executable ``name``; returns (CompletedProcess, where it ran).
        ``quiet`` drops its output, ``capture`` keeps it in the result."""
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self._tmp))
        with self._location(moved) as (where, mount_at):
            exe = str(where / (name + (".exe" if current_platform() == "windows" else "")))
            cmd = [exe, *args]
            if self.unshare:
                mounts = [str(self.empty), str(self.bundle), mount_at, *self.hide, "--"]
                cmd = ["unshare", "-n", "-m", "sh", "-c", _ISOLATE, "isolate", *mounts, *cmd]
            out = subprocess.PIPE if capture else subprocess.DEVNULL if quiet else None
            proc = subprocess.run(
                cmd, env=clean_env(home), timeout=timeout, cwd=home, stdout=out, text=True
            )
        return proc, where

    @contextmanager
    def _location(self, moved: bool) -> Iterator[tuple[Path, str]]:
        """(folder to run from, mount point for the read-only bind, or "")."""
        if not moved:
            yield self.bundle, ""
            return
        target = Path(tempfile.mkdtemp(prefix="moved-", dir=self._tmp)) / "AFPS Inspector copy"
        if self.unshare:
            target.mkdir()
            yield target, str(target)
            return
        shutil.copytree(self.bundle, target, symlinks=True)
        _make_readonly(target)
        try:
            yield target, ""
        finally:
            _make_writable(target)
            shutil.rmtree(target, ignore_errors=True)

    def readonly_note(self) -> str:
        if self.unshare:
            return "read-only bind mount"
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            return "write bits removed (root ignores them: not a real read-only test)"
        return "write bits removed"


def _make_readonly(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & ~0o222)
        os.chmod(root, 0o555)


def _make_writable(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | 0o200)


def python_prefixes(python: str) -> list[Path]:
    """The environment and base installation of a Python (to hide them)."""
    code = "import sys; print('\\n'.join({sys.prefix, sys.base_prefix, sys.exec_prefix}))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return [Path(line) for line in out.stdout.splitlines() if line.strip()]
