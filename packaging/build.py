"""Build the AFPS Inspector one-folder bundle, check it, and self-test it as an inspection PC would.

    python packaging/build.py [--cpu-only] [--python PY] [--skip-self-test | --test-only]
                              [--cpu-torch SPEC] [--cpu-torchvision SPEC]

  --cpu-only         a bundle without CUDA: on Linux it is built from a CPU torch wheel in
                     packaging/cpu-env/ (made once; see cpu_env.py) and every CUDA library stays
                     out; every GPU is hidden at start-up. Windows and macOS wheels on PyPI are
                     CPU builds already.
  --python PY        the Python whose environment is bundled (default: the project's .venv)
  --cpu-torch SPEC   the CPU torch to install in the CPU environment (default: the pinned
                     version, "torch==X+cpu"); --cpu-torchvision likewise
  --skip-self-test   build and check only
  --test-only        do not build: check and self-test the bundle already in packaging/dist

Runs on Linux, Windows and macOS with any Python 3.9+. Output: packaging/dist/afps-inspector/
(work files: packaging/build/). After the build: the bundle's contents and size, its libraries
(Linux), `afps --help`, and `afps --self-test` twice, isolated (isolated_run.py): in place, and
from a moved, read-only copy. Exit status non-zero when anything fails.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bundle_check import check_libraries, human, missing_parts, size_of  # noqa: E402
from bundle_plan import current_platform  # noqa: E402
from cpu_env import ensure_cpu_env, env_python, probe  # noqa: E402
from isolated_run import Isolation, python_prefixes  # noqa: E402

WORK = HERE / "build"
DIST = HERE / "dist"
BUNDLE = DIST / "afps-inspector"
CPU_ENV = HERE / "cpu-env"


class Failed(Exception):
    """A step failed: the message says which and why."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n")[0])
    p.add_argument("--cpu-only", action="store_true")
    p.add_argument("--python", help="the Python whose environment is bundled")
    p.add_argument("--cpu-torch", help="CPU torch requirement for the CPU environment")
    p.add_argument("--cpu-torchvision", help="CPU torchvision requirement, likewise")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--skip-self-test", action="store_true")
    group.add_argument("--test-only", action="store_true")
    return p.parse_args(argv)


def project_python() -> str:
    py = env_python(ROOT / ".venv")
    if not py.exists():
        raise Failed(f"no {py}: set the project up first (scripts/bootstrap.sh or .ps1)")
    return str(py)


def build_python(args) -> tuple[str, list[str]]:
    """The Python that runs PyInstaller, and the spec's options."""
    python = args.python or project_python()
    spec_args = []
    if args.cpu_only:
        spec_args.append("--cpu-only")
        if _is_cuda_torch(python):
            python, tv_ok = ensure_cpu_env(python, CPU_ENV, args.cpu_torch, args.cpu_torchvision)
            if not tv_ok:
                print("   torchvision is a CUDA build here: the CPU bundle leaves it out")
                spec_args.append("--no-torchvision")
    if subprocess.run([python, "-c", "import PyInstaller"], capture_output=True).returncode:
        raise Failed(f"PyInstaller is not installed for {python} (pip install -e '.[dev]')")
    return python, spec_args


def _is_cuda_torch(python: str) -> bool:
    code = "import bundle_plan; print(bundle_plan.torch_cuda_version() or '')"
    out = subprocess.run([python, "-c", code], cwd=HERE, capture_output=True, text=True)
    return bool(out.stdout.strip())


def build(python: str, spec_args: list[str]) -> None:
    version = subprocess.run(
        [python, "-m", "PyInstaller", "--version"], capture_output=True, text=True
    ).stdout.strip()
    print(f"== building {BUNDLE} ({' '.join(spec_args) or 'default'}) with PyInstaller {version}")
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.rmtree(BUNDLE, ignore_errors=True)
    start = time.monotonic()
    cmd = [python, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN"]
    cmd += ["--workpath", str(WORK), "--distpath", str(DIST), str(HERE / "afps_inspector.spec")]
    if spec_args:
        cmd += ["--", *spec_args]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        raise Failed("PyInstaller failed (see above)")
    print(f"== build took {_minutes(time.monotonic() - start)}")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def check_contents() -> None:
    missing = missing_parts(BUNDLE)
    if missing:
        raise Failed("missing from the bundle: " + ", ".join(map(str, missing)))
    nbytes, files = size_of(BUNDLE)
    print(f"== bundle size: {human(nbytes)} ({files} files)")


def check_libraries_step() -> None:
    if current_platform() != "linux":
        print("== library check: Linux only (on Windows and macOS the self-test is the check)")
        return
    print("== checking the shared libraries of the bundle")
    report = check_libraries(BUNDLE)
    if report.problems:
        raise Failed("unresolved libraries:\n   " + "\n   ".join(sorted(set(report.problems))))
    desktop = ", ".join(sorted(report.from_desktop)) or "none"
    print(f"   {report.checked} files: all resolved inside the bundle or from the system")
    print(f"   taken from the desktop: {desktop}")


def run_checks(iso: Isolation, self_test: bool) -> None:
    print(f"== isolation: {iso.describe()}")
    proc, _ = iso.run("afps", "--help", quiet=True)
    if proc.returncode != 0:
        raise Failed(f"afps --help failed (exit {proc.returncode})")
    print("== afps --help: ok")
    if not self_test:
        return
    for moved in (False, True):
        start = time.monotonic()
        proc, where = iso.run("afps", "--self-test", moved=moved)
        took = int(time.monotonic() - start)
        what = f"from a moved copy at {where} ({iso.readonly_note()})" if moved else "in place"
        if proc.returncode != 0:
            raise Failed(f"the self-test {what} FAILED (exit {proc.returncode}) after {took}s")
        print(f"== self-test {what} passed in {took}s (wall clock, start-up included)")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        python = args.python or project_python()
        if not args.test_only:
            python, spec_args = build_python(args)
            build(python, spec_args)
        if not BUNDLE.is_dir():
            raise Failed(f"no bundle at {BUNDLE}: build it first")
        check_contents()
        check_libraries_step()
        hide = [ROOT / ".venv", CPU_ENV, ROOT / "afps_gui", *python_prefixes(python)]
        hide.append(Path(probe(python)["base"]).resolve().parent.parent)
        with Isolation(BUNDLE, hide) as iso:
            run_checks(iso, not args.skip_self_test)
    except Failed as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
