"""The Inspect view's counters: parts, OK, NG per type, unreadable and parts per minute, since
the start of the shift and since the app started.

The counts come from the inspection log (``InspectionLog.counts_upto``) once, in a background
task, when a project opens or a shift starts; after that each posted result adds itself. The
query's ``last_id`` says which posted results the counts already hold, so a result that arrives
while the query runs is counted exactly once. The verdicts are the core's (as posted): this
module only adds them up.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from ..core.inspection_log import NG, OK

RATE_WINDOW_S = 60.0  # "now" parts per minute: over the last minute


def empty_counts() -> dict:
    return {"parts": 0, OK: 0, NG: 0, "errors": 0, "ng_types": {}}


class Tally:
    """Counts of one period (a shift, or since the app started)."""

    def __init__(self, since: str):
        self.since = since  # ISO-8601 UTC
        self.counts = empty_counts()
        self._known_upto: Optional[int] = None  # None: the log's counts have not come yet
        self._early: list[dict] = []  # posts that came before the log's counts

    def set_baseline(self, counts: dict, last_id: int) -> None:
        """The log's counts at ``last_id``; posts seen meanwhile that are newer are added."""
        self.counts = {**counts, "ng_types": dict(counts["ng_types"])}
        self._known_upto = last_id
        early, self._early = self._early, []
        for post in early:
            self.add(post)

    def add(self, post: dict) -> None:
        if self._known_upto is None:
            self._early.append(post)
            return
        if (post.get("id") or 0) <= self._known_upto:
            return  # the log's counts hold it already
        c = self.counts
        c["parts"] += 1
        verdict = post.get("verdict")
        if verdict not in (OK, NG):
            c["errors"] += 1
            return
        c[verdict] += 1
        if verdict == NG:
            name = post.get("type") or "untyped"
            c["ng_types"][name] = c["ng_types"].get(name, 0) + 1

    def per_minute(self, now: Optional[float] = None) -> float:
        """Parts over the minutes of the period, counting its first minute as a whole one (a
        rate over a few seconds says nothing)."""
        start = _timestamp(self.since)
        if start is None:
            return 0.0
        return self.counts["parts"] / max(((now or time.time()) - start) / 60.0, 1.0)


def _timestamp(iso: str) -> Optional[float]:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


def local_time(iso: str) -> str:
    """An ISO time as the inspector's local clock shows it (HH:MM, with the date if not today)."""
    ts = _timestamp(iso)
    if ts is None:
        return "?"
    moment = datetime.fromtimestamp(ts)
    if moment.date() == datetime.now().date():
        return moment.strftime("%H:%M")
    return moment.strftime("%Y-%m-%d %H:%M")


class RecentRate:
    """Parts per minute over the last minute (what the line does now)."""

    def __init__(self):
        self._times: deque[float] = deque()

    def add(self, now: Optional[float] = None) -> None:
        self._times.append(now or time.monotonic())

    def per_minute(self, now: Optional[float] = None) -> float:
        now = now or time.monotonic()
        while self._times and now - self._times[0] > RATE_WINDOW_S:
            self._times.popleft()
        return len(self._times) * 60.0 / RATE_WINDOW_S


class CountersWidget(QWidget):
    """A small table: one row per figure, one column per period."""

    FIXED = (("parts", "Parts"), (OK, "OK"), (NG, "NG"))

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(10)
        self.grid.setVerticalSpacing(2)
        self.headers = [QLabel("This shift"), QLabel("Since start")]
        self.headers[1].setToolTip("Since the app started")
        for col, header in enumerate(self.headers, start=1):
            header.setObjectName("hint")
            header.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.grid.addWidget(header, 0, col)
        self._rows: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        self._order: list[str] = []

    def _row(self, key: str, title: str) -> tuple[QLabel, QLabel, QLabel]:
        row = self._rows.get(key)
        if row is None:
            row = (QLabel(title), QLabel("0"), QLabel("0"))
            for value in row[1:]:
                value.setObjectName("readout")
                value.setAlignment(Qt.AlignmentFlag.AlignRight)
            self._rows[key] = row
            self._order.append(key)
        return row

    def show_counts(self, shift: Tally, app: Tally, now_rate: float) -> None:
        keys = [(k, t) for k, t in self.FIXED]
        types = sorted(set(shift.counts["ng_types"]) | set(app.counts["ng_types"]))
        keys += [(f"type:{name}", f"   NG {name}") for name in types]
        keys += [("errors", "Unreadable"), ("ppm", "Parts / min")]
        for key, title in keys:
            label, a, b = self._row(key, title)
            a.setText(self._value(shift, key))
            b.setText(self._value(app, key))
            if label.parent() is None:
                self._place()
        self.headers[0].setToolTip(f"Since the shift started, at {local_time(shift.since)}")
        self._rows["ppm"][0].setToolTip(f"Now (last minute): {now_rate:.1f} parts/min")

    @staticmethod
    def _value(tally: Tally, key: str) -> str:
        c = tally.counts
        if key == "ppm":
            return f"{tally.per_minute():.1f}"
        if key.startswith("type:"):
            return str(c["ng_types"].get(key[5:], 0))
        return str(c[key])

    def _place(self) -> None:
        """Lay the rows out again in their order (types sit between NG and Unreadable)."""
        order = [k for k in self._order if not k.startswith("type:") and k not in ("errors", "ppm")]
        order += sorted(k for k in self._order if k.startswith("type:"))
        order += [k for k in ("errors", "ppm") if k in self._rows]
        for r, key in enumerate(order, start=1):
            for c, widget in enumerate(self._rows[key]):
                self.grid.addWidget(widget, r, c)
