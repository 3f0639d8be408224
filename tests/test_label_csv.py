"""One labels-CSV reader: a dataset's --labels file and `afps labels import` take the same files
and read the same labels from them (headers, encodings, delimiters, normal words)."""

from pathlib import Path

import pytest

from afps_gui.core.datasets import read_labels_csv
from afps_gui.core.errors import DatasetError, LabelStoreError
from afps_gui.core.label_csv import LabelsFileError, read_label_rows
from afps_gui.core.labels import LabelStore
from afps_gui.core.taxonomy import NORMAL

HEADERS = [("image", "label"), ("Image", "Label"), ("relpath", "defect_type"), ("path", "class")]
ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "utf-16"]
DELIMITERS = [",", ";", "\t"]
NORMAL_SPELLINGS = ["good", "OK", "normal", "Free"]


def write(path: Path, header: tuple[str, str], rows: list[tuple[str, str]], sep=",", enc="utf-8"):
    text = "\n".join(sep.join(cells) for cells in [header, *rows]) + "\n"
    path.write_bytes(text.encode(enc))
    return path


def both_doors(path: Path, tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """{image: label} as a dataset reads the file, and as an import stores it."""
    from_dataset = read_labels_csv(path)
    with LabelStore(tmp_path / "labels.sqlite") as store:
        report = store.import_csv(path, create_types=True)
        assert report.bad_rows == []
        from_import = store.labels()
    return from_dataset, from_import


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize("enc", ENCODINGS)
@pytest.mark.parametrize("sep", DELIMITERS)
def test_both_doors_read_the_same_labels(tmp_path, header, enc, sep):
    rows = [("Spot/béton.png", "Spot"), ("good\\n0.png", "good"), ("s/x, y.png", "Scratch")]
    if sep == ",":
        rows[2] = ('"s/x, y.png"', "Scratch")
    path = write(tmp_path / "l.csv", header, rows, sep, enc)
    from_dataset, from_import = both_doors(path, tmp_path)
    expected = {"Spot/béton.png": "Spot", "good/n0.png": NORMAL, "s/x, y.png": "Scratch"}
    assert from_dataset == expected
    assert from_import == expected


@pytest.mark.parametrize("word", NORMAL_SPELLINGS)
def test_normal_words_mean_normal_in_both_doors(tmp_path, word):
    path = write(tmp_path / "l.csv", ("image", "label"), [("a.png", word)])
    assert both_doors(path, tmp_path) == ({"a.png": NORMAL}, {"a.png": NORMAL})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "is empty"),
        ("name,kind\na.png,x\n", "no image or label column"),
        ("image;kind\na.png;x\n", "no label column"),
    ],
)
def test_both_doors_refuse_the_same_files(tmp_path, text, match):
    path = tmp_path / "l.csv"
    path.write_text(text)
    with pytest.raises(LabelsFileError, match=match) as info:
        read_label_rows(path)
    # Each door's callers catch their own error class; the one error is both.
    assert isinstance(info.value, DatasetError) and isinstance(info.value, LabelStoreError)
    with pytest.raises(DatasetError, match=match):
        read_labels_csv(path)
    with LabelStore(tmp_path / "labels.sqlite") as store, pytest.raises(LabelStoreError):
        store.import_csv(path)


def test_bad_rows_and_duplicates_are_reported_by_line(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("image,label\na.png,Spot\n,Spot\nb.png,\n../x.png,Spot\nshort\na.png,Dent\n")
    rows, bad = read_label_rows(path)
    assert [(r.image, r.label) for r in rows] == [("a.png", "Dent")]
    assert [b.split(":")[0] for b in bad] == ["line 3", "line 4", "line 5", "line 6", "line 2"]


def test_absolute_paths_under_the_root_become_relative(tmp_path):
    root = tmp_path / "data"
    path = tmp_path / "l.csv"
    path.write_text(f"image,label\n{root / 'a' / 'b.png'},Spot\nC:\\Data\\c.png,Spot\n")
    rows, bad = read_label_rows(path, root)
    assert [r.image for r in rows] == ["a/b.png"] and len(bad) == 1
    rows, _ = read_label_rows(path, "c:\\data")
    assert [r.image for r in rows] == ["c.png"]  # Windows paths ignore case
