"""A build environment with a CPU build of torch, for ``build.py --cpu-only``.

PyPI's Linux torch wheels are CUDA builds that link cuBLAS, cuDNN, NCCL, ...: a bundle made
from them cannot leave CUDA out. This module makes ``packaging/cpu-env/``: a virtual environment
that holds only a CPU torch (and a CPU torchvision where one can be installed) and sees every
other package through a ``.pth`` file pointing at the project's environment, so nothing else is
downloaded or installed twice. PyInstaller run from it bundles the CPU torch.

Windows and macOS wheels on PyPI are CPU builds already: there the project's environment is
bundled as it is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

PROBE = r"""
import json, sys, sysconfig
from importlib import metadata
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({"purelib": sysconfig.get_paths()["purelib"],
                  "platlib": sysconfig.get_paths()["platlib"],
                  "base": getattr(sys, "_base_executable", sys.executable),
                  "torch": version("torch"), "torchvision": version("torchvision")}))
"""


def probe(python: str) -> dict:
    """Paths and torch versions of an environment, without importing torch."""
    out = subprocess.run([python, "-c", PROBE], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def env_python(env: Path) -> Path:
    if sys.platform.startswith("win"):
        return env / "Scripts" / "python.exe"
    return env / "bin" / "python"


def public_version(version: str) -> str:
    return version.split("+", 1)[0]


def default_specs(base: dict) -> tuple[str, Optional[str]]:
    """The CPU wheels matching the project's pinned torch and torchvision."""
    tv = base.get("torchvision")
    return (
        f"torch=={public_version(base['torch'])}+cpu",
        f"torchvision=={public_version(tv)}+cpu" if tv else None,
    )


def ensure_cpu_env(
    python: str, env: Path, torch_spec: Optional[str] = None, tv_spec: Optional[str] = None
) -> tuple[str, bool]:
    """Make (or reuse) the CPU environment; returns its Python and whether torchvision loads
    there (False: the bundle must leave torchvision out)."""
    base = probe(python)
    if not base.get("torch"):
        raise SystemExit(f"build.py: {python} has no torch; set up the project first.")
    default_torch, default_tv = default_specs(base)
    torch_spec, tv_spec = torch_spec or default_torch, tv_spec or default_tv
    stamp = env / "afps-cpu-env.json"
    want = {"base": base["purelib"], "torch": torch_spec, "torchvision": tv_spec}
    py = env_python(env)
    if not (stamp.is_file() and json.loads(stamp.read_text()) == want and py.exists()):
        _create(base, env, torch_spec, tv_spec)
        stamp.write_text(json.dumps(want))
    else:
        print(f"== reusing the CPU build environment {env} ({torch_spec})")
    tv_ok = subprocess.run([str(py), "-c", "import torchvision"], capture_output=True).returncode
    return str(py), tv_ok == 0


def _create(base: dict, env: Path, torch_spec: str, tv_spec: Optional[str]) -> None:
    print(f"== making the CPU build environment {env} with {torch_spec}")
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([base["base"], "-m", "venv", str(env)], check=True)
    py = str(env_python(env))
    site = probe(py)["purelib"]
    # Appended after the environment's own site-packages: its CPU torch shadows the CUDA one.
    paths = dict.fromkeys([base["purelib"], base["platlib"]])
    Path(site, "zz_afps_project_env.pth").write_text("\n".join(paths) + "\n")
    pip = [py, "-m", "pip", "install", "--quiet"]
    if subprocess.run(pip + [torch_spec]).returncode != 0:
        shutil.rmtree(env, ignore_errors=True)
        raise SystemExit(
            f"build.py: cannot install {torch_spec}. Point pip at PyTorch's CPU wheel index "
            "(PIP_EXTRA_INDEX_URL), or name a CPU wheel pip can find with --cpu-torch "
            "(e.g. --cpu-torch 'torch==2.13.0+cpu')."
        )
    if tv_spec and subprocess.run(pip + ["--no-deps", tv_spec]).returncode != 0:
        print(f"   no {tv_spec} here: torchvision is left out unless the project's one loads")
