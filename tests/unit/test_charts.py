"""The SVG bar chart: scale, bars, escaping, no inline style."""

import re

import pytest

from notify_site.charts import Series, _nice_ceiling, bar_chart


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (4200, 5000)]
)
def test_scale_rounds_up_to_a_nice_number(value, ceiling):
    assert _nice_ceiling(value) == ceiling


def test_bars_are_proportional_and_titled():
    svg = str(bar_chart(["10:00", "11:00"], [Series("sent", [5, 10])], title="Sends <per> hour"))
    heights = [float(h) for h in re.findall(r'<rect[^>]*height="([\d.]+)"', svg)]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert "10:00 · sent: 5" in svg
    assert "Sends &lt;per&gt; hour" in svg  # escaped
    assert "style=" not in svg  # the CSP allows no inline style


def test_series_need_one_value_per_label():
    with pytest.raises(ValueError, match="one value per label"):
        bar_chart(["a", "b"], [Series("x", [1])], title="t")


def test_axis_labels_of_a_small_scale_are_not_rounded_away():
    svg = str(bar_chart(["a"], [Series("x", [1])], title="t"))
    labels = re.findall(r'text-anchor="end"[^>]*>([^<]+)<', svg)
    assert labels == ["0", "0.5", "1"]
