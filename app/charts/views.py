"""The charts of the registry, made from the analytics results with their titles and
descriptions: the same functions draw the charts on the pages and the ones served alone, so
both show the same numbers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from app.analytics.results import Breakdowns, CampaignTimeline, Counts, Entry, Overlaps, Reach, Timeline
from app.breakdowns import BY_KEY, Key
from app.charts.bars import bar_chart, value_label
from app.charts.overlaps import heatmap_chart, upset_chart
from app.charts.timeline import Marker, Series, TimelineData, timeline_chart

DESC_ENTRIES = 30
WithBreakdowns = Counts | Reach | Breakdowns


def _listing(entries: Sequence[Entry]) -> str:
    shown = "; ".join(f"{e.label}: {value_label(e)}" for e in entries[:DESC_ENTRIES])
    more = len(entries) - DESC_ENTRIES
    return shown + (f"; and {more} more" if more > 0 else "")


def breakdown_svg(counts: WithBreakdowns, key: Key, subject: str, *, id_prefix: str | None = None) -> str:
    """A letter's counts (signatures) or a campaign's reach (distinct signatories) by one breakdown."""
    breakdown = BY_KEY[key]
    entries, name = breakdown.entries(counts), breakdown.name
    if isinstance(counts, Counts):
        as_of = f" as of {counts.as_of.isoformat()}" if counts.as_of else ""
        noun, total = "signatures", f"{counts.recorded} signatures recorded{as_of}"
    elif isinstance(counts, Reach):
        noun, total = "distinct signatories", f"{counts.distinct} distinct signatories"
    else:
        noun, total = "signatories", "Signatories"
    desc = f"{total}, by {name}. " + (_listing(entries) + "." if entries else "None recorded.")
    return bar_chart(
        entries, title=f"{subject}: {noun} by {name}", desc=desc, id_prefix=id_prefix or f"by-{key}"
    )


def letter_timeline_svg(
    timeline: Timeline, letter_title: str, *, id_prefix: str = "timeline", event_legend: bool = True
) -> str:
    points = timeline.points
    total = points[-1].cumulative if points else 0
    span = f" from {points[0].date.isoformat()} to {points[-1].date.isoformat()}" if points else ""
    events = "; ".join(f"{e.date.isoformat()} {e.kind}" for e in timeline.events)
    desc = (
        f"Running total of signatures per {timeline.interval}{span}, ending at {total}. "
        f"{len(timeline.events)} events" + (f": {events}." if events else ".")
    )
    data = TimelineData(
        interval=timeline.interval,  # type: ignore[arg-type]
        series=[Series("Signatures", [(p.date, p.cumulative) for p in points])],
        new=[(p.date, p.new) for p in points],
        events=[Marker(e.date, e.kind, e.note) for e in timeline.events],
        event_legend=event_legend,
    )
    return timeline_chart(data, title=f"{letter_title}: signatures over time", desc=desc, id_prefix=id_prefix)


def campaign_timeline_svg(
    timeline: CampaignTimeline,
    name: str,
    labels: Mapping[str, str],
    *,
    id_prefix: str = "campaign-timeline",
    event_legend: bool = True,
) -> str:
    series = [
        Series(labels.get(s.letter, s.letter), [(p.date, p.cumulative) for p in s.points])
        for s in timeline.series
        if s.points
    ]
    distinct = timeline.distinct[-1].cumulative if timeline.distinct else 0
    if len(series) > 1:
        series.append(
            Series("Distinct signatories, all letters", [(p.date, p.cumulative) for p in timeline.distinct])
        )
    finals = "; ".join(f"{s.label}: {s.points[-1][1]}" for s in series)
    desc = (
        f"Running total of signatures per {timeline.interval}, one line per letter"
        + (" and one for distinct signatories" if len(series) > 1 else "")
        + f". Final totals: {finals or 'none'}. Distinct signatories: {distinct}. "
        f"{len(timeline.events)} events."
    )
    data = TimelineData(
        interval=timeline.interval,  # type: ignore[arg-type]
        series=series,
        events=[
            Marker(
                e.date, e.kind, (f"[{labels.get(e.letter, e.letter)}] " if e.letter else "") + (e.note or "")
            )
            for e in timeline.events
        ],
        event_legend=event_legend,
    )
    return timeline_chart(data, title=f"{name}: signatures over time", desc=desc, id_prefix=id_prefix)


def _overlap_svg(
    chart: Callable[..., str],
    result: Overlaps,
    labels: Mapping[str, str],
    *,
    title: str,
    what: str,
    entries: str,
    id_prefix: str,
) -> str:
    """An overlap chart whose description gives the letters' sizes, then its own `entries`."""
    sizes = "; ".join(f"{labels.get(s, s)}: {result.sizes.get(s, 0)}" for s in result.letters)
    desc = (
        f"{len(result.letters)} letters ({sizes}); {result.union} distinct signatories in all. "
        f"{what}: {entries or 'none'}."
    )
    return chart(result, labels=labels, title=title, desc=desc, id_prefix=id_prefix)


def heatmap_svg(result: Overlaps, labels: Mapping[str, str], *, id_prefix: str = "heatmap") -> str:
    pairs = "; ".join(
        f"{labels.get(p.a, p.a)} and {labels.get(p.b, p.b)}: {p.common} in common"
        for p in result.pairs[:DESC_ENTRIES]
    )
    title = "Signatories in common, letter by letter"
    return _overlap_svg(
        heatmap_chart, result, labels, title=title, what="Pairs", entries=pairs, id_prefix=id_prefix
    )


def upset_svg(result: Overlaps, labels: Mapping[str, str], *, id_prefix: str = "upset") -> str:
    groups = "; ".join(
        f"only {' + '.join(labels.get(s, s) for s in g.letters)}: {g.count}"
        for g in result.intersections[:DESC_ENTRIES]
    )
    title = "Exact intersections: who signed exactly which letters"
    return _overlap_svg(
        upset_chart, result, labels, title=title, what="Intersections", entries=groups, id_prefix=id_prefix
    )
