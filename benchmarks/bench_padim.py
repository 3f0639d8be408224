"""PaDiM speed and memory, measured in one run so the ratios are meaningful on a noisy machine.

    .venv/bin/python benchmarks/bench_padim.py [--data DIR] [--size 224] [--fit 200] [--batch 16]
    .venv/bin/python benchmarks/bench_padim.py --memory [--small 100 --large 800]

Speed prints fit and inference images/s and the ratio of full PaDiM inference time (backbone +
Mahalanobis + upsampling + blur) to backbone-only time on the same decoded batches (target <= 2).
Memory fits in two fresh subprocesses, on few and on many images, and prints their peak RSS ratio
(target <= 1.1: the streaming fit must not grow with the number of images).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "magnetic-tile"


def normal_paths(data: Path, limit: int) -> list[Path]:
    from afps_gui.core.datasets import load_dataset, split_normals

    ds = load_dataset(data, validate=False)
    return [
        s.path for s in split_normals(ds.normals(), 0, n_fit=min(limit, len(ds.normals()) - 2)).fit
    ]


def speed(args) -> dict:
    import torch

    from afps_gui.core.images import load_image
    from afps_gui.core.padim import PadimConfig, PadimModel
    from afps_gui.core.preprocess import to_input

    paths = normal_paths(args.data, args.fit)
    cfg = PadimConfig(input_size=(args.size, args.size), d=args.d, batch_size=args.batch)
    model = PadimModel(cfg, device=args.device)
    images = [load_image(p) for p in paths]  # decoded once: we time the model, not the disk
    t0 = time.perf_counter()
    model.fit(images)
    fit_s = time.perf_counter() - t0
    batches = []
    for i in range(0, min(len(images), args.infer), args.batch):
        chunk = [to_input(im, cfg.input_size) for im in images[i : i + args.batch]]
        batches.append((torch.stack([t for t, _ in chunk]), [b for _, b in chunk]))
    n = sum(len(b[1]) for b in batches)

    def timed(fn) -> float:
        fn(*batches[0])  # warm-up
        t = time.perf_counter()
        for b in batches:
            fn(*b)
        return time.perf_counter() - t

    backbone_s = min(timed(lambda x, _: model.backbone(x.to(model.device))) for _ in range(2))
    embed_s = min(timed(lambda x, _: model.embed(x)) for _ in range(2))
    full_s = min(timed(lambda x, boxes: model.score_batch(x, boxes)) for _ in range(2))
    return {
        "size": args.size,
        "d": model.mean.shape[1],
        "grid": list(model.grid),
        "device": str(model.device),
        "threads": torch.get_num_threads(),
        "fit_images": len(images),
        "fit_images_per_s": len(images) / fit_s,
        "infer_images": n,
        "backbone_images_per_s": n / backbone_s,
        "embed_images_per_s": n / embed_s,
        "padim_images_per_s": n / full_s,
        "padim_ms_per_image": 1000 * full_s / n,
        "ratio_full_to_backbone": full_s / backbone_s,
        "model_mib": model.memory_bytes() / 2**20,
    }


def fit_rss(args) -> None:
    """Child process: fit on args.count images streamed from disk, print peak RSS in MiB."""
    from afps_gui.core.padim import PadimConfig, PadimModel

    paths = normal_paths(args.data, args.count)
    PadimModel(
        PadimConfig(input_size=(args.size, args.size), d=args.d, batch_size=args.batch),
        device="cpu",
    ).fit(paths)
    print(
        json.dumps(
            {
                "images": len(paths),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def memory(args) -> dict:
    out = {}
    for count in (args.small, args.large):
        cmd = [
            sys.executable,
            __file__,
            "--child-fit",
            str(count),
            "--data",
            str(args.data),
            "--size",
            str(args.size),
            "--batch",
            str(args.batch),
        ] + (["--d", str(args.d)] if args.d else [])
        res = json.loads(
            subprocess.run(cmd, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        out[count] = res["peak_rss_mib"]
        print(
            f"fit on {res['images']:4d} images: peak RSS {res['peak_rss_mib']:.0f} MiB", flush=True
        )
    return {
        "small": args.small,
        "large": args.large,
        "rss_mib": out,
        "ratio_large_to_small": out[args.large] / out[args.small],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--d", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--fit", type=int, default=200, help="images to fit on in the speed run")
    ap.add_argument("--infer", type=int, default=128, help="images to time inference on")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--memory", action="store_true", help="measure peak RSS of small vs large fits")
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=800)
    ap.add_argument("--child-fit", dest="count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.count:
        fit_rss(args)
        return
    if not args.data.is_dir():
        sys.exit(f"no dataset at {args.data}: pass --data")
    res = memory(args) if args.memory else speed(args)
    for k, v in res.items():
        print(f"{k:>24}: {v:.3f}" if isinstance(v, float) else f"{k:>24}: {v}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
