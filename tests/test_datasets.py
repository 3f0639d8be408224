"""Every dataset layout, labels CSVs, bad files inside datasets, and the splits."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pytest
from fixtures_data import save_image, save_mask

from afps_gui.core import datasets
from afps_gui.core.datasets import (
    UNTYPED,
    Dataset,
    Sample,
    detect_layout,
    load_dataset,
    read_labels_csv,
    split_anomalies,
    split_normals,
)
from afps_gui.core.errors import Cancelled, DatasetError
from afps_gui.core.taxonomy import NORMAL

SIZE = (32, 24)  # (width, height) of every fixture image


# --- fixture datasets ----------------------------------------------------------------------


def make_magnetic_tile(root: Path) -> Path:
    for type_name, n in (("Free", 3), ("Blowhole", 2), ("Crack", 2)):
        imgs = root / f"MT_{type_name}" / "Imgs"
        for i in range(n):
            save_image(imgs / f"exp_{i}.jpg", SIZE, seed=i)
            if not (type_name == "Crack" and i == 1):  # one defect image without a mask
                save_mask(
                    imgs / f"exp_{i}.png", SIZE, box=None if type_name == "Free" else (2, 2, 8, 8)
                )
    (root / "README.md").write_text("about this data\n")
    (root / "MT_Free" / "Imgs" / "Thumbs.db").write_bytes(b"junk")
    (root / "MT_Free" / "Imgs" / "notes.txt").write_text("not an image")
    save_mask(root / "MT_Blowhole" / "Imgs" / "lonely.png", SIZE)  # a mask with no image
    return root


def make_mvtec(root: Path) -> Path:
    for i in range(4):
        save_image(root / "train" / "good" / f"{i:03d}.png", SIZE, seed=i)
    for i in range(2):
        save_image(root / "test" / "good" / f"{i:03d}.png", SIZE, seed=10 + i)
    for kind, n in (("crack", 2), ("hole", 1)):
        for i in range(n):
            save_image(root / "test" / kind / f"{i:03d}.png", SIZE, seed=20 + i)
            save_mask(root / "ground_truth" / kind / f"{i:03d}_mask.png", SIZE)
    return root


def make_visa_folders(root: Path) -> Path:
    for i in range(3):
        save_image(root / "Data" / "Images" / "Normal" / f"{i:04d}.JPG", SIZE, seed=i)
    for i in range(2):
        save_image(root / "Data" / "Images" / "Anomaly" / f"{i:03d}.JPG", SIZE, seed=5 + i)
        save_mask(root / "Data" / "Masks" / "Anomaly" / f"{i:03d}.png", SIZE)
    return root


def make_ksdd2(root: Path) -> Path:
    # name: has a defect pixel in its mask?
    for split, items in (
        ("train", {"10000": False, "10001": True, "10002": False}),
        ("test", {"20000": True, "20001": False}),
    ):
        for stem, defective in items.items():
            save_image(root / split / f"{stem}.png", SIZE, seed=int(stem))
            save_mask(
                root / split / f"{stem}_GT.png", SIZE, box=(1, 1, 3, 3) if defective else None
            )
    return root


def make_folders(root: Path) -> Path:
    for i in range(4):
        save_image(root / "good" / f"g{i}.png", SIZE, seed=i)
    for i in range(3):
        save_image(root / "Spot" / f"s{i}.png", SIZE, seed=10 + i)
        save_mask(root / "Spot" / f"s{i}_mask.png", SIZE)  # mask beside its image
    for i in range(2):
        save_image(root / "Scratch" / f"c{i}.png", SIZE, seed=20 + i)
        save_mask(root / "masks" / "Scratch" / f"c{i}.png", SIZE)  # mask in masks/<type>/
    (root / "good" / ".hidden.png").write_bytes(b"")
    return root


# --- layouts -------------------------------------------------------------------------------


def test_magnetic_tile(tmp_path):
    root = make_magnetic_tile(tmp_path / "mt")
    assert detect_layout(root) == "magnetic-tile"
    ds = load_dataset(root)
    assert ds.layout == "magnetic-tile"
    assert ds.counts() == {NORMAL: 3, "Blowhole": 2, "Crack": 2}
    assert ds.types == ["Blowhole", "Crack"]
    assert all(s.path.suffix == ".jpg" for s in ds.samples)  # the PNGs are masks
    sample = ds.by_rel()["MT_Blowhole/Imgs/exp_0.jpg"]
    assert sample.label == "Blowhole" and sample.is_anomalous
    assert sample.mask == root / "MT_Blowhole" / "Imgs" / "exp_0.png"
    assert ds.by_rel()["MT_Crack/Imgs/exp_1.jpg"].mask is None
    assert ds.has_masks
    skipped = dict(ds.skipped)
    assert "mask without its image" in skipped["MT_Blowhole/Imgs/lonely.png"]
    assert "not an image" in skipped["MT_Free/Imgs/notes.txt"]
    assert not any("Thumbs" in rel for rel in skipped)  # known junk is ignored silently


def test_mvtec(tmp_path):
    root = make_mvtec(tmp_path / "bottle")
    assert detect_layout(root) == "mvtec"
    ds = load_dataset(root)
    assert ds.counts() == {NORMAL: 6, "crack": 2, "hole": 1}
    train = [s for s in ds.normals() if s.group == "train"]
    assert len(train) == 4 and all(s.rel.startswith("train/good/") for s in train)
    crack = ds.by_rel()["test/crack/001.png"]
    assert crack.group == "test" and crack.mask == root / "ground_truth/crack/001_mask.png"
    assert ds.by_rel()["test/good/000.png"].mask is None


def test_mvtec_parent_folder_is_explained(tmp_path):
    make_mvtec(tmp_path / "mvtec" / "bottle")
    make_mvtec(tmp_path / "mvtec" / "cable")
    with pytest.raises(DatasetError, match="choose one category folder"):
        detect_layout(tmp_path / "mvtec")


def test_visa_folders(tmp_path):
    root = make_visa_folders(tmp_path / "candle")
    assert detect_layout(root) == "visa"
    ds = load_dataset(root)
    assert len(ds.normals()) == 3 and len(ds.anomalies()) == 2
    assert ds.types == []  # VisA has no defect types
    anomaly = ds.anomalies()[0]
    assert anomaly.label is None and anomaly.is_anomalous and anomaly.defect_type is None
    assert anomaly.mask.name == "000.png"
    assert ds.counts() == {NORMAL: 3, UNTYPED: 2}


@pytest.mark.parametrize("relative_to_parent", [False, True])
def test_visa_annotation_csv(tmp_path, relative_to_parent):
    root = make_visa_folders(tmp_path / "candle")
    prefix = "candle/" if relative_to_parent else ""  # VisA itself writes paths from its parent
    rows = [
        f"{prefix}Data/Images/Normal/0000.JPG,normal,",
        f"{prefix}Data/Images/Normal/0001.JPG,normal,",
        f"{prefix}Data/Images/Anomaly/000.JPG,anomaly,{prefix}Data/Masks/Anomaly/000.png",
        f"{prefix}Data/Images/Anomaly/404.JPG,anomaly,",
    ]
    (root / "image_anno.csv").write_text("image,label,mask\n" + "\n".join(rows) + "\n")
    ds = load_dataset(root)
    assert ds.layout == "visa"
    assert len(ds.normals()) == 2  # the CSV, not the folders, decides
    (anomaly,) = ds.anomalies()
    assert anomaly.rel == "Data/Images/Anomaly/000.JPG"
    assert anomaly.mask == root / "Data/Masks/Anomaly/000.png"
    assert any("404.JPG" in w and "not found" in w for w in ds.warnings)


def test_visa_csv_labels_name_the_defect_types(tmp_path):
    root = make_visa_folders(tmp_path / "capsules")
    rows = [
        "Data/Images/Normal/0000.JPG,normal,",
        "Data/Images/Normal/0001.JPG,normal,",
        'Data/Images/Anomaly/000.JPG,"bubble,discolor",Data/Masks/Anomaly/000.png',
    ]
    (root / "image_anno.csv").write_text("image,label,mask\n" + "\n".join(rows) + "\n")
    ds = load_dataset(root)
    (anomaly,) = ds.anomalies()
    assert anomaly.label == "bubble+discolor"  # a list of types is one type --classes can name
    assert ds.resolve_types("bubble+discolor") == ["bubble+discolor"]


def test_labels_csv_cells_quoted_against_formulas_read_back_as_written(tmp_path):
    root = tmp_path / "ds"
    for i in range(3):
        save_image(root / "good" / f"n{i}.png", seed=i)
    save_image(root / "Spot" / "s0.png", seed=9)
    (tmp_path / "labels.csv").write_text("image,label\nSpot/s0.png,'=2+3\n")
    ds = load_dataset(root, labels_csv=tmp_path / "labels.csv")
    assert ds.by_rel()["Spot/s0.png"].label == "=2+3"


def test_symlink_loop_and_dangling_link_cost_only_themselves(tmp_path):
    root = tmp_path / "ds"
    for i in range(3):
        save_image(root / "good" / f"n{i}.png", seed=i)
    save_image(root / "Spot" / "s0.png", seed=9)
    os.symlink("b.png", root / "good" / "a.png")  # a.png -> b.png -> a.png
    os.symlink("a.png", root / "good" / "b.png")
    os.symlink("nothere.png", root / "good" / "gone.png")
    ds = load_dataset(root)
    assert len(ds.normals()) == 3  # the folder is still read
    reasons = dict(ds.skipped)
    assert "link loop" in reasons["good/a.png"] and "link loop" in reasons["good/b.png"]
    assert "does not exist" in reasons["good/gone.png"]


def test_ksdd2(tmp_path):
    root = make_ksdd2(tmp_path / "ksdd2")
    assert detect_layout(root) == "ksdd2"
    for validate in (True, False):  # the masks are read either way: they decide the label
        ds = load_dataset(root, validate=validate)
        assert {s.rel for s in ds.anomalies()} == {"train/10001.png", "test/20000.png"}
        assert len(ds.normals()) == 3
        assert all(s.label is None for s in ds.anomalies())
        assert not any("_GT" in s.rel for s in ds.samples)
        assert ds.by_rel()["train/10000.png"].group == "train"


def test_ksdd2_broken_mask_means_unknown_label(tmp_path):
    root = make_ksdd2(tmp_path / "ksdd2")
    (root / "test" / "20000_GT.png").write_bytes(b"")
    ds = load_dataset(root, validate=False)
    assert "test/20000.png" not in ds.by_rel()
    skipped = dict(ds.skipped)
    assert "empty" in skipped["test/20000_GT.png"] and "unknown" in skipped["test/20000.png"]


def test_ksdd2_types_from_labels_csv(tmp_path):
    root = make_ksdd2(tmp_path / "ksdd2")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("image,label\ntrain/10001.png,Scratch\ntest/20000.png,Spot\n")
    ds = load_dataset(root, labels_csv=csv_path)
    assert ds.types == ["Scratch", "Spot"]
    assert ds.by_rel()["test/20000.png"].label == "Spot"


def test_folders(tmp_path):
    root = make_folders(tmp_path / "parts")
    assert detect_layout(root) == "folders"
    ds = load_dataset(root)
    assert ds.counts() == {NORMAL: 4, "Scratch": 2, "Spot": 3}
    assert ds.types == ["Scratch", "Spot"]
    assert not any("_mask" in s.rel for s in ds.samples)
    assert ds.by_rel()["Spot/s1.png"].mask == root / "Spot" / "s1_mask.png"
    assert ds.by_rel()["Scratch/c0.png"].mask == root / "masks" / "Scratch" / "c0.png"
    assert ds.by_rel()["good/g0.png"].mask is None
    assert ds.skipped == []  # the hidden file is ignored without a word


def test_folders_variants(tmp_path):
    root = tmp_path / "parts"
    save_image(root / "OK" / "a.bmp", SIZE)
    save_image(root / "dent" / "b.tif", SIZE)
    save_mask(root / "ground_truth" / "dent" / "b_mask.png", SIZE)
    save_image(root / "dent" / "old" / "c.png", SIZE)  # nested: not read, but said so
    ds = load_dataset(root)
    assert ds.layout == "folders" and ds.counts() == {NORMAL: 1, "dent": 1}
    assert ds.by_rel()["dent/b.tif"].mask.name == "b_mask.png"
    assert "not read" in dict(ds.skipped)["dent/old"]


def test_layout_can_be_forced(tmp_path):
    root = make_folders(tmp_path / "parts")
    assert load_dataset(root, layout="folders").layout == "folders"
    with pytest.raises(DatasetError, match="Unknown dataset layout"):
        load_dataset(root, layout="coco")


# --- roots that are not datasets -----------------------------------------------------------


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


def test_empty_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="is empty"):
        load_dataset(tmp_path / "empty")


def test_file_as_root(tmp_path):
    path = save_image(tmp_path / "a.png")
    with pytest.raises(DatasetError, match="is a file"):
        load_dataset(path)


def test_unknown_layout_explains_the_layouts(tmp_path):
    save_image(tmp_path / "x" / "stuff" / "a.png")
    with pytest.raises(DatasetError, match="good, normal, ok or free") as info:
        load_dataset(tmp_path / "x")
    assert "magnetic-tile" in str(info.value) and "MT_<Type>" in str(info.value)


def test_loose_images_are_explained(tmp_path):
    save_image(tmp_path / "x" / "a.png")
    with pytest.raises(DatasetError, match="in a folder named 'good'"):
        load_dataset(tmp_path / "x")


def test_no_normal_images(tmp_path):
    root = tmp_path / "x"
    (root / "good").mkdir(parents=True)
    save_image(root / "Spot" / "a.png")
    with pytest.raises(DatasetError, match="no usable normal"):
        load_dataset(root)


def test_only_broken_normal_images(tmp_path):
    root = tmp_path / "x"
    (root / "good").mkdir(parents=True)
    (root / "good" / "a.png").write_bytes(b"")
    save_image(root / "Spot" / "b.png")
    with pytest.raises(DatasetError, match="no usable normal") as info:
        load_dataset(root)
    assert "good/a.png" in str(info.value)  # says which files failed


# --- bad files inside a dataset: skipped with the reason, the rest loads --------------------


def test_bad_files_are_skipped_with_reasons(tmp_path):
    root = make_folders(tmp_path / "parts")
    (root / "good" / "empty.png").write_bytes(b"")
    (root / "good" / "text.jpg").write_text("hello")
    whole = save_image(root / "Spot" / "cut.jpg", (64, 64), quality=90).read_bytes()
    (root / "Spot" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    save_image(root / "Spot" / "tiny.png", (8, 8))
    save_image(root / "Spot" / "wrong.png", SIZE)
    save_mask(root / "Spot" / "wrong_mask.png", (30, 20))
    ds = load_dataset(root)
    skipped = dict(ds.skipped)
    assert "empty" in skipped["good/empty.png"]
    assert "not an image" in skipped["good/text.jpg"]
    assert "truncated" in skipped["Spot/cut.jpg"]
    assert "too small" in skipped["Spot/tiny.png"]
    assert "mask is 30x20 but its image is 32x24" in skipped["Spot/wrong_mask.png"]
    # The image of a broken mask is still good; it just has no mask.
    assert ds.by_rel()["Spot/wrong.png"].mask is None
    assert ds.counts() == {NORMAL: 4, "Scratch": 2, "Spot": 4}
    text = ds.summary()
    assert "5 files skipped" in text and "Spot/cut.jpg" in text


def test_without_validation_nothing_is_decoded(tmp_path):
    root = make_folders(tmp_path / "parts")
    (root / "good" / "empty.png").write_bytes(b"")
    ds = load_dataset(root, validate=False)
    assert "good/empty.png" in ds.by_rel() and ds.skipped == []


def test_unreadable_subfolder_is_skipped(tmp_path, monkeypatch):
    # Tests run as root, which chmod cannot lock out: make listing that one folder fail.
    root = make_folders(tmp_path / "parts")
    real_scandir = os.scandir
    locked = root / "Scratch"

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(datasets.os, "scandir", scandir)
    ds = load_dataset(root)
    assert "permission denied" in dict(ds.skipped)["Scratch"]
    assert ds.counts() == {NORMAL: 4, "Spot": 3}


def test_unreadable_root(tmp_path, monkeypatch):
    root = make_folders(tmp_path / "parts")

    def listdir(path="."):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(datasets.os, "listdir", listdir)
    with pytest.raises(DatasetError, match="cannot be read"):
        load_dataset(root)


def test_progress_and_cancel(tmp_path):
    root = make_folders(tmp_path / "parts")
    calls = []
    load_dataset(root, progress=lambda done, total, msg: calls.append((done, total, msg)))
    assert calls[-1][:2] == (9, 9)
    assert all(total > 0 for _, total, _ in calls)

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        load_dataset(root, cancel=cancel)


def test_cancel_while_checking(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_CHUNK", 2)
    root = make_folders(tmp_path / "parts")
    cancel = threading.Event()
    seen = []

    def progress(done, total, msg):
        seen.append(done)
        if done >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        load_dataset(root, progress=progress, cancel=cancel)
    assert max(seen) < 9


# --- labels CSV ----------------------------------------------------------------------------


def test_labels_csv_overrides_and_adds(tmp_path):
    root = make_folders(tmp_path / "parts")
    csv_path = tmp_path / "labels.csv"
    absolute = root / "Spot" / "s2.png"
    csv_path.write_text(
        "\ufeffImage;Label\n"  # Excel: byte-order mark, semicolons, capitals
        "good\\g0.png;spot\n"  # Windows separator, type spelled in lower case
        f"{absolute};Good\n"  # absolute path under the root; a normal synonym
        "Spot/s0.png;Dent\n"  # a new type
        "good/missing.png;Spot\n"  # not in the dataset
        ";Spot\n"  # bad row
    )
    ds = load_dataset(root, labels_csv=csv_path)
    by_rel = ds.by_rel()
    assert by_rel["good/g0.png"].label == "Spot"
    assert by_rel["Spot/s2.png"].label == NORMAL and by_rel["Spot/s2.png"].is_normal
    assert by_rel["Spot/s0.png"].label == "Dent"
    assert ds.types == ["Dent", "Scratch", "Spot"]
    assert any("missing.png" in w for w in ds.warnings)
    assert any("line 6" in w for w in ds.warnings)


def test_read_labels_csv(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("image,label\n./a/b.png,ok\nc.png,Crack\n/abs/x.png,Crack\n\n")
    assert read_labels_csv(path) == {"a/b.png": NORMAL, "c.png": "Crack"}
    assert read_labels_csv(path, root="/abs") == {
        "a/b.png": NORMAL,
        "c.png": "Crack",
        "x.png": "Crack",
    }


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("name,kind\na.png,x\n", "no image or label column"),
        ("image,label\n,\n../x.png,Spot\n", "no usable row"),
    ],
)
def test_unusable_labels_csv(tmp_path, text, match):
    path = tmp_path / "l.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match):
        read_labels_csv(path)


def test_missing_labels_csv(tmp_path):
    root = make_folders(tmp_path / "parts")
    with pytest.raises(DatasetError, match="cannot be read"):
        load_dataset(root, labels_csv=tmp_path / "nope.csv")


# --- types, samples, summary ---------------------------------------------------------------


def _dataset(types):
    return Dataset(root=Path("/r"), layout="folders", samples=[], types=list(types))


def test_resolve_types():
    ds = _dataset(["Blowhole", "Crack", "broken_large"])
    assert ds.resolve_types(["MT_Blowhole", "crack"]) == ["Blowhole", "Crack"]
    assert ds.resolve_types("mt_blowhole, CRACK, blowhole") == ["Blowhole", "Crack"]
    assert ds.resolve_types(["Broken Large"]) == ["broken_large"]
    with pytest.raises(DatasetError, match="Blowhole, Crack, broken_large") as info:
        ds.resolve_types(["Blowhole", "Scratch"])
    assert "'Scratch'" in str(info.value)
    with pytest.raises(DatasetError, match="normal class"):
        ds.resolve_types(["good"])


def test_sample_status():
    untyped = Sample(Path("/r/a.png"), "a.png", None, anomalous=True)
    assert untyped.is_anomalous and not untyped.is_normal and untyped.defect_type is None
    assert Sample(Path("/r/a.png"), "a.png", None, anomalous=False).label == NORMAL
    typed = Sample(Path("/r/a.png"), "a.png", "Spot")
    assert typed.anomalous is True and typed.defect_type == "Spot"
    # The label decides whenever there is one, so that dataclasses.replace stays consistent.
    assert dataclasses.replace(untyped, label=NORMAL).is_normal
    assert dataclasses.replace(typed, label=NORMAL).is_normal
    assert Sample(Path("/r/a.png"), "a.png", None).anomalous is None  # nothing known


def test_summary(tmp_path):
    ds = load_dataset(make_magnetic_tile(tmp_path / "mt"))
    text = ds.summary()
    assert "magnetic-tile" in text and "normal 3, Blowhole 2, Crack 2" in text
    assert "Pixel masks: yes, for 3 of 4" in text and "2 files skipped" in text


# --- splits --------------------------------------------------------------------------------


def _samples(n, label=NORMAL, group="", prefix="n"):
    return [
        Sample(Path(f"/r/{prefix}{i}.png"), f"{prefix}{i:03d}.png", label, group=group)
        for i in range(n)
    ]


def test_split_normals_is_a_deterministic_partition():
    normals = _samples(50)
    split = split_normals(normals, seed=1)
    parts = [split.fit, split.val, split.test]
    assert [len(p) for p in parts] == [40, 5, 5]
    assert sorted(s.rel for p in parts for s in p) == sorted(s.rel for s in normals)
    again = split_normals(list(reversed(normals)), seed=1)  # input order does not matter
    assert again == split
    assert split_normals(normals, seed=2).fit != split.fit


def test_split_normals_n_fit():
    split = split_normals(_samples(20), seed=0, n_fit=5)
    assert (len(split.fit), len(split.val), len(split.test)) == (5, 7, 8)
    with pytest.raises(DatasetError, match="there are 20"):
        split_normals(_samples(20), seed=0, n_fit=21)


def test_split_normals_puts_the_training_split_in_fit():
    normals = _samples(10, group="train", prefix="t") + _samples(4, group="test", prefix="g")
    split = split_normals(normals, seed=3)  # 0.8 * 14 = 11 > 10 training images
    assert len(split.fit) == 11
    assert sum(s.group == "train" for s in split.fit) == 10
    assert all(s.group == "test" for s in split.val + split.test)
    mvtec_like = _samples(20, group="train", prefix="t") + _samples(4, group="test", prefix="g")
    split = split_normals(mvtec_like, seed=3)  # every training image is fit-only material
    assert len(split.fit) == 20 and len(split.val) == 2 and len(split.test) == 2
    small = split_normals(mvtec_like, seed=3, n_fit=5)
    assert all(s.group == "train" for s in small.fit)


def test_split_anomalies_is_stratified():
    anomalies = (
        _samples(10, "Crack", prefix="c")
        + _samples(5, "Blowhole", prefix="b")
        + _samples(2, "Fray", prefix="f")
        + _samples(1, "Rare", prefix="r")
    )
    train, test = split_anomalies(anomalies, seed=0)
    assert not {s.rel for s in train} & {s.rel for s in test}
    assert len(train) + len(test) == len(anomalies)

    def count(part, label):
        return sum(s.label == label for s in part)

    assert (count(test, "Crack"), count(test, "Blowhole"), count(test, "Fray")) == (4, 2, 1)
    assert count(train, "Fray") == 1 and count(train, "Rare") == 1 and count(test, "Rare") == 0
    assert split_anomalies(list(reversed(anomalies)), seed=0) == (train, test)
    assert split_anomalies(anomalies, seed=1) != (train, test)


def test_split_anomalies_keeps_untyped_together():
    untyped = [Sample(Path(f"/r/u{i}"), f"u{i}", None, anomalous=True) for i in range(5)]
    train, test = split_anomalies(untyped, seed=0, test_fraction=0.4)
    assert len(test) == 2 and len(train) == 3


# --- the real data -------------------------------------------------------------------------

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "magnetic-tile"


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason="the magnetic-tile data is not on this machine")
def test_real_magnetic_tile():
    ds = load_dataset(REAL)
    assert ds.layout == "magnetic-tile"
    assert ds.counts() == {
        NORMAL: 952,
        "Blowhole": 115,
        "Break": 85,
        "Crack": 57,
        "Fray": 32,
        "Uneven": 103,
    }
    assert ds.skipped == [] and ds.has_masks
    assert all(s.mask is not None for s in ds.samples)


# --- the layout registry -------------------------------------------------------------------


def test_each_layout_is_one_registry_entry(tmp_path):
    # A layout is read, detected and explained from its one entry.
    makers = {
        "magnetic-tile": make_magnetic_tile,
        "mvtec": make_mvtec,
        "visa": make_visa_folders,
        "ksdd2": make_ksdd2,
        "folders": make_folders,
    }
    assert datasets.LAYOUTS == tuple(datasets.LAYOUT_REGISTRY) == tuple(makers)
    for name, make in makers.items():
        assert detect_layout(make(tmp_path / name)) == name
    (tmp_path / "odd" / "x").mkdir(parents=True)
    with pytest.raises(DatasetError) as info:
        detect_layout(tmp_path / "odd")
    for spec in datasets.LAYOUT_REGISTRY.values():
        assert f"  {spec.name:<14} {spec.help.splitlines()[0]}" in str(info.value)
