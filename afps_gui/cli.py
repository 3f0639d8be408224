"""`afps`: the app's jobs without a screen, for batch work and the paper's experiments.

Every command calls the same core functions as the GUI. Errors print one clear line and exit
non-zero (2 for bad input, 130 when interrupted); long jobs draw a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import math
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from .core.errors import AfpsError, Cancelled
from .core.jobs import OverwriteRefused

EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


# --- small helpers -------------------------------------------------------------------------


@contextmanager
def progress_bar(desc: str, quiet: bool = False):
    """A core progress callback drawn as a tqdm bar."""
    from tqdm import tqdm

    bar = tqdm(
        total=0,
        desc=desc,
        unit="step",
        disable=quiet,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
    )

    def report(done: int, total: int, message: str = "") -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.n = done
        if message:
            bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    try:
        yield report
    finally:
        bar.close()


# --- option values: checked before any work starts -----------------------------------------
# Every numeric option goes through one of these `type=` functions, so a bad value ends in
# argparse's usual one line ("argument --batch-size: must be an integer >= 1, not 0", exit 2)
# instead of a traceback half-way through a job or a silently useless result.

MAX_SIDE = 4096  # input sides above this would allocate tens of GB (120 GB at 100000)
MAX_SEED = 2**32 - 1  # numpy's seeds


def _range_text(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    def num(v) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    if hi is None:
        return f"{'>' if lo_open else '>='} {num(lo)}"
    if not lo_open and not hi_open:
        return f"between {num(lo)} and {num(hi)}"
    return f"{'>' if lo_open else '>='} {num(lo)} and {'<' if hi_open else '<='} {num(hi)}"


def _shown(text: str) -> str:
    text = str(text)
    return text if text and text.strip() == text and len(text) <= 40 else repr(text[:40])


def int_in(lo: int, hi: Optional[int] = None):
    """An argparse type: an integer with lo <= value (<= hi)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            value = None
        if value is None or value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"must be an integer {_range_text(lo, hi)}, not {_shown(text)}"
            )
        return value

    parse.__name__ = "integer"
    return parse


def float_in(lo: float, hi: Optional[float] = None, *, lo_open=False, hi_open=False):
    """An argparse type: a finite number in the given range (nan and inf are refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo)
        if ok and hi is not None:
            ok = value < hi if hi_open else value <= hi
        if not ok:
            raise argparse.ArgumentTypeError(
                f"must be a finite number {_range_text(lo, hi, lo_open, hi_open)}, not {_shown(text)}"
            )
        return value

    parse.__name__ = "number"
    return parse


def list_of(item, what: str):
    """An argparse type: comma-separated values, each checked by ``item``; at least one."""

    def parse(text: str) -> list:
        values = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            try:
                values.append(item(part.strip()))
            except argparse.ArgumentTypeError as exc:
                detail = str(exc).removeprefix("must be ")
                raise argparse.ArgumentTypeError(f"must list {what}, each {detail}") from None
        if not values:
            raise argparse.ArgumentTypeError(
                f"must list at least one of the {what}, not {_shown(text)}"
            )
        return values

    parse.__name__ = "list"
    return parse


def one_of(choices):
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(
                f"must be one of {', '.join(choices)}, not {_shown(text)}"
            )
        return text

    return parse


def pool_size(text: str) -> int:
    """--pool: k x k averaging keeps the grid's size only for odd k."""
    value = int_in(1, 15)(text)
    if value % 2 == 0:
        raise argparse.ArgumentTypeError(f"must be an odd integer between 1 and 15, not {value}")
    return value


seed_int = int_in(0, MAX_SEED)
positive_float = float_in(0, lo_open=True)
fraction_0_1 = float_in(0, 1, hi_open=True)  # a share of the data: 0 allowed, 1 leaves nothing
sd_fraction = float_in(0, 1, lo_open=True)  # AFPS sd as a fraction of the grid side
seconds = float_in(0, 10**7, lo_open=True)


