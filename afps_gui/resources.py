"""Icons and the style sheet, found both in a source checkout and inside a PyInstaller bundle."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path


def resources_dir() -> Path:
    """The folder that holds icons/ and style.qss.

    A PyInstaller bundle unpacks data files under ``sys._MEIPASS`` (the spec must add
    ``resources`` there); a source checkout keeps them beside the package.
    """
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


@cache
def icon(name: str):
    """A QIcon from resources/icons/<name>.svg (an empty icon if the file is missing)."""
    from PySide6.QtGui import QIcon

    path = resource_path("icons", f"{name}.svg")
    return QIcon(str(path)) if path.is_file() else QIcon()


def style_sheet() -> str:
    path = resource_path("style.qss")
    try:
        return path.read_text(encoding="utf-8")
    except OSError:  # a missing style sheet only costs looks
        return ""
