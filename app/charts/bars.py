"""Horizontal bar chart of a breakdown (one bar per entry, largest first, as the analytics
sort them), each bar labelled with its value so that it reads without colour."""

from __future__ import annotations

from collections.abc import Sequence

from app.analytics.results import BodyEntry, Entry
from app.charts.svg import GRID, INK, SHADES, UNKNOWN_FILL, clip, document, empty, esc, num, text

WIDTH = 420
LABEL_WIDTH = 140
VALUE_WIDTH = 60
ROW = 26
BAR = 18
FONT = 13
TOP = 8
BOTTOM = 8


def share_text(share: float | None) -> str:
    """A share of a body, as shown on pages and charts: one decimal place."""
    return "" if share is None else f"{share * 100:.1f}%"


def value_label(entry: Entry) -> str:
    share = entry.share_of_body if isinstance(entry, BodyEntry) else None
    return f"{entry.count} · {share_text(share)} of seats" if share is not None else str(entry.count)


def bar_chart(entries: Sequence[Entry], *, title: str, desc: str, id_prefix: str = "bars") -> str:
    if not entries:
        return empty(title=title, desc=desc, message="No signatures recorded.", id_prefix=id_prefix)
    top = max(e.count for e in entries) or 1
    labels = [value_label(e) for e in entries]
    value_width = max(VALUE_WIDTH, 8 * max(len(v) for v in labels) + 12)  # bold 13px digits
    span = WIDTH - LABEL_WIDTH - value_width
    height = TOP + ROW * len(entries) + BOTTOM
    pattern_id = f"{id_prefix}-hatch"
    body = [
        "<defs>"
        f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="{UNKNOWN_FILL}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{INK}" stroke-width="1.5"/>'
        "</pattern></defs>",
        f'<line x1="{LABEL_WIDTH}" y1="{TOP}" x2="{LABEL_WIDTH}" y2="{height - BOTTOM}" stroke="{GRID}"/>',
    ]
    for i, entry in enumerate(entries):
        y = TOP + i * ROW
        length = max(span * entry.count / top, 1.5)
        fill = f"url(#{pattern_id})" if entry.key is None else SHADES[0]
        label = labels[i]
        body.append(
            f'<g class="bar"><title>{esc(entry.label)}: {esc(label)}</title>'
            + text(LABEL_WIDTH - 8, y + ROW / 2 + 5, clip(entry.label, 20), size=FONT, anchor="end")
            + f'<rect x="{LABEL_WIDTH}" y="{num(y + (ROW - BAR) / 2)}" width="{num(length)}" '
            f'height="{BAR}" fill="{fill}"/>'
            + text(LABEL_WIDTH + length + 6, y + ROW / 2 + 5, label, size=FONT, weight="600")
            + "</g>"
        )
    return document(width=WIDTH, height=height, title=title, desc=desc, body=body, id_prefix=id_prefix)