def on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"must be on or off, not {_shown(text)}")
    return text == "on"


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '224x640' -> (224, 640) as height x width; sides 32..4096."""
    bad = argparse.ArgumentTypeError(
        f"must be N or HxW with sides between 32 and {MAX_SIDE}, not {_shown(text)}"
    )
    try:
        parts = [int(p) for p in str(text).lower().replace(",", "x").split("x")]
    except ValueError:
        raise bad from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 32 or max(parts) > MAX_SIDE:
        raise bad
    return parts[0], parts[1]


int_list = list_of(int_in(1, 100_000), "patch counts")
float_list = list_of(sd_fraction, "sd values")


# --- output paths: checked before any work starts ------------------------------------------

# (option as the user wrote it, attribute, "file" or "folder") for every output; an attribute a
# subcommand lacks is not checked there.
OUTPUTS = (
    ("--json", "json", "file"),
    ("--out", "out", None),  # a model file for fit/train, a folder for experiment
    ("--save-model", "save_model", "file"),
    ("--csv", "csv", "file"),
    ("--overlays", "overlays", "folder"),
)


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output(option: str, path, kind: str) -> None:
    """Raise AfpsError unless ``path`` can be written as a ``kind`` ("file" or "folder"):
    an existing one of the other kind, a file in the way of its folders, or a folder that
    cannot be written in are all refused."""
    text = str(path)
    try:
        if not text.strip() or "\x00" in text:
            raise AfpsError(f"argument {option}: {_shown(text)} is not a usable path.")
        p = Path(text).expanduser().absolute()
        if p.exists() or p.is_symlink():
            if kind == "file" and p.is_dir():
                raise AfpsError(f"argument {option}: {text} is a folder, not a file.")
            if kind == "folder" and not p.is_dir():
                raise AfpsError(f"argument {option}: {text} exists and is not a folder.")
            if kind == "folder":
                if not os.access(p, os.W_OK | os.X_OK):
                    raise AfpsError(f"argument {option}: cannot write in the folder {text}.")
                return
        parent = _first_existing(p if kind == "folder" else p.parent)
        if not parent.is_dir():
            raise AfpsError(
                f"argument {option}: cannot create {text}: {parent} is a file, not a folder."
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise AfpsError(f"argument {option}: cannot create {text}: {parent} is not writable.")
    except RuntimeError:  # pathlib's expanduser: "~name" of a user this machine does not have
        raise AfpsError(f"argument {option}: {_shown(text)} names no known user's home.") from None
    except OSError as exc:
        raise AfpsError(
            f"argument {option}: cannot use {_shown(text)}: {exc.strerror or exc}"
        ) from None


def check_device(choice: str) -> None:
    """--device names a device this machine has (auto, cpu, cuda[:N])."""
    from .core.devices import resolve_device

    try:
        kind = resolve_device(choice).type
    except AfpsError as exc:
        raise AfpsError(f"argument --device: {exc}") from None
    except (RuntimeError, ValueError, TypeError):
        raise AfpsError(
            f"argument --device: must be auto, cpu or cuda[:N], not {_shown(choice)}"
        ) from None
    if kind not in ("cpu", "cuda", "mps"):
        raise AfpsError(f"argument --device: must be auto, cpu or cuda[:N], not {_shown(choice)}")


def validate(args) -> None:
    """What the parser cannot check alone, checked before any work starts: every output path
    can be written. Raises AfpsError (exit 2) naming the option."""
    command = getattr(args, "command", None)
    if getattr(args, "device", None) is not None:
        check_device(args.device)
    for option, attr, kind in OUTPUTS:
        value = getattr(args, attr, None)
        if not value:
            continue
        if attr == "out":
            kind = "folder" if command == "experiment" else "file"
        check_output(option, value, kind)
    if command == "labels" and args.action == "export":
        check_output("FILE", args.file, "file")
    if command in ("demo",) or getattr(args, "project_command", None) == "new":
        check_output("FOLDER", args.folder, "folder")
    if command == "watch":
        check_watch(args)


def peak_rss_mib() -> Optional[float]:
    """This process's peak resident memory so far (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB else


def write_json(path: Optional[str], data) -> None:
    if not path:
        return
    from .core.jobs import atomic_write

    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(data), indent=2), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


DEFAULT_TUNE_BUDGET_S = 600.0
# Detection settings that tuning chooses; giving any of them on the command line turns tuning off.
TUNED_OPTIONS = {
    "backbone": "backbone",
    "size": "input_size",
    "resize": "resize",
    "pool": "feature_pool",
    "sigma": "sigma",
    "model": "normal_model",
    "stride": "stride",
    "edges": "edge_correction",
}


def padim_config(args):
    """The defaults, with every setting given on the command line over them."""
    from dataclasses import replace

    from .core.padim import PadimConfig
    from .core.tuning import stride_for

    given = {field: getattr(args, opt) for opt, field in TUNED_OPTIONS.items()}
    given = {k: v for k, v in given.items() if v is not None}
    if "input_size" in given and "stride" not in given:
        given["stride"] = stride_for(given["input_size"])
    memory = getattr(args, "memory", None)
    return replace(
        PadimConfig(d=args.d, seed=args.seed, batch_size=args.batch),
        **given,
        **({"memory_size": memory} if memory else {}),
    )


def tune_budget(args) -> Optional[float]:
    """Seconds for tuning, or None where the user chose the settings or turned tuning off."""
    explicit = [f"--{o}" for o in TUNED_OPTIONS if getattr(args, o, None) is not None]
    if args.no_tune or explicit:
        if explicit and not args.no_tune and not args.quiet:
            print(f"not tuning: {', '.join(explicit)} given", file=sys.stderr)
        return None
    return args.tune_budget or DEFAULT_TUNE_BUDGET_S


def print_tuning(tuning: Optional[dict]) -> None:
    from .core.tuning import format_table

    if tuning:
        print(format_table(tuning))


def _fit_kwargs(args) -> dict:
    return {"n_fit": args.n_fit, "seed": args.seed, "device": args.device, "weights": args.weights}


def load_data(args):
    from .core.datasets import load_dataset

    with progress_bar("Reading dataset", args.quiet) as bar:
        ds = load_dataset(args.data, args.layout, getattr(args, "labels", None), progress=bar)
    if ds.skipped:
        print(
            f"skipped {len(ds.skipped)} unusable files (first: {ds.skipped[0][0]}: {ds.skipped[0][1]})",
            file=sys.stderr,
        )
    return ds


# --- commands ------------------------------------------------------------------------------


def cmd_evaluate(args) -> int:
    from .core.pipeline import evaluate_detection

    ds = load_data(args)
    n_fit = args.n_fit
    if n_fit is None and ds.layout == "magnetic-tile":
        n_fit = 800  # the reference protocol for magnetic tiles: fit on 800 normals
    with progress_bar("Fit + score", args.quiet) as bar:
        res = evaluate_detection(
            ds,
            padim_config(args),
            n_fit=n_fit,
            seed=args.seed,
            device=args.device,
            weights=args.weights,
            progress=bar,
            model_out=args.save_model,
            tune_budget_s=tune_budget(args),
        )
    print_tuning(res.tuning)
    out = res.as_dict()
    out.update(
        dataset=str(args.data),
        layout=ds.layout,
        backbone=res.settings["backbone"],
        size=res.settings["input_size"],
        resize=res.settings["resize"],
        d=args.d,
    )
    if res.tuning:
        t = res.tuning
        out.update(
            n_tune_fit=t["n_fit"],
            n_tune_normal=t["n_val_normal"],
            n_tune_defect=t["n_val_defect"],
            tune_synthetic=t["synthetic"],
            tune_seconds=t["seconds"],
        )
    out["fit_images_per_s"] = res.n_fit / res.fit_seconds if res.fit_seconds else None
    out["peak_rss_mib"] = peak_rss_mib()
    n_scored = res.n_test_normal + res.n_test_anomalous
    out["score_images_per_s"] = n_scored / res.score_seconds if res.score_seconds else None
    print(
        f"image AUROC {res.image_auroc:.4f}   pixel AUROC {res.pixel_auroc:.4f}   PRO {res.pro:.4f}"
    )
    print(
        f"fit on {res.n_fit} normal images in {res.fit_seconds:.1f} s; tested on {res.n_test_normal} normal + {res.n_test_anomalous} defective"
    )
    print("settings: " + ", ".join(f"{k} {v}" for k, v in res.settings.items()))
    for t, v in res.per_type_auroc.items():
        print(f"  {t:>12}: image AUROC {v:.4f}")
    write_json(
        args.json, {k: v for k, v in out.items() if k != "skipped"} | {"skipped": len(res.skipped)}
    )
    return 0


