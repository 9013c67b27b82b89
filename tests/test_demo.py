"""The demo data: the two real letters of September 2020, both Houses on 2020-09-09, and the
partial signatory lists (claimed and recorded differ on purpose)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, and_, event, func, or_, select
from sqlalchemy.orm import Session

from app import migrate
from app.config import Settings
from app.db.engine import create_engine_for
from app.demo.loader import CAMPAIGN_SLUG, MPS_LETTER, UN_LETTER, load_demo
from app.models import (
    Actor,
    Body,
    Campaign,
    ChangeRecord,
    Claim,
    Event,
    Identifier,
    Letter,
    Membership,
    Party,
    Recipient,
    Signature,
    Source,
)
from tests import builders
from tests.conftest import make_database_url

DAY = date(2020, 9, 9)


@dataclass
class Loaded:
    engine: Engine
    seconds: float
    statements: int


@pytest.fixture(scope="module")
def loaded(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """The demo, loaded once per backend into a database of its own (tests only read it)."""
    for url in make_database_url(backend, tmp_path_factory.mktemp("demo")):
        migrate.upgrade(url)
        engine = create_engine_for(Settings(database_url=url))
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        try:
            with Session(engine) as session:
                event.listen(engine, "before_cursor_execute", count)
                started = time.perf_counter()
                assert load_demo(session) is True
                session.commit()
                seconds = time.perf_counter() - started
                event.remove(engine, "before_cursor_execute", count)
            yield Loaded(engine, seconds, statements)
        finally:
            engine.dispose()


@pytest.fixture
def demo(loaded: Loaded) -> Iterator[Session]:
    """A session on the demo database; whatever a test writes is rolled back."""
    with loaded.engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


def _count(db: Session, *where: object, of: type = Signature) -> int:
    return db.scalar(select(func.count()).select_from(of).where(*where)) or 0  # type: ignore[arg-type]


def _letter(db: Session, slug: str) -> Letter:
    return db.scalars(select(Letter).where(Letter.slug == slug)).one()


def test_two_letters_with_claimed_and_recorded_counts(demo: Session) -> None:
    mps, un = _letter(demo, MPS_LETTER), _letter(demo, UN_LETTER)
    assert (mps.claimed_signatory_count, un.claimed_signatory_count) == (130, 321)
    assert (mps.published_on, un.published_on) == (date(2020, 9, 8), date(2020, 9, 9))
    assert (mps.status, un.status) == ("delivered", "published")
    assert mps.language == un.language == "en"
    assert "PARTIAL" in (mps.summary or "") and "PARTIAL" in (un.summary or "")
    recorded = dict(
        demo.execute(
            select(Letter.slug, func.count(Signature.id))
            .join(Signature, Signature.letter_id == Letter.id)
            .where(Signature.withdrawn_on.is_(None))
            .group_by(Letter.slug)
        ).all()
    )
    assert recorded == {MPS_LETTER: 6, UN_LETTER: 12}

    campaign = demo.scalars(select(Campaign).where(Campaign.slug == CAMPAIGN_SLUG)).one()
    assert campaign.name == "Xinjiang 2020"
    assert mps.campaign_id == un.campaign_id == campaign.id


def test_both_houses_on_the_day(demo: Session) -> None:
    assert _count(demo, Actor.kind == "person", Actor.country == "GB", of=Actor) == 1454
    assert _count(demo, of=Membership) == 1454
    assert (
        _count(demo, Identifier.scheme == "ukparliament", of=Identifier)
        == _count(demo, Identifier.scheme == "theyworkforyou", of=Identifier)
        == 1454
    )
    sitting = (
        select(Body.slug, func.count(Membership.id))
        .join(Membership, Membership.body_id == Body.id)
        .where(
            and_(Membership.start_date <= DAY, or_(Membership.end_date.is_(None), Membership.end_date >= DAY))
        )
        .group_by(Body.slug)
    )
    assert dict(demo.execute(sitting).all()) == {"house-of-commons": 650, "house-of-lords": 804}

    by_party = dict(
        demo.execute(
            select(Party.slug, func.count(Membership.id))
            .join(Membership, Membership.party_id == Party.id)
            .join(Body, Body.id == Membership.body_id)
            .where(Body.slug == "house-of-commons")
            .group_by(Party.slug)
        ).all()
    )
    assert by_party["conservative"] == 364 and by_party["labour"] == 202
    assert by_party["scottish-national-party"] == 48 and by_party["speaker"] == 1
    parties = set(demo.scalars(select(Party.slug)))
    assert {"crossbench", "bishops", "non-affiliated", "independent", "liberal-democrat"} <= parties


def test_signatures_name_their_members_and_sources(demo: Session) -> None:
    mps = _letter(demo, MPS_LETTER)
    rows = demo.execute(
        select(Actor.name, Identifier.value, Signature.capacity, Signature.source, Signature.signed_on)
        .join(Signature, Signature.actor_id == Actor.id)
        .join(Identifier, and_(Identifier.actor_id == Actor.id, Identifier.scheme == "ukparliament"))
        .where(Signature.letter_id == mps.id)
    ).all()
    by_id = {r.value: r for r in rows}
    assert set(by_id) == {"193", "4462", "188", "55", "152", "1406"}
    assert by_id["193"].name == "Siobhain McDonagh"
    assert by_id["193"].capacity == "MP for Mitcham and Morden"
    assert all(r.source and r.source.startswith("https://") for r in rows)
    assert {r.signed_on for r in rows} == {date(2020, 9, 8)}

    un = _letter(demo, UN_LETTER)
    organisations = {
        name: (org_type, status, country)
        for name, org_type, status, country in demo.execute(
            select(Actor.name, Actor.org_type, Signature.status, Actor.country)
            .join(Signature, Signature.actor_id == Actor.id)
            .where(Signature.letter_id == un.id)
        )
    }
    assert len(organisations) == 12
    assert organisations["Human Rights Watch"] == ("ngo", "confirmed", None)
    assert organisations["Humanists International"][1] == "unverified"
    assert sum(1 for _, status, _ in organisations.values() if status == "unverified") == 1


def test_recipients_claims_sources_and_events(demo: Session) -> None:
    mps, un = _letter(demo, MPS_LETTER), _letter(demo, UN_LETTER)
    recipients = {
        (letter_id, name): (kind, org_type, capacity)
        for letter_id, name, kind, org_type, capacity in demo.execute(
            select(Recipient.letter_id, Actor.name, Actor.kind, Actor.org_type, Recipient.capacity).join(
                Actor, Actor.id == Recipient.actor_id
            )
        )
    }
    assert recipients[(mps.id, "Liu Xiaoming")] == (
        "person",
        None,
        "Ambassador of the People's Republic of China to the United Kingdom",
    )
    assert recipients[(un.id, "António Guterres")][2] == "UN Secretary-General"
    assert recipients[(un.id, "Michelle Bachelet")][2] == "UN High Commissioner for Human Rights"
    assert recipients[(un.id, "UN Member States")][:2] == ("organisation", "intergovernmental")
    assert len(recipients) == 4

    claims = demo.execute(
        select(Claim.count, Claim.wording, Claim.url).where(Claim.letter_id == mps.id)
    ).all()
    assert sorted(count for count, _, _ in claims if count is not None) == [130, 133, 141]
    assert any(count is None and "more than 100" in (wording or "") for count, wording, _ in claims)
    assert all(url for _, _, url in claims)
    assert _count(demo, Claim.letter_id == un.id, Claim.count == 321, of=Claim) == 3
    assert _count(demo, Source.letter_id == mps.id, of=Source) >= 5

    events = {(e.date, e.kind) for e in demo.scalars(select(Event).where(Event.letter_id == mps.id))}
    assert (date(2020, 9, 8), "published") in events
    assert (date(2020, 10, 12), "debated") in events


def test_loading_twice_changes_nothing(demo: Session) -> None:
    tables = (
        Letter,
        Actor,
        Membership,
        Signature,
        Recipient,
        Claim,
        Source,
        Event,
        Party,
        Body,
        ChangeRecord,
    )
    before = {t.__tablename__: _count(demo, of=t) for t in tables}
    assert load_demo(demo) is False
    assert {t.__tablename__: _count(demo, of=t) for t in tables} == before
    changes = demo.scalars(select(ChangeRecord)).all()
    assert [(c.key_name, c.action) for c in changes] == [("demo", "load")]


def test_existing_members_are_kept(db: Session) -> None:
    """A member already in the registry (same ukparliament id) is reused, not duplicated."""
    kept = builders.actor(db, "Siobhain McDonagh", country="GB", identifiers={"ukparliament": "193"})
    assert load_demo(db) is True
    assert _count(db, Identifier.scheme == "ukparliament", Identifier.value == "193", of=Identifier) == 1
    mps = _letter(db, MPS_LETTER)
    assert _count(db, Signature.letter_id == mps.id, Signature.actor_id == kept.id) == 1


def test_the_load_is_bulk(loaded: Loaded) -> None:
    """1,454 members with identifiers and memberships in batched statements (the wall time
    depends on the machine; the statement count does not): a load statement per member would
    take more than 1,454. The count is the dump load's fixed set of statements (on PostgreSQL
    its bulk path's staging, index rebuilds and statistics among them), on both databases."""
    assert loaded.statements < 200, f"{loaded.statements} statements: members are not loaded in bulk"
    assert loaded.seconds < 60, f"the demo took {loaded.seconds:.1f}s to load"


