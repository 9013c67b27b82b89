"""The SVG badge: "signatures | 1,234", in the shields.io manner.

`?count=` picks what the value says (`badge_value`): `recorded` (the default, "6"), `claimed`
("130 claimed") or `both` ("6 of 130 claimed"), so a journalist can quote the badge as it stands.

Text widths come from a per-character table of DejaVu Sans at 11 px (measured in Chromium; Verdana,
first in the font list, is within a few per cent of it), and every text carries `textLength`, so
the text fills exactly the box computed for it whatever font the reader has. The badge is an
image for assistive technology: `role="img"`, an `aria-label` and a `<title>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.templating import render

Style = Literal["flat", "flat-square", "plastic"]
STYLES: tuple[Style, ...] = ("flat", "flat-square", "plastic")
CountMode = Literal["recorded", "claimed", "both"]
COUNT_MODES: tuple[CountMode, ...] = ("recorded", "claimed", "both")

LABEL_COLOR = "#555"
VALUE_COLOR = "#007ec6"
PADDING = 6  # each side of a text
FONT = "Verdana,DejaVu Sans,Geneva,sans-serif"

# Advance widths in px of DejaVu Sans 11px for printable ASCII.
_WIDTHS: dict[str, float] = {
    " ": 3.5, "!": 4.41, '"': 5.06, "#": 9.22, "$": 7, "%": 10.45, "&": 8.58, "'": 3.02, "(": 4.29,
    ")": 4.29, "*": 5.5, "+": 9.22, ",": 3.5, "-": 3.97, ".": 3.5, "/": 3.71, "0": 7, "1": 7, "2": 7,
    "3": 7, "4": 7, "5": 7, "6": 7, "7": 7, "8": 7, "9": 7, ":": 3.71, ";": 3.71, "<": 9.22, "=": 9.22,
    ">": 9.22, "?": 5.84, "@": 11, "A": 7.52, "B": 7.55, "C": 7.68, "D": 8.47, "E": 6.95, "F": 6.33,
    "G": 8.52, "H": 8.27, "I": 4.61, "J": 5.0, "K": 7.62, "L": 6.13, "M": 9.49, "N": 8.23, "O": 8.66,
    "P": 6.63, "Q": 8.66, "R": 7.65, "S": 7.52, "T": 6.78, "U": 8.05, "V": 7.52, "W": 10.88, "X": 7.54,
    "Y": 6.78, "Z": 7.54, "[": 4.29, "\\": 3.71, "]": 4.29, "^": 9.22, "_": 5.5, "`": 5.5, "a": 6.74,
    "b": 6.98, "c": 6.05, "d": 6.98, "e": 6.77, "f": 3.87, "g": 6.98, "h": 6.97, "i": 3.06, "j": 3.78,
    "k": 6.43, "l": 3.06, "m": 10.72, "n": 6.97, "o": 6.73, "p": 6.98, "q": 6.98, "r": 4.69, "s": 5.73,
    "t": 4.31, "u": 6.97, "v": 6.51, "w": 9, "x": 6.51, "y": 6.51, "z": 5.77, "{": 7, "|": 3.71,
    "}": 7, "~": 9.22,
}  # fmt: skip
_LATIN = 7.6  # accented Latin, Greek, Cyrillic: about an average capital
_WIDE = 11.0  # anything else (CJK, symbols): a full em, so the box is never too small


def text_width(text: str) -> float:
    """The width in px of `text` at 11 px (the wider of Verdana and DejaVu Sans where they differ)."""
    return sum(_WIDTHS.get(ch) or (_LATIN if ord(ch) < 0x0530 else _WIDE) for ch in text)


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold even escaped (controls, surrogates,
    U+FFFE and U+FFFF)."""
    return "".join(
        ch
        for ch in text
        if (ch >= " " or ch in "\t\n\r")
        and ch != "\x7f"
        and not ("\ud800" <= ch <= "\udfff")
        and ch not in "\ufffe\uffff"
    )


def format_count(n: int) -> str:
    """Thousands separated by commas: 1234567 -> "1,234,567"."""
    return f"{n:,}"


def badge_value(mode: CountMode, recorded: int, claimed: int | None) -> str:
    """The right-hand text: the recorded count, the claimed one, or both. A letter without a
    claimed count says so ("no claim") rather than showing a number nobody claimed."""
    if mode == "recorded":
        return format_count(recorded)
    if claimed is None:
        return "no claim" if mode == "claimed" else f"{format_count(recorded)}, no claim"
    if mode == "claimed":
        return f"{format_count(claimed)} claimed"
    return f"{format_count(recorded)} of {format_count(claimed)} claimed"


@dataclass(frozen=True)
class _Geometry:
    height: int
    radius: int
    sheen: Literal["flat", "plastic", ""]  # the gradient overlay `badge.svg` draws ("" for none)
    text_y: float  # baseline of the text
    shadow: bool


_GEOMETRY: dict[Style, _Geometry] = {
    "flat": _Geometry(height=20, radius=3, sheen="flat", text_y=14, shadow=True),
    "flat-square": _Geometry(height=20, radius=0, sheen="", text_y=14, shadow=False),
    "plastic": _Geometry(height=18, radius=4, sheen="plastic", text_y=13, shadow=True),
}


def render_badge(label: str, value: str, style: Style = "flat") -> str:
    """The badge as a standalone SVG document (`badge.svg`: well-formed XML, every text escaped);
    `value` is the right-hand text (`badge_value`)."""
    geometry = _GEOMETRY[style]
    label = " ".join(xml_text(label).split())
    label_text_w = round(text_width(label), 1)
    value_text_w = round(text_width(value), 1)
    label_w = round(label_text_w + 2 * PADDING)
    value_w = round(value_text_w + 2 * PADDING)
    return render(
        "badge.svg",
        title=f"{label}: {value}",
        width=label_w + value_w,
        height=geometry.height,
        radius=geometry.radius,
        sheen=geometry.sheen,
        label_width=label_w,
        value_width=value_w,
        label_color=LABEL_COLOR,
        value_color=VALUE_COLOR,
        font=FONT,
        text_y=f"{geometry.text_y:g}",
        shadow_y=f"{geometry.text_y + 1:g}" if geometry.shadow else None,
        texts=[
            {"x": f"{label_w / 2:g}", "length": f"{label_text_w:g}", "content": label},
            {"x": f"{label_w + value_w / 2:g}", "length": f"{value_text_w:g}", "content": value},
        ],
    )