def cmd_experiment(args) -> int:
    from .core.classifier import ClassifierConfig
    from .core.experiment import ExperimentPlan, run_experiment
    from .core.model_choice import examples_need_looks
    from .core.pipeline import build_examples, fit_on_normals

    ds = load_data(args)
    classes = ds.resolve_types(args.classes)
    if len(classes) < 2:
        raise AfpsError("--classes needs at least two defect types.")
    samples = [s for s in ds.anomalies() if s.label in classes]
    base = ClassifierConfig(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, use_scores=not args.no_scores
    )
    plan = ExperimentPlan(
        ns=args.n,
        strategies=args.strategies,
        sds=args.sd,
        sd=args.afps_sd,
        sd_sweep_n=args.sd_n,
        seeds=args.seeds,
        test_fraction=args.test_fraction,
        base=base,
    )
    t0 = time.perf_counter()
    config = padim_config(args)
    budget = tune_budget(args)
    if budget is not None:
        # Where the defect is matters more to typing than anything after it: detection settings
        # come from the data, as in `afps evaluate` (tuning reads no defect type).
        config = tune_dataset(args, ds, config, budget).best
    with progress_bar("Fitting PaDiM", args.quiet) as bar:
        padim, _, _ = fit_on_normals(ds, config, **_fit_kwargs(args), progress=bar)
    looks = examples_need_looks(plan.strategies)
    with progress_bar(
        "Embedding defects" + (" and their close looks" if looks else ""), args.quiet
    ) as bar:
        examples, skipped = build_examples(padim, samples, classes, progress=bar, looks=looks)
    if skipped:
        print(
            f"skipped {len(skipped)} images (first: {skipped[0][0]}: {skipped[0][1]})",
            file=sys.stderr,
        )
    with progress_bar("Training classifiers", args.quiet) as bar:
        rows = run_experiment(examples, classes, plan, progress=bar, device=args.device)
    seconds = time.perf_counter() - t0
    cfg = padim.config
    title = f"{' vs '.join(classes)}: {len(samples)} images, {cfg.backbone} {cfg.input_size[0]}x{cfg.input_size[1]}"
    _write_experiment(Path(args.out), rows, plan, title, seconds)
    write_json(args.json, rows)
    return 0


def _write_experiment(out: Path, rows: list[dict], plan, title: str, seconds: float) -> None:
    """results.json, results.md (printed too), choices.json when auto chose, the N plot."""
    from .core.experiment import markdown_tables, plot_accuracy_vs_n
    from .core.jobs import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "results.json") as tmp:
        tmp.write_text(
            json.dumps(
                [{k: v for k, v in r.items() if k not in ("confusion", "cv")} for r in rows],
                indent=1,
            )
        )
    md = (
        markdown_tables(rows, plan, title)
        + f"\nTotal time {seconds / 60:.1f} min (fit, embeddings, {len(rows)} trainings).\n"
    )
    choices = [{"seed": r["seed"], "chosen": r["chosen"], "cv": r["cv"]} for r in rows if "cv" in r]
    if choices:
        with atomic_write(out / "choices.json") as tmp:
            tmp.write_text(json.dumps(choices, indent=1))
    with atomic_write(out / "results.md") as tmp:
        tmp.write_text(md, encoding="utf-8")
    plot_accuracy_vs_n(rows, plan, out / "accuracy_vs_n.png", title)
    print(md)
    print(
        f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'accuracy_vs_n.png'}",
        file=sys.stderr,
    )


def cmd_fit(args) -> int:
    from dataclasses import asdict

    from .core.pipeline import fit_on_normals

    if args.project:
        from .core import pipeline

        with _open_project(args.project) as project, progress_bar("Fitting", args.quiet) as bar:
            res = pipeline.fit_project(project, progress=bar, tune_budget_s=args.tune_budget)
        print_tuning(res.tuning)
        print(
            f"fitted on {res.n_images} normal images in {res.seconds:.1f} s; threshold {res.threshold:.3f}"
        )
        _report_skipped(res.skipped)
        write_json(
            args.json,
            _fit_json(res.n_images, res.skipped, res.threshold, res.seconds, res.settings)
            | {"project": str(args.project), "tuning": res.tuning},
        )
        return 0
    if not args.data or not args.out:
        raise AfpsError("fit needs DATA and --out MODEL.pt (or --project DIR).")
    ds = load_data(args)
    config = padim_config(args)
    budget = tune_budget(args)
    if budget is not None:
        config = tune_dataset(args, ds, config, budget).best
    with progress_bar("Fitting", args.quiet) as bar:
        padim, _, rep = fit_on_normals(ds, config, **_fit_kwargs(args), progress=bar)
    padim.save(args.out)
    print(f"fitted on {rep.n_images} images; threshold {padim.threshold}; wrote {args.out}")
    _report_skipped(rep.skipped)
    write_json(
        args.json,
        _fit_json(rep.n_images, rep.skipped, padim.threshold, rep.seconds, asdict(padim.config))
        | {"dataset": str(args.data), "layout": ds.layout, "model": str(args.out)},
    )
    return 0


