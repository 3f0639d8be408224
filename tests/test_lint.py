"""The code stays ruff-clean (lint and format) and keeps its layer contracts (import-linter),
as configured in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def dev_tool(name: str) -> list[str]:
    # The venv's own copy first: a tool on PATH may belong to another Python.
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return [str(exe)]
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return [found]


def ruff() -> list[str]:
    return dev_tool("ruff")


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_clean(args):
    result = subprocess.run(ruff() + args, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_contracts_kept():
    # The contracts live in pyproject.toml ([tool.importlinter]): core imports no Qt, UI, CLI or
    # workers; job_process no Qt; the UI never the CLI.
    result = subprocess.run(
        dev_tool("lint-imports") + ["--no-cache"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
