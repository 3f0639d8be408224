"""The project's defect types: add, rename, merge, recolour and remove, each one undoable change.

Every button makes exactly one LabelStore call, so each action is one entry in the labels
history and one Ctrl+Z in the review panel. The list order is the type order, which is also the
order of the 1-9 keys in review mode.

Modal questions go through the module-level functions below so tests can replace them.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import AfpsError
from ..core.taxonomy import NORMAL

# ----------------------------------------------------------------- dialogs (tests replace these)


def ask_text(parent: QWidget, title: str, prompt: str, text: str = "") -> Optional[str]:
    value, ok = QInputDialog.getText(parent, title, prompt, text=text)
    return value if ok else None


def ask_choice(parent: QWidget, title: str, prompt: str, choices: list[str]) -> Optional[str]:
    """Pick one of ``choices`` or type a new name (the combo box is editable)."""
    value, ok = QInputDialog.getItem(parent, title, prompt, choices, 0, True)
    return value if ok else None


def choose_colour(parent: QWidget, initial: str, title: str) -> Optional[str]:
    colour = QColorDialog.getColor(QColor(initial), parent, title)
    return colour.name().upper() if colour.isValid() else None


def show_error(parent: QWidget, title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


# ------------------------------------------------------------------------------- the dialog


def swatch(colour: str, size: int = 14) -> QIcon:
    """A filled square of the type's colour, with a thin border so pale colours still show."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor("#555555"))
    inner = QPixmap(size - 2, size - 2)
    inner.fill(QColor(colour))
    painter = QPainter(pixmap)
    painter.drawPixmap(1, 1, inner)
    painter.end()
    return QIcon(pixmap)


class DefectTypesDialog(QDialog):
    """Edit the defect types of one LabelStore; emits types_changed after every change."""

    types_changed = Signal()

    def __init__(self, store, parent=None, image_counts=None):
        """``image_counts()`` gives images per current label (a hand label, else the dataset's),
        as the review panel counts them; without it the dialog counts hand labels only."""
        super().__init__(parent)
        self.store = store
        self._image_counts = image_counts
        self.setWindowTitle("Defect types")
        self.setMinimumSize(420, 320)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.list.setIconSize(self.list.iconSize().expandedTo(QPixmap(16, 16).size()))
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self.list.itemDoubleClicked.connect(lambda _item: self.rename())
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setObjectName("hint")
        self.buttons = {
            "add": self._button("Add…", self.add, "Add a new defect type at the end of the list"),
            "rename": self._button(
                "Rename…", self.rename, "Rename the type and every label that uses it"
            ),
            "merge": self._button(
                "Merge…",
                self.merge,
                "Relabel every image of the selected types as one type (or normal)",
            ),
            "recolour": self._button("Colour…", self.recolour, "Change the type's colour"),
            "remove": self._button(
                "Remove", self.remove, "Remove a type that no image is labelled with"
            ),
        }
        self._layout()
        self.reload()
        if self.list.count():
            self.list.setCurrentRow(0)  # a selection, so the buttons say what they can do

    def _button(self, text: str, slot, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    def _layout(self) -> None:
        side = QVBoxLayout()
        for button in self.buttons.values():
            side.addWidget(button)
        side.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addLayout(side)
        close = QDialogButtonBox(QDialogButtonBox.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "The order here is the order of the number keys in review mode (1 = first type). "
            "Every change can be undone with Ctrl+Z in the review panel."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(row, 1)
        layout.addWidget(self.hint)
        layout.addWidget(close)

    # ------------------------------------------------------------------ state

    def reload(self) -> None:
        """Re-read the types and how many human labels use each."""
        selected = set(self.selected())
        used = Counter(self.store.labels().values())
        self._used = used  # hand labels: a type they use cannot be removed
        images = self._image_counts() if self._image_counts else used
        self.list.clear()
        for position, t in enumerate(self.store.types(), start=1):
            key = f"{position}  " if position <= 9 else "    "
            n, by_hand = images.get(t.name, 0), used.get(t.name, 0)
            item = QListWidgetItem(swatch(t.colour), f"{key}{t.name}   ({n} images)")
            item.setData(Qt.UserRole, t.name)
            item.setToolTip(
                f"{t.name}: colour {t.colour}; {n} image(s) of this type, "
                f"{by_hand} of them labelled by hand"
            )
            self.list.addItem(item)
            item.setSelected(t.name in selected)
        self._update_buttons()

    def selected(self) -> list[str]:
        return [item.data(Qt.UserRole) for item in self.list.selectedItems()]

    def _update_buttons(self) -> None:
        names = self.selected()
        writable = not self.store.readonly
        one = len(names) == 1
        self.buttons["add"].setEnabled(writable)
        self.buttons["rename"].setEnabled(writable and one)
        self.buttons["recolour"].setEnabled(writable and one)
        self.buttons["merge"].setEnabled(writable and bool(names))
        unused = bool(names) and all(self._used.get(n, 0) == 0 for n in names)
        self.buttons["remove"].setEnabled(writable and one and unused)
        if not writable:
            self.hint.setText("This project is open read-only: the types cannot be changed.")
        elif one and not unused:
            self.hint.setText(
                f"{names[0]} is in use, so it cannot be removed; merge it into another type "
                "instead."
            )
        elif len(names) > 1:
            self.hint.setText(f"Merge combines the {len(names)} selected types into one.")
        else:
            self.hint.setText("Select several types (Ctrl+click) to merge them.")

    def _do(self, title: str, call, *args) -> bool:
        """Run one store call; report a refusal instead of raising; reload and signal."""
        try:
            call(*args)
        except AfpsError as exc:
            show_error(self, title, str(exc))
            return False
        self.reload()
        self.types_changed.emit()
        return True

    # ------------------------------------------------------------------ actions

    def add(self) -> None:
        name = ask_text(self, "Add defect type", "Name of the new defect type:")
        if name is not None and name.strip():
            self._do("Add defect type", self.store.add_type, name)

    def rename(self) -> None:
        names = self.selected()
        if len(names) != 1 or self.store.readonly:
            return
        new = ask_text(self, "Rename defect type", f"New name for {names[0]}:", names[0])
        if new is not None and new.strip() and new.strip() != names[0]:
            if self._do("Rename defect type", self.store.rename_type, names[0], new):
                self._select([new.strip()])

    def merge(self) -> None:
        names = self.selected()
        if not names:
            return
        others = [n for n in self.store.type_names() if n not in names]
        choices = (names[:1] if len(names) > 1 else []) + others + [NORMAL]
        target = ask_choice(
            self,
            "Merge defect types",
            f"Relabel every image of {', '.join(names)} as (pick or type a new name):",
            choices,
        )
        if target is not None and target.strip():
            if self._do("Merge defect types", self.store.merge_types, names, target.strip()):
                self._select([target.strip()])

    def recolour(self) -> None:
        names = self.selected()
        if len(names) != 1:
            return
        current = next(t.colour for t in self.store.types() if t.name == names[0])
        colour = choose_colour(self, current, f"Colour of {names[0]}")
        if colour is not None:
            self._do("Colour of a defect type", self.store.recolour_type, names[0], colour)

    def remove(self) -> None:
        names = self.selected()
        if len(names) == 1:
            self._do("Remove defect type", self.store.remove_type, names[0])

    def _select(self, names: list[str]) -> None:
        wanted = {n.casefold() for n in names}
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setSelected(item.data(Qt.UserRole).casefold() in wanted)