def _fit_json(n_images, skipped, threshold, seconds, settings) -> dict:
    """`afps fit --json`: what was fitted, what was skipped and why, the threshold, the time."""
    return {
        "n_images": n_images,
        "n_skipped": len(skipped),
        "skipped": [{"image": str(p), "reason": str(r)} for p, r in skipped],
        "threshold": threshold,
        "seconds": seconds,
        "settings": settings,
    }


def _report_skipped(skipped) -> None:
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)


def tune_dataset(args, ds, config, budget: float):
    """Tune on a dataset's fit normals, its validation normals and its defects; print the table."""
    from .core.datasets import split_normals
    from .core.tuning import TuneData, tune_detection

    split = split_normals(ds.normals(), args.seed, n_fit=args.n_fit)
    with progress_bar("Tuning", args.quiet) as bar:
        tuned = tune_detection(
            TuneData(split.fit, split.val or split.test, ds.anomalies()),
            base=config,
            budget_s=budget,
            seed=args.seed,
            device=args.device,
            weights=args.weights,
            progress=bar,
        )
    print_tuning(tuned.as_dict())
    return tuned


def train_config(args, base=None):
    """``base`` (the project's saved classifier settings; without a project ClassifierConfig())
    with only the options given on the command line changed: they default to None."""
    from dataclasses import replace

    from .core.classifier import ClassifierConfig

    given = {
        "n": args.n,
        "strategy": args.strategy,
        "sd": args.afps_sd,
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    return replace(base or ClassifierConfig(), **{k: v for k, v in given.items() if v is not None})


def cmd_train(args) -> int:
    if args.project:
        from .core import pipeline

        with _open_project(args.project) as project, progress_bar("Training", args.quiet) as bar:
            config = train_config(args, project.settings.classifier)
            res = pipeline.train_project(project, config, progress=bar)
        _print_metrics(res.metrics)
        _report_skipped(res.skipped)  # not classified again: they keep their previous prediction
        print(
            f"{len(res.changed)} images changed prediction; FLOPs per image {res.flops / 1e6:.1f}M"
        )
        write_json(args.json, res.metrics)
        return 0
    if not (args.data and args.padim and args.out and args.classes):
        raise AfpsError(
            "train needs DATA --padim MODEL.pt --classes A,B --out CLASSIFIER.pt (or --project DIR)."
        )
    from .core.datasets import split_anomalies
    from .core.padim import PadimModel
    from .core.pipeline import train_and_test

    ds = load_data(args)
    classes = ds.resolve_types(args.classes)
    # The split, embedding, training and testing of the app's training (pipeline.train_project).
    config = train_config(args)
    train, test = split_anomalies(
        [s for s in ds.anomalies() if s.label in classes],
        config.seed,
        test_fraction=args.test_fraction,
    )
    padim = PadimModel.load(args.padim, device=args.device)
    with progress_bar("Training", args.quiet) as bar:
        res = train_and_test(padim, train, test, classes, config, device=args.device, progress=bar)
    if res.choice:
        print_choice(res.choice)
    res.clf.save(args.out, extra={"metrics": res.metrics, "choice": res.choice})
    _print_metrics(res.metrics)
    print(f"FLOPs per image {res.clf.flops() / 1e6:.1f}M; wrote {args.out}")
    write_json(args.json, res.metrics)
    return 0


def print_choice(choice: dict) -> None:
    from .core.model_choice import format_choice

    print(format_choice(choice))


def _print_metrics(m: dict) -> None:
    if not m:
        print("no held-out images to test on")
        return
    print(
        f"accuracy {m['accuracy']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}"
    )
    print("confusion (rows true, columns predicted): " + " | ".join(m["classes"]))
    for name, row in zip(m["classes"], m["confusion"]):
        print(f"  {name:>12}: {row}")


def cmd_predict(args) -> int:
    from .core.classifiers import load_classifier_file
    from .core.csv_cells import escape_cell
    from .core.images import is_image_file
    from .core.jobs import atomic_write, refuse_overwrite
    from .core.padim import PadimModel

    folder = Path(args.folder)
    if not folder.is_dir():
        raise AfpsError(f"{folder} is not a folder of images.")
    paths, skipped = predict_inputs(folder, is_image_file)
    if not paths:
        _report_skipped(skipped)
        raise AfpsError(
            f"No images (PNG, JPEG, BMP, TIFF) in {folder}"
            + (f" ({len(skipped)} skipped, listed above)." if skipped else ".")
        )
    refuse_overwrite(args.csv, args.overwrite)
    padim = PadimModel.load(args.padim, device=args.device)
    clf = load_classifier_file(args.classifier, device=args.device) if args.classifier else None
    rows = _predict_rows(args, folder, paths, skipped, padim, clf)
    with atomic_write(args.csv) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["image"])
        writer.writeheader()
        writer.writerows({k: escape_cell(v) for k, v in r.items()} for r in rows)
    n_anom = sum(1 for r in rows if r["anomalous"])
    skipped = [(_relative(p, folder), r) for p, r in skipped]
    _report_skipped(skipped)
    print(
        f"{len(rows)} images scored, {n_anom} anomalous, {len(skipped)} skipped; wrote {args.csv}"
    )
    write_json(
        args.json,
        {
            "folder": str(folder),
            "csv": str(args.csv),
            "n_scored": len(rows),
            "n_anomalous": n_anom,
            "n_skipped": len(skipped),
            "skipped": [{"image": str(p), "reason": str(r)} for p, r in skipped],
        },
    )
    return 0 if rows else EXIT_ERROR


