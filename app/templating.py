"""The one Jinja environment of everything rendered as markup: the pages (`app/pages/templates`),
the widget and the badge (`app/embeds/templates`) and the charts (`app/charts/templates`).

Autoescape is on for `.html` and `.svg`, so every text from the registry is escaped where it is
written out, whatever the template; Python computes the numbers and the geometry and passes
plain values. Template names are unique across the three folders (one search path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

APP = Path(__file__).resolve().parent

templates = Environment(
    loader=FileSystemLoader(
        [APP / "pages" / "templates", APP / "embeds" / "templates", APP / "charts" / "templates"]
    ),
    autoescape=select_autoescape(("html", "svg")),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, **context: Any) -> str:
    """Template `name` rendered with `context`."""
    return templates.get_template(name).render(**context)
