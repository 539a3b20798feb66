"""Server-side SVG charts: no JavaScript library, no CDN, nothing inline but the SVG itself.

The CSP forbids inline ``style`` attributes, so colours come from SVG presentation attributes
and CSS classes (``static/css/site.css``: ``.chart-*``). Every chart carries a ``<title>`` and
a text summary for screen readers, and the numbers behind it are in the page's JSON endpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup


@dataclass(frozen=True)
class Series:
    """One named row of values, one value per bucket, drawn in ``css_class``'s colour."""

    name: str
    values: list[int]
    css_class: str = "chart-series-1"


def chart_key(figures: Any) -> str:
    """A short fingerprint of the figures a chart is drawn from (JSON-able): a page that
    refreshes itself fetches the chart again only when the key of its figures changes."""
    text = json.dumps(figures, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10ⁿ at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    labels: list[str],
    series: list[Series],
    *,
    title: str,
    width: int = 640,
    height: int = 180,
    label_every: int = 1,
) -> Markup:
    """A grouped bar chart: one group per label, one bar per series, a y axis with a scale.

    ``labels`` name the buckets along the x axis (every ``label_every``-th is printed).
    """
    if any(len(s.values) != len(labels) for s in series):
        raise ValueError("every series needs one value per label")
    left, right, top, bottom = 36, 8, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_ceiling(max((v for s in series for v in s.values), default=0))
    groups = max(len(labels), 1)
    group_w = plot_w / groups
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#e3e8ec" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="chart-axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="10" fill="#5b6670">{peak * fraction:g}</text>'
        )
    for index, label in enumerate(labels):
        x0 = left + index * group_w + group_w * 0.1
        for offset, s in enumerate(series):
            value = s.values[index]
            bar_h = plot_h * value / peak
            x = x0 + offset * bar_w
            parts.append(
                f'<rect class="{escape(s.css_class)}" x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" '
                f'width="{bar_w:.1f}" height="{bar_h:.1f}" rx="1">'
                f"<title>{escape(label)} · {escape(s.name)}: {value}</title></rect>"
            )
        if index % label_every == 0:
            parts.append(
                f'<text class="chart-axis" x="{left + (index + 0.5) * group_w:.1f}" '
                f'y="{height - 6}" text-anchor="middle" font-size="10" fill="#5b6670">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    # Every piece of text above went through escape(); the rest is our own markup.
    return Markup("".join(parts))  # noqa: S704