def _predict_rows(args, folder: Path, paths, skipped, padim, clf) -> list[dict]:
    """One row per scored image; the anomalous ones typed in batches of 32, as the project's
    scoring does (pipeline.BatchClassifying): a row's type is filled in when its batch runs."""
    from .core.images import posix_rel
    from .core.padim import anomalous_or_none
    from .core.pipeline import BatchClassifying

    def typed(row: dict, _score: float, p) -> None:
        row.update(type=p.label, confidence=round(p.confidence, 4))

    classifying = BatchClassifying(clf, typed) if clf is not None else None
    rows = []
    with progress_bar("Predicting", args.quiet) as bar:
        for path, score in padim.score_items(
            paths, keep_embeddings=clf is not None, progress=bar, skipped=skipped
        ):
            anomalous = anomalous_or_none(score.score, padim.threshold)
            row = {
                "image": posix_rel(path, folder),
                "score": round(score.score, 4),
                "normalised": round(float(padim.normalise(score.score)), 4),
                "anomalous": anomalous,
                "type": "",
                "confidence": "",
            }
            rows.append(row)
            if classifying is not None and anomalous:
                reason = classifying.add_sample(row, padim, path, score)
                if reason is not None:  # the row stays anomalous and untyped; the run goes on
                    print(f"not typed {row['image']}: {reason}", file=sys.stderr)
            if args.overlays:
                _save_overlay(args.overlays, args.overwrite, padim, path, score.map, row["image"])
        if classifying is not None:
            classifying.flush()
    return rows


def _save_overlay(folder, overwrite: bool, padim, path: Path, amap, name: str):
    """The heat map over the image as ``folder/<name with '/' as '__'>.png`` (predict, report)."""
    from .core.images import load_image
    from .core.overlay import map_levels, render_overlay, save_overlay

    lo, hi = map_levels(padim.threshold, padim.score_floor, amap)  # the viewer's colours
    pix = render_overlay(load_image(path), amap, padim.threshold, lo, hi)
    save_overlay(Path(folder) / (name.replace("/", "__") + ".png"), pix, overwrite=overwrite)


def _relative(path, folder: Path) -> str:
    from .core.images import posix_rel

    try:
        return posix_rel(path, folder)
    except ValueError:
        return str(path)


def predict_inputs(folder: Path, is_image_file) -> tuple[list[Path], list[tuple[str, str]]]:
    """The image files under ``folder`` (masks left out), and every entry whose name looks
    like an image but that cannot be read as one, with the reason: nothing vanishes silently."""
    from .core.images import posix_rel

    paths, skipped = [], []
    for p in sorted(folder.rglob("*")):
        if not is_image_file(p) or p.stem.endswith("_mask"):
            continue
        rel = posix_rel(p, folder)
        try:
            if p.is_symlink() and not p.exists():
                try:
                    p.resolve(strict=True)
                    reason = "symbolic link that cannot be followed"
                except RuntimeError:
                    reason = "symbolic link loop"
                except OSError as exc:
                    loop = getattr(exc, "errno", None) == errno.ELOOP
                    reason = "symbolic link loop" if loop else "dangling symbolic link"
                skipped.append((rel, reason))
            elif p.is_dir():
                skipped.append((rel, "a folder, not an image file"))
            elif not p.is_file():
                skipped.append((rel, "not a regular file"))
            else:
                paths.append(p)
        except OSError as exc:
            skipped.append((rel, f"cannot be read: {exc.strerror or exc}"))
    return paths, skipped


@contextmanager
def _open_project(folder, *, write: bool = True):
    """The project, open for a job that changes it (``write``) or only reads it: a project
    open elsewhere, or in a folder the user may not write, can still be exported and reported."""
    from .core.project import Project

    # Exporting labels needs no images: a project whose dataset moved can still give them.
    project = Project.open(folder, require_dataset=write)
    if project.readonly and write:
        project.close()
        raise AfpsError(project.readonly_reason or "The project is open elsewhere.")
    if project.readonly:
        print(f"afps: {project.readonly_reason or 'opened read-only'}", file=sys.stderr)
    try:
        yield project
    finally:
        project.close()


def cmd_project_new(args) -> int:
    from .core.project import Project, ProjectSettings

    ds = load_data(args)
    print(ds.summary())
    settings = ProjectSettings(
        dataset_root=str(Path(args.data).resolve()),
        layout=ds.layout,
        padim=padim_config(args),
        n_fit=args.n_fit,
        device=args.device,
        auto_tune=tune_budget(args) is not None,
        tune_budget_s=args.tune_budget or DEFAULT_TUNE_BUDGET_S,
    )
    Project.create(args.folder, settings, ds).close()
    print(f"created project {args.folder}")
    if settings.auto_tune:
        print("its detection settings are tuned on its data before the first fit ('afps tune')")
    return 0


def cmd_tune(args) -> int:
    """Compare detection settings on the data; with --project, store the best in the project."""
    from .core import pipeline

    if args.project:
        with _open_project(args.project) as project, progress_bar("Tuning", args.quiet) as bar:
            res = pipeline.tune_project(project, budget_s=args.budget, progress=bar)
        print_tuning(res.as_dict())
        print(f"stored in {args.project}: the next fit uses them")
    else:
        if not args.data:
            raise AfpsError("tune needs DATA (a dataset folder) or --project DIR.")
        budget = args.budget or DEFAULT_TUNE_BUDGET_S
        res = tune_dataset(args, load_data(args), padim_config(args), budget)
    write_json(args.json, res.as_dict())
    return 0


