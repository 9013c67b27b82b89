"""Horizontal bar chart of a breakdown (one bar per entry, largest first, as the analytics
sort them), each bar labelled with its value so that it reads without colour."""

from __future__ import annotations

from collections.abc import Sequence

from app.analytics.results import BodyEntry, Entry
from app.charts.svg import SHADES, UNKNOWN_FILL, Text, clip, document, empty

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
    hatch = f"{id_prefix}-hatch"
    bars = []
    for i, (entry, label) in enumerate(zip(entries, labels, strict=True)):
        y = TOP + i * ROW
        length = max(span * entry.count / top, 1.5)
        bars.append(
            {
                "title": f"{entry.label}: {label}",
                "name": Text(
                    LABEL_WIDTH - 8, y + ROW / 2 + 5, clip(entry.label, 20), size=FONT, anchor="end"
                ),
                "y": y + (ROW - BAR) / 2,
                "length": length,
                "fill": f"url(#{hatch})" if entry.key is None else SHADES[0],
                "value": Text(LABEL_WIDTH + length + 6, y + ROW / 2 + 5, label, size=FONT, weight="600"),
            }
        )
    return document(
        "bars.svg",
        width=WIDTH,
        height=height,
        title=title,
        desc=desc,
        id_prefix=id_prefix,
        hatch=hatch,
        unknown_fill=UNKNOWN_FILL,
        label_width=LABEL_WIDTH,
        top=TOP,
        axis_bottom=height - BOTTOM,
        bar_height=BAR,
        bars=bars,
    )
