"""Timeline: the running total of signatures as a step line (one line per series), the new
signatures per interval as light bars behind it, and the events as numbered markers listed
under the chart. Series differ by shade and dash pattern and are labelled at their ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise

from app.analytics.common import Interval, bucket_range, next_bucket
from app.charts.svg import DASHES, GRID, INK, MUTED, SHADES, clip, document, empty, esc, num, text

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

    body: list[str] = []
    for tick in range(0, y_max + 1, step):
        body.append(
            f'<line x1="{LEFT}" y1="{num(y(tick))}" x2="{LEFT + plot_width}" y2="{num(y(tick))}" '
            f'stroke="{GRID}"/>'
        )
        body.append(text(LEFT - 6, y(tick) + 4, str(tick), size=11, anchor="end", fill=MUTED))
    # x ticks: the first and last day, and a few between
    count = min(2, (last - first).days)
    tick_days = sorted({first, last, *(first + (last - first) * i / count for i in range(1, count))})
    for i, day in enumerate(tick_days):
        at_edge = start == first  # unpadded: the first and last labels sit at the plot's edges
        anchor = "middle"
        if at_edge and i == 0:
            anchor = "start"
        elif at_edge and i == len(tick_days) - 1 and i > 0:
            anchor = "end"
        body.append(
            f'<line x1="{num(x(day))}" y1="{bottom}" x2="{num(x(day))}" y2="{bottom + 4}" stroke="{INK}"/>'
        )
        body.append(text(x(day), bottom + 17, day.isoformat(), size=11, anchor=anchor, fill=MUTED))
    body.append(f'<line x1="{LEFT}" y1="{bottom}" x2="{LEFT + plot_width}" y2="{bottom}" stroke="{INK}"/>')

    for day, n in data.new:
        if n <= 0:
            continue
        x0, x1 = x(day), x(next_bucket(day, data.interval))
        body.append(
            f'<rect x="{num(x0)}" y="{num(y(n))}" width="{num(max(x1 - x0 - 1, 1))}" '
            f'height="{num(bottom - y(n))}" fill="{NEW_FILL}"><title>{esc(day.isoformat())}: '
            f"{n} new</title></rect>"
        )

    ends: list[tuple[float, str]] = []
    legend: list[str] = []
    legend_y = bottom + AXIS
    drawn = [s for s in data.series if s.points]
    for i, series in enumerate(drawn):
        shade, dash = SHADES[i % len(SHADES)], DASHES[i % len(DASHES)]
        path = [f"M{num(x(series.points[0][0]))},{num(y(0))}"]
        for day, value in series.points:
            path.append(f"H{num(x(day))}V{num(y(value))}")
        path.append(f"H{num(x(end))}")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        final = series.points[-1][1]
        body.append(
            f'<path d="{"".join(path)}" fill="none" stroke="{shade}" stroke-width="2.5"{dash_attr}>'
            f"<title>{esc(series.label)}: {final}</title></path>"
        )
        ends.append((y(final), str(final)))
        if len(drawn) > 1:  # a legend line: the line's own style, its label and its total
            ly = legend_y + len(legend) * LEGEND_LINE
            legend.append(
                f'<line x1="{LEFT}" y1="{ly - 4}" x2="{LEFT + 26}" y2="{ly - 4}" stroke="{shade}" '
                f'stroke-width="2.5"{dash_attr}/>'
                + text(LEFT + 32, ly, clip(f"{series.label}: {final}", LEGEND_CHARS), size=11)
            )
    for (_, label), end_y in zip(ends, _spread([e[0] for e in ends], 13), strict=True):
        body.append(text(LEFT + plot_width + 5, end_y + 4, label, size=11, weight="600"))

    placed: list[float] = []
    for n, event in enumerate(data.events, start=1):
        ex = x(event.day)
        cx = ex
        while any(abs(cx - p) < 17 for p in placed):
            cx += 17  # events on the same day: markers side by side
        placed.append(cx)
        body.append(
            f'<g class="event"><title>{esc(f"{n}. {event.day.isoformat()} {event.kind}")}</title>'
            f'<line x1="{num(ex)}" y1="{TOP - 4}" x2="{num(ex)}" y2="{bottom}" stroke="{INK}" '
            'stroke-dasharray="3 3" stroke-width="1"/>'
            f'<circle cx="{num(cx)}" cy="{TOP - 13}" r="8" fill="#ffffff" stroke="{INK}"/>'
            + text(cx, TOP - 9, str(n), size=10, anchor="middle", weight="700")
            + "</g>"
        )
        if data.event_legend:
            note = f" — {event.note}" if event.note else ""
            ly = legend_y + len(legend) * LEGEND_LINE
            legend.append(
                text(
                    LEFT, ly, clip(f"{n}. {event.day.isoformat()} {event.kind}{note}", LEGEND_CHARS), size=11
                )
            )
    body.extend(legend)
    height = legend_y + len(legend) * LEGEND_LINE - (LEGEND_LINE if legend else AXIS - 26) + 8
    return document(width=WIDTH, height=height, title=title, desc=desc, body=body, id_prefix=id_prefix)