def cmd_score(args) -> int:
    from .core import pipeline

    with _open_project(args.project) as project, progress_bar("Scoring", args.quiet) as bar:
        res = pipeline.score_project(project, progress=bar)
    print(
        f"scored {res.n_scored} images in {res.seconds:.1f} s: {res.n_anomalous} anomalous, "
        f"{res.n_classified} classified, {len(res.skipped)} skipped"
    )
    _report_skipped(res.skipped)
    write_json(
        args.json,
        {
            "n_scored": res.n_scored,
            "n_anomalous": res.n_anomalous,
            "n_classified": res.n_classified,
            "n_skipped": len(res.skipped),
            "skipped": [{"image": r, "reason": why} for r, why in res.skipped],
            "seconds": res.seconds,
        },
    )
    return 0


def cmd_labels(args) -> int:
    with _open_project(args.project, write=args.action != "export") as project:
        if args.action == "export":
            n = project.store.export_csv(args.file, overwrite=args.overwrite)
            print(f"exported {n} labels to {args.file}")
            return 0
        rep = project.import_labels(args.file)  # dataset and line images, paths under the root
        print(f"imported {rep.applied} labels ({rep.unchanged} unchanged)")
        for title, items in (
            ("unknown images", rep.unknown_images),
            ("unknown types", rep.unknown_types),
            ("bad rows", rep.bad_rows),
        ):
            if items:
                print(
                    f"{len(items)} {title}: {', '.join(map(str, items[:10]))}{' ...' if len(items) > 10 else ''}"
                )
        return 0


def cmd_report(args) -> int:
    from .core.pipeline import saved_threshold
    from .core.report import project_rows, write_report

    with _open_project(args.project, write=False) as project:
        rows = project_rows(project, saved_threshold(project))
        write_report(project.store, rows, args.csv, args.json, overwrite=args.overwrite)
        print(
            f"wrote a report of {len(rows)} images to {args.csv}"
            + (f" and {args.json}" if args.json else "")
        )
        if args.overlays:
            _write_overlays(project, args.overlays, args.overwrite, args.quiet)
    return 0


def _write_overlays(project, folder, overwrite, quiet) -> None:
    from .core.padim import smooth_map
    from .core.pipeline import load_padim
    from .core.preprocess import Box

    padim = load_padim(project, summary=True)  # cached maps need no Gaussians
    samples = [s for s in project.dataset.samples if project.cache.get(s.rel) is not None]
    with progress_bar("Overlays", quiet) as bar:
        for i, s in enumerate(samples):
            cached = project.cache.get(s.rel)
            amap = smooth_map(cached.patch_map, Box(*cached.box), padim.config)
            _save_overlay(folder, overwrite, padim, s.path, amap, s.rel)
            bar(i + 1, len(samples), s.rel)


def cmd_demo(args) -> int:
    from .core.demo import make_demo_dataset

    root = make_demo_dataset(
        args.folder, n_normal=args.normal, n_per_type=args.per_type, seed=args.seed
    )
    print(f"demo dataset in {root}")
    return 0


# --- watch: inspect the line -----------------------------------------------------------------


def check_watch(args) -> None:
    """The project, the watched folder and the outputs, checked before the models load."""
    from .core.project import SETTINGS_NAME

    if args.jsonl:
        check_output("--jsonl", args.jsonl, "file")
    if args.move_to:
        check_output("--move-to", args.move_to, "folder")
    elif args.copy:
        raise AfpsError("argument --copy: needs --move-to DIR (where the copies go).")
    if not (Path(args.project) / SETTINGS_NAME).is_file():
        raise AfpsError(
            f"{args.project} is not an AFPS Inspector project: give the project folder first, "
            "then the folder to watch (afps watch PROJECT FOLDER)."
        )
    if not Path(args.folder).is_dir():
        raise AfpsError(f"{args.folder} is not a folder: give the folder the camera writes into.")


@contextmanager
def stop_on_signals(stop: threading.Event):
    """Ctrl+C (or SIGTERM) sets ``stop``: the watcher finishes the batch in hand and returns.
    A second Ctrl+C interrupts at once (still safe: every result is one transaction)."""
    import signal

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    wanted = [signal.SIGINT, getattr(signal, "SIGTERM", None)]
    old = {sig: signal.signal(sig, handler) for sig in wanted if sig is not None}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def print_inspection(item: dict) -> None:
    """One line per part on stdout: verdict, score, type and confidence, file."""
    if item["verdict"] is None:
        print(f"ERR {item['file']}: {item['error']}", flush=True)
        return
    kind = ""
    if item["verdict"] == "NG":
        conf = item["confidence"]
        kind = f" {item['type'] or 'untyped'}" + (f" {conf:.0%}" if conf is not None else "")
        kind += f" ({item['error']})" if item["error"] else ""
    print(f"{item['verdict']}  {item['score']:.4g}{kind}  {item['file']}", flush=True)


