"""What the charts share: the document with `<title>` and `<desc>` (`chart.svg`, which each
chart's template extends), placed texts, number formatting and a grey-scale-safe palette.

Every chart is drawn in a `viewBox` with `width="100%"`, so it scales to its container. The
modules compute the geometry; the templates write the markup, and their autoescape escapes every
text that comes from the registry.
Colours are shades of one dark blue-grey, chosen so that they stay distinct when printed or
seen in grey scale; series also differ by dash pattern and carry direct labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.templating import render, templates

SVG_MEDIA_TYPE = "image/svg+xml"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
INK = "#1f2933"
MUTED = "#52606d"
GRID = "#d9dee3"
# Dark to light: luminance steps of roughly 15% keep neighbours apart in grey scale.
SHADES = ("#102a43", "#334e68", "#627d98", "#9fb3c8", "#486581", "#829ab1")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "12 4", "4 2 1 2")
UNKNOWN_FILL = "#bcccdc"


def num(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def clip(text: str, limit: int) -> str:
    """A label cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"


def ramp(fraction: float) -> str:
    """A fill from very light (0) to very dark (1), one hue: reads the same in grey scale."""
    f = min(max(fraction, 0.0), 1.0)
    light, dark = (240, 244, 248), (16, 42, 67)
    r, g, b = (round(lo + (hi - lo) * f) for lo, hi in zip(light, dark, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class Text:
    """A text placed on a chart: `_svg.svg`'s `text` macro draws it."""

    x: float
    y: float
    content: str
    size: int = 12
    anchor: str = "start"
    fill: str = INK
    weight: str | None = None


def document(
    template: str,
    *,
    width: float,
    height: float,
    title: str,
    desc: str,
    id_prefix: str = "chart",
    **context: Any,
) -> str:
    """A standalone SVG document (also valid inline in HTML) with an accessible name and
    description: `template` extends `chart.svg` and draws the chart from `context`."""
    return render(
        template,
        kind=template.removesuffix(".svg"),
        width=width,
        height=height,
        title=title,
        desc=desc,
        id_prefix=id_prefix,
        font=FONT,
        ink=INK,
        muted=MUTED,
        grid=GRID,
        **context,
    )


def empty(*, title: str, desc: str, message: str, id_prefix: str = "chart") -> str:
    """A small chart that says there is nothing to draw (still with its title and desc)."""
    return document(
        "empty.svg",
        width=640,
        height=60,
        title=title,
        desc=desc,
        id_prefix=id_prefix,
        message=Text(12, 35, message, size=14, fill=MUTED),
    )


templates.filters["num"] = num
