"""The paper's experiments: accuracy against N for each selection strategy, and the sd sweep.

Embeddings and anomaly maps are computed once per image (``build_examples``) and reused by every
(strategy, N, sd, seed) run, so the sweep costs classifier training only. Results are a flat list
of rows, one per run, that any tool can aggregate; ``summarise`` and ``markdown_tables`` give the
paper's Table I and II, ``plot_accuracy_vs_n`` its Fig. 1.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from .classifier import ClassifierConfig, Example
from .classifiers import AUTO, CLASSIFIER_STRATEGIES, make_classifier
from .datasets import stratum_test_size
from .errors import AfpsError
from .jobs import Progress, check_cancel, no_progress
from .metrics import classification_report
from .model_choice import resolve_auto
from .pooled_classifier import POOLED_STRATEGIES
from .selection import reads_looks

# The paper's three strategies (ViT over selected patches), the linear heads on pooled tokens
# (of the detection grid; and of the close look at the defect: "region"), and "auto": the
# candidate that cross-validation on each seed's training split chose (what the app trains).
EXPERIMENT_STRATEGIES = CLASSIFIER_STRATEGIES + (AUTO,)
DEFAULT_NS = (10, 50, 100, 250)
DEFAULT_SDS = (0.10, 0.15, 0.20, 0.25, 0.30)
METRIC_KEYS = ("accuracy", "precision", "recall", "f1")


@dataclass
class ExperimentPlan:
    ns: Sequence[int] = DEFAULT_NS
    strategies: Sequence[str] = EXPERIMENT_STRATEGIES
    sds: Sequence[float] = DEFAULT_SDS
    sd: float = 0.15  # sd used in the N sweep
    sd_sweep_n: int = 100  # N used in the sd sweep
    seeds: int = 5
    test_fraction: float = 0.4
    base: ClassifierConfig = None  # epochs, lr, ... shared by every run

    def __post_init__(self):
        self.base = self.base or ClassifierConfig()
        bad = [s for s in self.strategies if s not in EXPERIMENT_STRATEGIES]
        if bad:
            raise AfpsError(f"Unknown strategies {bad}: use {', '.join(EXPERIMENT_STRATEGIES)}.")

    def runs(self) -> list[tuple[str, Optional[int], Optional[float]]]:
        """Distinct (strategy, n, sd) settings: the N sweep, the sd sweep, then "auto" (its N
        is what it chose, so it runs once per seed)."""
        swept = [s for s in self.strategies if s != AUTO]
        out = [(s, n, self.sd if s == "afps" else None) for n in self.ns for s in swept]
        if "afps" in self.strategies:
            out += [("afps", self.sd_sweep_n, sd) for sd in self.sds]
        if AUTO in self.strategies:
            out.append((AUTO, None, None))
        seen, unique = set(), []
        for run in out:
            key = (run[0], run[1], None if run[2] is None else round(run[2], 6))
            if key not in seen:
                seen.add(key)
                unique.append(run)
        return unique


def stratified_split(
    labels: Sequence[int], seed: int, test_fraction: float
) -> tuple[list[int], list[int]]:
    """Indices of a stratified train/test split, deterministic for the seed; each class holds
    out ``datasets.stratum_test_size`` of its images."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    labels = np.asarray(labels)
    for k in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == k)[0])
        n_test = stratum_test_size(len(idx), test_fraction)
        test += idx[:n_test].tolist()
        train += idx[n_test:].tolist()
    return sorted(train), sorted(test)


def run_one(
    examples: Sequence[Example],
    classes: Sequence[str],
    config: ClassifierConfig,
    seed: int,
    test_fraction: float,
    cancel: Optional[threading.Event] = None,
    device: str = "auto",
) -> dict:
    train_idx, test_idx = stratified_split([e.label for e in examples], seed, test_fraction)
    train = [examples[i] for i in train_idx]
    config = replace(config, seed=seed)
    # For auto, the choice sees the training split only; the test split waits until it is made.
    config, choice = resolve_auto(train, classes, config, device=device, cancel=cancel)
    extra = {"chosen": choice.best.name, "cv": choice.rows} if choice else {}
    clf = make_classifier(classes, examples[0].embeddings.shape[-1], config, device=device)
    clf.fit(train, cancel=cancel)
    test = [examples[i] for i in test_idx]
    preds = clf.predict(test, seed=seed)
    report = classification_report([e.label for e in test], [p.index for p in preds], classes)
    return {
        **{k: report[k] for k in METRIC_KEYS},
        "flops": clf.flops(),
        "head": "linear" if config.strategy in POOLED_STRATEGIES else "vit",
        **extra,
        "confusion": report["confusion"],
    }


def run_experiment(
    examples: Sequence[Example],
    classes: Sequence[str],
    plan: ExperimentPlan,
    *,
    progress: Progress = no_progress,
    cancel: Optional[threading.Event] = None,
    device: str = "auto",
) -> list[dict]:
    """Train and test one classifier per (strategy, N, sd, seed); return the flat list of rows."""
    grid = min(e.patch_map.size for e in examples)
    vit = [s for s in plan.strategies if s not in POOLED_STRATEGIES + (AUTO,)]
    too_big = [n for n in list(plan.ns) + [plan.sd_sweep_n] if n > grid] if vit else []
    if too_big:
        raise AfpsError(f"N = {too_big} exceeds the {grid} patches of the smallest grid: lower N.")
    looking = [s for s in plan.strategies if reads_looks(s)]
    if looking and any(e.look is None for e in examples):
        raise AfpsError(
            f"The {', '.join(map(repr, looking))} strategy needs the close look at every image: "
            "build the examples with looks=True (afps experiment does), or leave it out."
        )
    runs = plan.runs()
    total = len(runs) * plan.seeds
    rows, done = [], 0
    for strategy, n, sd in runs:
        config = replace(
            plan.base,
            strategy=strategy,
            n=n if n is not None else plan.base.n,
            sd=sd if sd is not None else plan.base.sd,
        )
        for seed in range(plan.seeds):
            check_cancel(cancel)
            result = run_one(examples, classes, config, seed, plan.test_fraction, cancel, device)
            rows.append({"strategy": strategy, "n": n, "sd": sd, "seed": seed, **result})
            done += 1
            progress(
                done,
                total,
                f"{strategy}"
                + (f" N={n}" if n is not None else "")
                + (f" sd={sd:.2f}" if sd is not None else "")
                + f" seed {seed}",
            )
    return rows