def test_party_slugs(demo: Session) -> None:
    slugs = set(demo.scalars(select(Party.slug)))
    assert {"scottish-national-party", "sinn-fein", "social-democratic-labour-party"} <= slugs


def test_the_questions_a_journalist_asks_of_the_demo(db: Session, anon: Any) -> None:
    """How many of the 130 are MPs, by party; the 321 groups by country; anyone on both."""
    load_demo(db)
    db.commit()
    mps = anon.get(f"/v1/letters/{MPS_LETTER}/counts").json()
    assert (mps["claimed"], mps["recorded"]) == (130, 6)
    assert mps["by_body"][0]["key"] == "house-of-commons" and mps["by_body"][0]["count"] == 6
    assert mps["by_body"][0]["share_of_body"] == pytest.approx(6 / 650)
    assert sum(e["count"] for e in mps["by_party"]) == 6 and None not in {e["key"] for e in mps["by_party"]}
    un = anon.get(f"/v1/letters/{UN_LETTER}/counts").json()
    assert (un["claimed"], un["recorded"]) == (321, 12)
    assert sum(e["count"] for e in un["by_country"]) == 12
    both = anon.get(f"/v1/overlaps?letters={MPS_LETTER},{UN_LETTER}").json()
    assert both["pairs"][0]["common"] == 0 and both["union"] == 18
