"""The HTML widget for an `<iframe>`: title, recorded count (and the claimed count beside it when
they differ), a bar of the biggest parties (or kinds), the day it was counted, the sources; the
title and "Who signed" link to the letter's page (same origin as the frame, opened outside it).

Self-contained: inline CSS, system fonts, no images, fonts or scripts from anywhere. The markup is
the template `widget.html`, which escapes every text that comes from the registry. One constant
inline script opens the letter's counts stream (same origin) and redraws the numbers and the bar;
the Content-Security-Policy allows that script by its hash and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Literal
from urllib.parse import quote, urlsplit

from markupsafe import Markup

from app.analytics.results import Counts, Entry
from app.embeds.badge import format_count
from app.templating import render
from app.urls import web_url

Theme = Literal["auto", "light", "dark"]
THEMES: tuple[Theme, ...] = ("auto", "light", "dark")
TOP = 5  # bar segments before "Other"
MAX_SOURCES = 3  # links shown; the rest are counted

# Colours people expect for the parties of the demo data; anything else takes the palette.
PARTY_COLORS = {
    "conservative": "#0087dc",
    "labour": "#e4003b",
    "liberal-democrat": "#faa61a",
    "scottish-national-party": "#c9b400",
    "crossbench": "#8c8c8c",
    "green-party": "#02a95b",
    "plaid-cymru": "#005b54",
    "democratic-unionist-party": "#d46a4c",
    "bishops": "#7a4b9e",
}
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f")
OTHER_COLOR = "#bab0ac"
UNKNOWN_COLOR = "#d0d0d0"


@dataclass(frozen=True)
class Segment:
    label: str
    count: int
    color: str


@dataclass(frozen=True)
class SourceLink:
    label: str
    url: str


def bar_segments(counts: Counts) -> tuple[str, list[Segment]]:
    """The breakdown the bar shows ("party" when any signatory's party is known, else "kind"):
    its `TOP` biggest lines, then the rest summed as "Other"."""
    if any(e.key is not None for e in counts.by_party):
        name, entries = "party", counts.by_party
    else:
        name, entries = "kind", counts.by_kind
    return name, segments(entries, by_party=name == "party")


def segments(entries: list[Entry], *, by_party: bool) -> list[Segment]:
    out: list[Segment] = []
    palette = iter(PALETTE * 2)
    for entry in entries[:TOP]:
        if entry.key is None:
            color = UNKNOWN_COLOR
        elif by_party and entry.key in PARTY_COLORS:
            color = PARTY_COLORS[entry.key]
        else:
            color = next(palette)
        out.append(Segment(entry.label, entry.count, color))
    rest = sum(e.count for e in entries[TOP:])
    if rest:
        out.append(Segment("Other", rest, OTHER_COLOR))
    return out


def claim_sentence(counts: Counts) -> str:
    """'130 claimed · 6 recorded here' when the letter claims a different count, else ''."""
    if counts.claimed is None or counts.claimed == counts.recorded:
        return ""
    return f"{format_count(counts.claimed)} claimed · {format_count(counts.recorded)} recorded here"


SCRIPT = """(function () {
  var root = document.getElementById("u-widget");
  if (!root || !window.EventSource) return;
  var fmt = function (n) { return Number(n).toLocaleString("en-GB"); };
  var TOP = 5;
  var PARTY = JSON.parse(root.getAttribute("data-party-colors"));
  var PALETTE = JSON.parse(root.getAttribute("data-palette"));
  function draw(c) {
    var byParty = c.by_party.some(function (e) { return e.key !== null; });
    var entries = byParty ? c.by_party : c.by_kind;
    var bar = document.getElementById("u-bar"), legend = document.getElementById("u-legend");
    var total = entries.reduce(function (s, e) { return s + e.count; }, 0) || 1;
    var parts = [], i = 0, rest = 0;
    entries.forEach(function (e, n) {
      if (n >= TOP) { rest += e.count; return; }
      var color = e.key === null ? "#d0d0d0" : (byParty && PARTY[e.key]) || PALETTE[i++ % PALETTE.length];
      parts.push([e.label, e.count, color]);
    });
    if (rest) parts.push(["Other", rest, "#bab0ac"]);
    bar.textContent = ""; legend.textContent = "";
    parts.forEach(function (p) {
      var seg = document.createElement("div");
      seg.className = "seg"; seg.style.width = (100 * p[1] / total) + "%"; seg.style.background = p[2];
      seg.title = p[0] + ": " + fmt(p[1]);
      bar.appendChild(seg);
      var li = document.createElement("li"), sw = document.createElement("span");
      sw.className = "sw"; sw.style.background = p[2];
      li.appendChild(sw); li.appendChild(document.createTextNode(p[0] + " " + fmt(p[1])));
      legend.appendChild(li);
    });
    document.getElementById("u-recorded").textContent = fmt(c.recorded);
    var claim = document.getElementById("u-claim");
    claim.textContent = (c.claimed === null || c.claimed === c.recorded) ? ""
      : fmt(c.claimed) + " claimed \\u00b7 " + fmt(c.recorded) + " recorded here";
    var d = new Date(), day = d.getFullYear() + "-" + ("0" + (d.getMonth() + 1)).slice(-2) + "-" + ("0" + d.getDate()).slice(-2);
    document.getElementById("u-day").textContent = day;
    document.getElementById("u-day").setAttribute("datetime", day);
  }
  var url = "/v1/letters/" + encodeURIComponent(root.getAttribute("data-slug")) + "/counts/stream";
  var source = null;
  function connect() {
    source = new EventSource(url);
    source.addEventListener("counts", function (ev) { try { draw(JSON.parse(ev.data)); } catch (e) {} });
  }
  // Go live once the page has loaded, so the stream never holds up the host page's load.
  if (document.readyState === "complete") connect();
  else window.addEventListener("load", connect);
})();"""

SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    "style-src 'unsafe-inline'; "
    f"script-src '{SCRIPT_HASH}'; "
    "connect-src 'self'; "
    "img-src 'self' data:; "
    "base-uri 'none'; "
    "form-action 'none'; "
    "frame-ancestors *"
)


def render_widget(
    *,
    slug: str,
    title: str,
    counts: Counts,
    sources: list[SourceLink],
    counted_on: date,
    theme: Theme = "auto",
) -> str:
    """The widget page (`widget.html`, which escapes every registry text)."""
    breakdown, parts = bar_segments(counts)
    total = sum(p.count for p in parts) or 1
    shown = [  # only http(s) sources become links; an unlabelled one shows its host
        SourceLink(s.label or urlsplit(s.url).netloc, s.url) for s in sources if web_url(s.url)
    ]
    return render(
        "widget.html",
        slug=slug,
        page=f"/letters/{quote(slug, safe='')}",
        title=title,
        theme=theme,
        recorded=format_count(counts.recorded),
        noun="signature" if counts.recorded == 1 else "signatures",
        claim=claim_sentence(counts),
        bar_label=_bar_label(breakdown, parts),
        parts=[
            {
                "label": p.label,
                "count": format_count(p.count),
                "color": p.color,
                "width": f"{100 * p.count / total:.3f}",
            }
            for p in parts
        ],
        sources=shown[:MAX_SOURCES],
        more=max(len(shown) - MAX_SOURCES, 0),
        counted_on=counted_on.isoformat(),
        party_colors=_json(PARTY_COLORS),
        palette=_json(list(PALETTE)),
        script=Markup(SCRIPT),  # a constant of ours, allowed by its hash in the CSP
    )


def _bar_label(breakdown: str, parts: list[Segment]) -> str:
    if not parts:
        return f"No signatures by {breakdown} yet"
    return f"By {breakdown}: " + ", ".join(f"{p.label} {format_count(p.count)}" for p in parts)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def widget_path(slug: str) -> str:
    return f"/embed/letters/{quote(slug, safe='')}"