def summarise(rows: Sequence[dict]) -> list[dict]:
    """Mean and standard deviation of every metric per (strategy, n, sd)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["strategy"], r["n"], r["sd"]), []).append(r)
    out = []
    for (strategy, n, sd), rs in groups.items():
        entry = {"strategy": strategy, "n": n, "sd": sd, "runs": len(rs), "flops": rs[0]["flops"]}
        for k in METRIC_KEYS:
            vals = np.array([r[k] for r in rs], dtype=float)
            entry[k] = float(vals.mean())
            entry[k + "_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out.append(entry)
    return out


def _pm(entry: dict, key: str) -> str:
    return f"{100 * entry[key]:.1f} ± {100 * entry[key + '_std']:.1f}"


def _flops(v: int) -> str:
    return f"{v / 1e6:.1f}M" if v >= 100_000 else f"{v / 1e3:.0f}k"


def markdown_tables(rows: Sequence[dict], plan: ExperimentPlan, title: str = "") -> str:
    """The paper's Table I (metrics by N and strategy) and Table II (accuracy by sd), in %."""
    summary = summarise(rows)
    lookup = {
        (e["strategy"], e["n"], None if e["sd"] is None else round(e["sd"], 6)): e for e in summary
    }
    lines = [f"# {title}".rstrip(), ""] if title else []
    lines += [
        f"Table I: mean ± std over {plan.seeds} seeds (%, macro precision/recall/F1; AFPS sd {plan.sd}).",
        "",
        "| N | strategy | accuracy | recall | precision | F1 | FLOPs |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in plan.ns:
        for s in plan.strategies:
            if s == AUTO:
                continue
            e = lookup.get((s, n, round(plan.sd, 6) if s == "afps" else None))
            if e:
                lines.append(
                    f"| {n} | {s} | {_pm(e, 'accuracy')} | {_pm(e, 'recall')} | {_pm(e, 'precision')} | "
                    f"{_pm(e, 'f1')} | {_flops(e['flops'])} |"
                )
    auto = lookup.get((AUTO, None, None))
    if auto:
        chosen: dict[str, int] = {}
        for r in rows:
            if r["strategy"] == AUTO:
                chosen[r.get("chosen", "?")] = chosen.get(r.get("chosen", "?"), 0) + 1
        lines += [
            f"| chosen | auto | {_pm(auto, 'accuracy')} | {_pm(auto, 'recall')} | "
            f"{_pm(auto, 'precision')} | {_pm(auto, 'f1')} | {_flops(auto['flops'])} |",
            "",
            "auto: the classifier that 3-fold cross-validation on each seed's training split chose "
            "(" + ", ".join(f"{k} {v}x" for k, v in sorted(chosen.items())) + ").",
        ]
    if "afps" not in plan.strategies:
        return "\n".join(lines) + "\n"
    lines += ["", f"Table II: AFPS accuracy (%) by sd, N = {plan.sd_sweep_n}.", ""]
    cells = [lookup.get(("afps", plan.sd_sweep_n, round(sd, 6))) for sd in plan.sds]
    lines.append("| sd | " + " | ".join(f"{sd:.2f}" for sd in plan.sds) + " |")
    lines.append("|---|" + "---|" * len(plan.sds))
    lines.append(
        "| accuracy | " + " | ".join(_pm(e, "accuracy") if e else "-" for e in cells) + " |"
    )
    return "\n".join(lines) + "\n"


def plot_accuracy_vs_n(rows: Sequence[dict], plan: ExperimentPlan, path, title: str = "") -> None:
    """Accuracy (mean ± std) against N per strategy, like the paper's Fig. 1, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .jobs import atomic_write

    summary = summarise(rows)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    if auto := next((e for e in summary if e["strategy"] == AUTO), None):
        ax.axhline(100 * auto["accuracy"], color="grey", ls="--", label="auto (cross-validated)")
    for s in plan.strategies:
        pts = sorted(
            (e["n"], e["accuracy"], e["accuracy_std"])
            for e in summary
            if e["strategy"] == s
            and e["n"] in plan.ns
            and (s != "afps" or abs(e["sd"] - plan.sd) < 1e-9)
        )
        if pts:
            n, acc, std = map(np.array, zip(*pts))
            label = {
                "afps": f"AFPS (sd {plan.sd})",
                "random": "random (baseline)",
                "top": "top-N",
                "pooled": "pooled + linear",
                "region": "region (close look) + linear",
            }[s]
            ax.errorbar(n, 100 * acc, yerr=100 * std, marker="o", capsize=3, label=label)
    ax.set_xlabel("patches per image (N)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xscale("log")
    ax.set_xticks(list(plan.ns), [str(n) for n in plan.ns])
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "Classification accuracy against the number of patches")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
