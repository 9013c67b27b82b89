"""Timeline: the running total of signatures as a step line (one line per series), the new
signatures per interval as light bars behind it, and the events as numbered markers listed
under the chart. Series differ by shade and dash pattern and are labelled at their ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise

from app.analytics.common import Interval, bucket_range, next_bucket
from app.charts.svg import DASHES, MUTED, SHADES, Text, clip, document, empty, num

WIDTH = 480
LEFT, RIGHT, TOP = 40, 44, 26
PLOT_HEIGHT = 180
AXIS = 36
LEGEND_LINE = 18
LEGEND_CHARS = 68
MIN_BUCKETS = 5
NEW_FILL = "#d9e2ec"


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[date, int]]  # (first day of the interval, running total)


@dataclass(frozen=True)
class Marker:
    day: date
    kind: str
    note: str | None = None


@dataclass(frozen=True)
class TimelineData:
    interval: Interval
    series: Sequence[Series]
    new: Sequence[tuple[date, int]] = ()
    events: Sequence[Marker] = field(default_factory=tuple)
    event_legend: bool = True  # False when the page lists the events itself, numbered alike


def previous_bucket(day: date, interval: Interval) -> date:
    if day - date.min < timedelta(days=7):  # (the first days there are)
        return date.min
    if interval == "month":
        return (day - timedelta(days=1)).replace(day=1)
    return day - timedelta(days=7 if interval == "week" else 1)


def nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10^k) giving about `ticks` gridlines up to `top`."""
    raw = max(top / ticks, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for m in (1, 2, 5, 10):
        if m * magnitude >= raw:
            return int(m * magnitude)
    return int(10 * magnitude)


def _spread(ys: list[float], gap: float) -> list[float]:
    """Push end labels apart so that none overlaps (keeps their order)."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    out = list(ys)
    for prev, cur in pairwise(order):
        if out[cur] - out[prev] < gap:
            out[cur] = out[prev] + gap
    return out


def timeline_chart(data: TimelineData, *, title: str, desc: str, id_prefix: str = "timeline") -> str:
    days = [d for s in data.series for d, _ in s.points] + [d for d, _ in data.new]
    days += [e.day for e in data.events]
    if not days:
        return empty(title=title, desc=desc, message="No signatures or events yet.", id_prefix=id_prefix)
    first, last = min(days), max(days)
    start, end = first, next_bucket(last, data.interval)
    if len(bucket_range(first, last, data.interval)) < MIN_BUCKETS:  # a little context either side
        start, end = previous_bucket(first, data.interval), next_bucket(end, data.interval)
    span_days = max((end - start).days, 1)
    plot_width = WIDTH - LEFT - RIGHT
    top_value = max([v for s in data.series for _, v in s.points] + [n for _, n in data.new] + [1])
    step = nice_step(top_value)
    y_max = step * -(-top_value // step)
    bottom = TOP + PLOT_HEIGHT

    def x(day: date) -> float:
        return LEFT + plot_width * min(max((day - start).days, 0), span_days) / span_days

    def y(value: float) -> float:
        return bottom - PLOT_HEIGHT * value / y_max

    y_ticks = [
        {"y": y(tick), "label": Text(LEFT - 6, y(tick) + 4, str(tick), size=11, anchor="end", fill=MUTED)}
        for tick in range(0, y_max + 1, step)
    ]
    # x ticks: the first and last day, and a few between
    count = min(2, (last - first).days)
    tick_days = sorted({first, last, *(first + (last - first) * i / count for i in range(1, count))})
    x_ticks = []
    for i, day in enumerate(tick_days):
        at_edge = start == first  # unpadded: the first and last labels sit at the plot's edges
        anchor = "middle"
        if at_edge and i == 0:
            anchor = "start"
        elif at_edge and i == len(tick_days) - 1 and i > 0:
            anchor = "end"
        x_ticks.append(
            {
                "x": x(day),
                "label": Text(x(day), bottom + 17, day.isoformat(), size=11, anchor=anchor, fill=MUTED),
            }
        )

    new_bars = []
    for day, n in data.new:
        if n <= 0:
            continue
        x0, x1 = x(day), x(next_bucket(day, data.interval))
        new_bars.append(
            {
                "x": x0,
                "y": y(n),
                "width": max(x1 - x0 - 1, 1),
                "height": bottom - y(n),
                "title": f"{day.isoformat()}: {n} new",
            }
        )

    lines = []
    finals: list[int] = []  # each drawn series' last running total, labelled at the line's end
    legend: list[dict[str, object]] = []  # each: a text, and for a series the sample of its line
    legend_y = bottom + AXIS
    drawn = [s for s in data.series if s.points]
    for i, series in enumerate(drawn):
        shade, dash = SHADES[i % len(SHADES)], DASHES[i % len(DASHES)]
        path = [f"M{num(x(series.points[0][0]))},{num(y(0))}"]
        for day, value in series.points:
            path.append(f"H{num(x(day))}V{num(y(value))}")
        path.append(f"H{num(x(end))}")
        final = series.points[-1][1]
        finals.append(final)
        lines.append(
            {
                "d": "".join(path),
                "shade": shade,
                "dash": dash,
                "title": f"{series.label}: {final}",
            }
        )
        if len(drawn) > 1:  # a legend line: the line's own style, its label and its total
            ly = legend_y + len(legend) * LEGEND_LINE
            legend.append(
                {
                    "sample": {"y": ly - 4, "shade": shade, "dash": dash},
                    "label": Text(LEFT + 32, ly, clip(f"{series.label}: {final}", LEGEND_CHARS), size=11),
                }
            )
    end_labels = [
        Text(LEFT + plot_width + 5, end_y + 4, str(final), size=11, weight="600")
        for final, end_y in zip(finals, _spread([y(final) for final in finals], 13), strict=True)
    ]

    placed: list[float] = []
    markers = []
    for n, event in enumerate(data.events, start=1):
        ex = x(event.day)
        cx = ex
        while any(abs(cx - p) < 17 for p in placed):
            cx += 17  # events on the same day: markers side by side
        placed.append(cx)
        markers.append(
            {
                "title": f"{n}. {event.day.isoformat()} {event.kind}",
                "x": ex,
                "cx": cx,
                "number": Text(cx, TOP - 9, str(n), size=11, anchor="middle", weight="700"),
            }
        )
        if data.event_legend:
            note = f" — {event.note}" if event.note else ""
            ly = legend_y + len(legend) * LEGEND_LINE
            legend.append(
                {
                    "sample": None,
                    "label": Text(
                        LEFT,
                        ly,
                        clip(f"{n}. {event.day.isoformat()} {event.kind}{note}", LEGEND_CHARS),
                        size=11,
                    ),
                }
            )
    height = legend_y + len(legend) * LEGEND_LINE - (LEGEND_LINE if legend else AXIS - 26) + 8
    return document(
        "timeline.svg",
        width=WIDTH,
        height=height,
        title=title,
        desc=desc,
        id_prefix=id_prefix,
        left=LEFT,
        right=LEFT + plot_width,
        bottom=bottom,
        tick_end=bottom + 4,
        marker_top=TOP - 4,  # the dashed line of an event starts under its numbered circle
        marker_y=TOP - 13,
        sample_end=LEFT + 26,
        new_fill=NEW_FILL,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        new_bars=new_bars,
        lines=lines,
        end_labels=end_labels,
        markers=markers,
        legend=legend,
    )
