"""Set up, test and open AFPS Inspector on Linux, macOS and Windows: one implementation that
the bash scripts (scripts/*.sh) and the PowerShell scripts (scripts/*.ps1) call.

    python scripts/dev.py bootstrap        .venv with the app and its dev tools (idempotent)
    python scripts/dev.py test [ARGS]      bootstrap, then pytest ARGS headless (offscreen Qt)
    python scripts/dev.py demo [ARGS]      bootstrap, then the app on its demo project; on a
                                           Linux server without a screen, on a virtual display

The Python that runs this script makes the virtual environment (Python 3.10+). Only the
standard library is used here: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
WINDOWS = sys.platform.startswith("win")
STAMP = VENV / ".afps-installed"
# Qt's X11 plug-in needs these; minimal Linux images lack them.
QT_APT_PACKAGES = [
    "libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-shape0",
    "libxcb-render-util0", "libxcb-image0", "libxcb-xinerama0", "libxcb-randr0", "libegl1",
    "libgl1", "libfontconfig1", "libdbus-1-3",
]  # fmt: skip


def venv_exe(name: str) -> Path:
    if WINDOWS:
        return VENV / "Scripts" / f"{name}.exe"
    return VENV / "bin" / name


def say(message: str, err: bool = False) -> None:
    print(message, file=sys.stderr if err else sys.stdout, flush=True)


def bootstrap() -> None:
    """Create .venv and install the app with its dev extras, only when pyproject.toml
    changed since the last install (a stamp holds its SHA-1, as sha1sum writes it)."""
    python = venv_exe("python")
    if not python.exists():
        say(f"[setup] creating .venv with Python {sys.version.split()[0]}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    want = hashlib.sha1((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    have = STAMP.read_text().strip() if STAMP.is_file() else ""
    if have != want:
        say(
            "[setup] installing AFPS Inspector and its dependencies (torch is pinned; about 2 minutes)"
        )
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run(pip + ["--upgrade", "pip"], check=True, cwd=ROOT)
        subprocess.run(pip + ["-e", ".[dev]"], check=True, cwd=ROOT)
        STAMP.write_text(want + "\n")
    install_qt_system_libraries()
    say(
        f"[setup] ready: {venv_exe('afps').relative_to(ROOT)}, {venv_exe('afps-gui').relative_to(ROOT)}"
    )


def install_qt_system_libraries() -> None:
    """On Debian/Ubuntu as root: the X11 libraries Qt needs for a window (and any named in
    AFPS_EXTRA_APT). A failure is a warning: the tests still run offscreen."""
    if not sys.platform.startswith("linux") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    wanted = QT_APT_PACKAGES + os.environ.get("AFPS_EXTRA_APT", "").split()
    need = [p for p in wanted if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if not need:
        return
    say(f"[setup] installing system libraries for Qt: {' '.join(need)}")
    quiet = {"stdout": subprocess.DEVNULL}
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    ok = subprocess.run(["apt-get", "update", "-qq"], **quiet).returncode == 0 and (
        subprocess.run(["apt-get", "install", "-y", "-qq", *need], env=env, **quiet).returncode == 0
    )
    if not ok:
        say(f"[setup] warning: could not install {' '.join(need)}; the window may not open "
            "(tests still run offscreen)")  # fmt: skip


def run_and_exit(argv: list[str], env: dict) -> None:
    """Become the program where the OS allows it (its exit status is ours); on Windows run it
    and pass its exit status on (exec there starts a new process and returns at once)."""
    if WINDOWS:
        sys.exit(subprocess.run(argv, env=env).returncode)
    os.execve(argv[0], argv, env)


def test(args: list[str]) -> None:
    bootstrap()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    os.chdir(ROOT)
    run_and_exit([str(venv_exe("python")), "-m", "pytest", *args], env)


def start_virtual_display() -> None:
    """A Linux server without a screen: run the app on Xvfb (installed by bootstrap)."""
    if not shutil.which("Xvfb"):
        say("[demo] no screen and no Xvfb: install xvfb or run on a desktop.", err=True)
        return
    display = f":{os.environ.get('AFPS_XVFB_DISPLAY', '77')}"
    os.environ["DISPLAY"] = display
    probe = ["xdpyinfo", "-display", display]
    running = (
        shutil.which("xdpyinfo") and subprocess.run(probe, capture_output=True).returncode == 0
    )
    if not running:
        # Its own session: the display outlives this script, as the app replaces it.
        subprocess.Popen(
            ["Xvfb", display, "-screen", "0", "1600x1000x24"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(1)
    say(f"[demo] no screen found: the app runs on the virtual display {display} (Xvfb).")


def demo(args: list[str]) -> None:
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and sys.platform.startswith("linux"):
        os.environ["AFPS_EXTRA_APT"] = "xvfb x11-utils"
        bootstrap()
        start_virtual_display()
    else:
        bootstrap()
    os.chdir(ROOT)
    run_and_exit([str(venv_exe("afps-gui")), "--demo", *args], dict(os.environ))


def main(argv: list[str]) -> int:
    commands = {"bootstrap": lambda rest: bootstrap(), "test": test, "demo": demo}
    if not argv or argv[0] not in commands:
        say(f"usage: python scripts/dev.py {{{','.join(commands)}}} [ARGS...]", err=True)
        return 2
    try:
        commands[argv[0]](argv[1:])
    except subprocess.CalledProcessError as exc:
        say(f"[setup] failed: {' '.join(map(str, exc.cmd))} (exit {exc.returncode})", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
