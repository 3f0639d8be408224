"""What the Inspect view writes under a part's verdict."""

from afps_gui.core.line_inspection import UNTYPED
from afps_gui.ui.inspect_view import verdict_text


def test_an_untyped_ng_part_says_why_and_a_typed_one_its_type():
    why = f"{UNTYPED}: the close look failed (image too small)"
    post = {"file": "/line/p1.png", "verdict": "NG", "score": 9.5, "threshold": 3.0, "error": why}
    word, text = verdict_text(post)
    assert word == "NG" and text.startswith(why) and text.endswith("p1.png")
    typed = dict(post, type="Spot", confidence=0.8, error=None)
    assert verdict_text(typed)[1].startswith("Spot  80% sure")
    assert verdict_text(dict(post, error=None))[1].startswith("type unknown")


def test_an_unreadable_file_says_why():
    word, text = verdict_text({"file": "/line/p2.png", "verdict": None, "error": "truncated"})
    assert word == "—" and text.startswith("Unreadable: truncated")
