"""Charts for the admin as inline SVG, drawn on the server.

No chart library, no CDN, no JavaScript: the page works offline, and a test can read
the numbers in the markup.
"""

from collections.abc import Sequence

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

COLORS = {"sent": "#417690", "delivered": "#2e8540", "failed": "#ba2121"}
_WIDTH, _HEIGHT = 720, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 12, 40


def bar_chart(
    *,
    labels: Sequence[str],
    series: dict[str, Sequence[int]],
    title: str,
    max_labels: int = 12,
) -> SafeString:
    """Grouped bars, one group per label, one bar per series, with a legend."""
    if not labels:
        return format_html('<p class="chart-empty">{}: nothing yet.</p>', title)
    top = max([1, *(value for values in series.values() for value in values)])
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    group_w = plot_w / len(labels)
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0, top // 2, top):
        y = _TOP + plot_h - plot_h * tick / top
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd"/><text x="{_LEFT - 4}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end" fill="#666">{tick}</text>'
        )
    step = max(1, -(-len(labels) // max_labels))
    for index, label in enumerate(labels):
        x0 = _LEFT + index * group_w + group_w * 0.1
        for offset, (name, values) in enumerate(series.items()):
            value = values[index]
            height = plot_h * value / top
            parts.append(
                f'<rect class="bar bar-{escape(name)}" x="{x0 + offset * bar_w:.1f}" '
                f'y="{_TOP + plot_h - height:.1f}" width="{bar_w:.1f}" '
                f'height="{height:.1f}" fill="{COLORS.get(name, "#888")}" '
                f'data-value="{value}"><title>{escape(label)} {escape(name)}: '
                f"{value}</title></rect>"
            )
        if index % step == 0:
            parts.append(
                f'<text x="{x0:.1f}" y="{_HEIGHT - _BOTTOM + 14}" font-size="10" '
                f'fill="#666">{escape(label)}</text>'
            )
    x = _LEFT
    for name in series:
        parts.append(
            f'<rect x="{x}" y="{_HEIGHT - 14}" width="10" height="10" '
            f'fill="{COLORS.get(name, "#888")}"/><text x="{x + 14}" '
            f'y="{_HEIGHT - 5}" font-size="11">{escape(name)}</text>'
        )
        x += 90
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped


def funnel(*, steps: Sequence[tuple[str, int]]) -> SafeString:
    """Horizontal bars, each step's width relative to the first (the audience)."""
    base = max(1, steps[0][1] if steps else 1)
    rows = []
    for name, value in steps:
        width = min(100.0, 100.0 * value / base)
        rows.append(
            format_html(
                '<div class="funnel-step funnel-{}"><span class="funnel-label">{}'
                '</span><span class="funnel-bar" style="width: {}%"></span>'
                '<span class="funnel-value">{}</span></div>',
                name,
                name.capitalize(),
                f"{width:.1f}",
                value,
            )
        )
    return format_html('<div class="funnel">{}</div>', mark_safe("".join(rows)))  # noqa: S308
