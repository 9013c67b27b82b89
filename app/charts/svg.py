"""The few SVG primitives the charts share: a document with `<title>` and `<desc>`, escaped
text, and a grey-scale-safe palette.

Every chart is drawn in a `viewBox` with `width="100%"`, so it scales to its container. Every
text that comes from the registry goes through `esc`/`attr`; nothing else is interpolated.
Colours are shades of one dark blue-grey, chosen so that they stay distinct when printed or
seen in grey scale; series also differ by dash pattern and carry direct labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

SVG_MEDIA_TYPE = "image/svg+xml"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
INK = "#1f2933"
MUTED = "#52606d"
GRID = "#d9dee3"
# Dark to light: luminance steps of roughly 15% keep neighbours apart in grey scale.
SHADES = ("#102a43", "#334e68", "#627d98", "#9fb3c8", "#486581", "#829ab1")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "12 4", "4 2 1 2")
UNKNOWN_FILL = "#bcccdc"


def esc(text: object) -> str:
    """Text content, escaped for XML (and HTML)."""
    return escape(str(text))


def attr(value: object) -> str:
    """An attribute value with its quotes, escaped."""
    return quoteattr(str(value))


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


def text(
    x: float,
    y: float,
    content: str,
    *,
    size: int = 12,
    anchor: str = "start",
    fill: str = INK,
    weight: str | None = None,
    extra: str = "",
) -> str:
    bold = f' font-weight="{weight}"' if weight else ""
    return (
        f'<text x="{num(x)}" y="{num(y)}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{bold}{extra}>{esc(content)}</text>'
    )


def document(
    *, width: float, height: float, title: str, desc: str, body: Iterable[str], id_prefix: str = "chart"
) -> str:
    """A standalone SVG document (also valid inline in HTML) with an accessible name and
    description."""
    title_id, desc_id = f"{id_prefix}-title", f"{id_prefix}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {num(width)} {num(height)}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" font-family={attr(FONT)} class="chart">',
        f'<title id="{title_id}">{esc(title)}</title>',
        f'<desc id="{desc_id}">{esc(desc)}</desc>',
        f'<rect x="0" y="0" width="{num(width)}" height="{num(height)}" fill="#ffffff"/>',
        *body,
        "</svg>",
    ]
    return "\n".join(parts)


def empty(*, title: str, desc: str, message: str, id_prefix: str = "chart") -> str:
    """A small chart that says there is nothing to draw (still with its title and desc)."""
    return document(
        width=640,
        height=60,
        title=title,
        desc=desc,
        id_prefix=id_prefix,
        body=[text(12, 35, message, size=14, fill=MUTED)],
    )
