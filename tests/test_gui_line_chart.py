"""The training panel's QPainter line charts: round ticks, what they paint, how the axes grow."""

from __future__ import annotations

import pytest

from afps_gui.core.classifier import EpochStats
from afps_gui.ui.line_chart import LineChart, nice_ticks, tick_text
from afps_gui.ui.training_results import TrainingCurves


@pytest.mark.parametrize(
    "lo, hi, integer, expected",
    [
        (0.0, 1.02, False, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.5, 30.5, True, [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]),
        (0.5, 3.5, True, [1.0, 2.0, 3.0]),  # never a tick between two epochs
        (0.0, 0.0013, False, [0.0, 0.0005, 0.001]),
        (2.0, 2.0, False, [2.0]),
    ],
)
def test_nice_ticks_are_round_and_inside_the_range(lo, hi, integer, expected):
    assert nice_ticks(lo, hi, 6, integer) == pytest.approx(expected)


def test_tick_text_shows_the_decimals_the_step_needs():
    assert tick_text(0.4, 0.2) == "0.4"
    assert tick_text(10.0, 5.0) == "10"
    assert tick_text(0.0005, 0.0005) == "0.0005"


def _colour_near(image, x, y, colour, radius=3) -> bool:
    def distance(c):
        return sum(abs(a - b) for a, b in zip(c.getRgb()[:3], colour.getRgb()[:3]))

    near = [image.pixelColor(x + dx, y + dy) for dx in range(-radius, radius + 1)
            for dy in range(-radius, radius + 1)]  # fmt: skip
    return any(distance(c) < 60 for c in near)


def test_a_series_is_painted_where_its_points_are(qtbot):
    chart = LineChart("Accuracy", "epoch", "accuracy")
    qtbot.addWidget(chart)
    chart.resize(400, 240)
    red = chart.add_series("held-out test", "#d62728", square=True)
    chart.set_ranges(x=(0.0, 10.0), y=(0.0, 1.0))
    chart.set_points(red, [1, 9], [0.1, 0.9])
    image = chart.grab().toImage()
    plot = chart.plot_rect()
    to_px = lambda x, y: (  # noqa: E731
        round(plot.left() + x / 10 * plot.width()),
        round(plot.bottom() - y * plot.height()),
    )
    assert _colour_near(image, *to_px(1, 0.1), red.color)
    assert _colour_near(image, *to_px(9, 0.9), red.color)
    assert _colour_near(image, *to_px(5, 0.5), red.color)  # the line between them
    assert not _colour_near(image, *to_px(9, 0.1), red.color)  # and nothing elsewhere


def test_training_curves_follow_the_epochs_and_grow_the_loss_axis(qtbot):
    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.resize(800, 240)
    curves.grab()  # paints with no epochs yet
    curves.add(EpochStats(epoch=1, epochs=4, loss=0.8, train_accuracy=0.5, val_accuracy=None))
    assert curves.loss_plot.x_range == (0.5, 4.5)
    assert curves.loss_plot.y_range == pytest.approx((0.0, 1.0))
    curves.add(EpochStats(epoch=2, epochs=4, loss=0.5, train_accuracy=0.7, val_accuracy=0.6))
    assert curves.loss_plot.y_range == pytest.approx((0.0, 1.0))  # a falling loss keeps the axis
    curves.add(EpochStats(epoch=3, epochs=4, loss=2.0, train_accuracy=0.6, val_accuracy=0.5))
    assert curves.loss_plot.y_range == pytest.approx((0.0, 2.5))
    assert curves.val_curve.points == [(2.0, 0.6), (3.0, 0.5)]
    assert len(curves.train_curve.points) == 3
    curves.grab()
    curves.clear()
    assert curves.epochs == [] and curves.loss_curve.points == []
    assert curves.acc_plot.y_range == (0.0, 1.02)
