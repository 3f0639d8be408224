"""Classifier training time: the paper's ViT (what training was) against ``auto`` (what it is),
measured in one run on the same labelled images so the ratio means something on a noisy machine.

    .venv/bin/python benchmarks/bench_training.py [--data DIR] [--classes Blowhole,Crack]

Both sides start from a fitted PaDiM model (fitted once, not timed). The ViT side embeds the
training images on the detection grid and trains the ViT (AFPS, N = 100, 40 epochs: the
project default before). The auto side also takes the close look at each image, cross-validates
the candidates (3 folds) and trains the chosen one. Target: auto / ViT <= 2. Run it alone: the
timings are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "magnetic-tile"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--classes", default="Blowhole,Crack")
    ap.add_argument("--n-fit", type=int, default=200)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    from afps_gui.core.classifier import ClassifierConfig
    from afps_gui.core.datasets import load_dataset, split_anomalies
    from afps_gui.core.padim import PadimConfig
    from afps_gui.core.pipeline import build_examples, fit_on_normals, train_classifier

    ds = load_dataset(args.data, validate=False)
    classes = ds.resolve_types(args.classes)
    train, _ = split_anomalies(
        [s for s in ds.anomalies() if s.label in classes], 0, test_fraction=0.4
    )
    padim, _, _ = fit_on_normals(ds, PadimConfig(), n_fit=args.n_fit, device="cpu")
    out = {"images": len(train)}
    for name, strategy, looks in (("vit", "afps", False), ("auto", "auto", True)):
        t0 = time.perf_counter()
        examples, _ = build_examples(padim, train, classes, looks=looks)
        t1 = time.perf_counter()
        clf, _, choice = train_classifier(
            examples, classes, ClassifierConfig(strategy=strategy, epochs=40), device="cpu"
        )
        t2 = time.perf_counter()
        out[name] = {
            "embed_s": t1 - t0,
            "train_s": t2 - t1,
            "total_s": t2 - t0,
            "chosen": choice["chosen"] if choice else strategy,
        }
        print(
            f"{name:>5}: embed {t1 - t0:6.1f} s + train {t2 - t1:6.1f} s = {t2 - t0:6.1f} s"
            + (f"  (chose {choice['chosen']})" if choice else ""),
            flush=True,
        )
    out["ratio"] = out["auto"]["total_s"] / out["vit"]["total_s"]
    print(f"auto / ViT training time on {len(train)} images = {out['ratio']:.2f} (target <= 2)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
