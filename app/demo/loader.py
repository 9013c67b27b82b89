"""Load the demo data: the campaign "Xinjiang 2020", its two letters of September 2020, the UK
Parliament on 2020-09-09 (650 MPs, 804 members of the Lords, with their dated memberships) and
the signatures the stored sources name.

The data ships as a dump directory (`data/`, the CSV files `undersigned export` writes) and is
loaded by the same code as `undersigned import DIR`: kept as it is into an empty registry,
actors matched (a member by their `ukparliament` id, say) into one with data. Both signatory
lists are PARTIAL (6 of about 130 parliamentarians, 12 of 321 organisations): the full lists
could not be read from the sources (see `data/SOURCES.md`, which also says where each file came
from and under which licence). Every signature carries the URL of the page that names it.

`load_demo(session)` writes in the caller's transaction and never commits; it returns False
and changes nothing when the demo letters are already there. One change record (key `demo`)
covers the whole load.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports.dump.files import directory_source
from app.imports.dump.load import load_registry
from app.models import Letter

DATA = Path(__file__).resolve().parent / "data"
KEY_NAME = "demo"

CAMPAIGN_SLUG = "xinjiang-2020"
MPS_LETTER = "uk-parliamentarians-to-ambassador-2020"
UN_LETTER = "global-call-un-monitoring-china-2020"
DEMO_LETTER_SLUGS = (MPS_LETTER, UN_LETTER)


def demo_present(session: Session) -> bool:
    return session.scalar(select(Letter.id).where(Letter.slug.in_(DEMO_LETTER_SLUGS)).limit(1)) is not None


def load_demo(session: Session) -> bool:
    """Load the demo data. False (and nothing written) when a demo letter exists already."""
    if demo_present(session):
        return False
    load_registry(session, KEY_NAME, directory_source(DATA))
    return True
