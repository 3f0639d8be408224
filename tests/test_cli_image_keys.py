"""One rule for an image's key under a folder (``images.posix_rel``): its relative path with
``/`` on every system, in a dataset's keys and in what ``afps predict`` writes."""

from pathlib import PureWindowsPath

import pytest

from afps_gui.cli import _relative, predict_inputs
from afps_gui.core.images import is_image_file, posix_rel


def test_a_key_has_forward_slashes_on_every_system():
    root = PureWindowsPath(r"C:\parts")
    assert posix_rel(PureWindowsPath(r"C:\parts\line 2\a.png"), root) == "line 2/a.png"
    assert posix_rel("/data/parts/x/y.png", "/data/parts") == "x/y.png"
    with pytest.raises(ValueError):
        posix_rel("/elsewhere/y.png", "/data/parts")
    assert _relative("/elsewhere/y.png", "/data/parts") == "/elsewhere/y.png"


def test_predict_names_images_in_sub_folders_by_their_key(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "gone.png").symlink_to(tmp_path / "missing.png")
    (tmp_path / "sub" / "ok.png").write_bytes(b"")
    paths, skipped = predict_inputs(tmp_path, is_image_file)
    assert [posix_rel(p, tmp_path) for p in paths] == ["sub/ok.png"]
    assert skipped == [("sub/deeper/gone.png", "dangling symbolic link")]
