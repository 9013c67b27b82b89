"""The documentation stays true to the code: the settings table is the one `Settings` makes, and
every relative link of the README and of docs/ leads to a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import Settings, render_settings_doc, settings_table

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == [], f"settings without a description (docs/configuration.md needs one): {missing}"


def test_configuration_doc_is_generated_from_settings() -> None:
    path = ROOT / "docs" / "configuration.md"
    text = path.read_text(encoding="utf-8")
    assert render_settings_doc(text) == text, (
        "docs/configuration.md is out of date with app/config.py: run `python -m app.config docs/configuration.md`"
    )
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in settings_table()


def test_the_generated_table_follows_a_changed_field() -> None:
    """The check above would pass on a generator that ignored `Settings`: a field's default and
    description must reach the table."""
    field = Settings.model_fields["match_threshold"]
    row = next(line for line in settings_table().splitlines() if line.startswith("| `MATCH_THRESHOLD` |"))
    assert row == f"| `MATCH_THRESHOLD` | `92` | {field.description} |"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


def test_slugs_match_githubs() -> None:
    assert slug("Overlaps: maintained pair counts and answers kept by their letters' versions") == (
        "overlaps-maintained-pair-counts-and-answers-kept-by-their-letters-versions"
    )
    assert slug("Pair counts (`letter_pairs`, `app/pairs.py`)") == "pair-counts-letter_pairs-apppairspy"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(document: Path) -> None:
    broken = []
    for target in links(document):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: … : not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert broken == [], f"broken links in {document.relative_to(ROOT)}: {broken}"
