"""Detection on both shared datasets: accuracy with the default (tuned) path, speed and memory at
the chosen settings, and the option table of the README. Ratios are measured within one run.

    .venv/bin/python benchmarks/bench_detection.py targets            # issue targets, both datasets
    .venv/bin/python benchmarks/bench_detection.py targets --from-json caps=eval-caps.json mt=eval-mt.json
    .venv/bin/python benchmarks/bench_detection.py options --data ../shared/data/visa/capsules

``targets`` runs `afps evaluate DATA --json` (exactly what a new user runs: tuning included)
on each dataset, unless ``--from-json`` gives its output, then measures at the settings it chose:
fit and scoring images/s (images read from disk), full inference against backbone-only time on
the same decoded batches, and the peak RSS of fits on few and on many images (fresh processes).
``options`` runs `afps evaluate --no-tune` for a list of settings and prints a Markdown table.
Run it on a quiet machine: the speed figures share the two cores with anything else.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
DATASETS = {"caps": DATA / "visa" / "capsules", "mt": DATA / "magnetic-tile"}
AFPS = [sys.executable, "-m", "afps_gui.cli"]

TARGETS = {  # dataset: (image AUROC, pixel AUROC), from the issue
    "caps": (0.90, 0.95),
    "mt": (0.97, 0.85),
}
OPTIONS = [  # label, afps evaluate flags
    ("224, Gaussian per position (the old default)", ["--size", "224", "--model", "gaussian"]),
    ("long side 448, Gaussian per position, stride 8", ["--size", "LONG448", "--model", "gaussian"]),
    ("long side 448, memory (kNN), stride 8", ["--size", "LONG448", "--model", "knn"]),
    ("long side 640, memory (kNN), stride 8", ["--size", "LONG640", "--model", "knn"]),
]  # fmt: skip


def evaluate(data: Path, flags: list[str], out: Path) -> dict:
    subprocess.run(
        [*AFPS, "evaluate", str(data), "--quiet", "--json", str(out), *flags],
        check=True,
        cwd=REPO,
    )
    return json.loads(out.read_text())


def settings_config(settings: dict):
    from afps_gui.core.padim import PadimConfig

    return PadimConfig(**settings)


def child_fit(args) -> None:
    """Fresh process: fit on ``args.count`` normal images streamed from disk; print peak RSS."""
    from afps_gui.core.padim import PadimModel

    paths = normal_paths(args.data, args.count)
    t0 = time.perf_counter()
    PadimModel(settings_config(json.loads(args.settings)), device="cpu").fit(paths)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": len(paths), "peak_rss_mib": rss, "fit_seconds": seconds}))


def normal_paths(data: Path, limit: int) -> list[Path]:
    from afps_gui.core.datasets import load_dataset, split_normals

    ds = load_dataset(data, validate=False)
    n = min(limit, len(ds.normals()) - 2)
    return [s.path for s in split_normals(ds.normals(), 0, n_fit=n).fit]


def fit_in_child(data: Path, settings: dict, count: int) -> dict:
    cmd = [sys.executable, __file__, "child", "--data", str(data), "--count", str(count)]
    cmd += ["--settings", json.dumps(settings)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def speed(data: Path, settings: dict, n_infer: int = 64) -> dict:
    """Scoring images/s from disk, and full inference against backbone-only time on the same
    decoded batches (the model fitted on 60 images: speed does not depend on it)."""
    import torch

    from afps_gui.core.images import load_image
    from afps_gui.core.padim import PadimModel
    from afps_gui.core.preprocess import to_input

    cfg = settings_config(settings)
    paths = normal_paths(data, 60 + n_infer)
    model = PadimModel(cfg, device="cpu")
    model.fit(paths[:60])
    test = paths[60:]
    t0 = time.perf_counter()
    for _ in model.score_items(test):
        pass
    score_s = time.perf_counter() - t0
    batches = []
    for i in range(0, len(test), cfg.batch_size):
        chunk = [
            to_input(load_image(p, at_least=cfg.input_size), cfg.input_size, cfg.resize)
            for p in test[i : i + cfg.batch_size]
        ]
        batches.append((torch.stack([t for t, _ in chunk]), [b for _, b in chunk]))

    def timed(fn) -> float:
        fn(*batches[0])  # warm-up
        t = time.perf_counter()
        for b in batches:
            fn(*b)
        return time.perf_counter() - t

    backbone_s = min(timed(lambda x, _: model.backbone(x)) for _ in range(2))
    full_s = min(timed(lambda x, boxes: model.score_batch(x, boxes)) for _ in range(2))
    return {
        "score_images_per_s": len(test) / score_s,
        "backbone_images_per_s": len(test) / backbone_s,
        "full_images_per_s": len(test) / full_s,
        "ratio_full_to_backbone": full_s / backbone_s,
        "model_mib": model.memory_bytes() / 2**20,
    }


def targets(args) -> None:
    given = dict(item.split("=", 1) for item in args.from_json or [])
    tmp = Path(tempfile.mkdtemp())
    for name, data in DATASETS.items():
        result = (
            json.loads(Path(given[name]).read_text())
            if name in given
            else evaluate(data, [], tmp / f"{name}.json")
        )
        settings = result["settings"]
        img_t, pix_t = TARGETS[name]
        print(f"\n== {data.name}: `afps evaluate {data} --json out.json`")
        print(f"   chosen: {settings}")
        if result.get("tuning"):
            t = result["tuning"]
            print(
                f"   tuning: {t['seconds']:.0f} s on {t['n_fit']} fit normals, "
                f"{t['n_val_normal']} normals, {t['n_val_defect']} "
                f"{'synthetic' if t['synthetic'] else 'labelled'} defects"
            )
        print(
            f"   reported on {result['n_test_normal']} normal + {result['n_test_anomalous']} "
            "defective images that tuning did not see"
        )
        line("image AUROC", result["image_auroc"], f">= {img_t}", result["image_auroc"] >= img_t)
        line("pixel AUROC", result["pixel_auroc"], f">= {pix_t}", result["pixel_auroc"] >= pix_t)
        line("PRO (30 % FPR)", result["pro"], "", None)
        sp = speed(data, settings)
        line("scoring images/s", sp["score_images_per_s"], ">= 8", sp["score_images_per_s"] >= 8)
        line("backbone-only images/s", sp["backbone_images_per_s"], "", None)
        ratio = sp["ratio_full_to_backbone"]
        line("full / backbone-only time", ratio, "<= 2", ratio <= 2)
        small = fit_in_child(data, settings, args.small)
        large = fit_in_child(data, settings, args.large)
        line("fit images/s", large["images"] / large["fit_seconds"], "", None)
        line(
            f"peak RSS, fit on {large['images']}",
            large["peak_rss_mib"],
            "<= 4096 MiB",
            large["peak_rss_mib"] <= 4096,
        )
        flat = large["peak_rss_mib"] / small["peak_rss_mib"]
        line(f"peak RSS {large['images']} / {small['images']} images", flat, "<= 1.1", flat <= 1.1)


def line(what: str, value: float, target: str, ok) -> None:
    verdict = "" if ok is None else ("met" if ok else "MISSED")
    print(f"   {what:>34}: {value:10.3f}  {target:>12}  {verdict}", flush=True)


def options(args) -> None:
    from afps_gui.core.tuning import input_size_for, typical_aspect

    data = args.data
    aspect = typical_aspect(normal_paths(data, 50))
    tmp = Path(tempfile.mkdtemp())
    print(f"\n{data.name}\n")
    print(
        "| settings | input | image AUROC | pixel AUROC | PRO | fit img/s | score img/s | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for i, (label, flags) in enumerate(OPTIONS):
        flags = [
            "x".join(map(str, input_size_for(int(f[4:]), aspect))) if f.startswith("LONG") else f
            for f in flags
        ]
        r = evaluate(data, flags, tmp / f"{i}.json")
        h, w = r["settings"]["input_size"]
        print(
            f"| {label} | {h}x{w}/{r['settings']['stride']} | {r['image_auroc']:.3f} | "
            f"{r['pixel_auroc']:.3f} | {r['pro']:.3f} | {r['fit_images_per_s']:.1f} | "
            f"{r['score_images_per_s']:.1f} | {r['peak_rss_mib']:.0f} MiB |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("targets")
    p.add_argument("--from-json", nargs="*", help="NAME=FILE: evaluate output to use (caps, mt)")
    p.add_argument("--small", type=int, default=60)
    p.add_argument("--large", type=int, default=400)
    p = sub.add_parser("options")
    p.add_argument("--data", type=Path, required=True)
    p = sub.add_parser("child")
    p.add_argument("--data", type=Path)
    p.add_argument("--count", type=int)
    p.add_argument("--settings")
    args = ap.parse_args()
    {"targets": targets, "options": options, "child": child_fit}[args.what](args)


if __name__ == "__main__":
    main()
