"""The outline rule: which map pixels the threshold outline encloses, in every view that draws
one (the report's overlays and the Inspect view both ask ``overlay.inside_outline``)."""

from __future__ import annotations

import numpy as np
import pytest

from afps_gui.core.overlay import inside_outline, render_overlay
from afps_gui.core.padim import is_anomalous


def test_a_pixel_is_inside_only_when_strictly_above_the_threshold():
    amap = np.array([[0.5, 0.99], [1.0, 1.01]], dtype=np.float32)
    inside = inside_outline(amap, 1.0)
    assert inside.tolist() == [[False, False], [False, True]]
    # The same comparison as the OK/NG verdict, pixel by pixel.
    assert inside.tolist() == [[is_anomalous(float(v), 1.0) for v in row] for row in amap]


def test_a_map_that_only_touches_the_threshold_is_ok_and_has_no_outline():
    amap = np.zeros((20, 20), dtype=np.float32)
    amap[5:15, 5:15] = 1.0
    assert not is_anomalous(float(amap.max()), 1.0)
    assert not inside_outline(amap, 1.0).any()
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    white = (render_overlay(image, amap, 1.0, 0.0, 2.0) == 255).all(axis=-1)
    assert not white.any()
    white = (render_overlay(image, amap, 0.999, 0.0, 2.0) == 255).all(axis=-1)
    assert white.any()


def test_a_saved_overlay_has_the_viewers_colour_scale(tmp_path, monkeypatch):
    """One colour scale (``overlay.map_levels``): the overlay ``afps predict`` and ``afps report``
    save colours a map exactly as the heat-map viewer does, saturating map included."""
    from types import SimpleNamespace

    from PIL import Image

    from afps_gui import cli
    from afps_gui.core import overlay
    from afps_gui.ui.view_data import ModelInfo, display_levels

    path = tmp_path / "part.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(path)
    amap = np.full((32, 32), 30.0, dtype=np.float32)  # far above the scale: widened to it
    amap[:8] = 3.0
    seen = []
    real = overlay.render_overlay

    def render(image, amap, threshold, vmin, vmax, **kw):
        seen.append((vmin, vmax))
        return real(image, amap, threshold, vmin, vmax, **kw)

    monkeypatch.setattr(overlay, "render_overlay", render)
    padim = SimpleNamespace(threshold=10.0, score_floor=4.0)
    cli._save_overlay(tmp_path, False, padim, path, amap, "in/part")
    viewer = display_levels(ModelInfo(10.0, 4.0, (32, 32), (8, 8), "fit").levels, amap)
    assert seen == [viewer] == [overlay.map_levels(10.0, 4.0, amap)]
    assert viewer[0] < 4.0 and viewer[1] > 16.0  # widened both ways
    assert (tmp_path / "in__part.png").is_file()


def test_an_existing_overlay_is_replaced_only_when_allowed(tmp_path):
    """The one refusal to overwrite (``jobs.refuse_overwrite``), as for every file a user names."""
    from afps_gui.core.jobs import OverwriteRefused
    from afps_gui.core.overlay import save_overlay

    path = tmp_path / "a.png"
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    save_overlay(path, pixels)
    with pytest.raises(OverwriteRefused, match="already exists"):
        save_overlay(path, pixels)
    save_overlay(path, pixels + 1, overwrite=True)
