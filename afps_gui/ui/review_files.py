"""Label import and export from the review panel: every dialog goes through the small
functions at the top so that tests can replace them; the message boxes among them are the
app's one kind (``messages``: logged, run through ``messages.exec_box``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

from PySide6.QtWidgets import QFileDialog, QWidget

from ..core.errors import AfpsError
from ..core.jobs import OverwriteRefused
from ..core.report import project_rows, write_report
from . import messages

MAX_LISTED = 12  # image paths listed in a message before "and N more"

# -------------------------------------------------------------- dialogs (tests replace these)


def ask_yes_no(parent: Optional[QWidget], title: str, text: str) -> bool:
    return messages.confirm(parent, text, title)


def choose_save_path(
    parent: Optional[QWidget], title: str, start: str, filters: str
) -> Optional[str]:
    # The platform dialog's own overwrite question is switched off: we ask ourselves, once,
    # after the store has refused, so every path (GUI, tests) takes the same route.
    path, _ = QFileDialog.getSaveFileName(
        parent, title, start, filters, options=QFileDialog.DontConfirmOverwrite
    )
    return path or None


def choose_open_path(
    parent: Optional[QWidget], title: str, start: str, filters: str
) -> Optional[str]:
    path, _ = QFileDialog.getOpenFileName(parent, title, start, filters)
    return path or None


def show_info(parent: Optional[QWidget], title: str, text: str) -> None:
    messages.info(parent, text, title)


def show_error(parent: Optional[QWidget], title: str, text: str) -> None:
    messages.error(parent, text, title=title)


# ------------------------------------------------------------- import / export actions


def _listed(items: list[str], limit: int = MAX_LISTED) -> str:
    shown = "\n".join(f"  {item}" for item in items[:limit])
    more = len(items) - limit
    return shown + (f"\n  … and {more} more" if more > 0 else "")


def format_import_report(report, path: str = "") -> str:
    """The ImportReport in plain words: what was applied and every row that was not."""
    lines = [
        f"Imported {report.applied} label(s) from {Path(path).name or 'the file'}; "
        f"{report.unchanged} already had that label."
    ]
    if report.created_types:
        lines.append(f"New defect types: {', '.join(report.created_types)}.")
    if report.unknown_images:
        lines.append(
            f"\n{len(report.unknown_images)} image path(s) are not in this dataset and were "
            "skipped (paths must be relative to the dataset root):\n"
            + _listed(report.unknown_images)
        )
    if report.unknown_types:
        lines.append(
            f"\nUnknown defect type(s), rows skipped: {', '.join(report.unknown_types)}. "
            "Add them under Defect types… and import the file again."
        )
    if report.bad_rows:
        lines.append(f"\n{len(report.bad_rows)} row(s) not used:\n" + _listed(report.bad_rows))
    if report.change_id is not None:
        lines.append("\nThe import is one change: Ctrl+Z in the review panel undoes all of it.")
    return "\n".join(lines)


def import_labels_action(parent: Optional[QWidget], project) -> bool:
    """Ask for a labels CSV, import it as one undoable change, and show what happened.

    Unknown images, unknown types and bad rows are reported, never fatal. Returns True when
    any label or type changed (the caller then refreshes what shows labels).
    """
    title = "Import labels"
    if project is None:
        return False
    if project.readonly:
        show_error(parent, title, readonly_text(project, "Labels cannot be imported."))
        return False
    path = choose_open_path(
        parent, title, str(project.folder), "CSV files (*.csv *.txt);;All files (*)"
    )
    if not path:
        return False
    try:
        report = project.import_labels(path)
    except AfpsError as exc:
        show_error(parent, title, str(exc))
        return False
    show_info(parent, title, format_import_report(report, path))
    return report.change_id is not None


def _write_asking(parent, title: str, targets: list[Path], write: Callable[[bool], object]):
    """Run ``write(overwrite)``; if a target exists, ask once and retry with overwrite=True.

    Returns (True, result) when written, (False, None) when the user said no or it failed.
    """
    try:
        return True, write(False)
    except OverwriteRefused:
        existing = [str(t) for t in targets if t.exists()]
        question = (
            "\n".join(existing) + "\n\nalready exist" + ("s" if len(existing) == 1 else "")
            + ". Replace " + ("it" if len(existing) == 1 else "them") + "?"
        )  # fmt: skip
        if not ask_yes_no(parent, title, question):
            return False, None
        try:
            return True, write(True)
        except (AfpsError, OSError) as exc:
            show_error(parent, title, str(exc))
    except (AfpsError, OSError) as exc:
        show_error(parent, title, str(exc))
    return False, None


def _ask_csv(parent: Optional[QWidget], title: str, project, name: str) -> Optional[Path]:
    """The CSV file the user chose to write (``.csv`` added when the name has no suffix), or
    None: no project, or the user cancelled."""
    if project is None:
        return None
    path = choose_save_path(
        parent, title, str(project.folder / name), "CSV files (*.csv);;All files (*)"
    )
    if not path:
        return None
    target = Path(path)
    return target if target.suffix else target.with_suffix(".csv")


def export_labels_action(parent: Optional[QWidget], project) -> None:
    """Write every human label to a CSV (paths relative to the dataset root); never overwrite
    a file unless the user said yes."""
    title = "Export labels"
    target = _ask_csv(parent, title, project, "labels.csv")
    if target is None:
        return
    ok, n = _write_asking(
        parent,
        title,
        [target],
        lambda overwrite: project.store.export_csv(target, overwrite=overwrite),
    )
    if ok:
        show_info(parent, title, f"Wrote {n} label(s) to {target}.")


def known_threshold(project) -> Optional[float]:
    """The anomaly threshold saved with the project's model, or None (the pipeline's rule:
    the settings only, never the whole model file)."""
    from ..core.pipeline import saved_threshold  # torch loads for a report, not at start-up

    return saved_threshold(project)


def report_rows(project, threshold: Optional[float] = None) -> list[dict]:
    """One report row per image, as ``afps report`` builds them (core.report.project_rows)."""
    return project_rows(project, threshold)


def export_report_action(
    parent: Optional[QWidget], project, threshold: Optional[float] = None
) -> None:
    """Write the inspection report as CSV plus a JSON beside it (same name, .json).

    ``threshold`` defaults to the one saved with the anomaly model (the main window passes its
    adjusted one when the user moved the slider).
    """
    title = "Export report"
    csv_path = _ask_csv(parent, title, project, "report.csv")
    if csv_path is None:
        return
    json_path = csv_path.with_suffix(".json")
    if threshold is None:
        threshold = known_threshold(project)
    rows = report_rows(project, threshold)
    ok, _ = _write_asking(
        parent,
        title,
        [csv_path, json_path],
        lambda overwrite: write_report(
            project.store, rows, csv_path, json_path, overwrite=overwrite
        ),
    )
    if ok:
        note = "" if threshold is not None else " (no anomaly threshold yet: 'anomalous' is empty)"
        show_info(parent, title, f"Wrote {len(rows)} image(s) to\n{csv_path}\n{json_path}{note}")


def readonly_text(project, action: str) -> str:
    why = (getattr(project, "readonly_reason", "") or "").strip()
    why = why or "This project is open read-only."
    return f"{why}\n\n{action}"