def cmd_watch(args) -> int:
    from .core.line_inspection import WatchOptions, run_watch

    stop = threading.Event()
    options = WatchOptions(
        folder=args.folder,
        recursive=args.recursive,
        once=args.once,
        move_to=args.move_to,
        copy=args.copy,
        jsonl=args.jsonl,
        poll_s=args.poll,
        settle_s=args.settle,
    )
    with stop_on_signals(stop), _open_project(args.project) as project:
        if not args.quiet:
            print(
                f"watching {args.folder}{' once' if args.once else ''}; Ctrl+C stops",
                file=sys.stderr,
            )
        res = run_watch(
            project,
            options,
            post=(lambda item: None) if args.quiet else print_inspection,
            cancel=stop,
        )
    print(
        f"inspected {res.inspected} images in {res.seconds:.1f} s: {res.ok} OK, {res.ng} NG, "
        f"{res.errors} unreadable" + ("; stopped" if res.stopped else ""),
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED if res.stopped else 0


# --- parser --------------------------------------------------------------------------------


def _data_options(p, data_required=True):
    from .core.datasets import LAYOUTS

    if data_required:
        p.add_argument("data", help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, help="dataset layout (default: detected)")
    p.add_argument("--labels", help="labels CSV (image,label) adding or overriding defect types")
    _model_options(p)
    _fit_options(p)
    p.add_argument("--seed", type=seed_int, default=0)


def _model_options(p):
    """How images become patch features and which normal model they feed."""
    from .core.backbones import DEFAULT_BACKBONE, REGISTRY
    from .core.normal_models import NORMAL_MODELS
    from .core.padim import PadimConfig

    defaults = PadimConfig()
    # Settings that tuning chooses default to None: given, they win over tuning (and turn it off).
    p.add_argument(
        "--backbone",
        choices=sorted(REGISTRY),
        help=f"feature extractor (default {DEFAULT_BACKBONE})",
    )
    p.add_argument("--weights", help="explicit backbone weights file (torchvision backbones)")
    p.add_argument(
        "--size",
        type=parse_size,
        help=f"model input N or HxW (default: tuned; untuned {defaults.input_size[0]})",
    )
    p.add_argument(
        "--resize",
        choices=("squash", "fit"),
        help="fit keeps the aspect ratio (default: tuned; untuned fit)",
    )
    p.add_argument(
        "--model",
        choices=NORMAL_MODELS,
        help="normal model: gaussian = one Gaussian per patch position (PaDiM), knn = memory of "
        "normal patches from any position, for parts that move (default: tuned; untuned gaussian)",
    )
    p.add_argument(
        "--stride",
        type=int,
        choices=(4, 8),
        help="input pixels per grid cell (default 4, 8 above ~300 x 300 inputs)",
    )
    p.add_argument(
        "--edges",
        type=on_off,
        metavar="{on,off}",
        help="damp the image's rim by its typical score on held-out normals (default: tuned)",
    )
    p.add_argument(
        "--memory",
        type=int_in(1, 10_000_000),
        help=f"normal patches the knn model keeps (default {defaults.memory_size})",
    )


def _fit_options(p):
    """How much of the features and images the fit uses, and how the map is smoothed."""
    from .core.padim import PadimConfig

    defaults = PadimConfig()
    p.add_argument(
        "--d",
        type=int_in(1, 100_000),
        default=None,
        help="random channel subset size (default: all)",
    )
    p.add_argument(
        "--n-fit",
        type=int_in(1, 10_000_000),
        default=None,
        help="normal images to fit on (default 80%%)",
    )
    p.add_argument("--batch", type=int_in(1, 1024), default=16, help="images per backbone batch")
    p.add_argument(
        "--pool",
        type=pool_size,
        help=f"k x k feature averaging, 1 = off (default: tuned; untuned {defaults.feature_pool})",
    )
    p.add_argument(
        "--sigma",
        type=float_in(0, 1000),
        help=f"Gaussian blur of the anomaly map, in pixels (default: tuned; untuned {defaults.sigma:g})",
    )


def _tune_options(p):
    p.add_argument(
        "--no-tune", action="store_true", help="use the untuned defaults instead of tuning"
    )
    p.add_argument(
        "--tune-budget",
        type=seconds,
        help="seconds tuning may take (default 600, or the project's; it stops trying "
        "candidates after that)",
    )


def _common(p):
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--json", help="also write machine-readable results here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _train_options(p):
    """The classifier's settings: each defaults to None, so that only the options given change
    the project's saved settings (or, without a project, ClassifierConfig's); see train_config."""
    from .core.classifier import ClassifierConfig
    from .core.classifiers import AUTO, CLASSIFIER_STRATEGIES

    d, theirs = ClassifierConfig(), "or the project's"
    p.add_argument(
        "--n", type=int_in(1, 100_000), help=f"patches per image (default {d.n}, {theirs})"
    )
    p.add_argument(
        "--strategy",
        choices=(AUTO,) + CLASSIFIER_STRATEGIES,
        help=f"auto: cross-validation on the training labels chooses (see README) (default "
        f"{d.strategy}, {theirs})",
    )
    p.add_argument(
        "--afps-sd",
        type=sd_fraction,
        help=f"AFPS sd as a fraction of the grid side (default {d.sd:g}, {theirs})",
    )
    _optimiser_options(p, epochs=None)
    p.set_defaults(seed=None)  # the classifier's seed too: given, it overrides the project's


def _optimiser_options(p, epochs: Optional[int], epochs_help: str = "training epochs"):
    """Epochs, learning rate, batch size and held-out share. ``epochs=None`` (afps train): the
    first three default to None and only the given ones change the classifier settings."""
    from .core.classifier import ClassifierConfig

    d = ClassifierConfig()
    fixed = epochs is not None
    theirs = "" if fixed else ", or the project's"
    p.add_argument(
        "--epochs",
        type=int_in(1, 100_000),
        default=epochs,
        help=f"{epochs_help} (default {epochs if fixed else d.epochs}{theirs})",
    )
    p.add_argument(
        "--lr",
        type=float_in(0, 10, lo_open=True),
        default=d.lr if fixed else None,
        help=f"learning rate (default {d.lr:g}{theirs})",
    )
    p.add_argument(
        "--batch-size",
        type=int_in(1, 4096),
        default=d.batch_size if fixed else None,
        help=f"images per training batch (default {d.batch_size}{theirs})",
    )
    p.add_argument(
        "--test-fraction", type=fraction_0_1, default=0.4, help="held-out share of defects"
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="afps", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("evaluate", help="fit PaDiM on normal images and report detection metrics")
    _data_options(p)
    _common(p)
    _tune_options(p)
    p.add_argument("--save-model", help="also save the fitted PaDiM model here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("tune", help="choose detection settings from the data (or a project's)")
    p.add_argument("data", nargs="?")
    _data_options(p, data_required=False)
    _common(p)
    p.add_argument("--budget", type=seconds, help="seconds (default 600, or the project's)")
    p.add_argument("--project", help="tune this project and store the settings in it")
    p.set_defaults(func=cmd_tune)

    _experiment_parser(sub)

    p = sub.add_parser("fit", help="fit PaDiM on a dataset's normal images (or a project's)")
    p.add_argument("data", nargs="?")
    _data_options(p, data_required=False)
    _common(p)
    _tune_options(p)
    p.add_argument("--out", help="model file to write")
    p.add_argument("--project", help="fit the project in this folder instead")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("train", help="train the defect classifier")
    p.add_argument("data", nargs="?")
    _data_options(p, data_required=False)
    _common(p)
    _train_options(p)
    p.add_argument("--padim", help="fitted PaDiM model file")
    p.add_argument("--classes", help="defect types to learn, e.g. Blowhole,Crack")
    p.add_argument("--out", help="classifier file to write")
    p.add_argument("--project", help="train the project in this folder instead")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="score and classify a folder of images; CSV and overlays")
    p.add_argument("folder")
    p.add_argument("--padim", required=True)
    p.add_argument("--classifier")
    p.add_argument("--csv", default="predictions.csv")
    p.add_argument("--overlays", help="folder for heat-map overlay PNGs")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--json", help="also write a summary (counts, skipped inputs and why) here")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_predict)

    _project_parsers(sub)
    _watch_parser(sub)
    return ap


def _experiment_parser(sub) -> None:
    from .core.experiment import DEFAULT_NS, DEFAULT_SDS, EXPERIMENT_STRATEGIES

    p = sub.add_parser("experiment", help="the paper's tables: accuracy by N, strategy and sd")
    _data_options(p)
    _common(p)
    _tune_options(p)
    p.add_argument("--classes", required=True, help="defect types, e.g. Blowhole,Crack")
    p.add_argument(
        "--n", type=int_list, default=list(DEFAULT_NS), help="patch counts (default 10,50,100,250)"
    )
    p.add_argument("--sd", type=float_list, default=list(DEFAULT_SDS), help="sd sweep values")
    p.add_argument(
        "--strategies",
        type=list_of(one_of(EXPERIMENT_STRATEGIES), "strategies"),
        default=list(EXPERIMENT_STRATEGIES),
        help="afps, random, top (the paper's ViT), pooled, region (linear heads), auto "
        "(cross-validated choice); default all",
    )
    p.add_argument("--afps-sd", type=sd_fraction, default=0.15, help="AFPS sd in the N sweep")
    p.add_argument("--sd-n", type=int_in(1, 100_000), default=100, help="N in the sd sweep")
    p.add_argument("--seeds", type=int_in(1, 1000), default=5)
    _optimiser_options(p, epochs=20, epochs_help="epochs per run (accuracy plateaus by ~10)")
    p.add_argument(
        "--no-scores", action="store_true", help="tokens without the patch anomaly score"
    )
    p.add_argument("--out", default="experiment-results")
    p.set_defaults(func=cmd_experiment)


def _project_parsers(sub) -> None:
    """The commands that work on a project folder (and the demo data to make one from)."""
    p = sub.add_parser("project", help="create a project folder for a dataset")
    psub = p.add_subparsers(dest="project_command", required=True)
    q = psub.add_parser("new", help="new project")
    q.add_argument("folder")
    _data_options(q)
    _common(q)
    _tune_options(q)
    q.set_defaults(func=cmd_project_new)

    p = sub.add_parser("score", help="score (and classify) every image of a project")
    p.add_argument("--project", required=True)
    _common(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("labels", help="import or export a project's labels as CSV")
    p.add_argument("action", choices=("import", "export"))
    p.add_argument("file")
    p.add_argument("--project", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_labels)

    p = sub.add_parser("report", help="predictions, scores and labels of a project as CSV/JSON")
    p.add_argument("--project", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--json")
    p.add_argument("--overlays", help="also write heat-map overlay PNGs here")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="generate the built-in demo dataset")
    p.add_argument("folder")
    p.add_argument("--normal", type=int_in(1, 100_000), default=60)
    p.add_argument("--per-type", type=int_in(0, 100_000), default=20)
    p.add_argument("--seed", type=seed_int, default=0)
    p.set_defaults(func=cmd_demo)


def _watch_parser(sub) -> None:
    from .core.line_sources import POLL_S, SETTLE_S

    p = sub.add_parser(
        "watch", help="inspect the images a camera writes into a folder, as they arrive"
    )
    p.add_argument("project", help="a project folder with a fitted anomaly model")
    p.add_argument("folder", help="the folder the camera writes into")
    p.add_argument(
        "--jsonl",
        metavar="FILE",
        help="append one JSON object per inspected image to this file (each once)",
    )
    p.add_argument(
        "--move-to", metavar="DIR", help="move inspected images into OK/ and NG/<type>/ here"
    )
    p.add_argument("--copy", action="store_true", help="with --move-to: copy, do not move")
    p.add_argument("--once", action="store_true", help="inspect what is there now, then exit")
    p.add_argument("--recursive", action="store_true", help="also watch sub-folders")
    p.add_argument(
        "--poll",
        type=float_in(0.01, 60),
        default=POLL_S,
        help=f"seconds between looks at the folder (default {POLL_S})",
    )
    p.add_argument(
        "--settle",
        type=float_in(0, 3600),
        default=SETTLE_S,
        help="seconds a complete-looking file that will not decode is waited for before it is "
        f"recorded as unreadable (default {SETTLE_S:g})",
    )
    p.add_argument("--quiet", action="store_true", help="no line per image")
    p.set_defaults(func=cmd_watch)


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        validate(args)
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"afps: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("afps: interrupted; no partial files were left behind.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OverwriteRefused as exc:  # every command that writes a named file has --overwrite
        print(f"afps: error: {exc} On the command line: --overwrite replaces it.", file=sys.stderr)
        return EXIT_ERROR
    except AfpsError as exc:
        print(f"afps: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    threading.current_thread().name = "afps-cli"
    sys.exit(main())
