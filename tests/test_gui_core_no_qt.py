"""The house rule: afps_gui.core imports no Qt, checked by importing it and by reading it."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import afps_gui.core

CORE = Path(afps_gui.core.__file__).parent
REPO = CORE.parents[1]
GUI_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "shiboken6")


def core_modules() -> list[str]:
    return sorted(f"afps_gui.core.{m.name}" for m in pkgutil.iter_modules([str(CORE)]))


def test_importing_every_core_module_loads_no_qt():
    modules = core_modules()
    assert "afps_gui.core.pipeline" in modules and len(modules) > 10
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {GUI_MODULES!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"core pulled in GUI modules: {out.stdout}"


def test_core_source_mentions_no_qt():
    pattern = re.compile(r"^\s*(import|from)\s+(" + "|".join(GUI_MODULES) + r")\b", re.M)
    offenders = [
        str(path.relative_to(REPO))
        for path in sorted(CORE.rglob("*.py"))
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
