"""Analytics: counts, overlaps, timelines, reach and co-signatories — SQL in, typed results out.

The compute functions are public and take a `Session`; routers (JSON, CSV, SVG, SSE) render
their results."""

from app.analytics.common import Interval, get_campaign, get_letter
from app.analytics.counts import letter_counts
from app.analytics.overlaps import Match, co_signatories, overlap_signatories, overlaps, resolve_letters
from app.analytics.reach import campaign_reach
from app.analytics.timelines import campaign_timeline, letter_timeline

__all__ = [
    "Interval",
    "Match",
    "campaign_reach",
    "campaign_timeline",
    "co_signatories",
    "get_campaign",
    "get_letter",
    "letter_counts",
    "letter_timeline",
    "overlap_signatories",
    "overlaps",
    "resolve_letters",
]
