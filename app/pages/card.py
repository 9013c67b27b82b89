"""The card image of a letter, for link previews (OpenGraph `og:image`, Twitter's
`summary_large_image`): 1200 x 630, the size those sites ask for, drawn by `card.svg` in the
manner of the charts (Python places the lines, the template escapes every text).

It is SVG: a PNG would need a rasteriser, and the maintained ones (cairosvg, resvg) are bindings
to native libraries, not pure Python. Sites that accept only PNG show the link without the
picture; the title and description tags still make the preview (docs/explorer.md).
"""

from __future__ import annotations

import textwrap
from datetime import date

from app.charts.svg import FONT, INK, MUTED, Text, clip
from app.embeds.badge import format_count, xml_text
from app.templating import render

WIDTH, HEIGHT = 1200, 630
MARGIN = 72
TITLE_SIZE = 60
TITLE_LINE = 72
TITLE_CHARS = 32  # per line at 60 px in the 1056 px between the margins
TITLE_LINES = 3
ACCENT = "#102a43"


def _title_lines(title: str) -> list[str]:
    lines = textwrap.wrap(" ".join(xml_text(title).split()), TITLE_CHARS, break_long_words=True) or [""]
    if len(lines) > TITLE_LINES:
        lines = [*lines[: TITLE_LINES - 1], clip(" ".join(lines[TITLE_LINES - 1 :]), TITLE_CHARS)]
    return lines


def render_card(*, title: str, recorded: int, claimed: int | None, published_on: date | None) -> str:
    """The card as a standalone SVG document."""
    lines = [
        Text(MARGIN, MARGIN + 40 + i * TITLE_LINE, line, size=TITLE_SIZE, fill=INK, weight="700")
        for i, line in enumerate(_title_lines(title))
    ]
    numbers_y = HEIGHT - MARGIN - 40
    claim = f"{format_count(claimed)} claimed" if claimed is not None else "no claimed count"
    return render(
        "card.svg",
        width=WIDTH,
        height=HEIGHT,
        font=FONT,
        accent=ACCENT,
        title=f"{title}: {format_count(recorded)} signatures recorded, {claim}",
        lines=lines,
        recorded=Text(MARGIN, numbers_y, format_count(recorded), size=120, fill=ACCENT, weight="700"),
        recorded_label=Text(MARGIN, numbers_y + 40, "signatures recorded", size=32, fill=MUTED),
        claimed=Text(WIDTH - MARGIN, numbers_y, claim, size=44, fill=INK, anchor="end", weight="600"),
        date=Text(
            WIDTH - MARGIN,
            numbers_y + 40,
            published_on.isoformat() if published_on else "",
            size=32,
            fill=MUTED,
            anchor="end",
        ),
        brand=Text(WIDTH - MARGIN, 60, "Undersigned", size=28, fill=MUTED, anchor="end", weight="600"),
    )
