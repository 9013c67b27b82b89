"""SVG charts drawn on the server from the analytics results: bars for breakdowns, step lines
for timelines, a heat map and an UpSet chart for overlaps. The modules compute the geometry; SVG
templates (`templates/`, autoescaped) write the markup; every chart has `<title>` and `<desc>`."""

from app.charts.bars import bar_chart
from app.charts.overlaps import heatmap_chart, upset_chart
from app.charts.svg import SVG_MEDIA_TYPE
from app.charts.timeline import Marker, Series, TimelineData, timeline_chart

__all__ = [
    "SVG_MEDIA_TYPE",
    "Marker",
    "Series",
    "TimelineData",
    "bar_chart",
    "heatmap_chart",
    "timeline_chart",
    "upset_chart",
]
