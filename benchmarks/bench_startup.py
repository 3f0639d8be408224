"""How long until the user sees a window? Measured against importing torch, in one run.

Starts the app (``main.py --startup-probe``: it prints "visible" when its first window is
drawn and "ready" when the main window is, then quits) and times ``python -c "import torch"``,
alternately, several times; prints the medians and the ratio of time-to-visible-window to the
torch import. Target: <= 1.0 (the window appears before torch alone could have loaded).

    .venv/bin/python benchmarks/bench_startup.py [--runs 5]

The app runs offscreen (no display needed) with a fresh per-user folder, so no project opens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.0


def time_app(env: dict) -> tuple[float, float]:
    """Seconds from launch to "visible" and to "ready"."""
    t0 = time.perf_counter()
    app = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--startup-probe"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen = {}
    for line in app.stdout:
        seen.setdefault(line.strip(), time.perf_counter() - t0)
    if app.wait(120) != 0 or not {"visible", "ready"} <= seen.keys():
        raise SystemExit(f"The app did not start cleanly (exit {app.returncode}, saw {seen})")
    return seen["visible"], seen["ready"]


def time_torch(env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], env=env, check=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, help="also write the numbers here")
    args = p.parse_args()
    visible, ready, torch = [], [], []
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", AFPS_HOME=home)
        time_app(env)  # the first start fills the OS's file cache for both
        for _ in range(args.runs):
            v, r = time_app(env)
            visible.append(v)
            ready.append(r)
            torch.append(time_torch(env))
    result = {
        "visible_s": round(statistics.median(visible), 3),
        "ready_s": round(statistics.median(ready), 3),
        "import_torch_s": round(statistics.median(torch), 3),
    }
    result["ratio"] = round(result["visible_s"] / result["import_torch_s"], 3)
    print(f"Medians of {args.runs} runs each:")
    print(f"  start -> visible window:   {result['visible_s']:.2f} s")
    print(f"  start -> main window ready: {result['ready_s']:.2f} s")
    print(f"  python -c 'import torch':  {result['import_torch_s']:.2f} s")
    met = result["ratio"] <= TARGET
    print(
        f"  visible / import torch: {result['ratio']:.2f} (target <= {TARGET}): "
        f"{'met' if met else 'MISSED'}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
