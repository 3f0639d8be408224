"""The inspection report: scores, predictions and human labels of a set of images, as CSV and JSON.

The caller supplies one row per image (at least ``image``, ``score`` and ``anomalous``, plus any
columns of its own, which are kept; ``project_rows`` makes them for a project's dataset); the
report joins what the labels store knows about each image. Neither file is ever replaced
without ``overwrite=True``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from .csv_cells import escape_cell
from .errors import AfpsError
from .jobs import atomic_write
from .labels import LabelStore, clean_image, now_iso, refuse_overwrite

# The columns every report has, in order; the caller's extra columns follow.
COLUMNS = (
    "image",
    "score",
    "anomalous",
    "human_label",
    "reviewed",
    "labelled_by",
    "labelled_at",
    "predicted_label",
    "confidence",
    "model_id",
    "effective_label",
)


def _plain(value: Any) -> Any:
    """JSON-safe value: numpy scalars become Python ones, NaN and infinities become null."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return escape_cell(value)  # text a spreadsheet would run as a formula gets a quote
    return str(value)  # numbers stay numbers, a score of -1.5 included


def project_rows(project, threshold: float | None) -> list[dict]:
    """One report row per image of the project's dataset: its cached score, whether that is
    anomalous at ``threshold`` (None when either is unknown) and the dataset's own label.

    The rows both front ends report (``afps report``, the app's Export report); pass the saved
    threshold (``pipeline.saved_threshold``) or the one the user is trying on the slider.
    """
    from .padim import anomalous_or_none  # torch loads only for a report, not with the module

    scores = project.cache.scores()
    return [
        {
            "image": sample.rel,
            "score": scores.get(sample.rel),
            "anomalous": anomalous_or_none(scores.get(sample.rel), threshold),
            "dataset_label": sample.label,
        }
        for sample in project.dataset.samples
    ]


def report_rows(store: LabelStore, rows: list[dict]) -> list[dict]:
    """The caller's rows joined with each image's human label and prediction."""
    records = store.label_records()
    predictions = store.predictions()
    joined = []
    for row in rows:
        if "image" not in row:
            raise AfpsError("Every report row needs an 'image'.")
        image = clean_image(str(row["image"]))
        record, pred = records.get(image), predictions.get(image)
        out = {
            "image": image,
            "score": _plain(row.get("score")),
            "anomalous": _plain(row.get("anomalous")),
            "human_label": record.label if record else None,
            "reviewed": record.reviewed if record else False,
            "labelled_by": record.user if record else None,
            "labelled_at": record.time if record else None,
            "predicted_label": pred.label if pred else None,
            "confidence": _plain(pred.confidence) if pred else None,
            "model_id": pred.model_id if pred else None,
        }
        # The human label wins over the prediction, as everywhere else.
        out["effective_label"] = out["human_label"] or out["predicted_label"]
        out.update({k: _plain(v) for k, v in row.items() if k not in out})
        joined.append(out)
    return joined


def write_report(
    store: LabelStore,
    rows: list[dict],
    csv_path: str | os.PathLike,
    json_path: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
) -> None:
    """Write the report as CSV (and JSON when ``json_path`` is given), each atomically.

    Both targets are checked before either is written, so a refusal leaves no half report.
    """
    targets = [Path(csv_path)] + ([Path(json_path)] if json_path is not None else [])
    for target in targets:
        refuse_overwrite(target, overwrite)
    joined = report_rows(store, rows)
    _write_csv(joined, targets[0])
    if json_path is not None:
        _write_json(store, joined, targets[1])


def _columns(joined: list[dict]) -> list[str]:
    extra: dict[str, None] = {}
    for row in joined:
        extra.update({k: None for k in row if k not in COLUMNS})
    return list(COLUMNS) + list(extra)


def _write_csv(joined: list[dict], target: Path) -> None:
    columns = _columns(joined)
    with atomic_write(target) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            for row in joined:
                writer.writerow([_cell(row.get(c)) for c in columns])


def _write_json(store: LabelStore, joined: list[dict], target: Path) -> None:
    document = {
        "generated": now_iso(),
        "types": [{"name": t.name, "colour": t.colour} for t in store.types()],
        "images": joined,
    }
    try:
        text = json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False, default=str)
    except (TypeError, ValueError) as exc:
        raise AfpsError(f"The report cannot be written as JSON: {exc}.") from exc
    with atomic_write(target) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
