"""CSV cells that a spreadsheet will not run as formulas (CSV / formula injection).

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula: a type named ``=HYPERLINK(...)`` in an
exported file would run when an inspector opens it. Such text is written with a leading single
quote (the OWASP rule), which spreadsheets show as plain text. Text that already starts with a
quote gets one more, so that :func:`unescape_cell` gives back exactly what was written.

Only text is escaped: numbers (and text that is a plain decimal number, such as ``-1.5``) stay
numbers. Every CSV the app writes passes its cells through :func:`escape_cell`, and every CSV
it reads passes them through :func:`unescape_cell`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def escape_cell(value: Any) -> Any:
    """``value`` as it should be written to a CSV: text a spreadsheet would evaluate gets a
    leading ``'``; anything that is not text (numbers, None, booleans) is returned unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(_QUOTE):
        return _QUOTE + value
    if value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return _QUOTE + value
    return value


def unescape_cell(text: str) -> str:
    """The text of a CSV cell as it was before :func:`escape_cell` (also undoes the quote that
    a user or spreadsheet put before a formula character)."""
    if len(text) > 1 and text[0] == _QUOTE and text[1:].startswith((_QUOTE,) + FORMULA_STARTS):
        return text[1:]
    return text


def escape_row(values: Iterable[Any]) -> list[Any]:
    return [escape_cell(v) for v in values]


def unescape_row(values: Iterable[str]) -> list[str]:
    return [unescape_cell(v) for v in values]
