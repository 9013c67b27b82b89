"""Load the demo data: the campaign "Xinjiang 2020", its two letters of September 2020, the UK
Parliament on 2020-09-09 (650 MPs, 804 members of the Lords, with their dated memberships) and
the signatures the stored sources name.

Both signatory lists are PARTIAL (6 of about 130 parliamentarians, 12 of 321 organisations):
the full lists could not be read from the sources (see `data/SOURCES.md`). Nothing here is
invented: every name comes from a file in `data/`, every signature carries the URL of the page
that names it, and the letters show their claimed counts next to what is recorded.

`load_demo(session)` writes through the ORM, flushes and never commits (the caller owns the
transaction); it returns False and changes nothing when the demo letters are already there.
One change record (key `demo`) covers the whole load.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app import rollups
from app.changes import record_change
from app.models import (
    Actor,
    Base,
    Body,
    Campaign,
    Claim,
    Event,
    Identifier,
    Letter,
    Party,
    Recipient,
    Signature,
    Source,
)
from app.text import fold, match_name, search_text

DATA = Path(__file__).resolve().parent / "data"
KEY_NAME = "demo"

CAMPAIGN_SLUG = "xinjiang-2020"
CAMPAIGN_NAME = "Xinjiang 2020"
CAMPAIGN_DESCRIPTION = (
    "Open letters of September 2020 on the treatment of the Uighur people in Xinjiang: the "
    "cross-party letter of UK parliamentarians to the Chinese ambassador, and the global call of "
    "civil-society groups to the UN for an international monitoring mechanism on China."
)

MPS_LETTER = "uk-parliamentarians-to-ambassador-2020"
UN_LETTER = "global-call-un-monitoring-china-2020"
# letters.json id -> our slug
LETTER_SLUGS = {
    "uk-parliamentarians-to-liu-xiaoming-2020-09": MPS_LETTER,
    "global-call-un-mechanism-china-2020-09": UN_LETTER,
}
DEMO_LETTER_SLUGS = tuple(LETTER_SLUGS.values())

# The count each letter's own release claims (the first count letters.json reports for it).
CLAIMED = {MPS_LETTER: 130, UN_LETTER: 321}
STATUS = {MPS_LETTER: "delivered", UN_LETTER: "published"}

BODIES = {"Commons": ("house-of-commons", "House of Commons"), "Lords": ("house-of-lords", "House of Lords")}

# Spellings corrected from letters.json (which writes names in ASCII).
NAME_SPELLING = {"Antonio Guterres": "António Guterres"}
# Addressees that are organisations rather than people.
ORGANISATION_ADDRESSEES = {"UN Member States": "intergovernmental"}
# Signatories whose only evidence is weak (letter-321-signatories.csv says so in `evidence`).
WEAK_EVIDENCE = {"Humanists International"}

SOURCE_LABELS = {
    "davidalton.net": "Lord Alton: repost of the organiser's release and the letter",
    "www.independent.co.uk": "The Independent",
    "www.straitstimes.com": "The Straits Times (Bloomberg)",
    "www.cityam.com": "City A.M.",
    "www.itv.com": "ITV News",
    "ktiv.com": "KTIV (AP)",
    "www.siobhainmcdonagh.org.uk": "Siobhain McDonagh MP: campaign page",
    "joncruddas.org.uk": "Jon Cruddas MP: own website",
    "www.hrw.org": "Human Rights Watch: the letter (Chinese version)",
    "cihrs.org": "Cairo Institute for Human Rights Studies: the letter",
    "forum-asia.org": "FORUM-ASIA: the letter",
    "amnesty.ca": "Amnesty International Canada: coalition release",
    "www.theepochtimes.com": "The Epoch Times",
    "cambodianess.com": "Cambodianess (AFP)",
    "accessnow.cshp.co": "Access Now (mirror of its post)",
    "www.movedemocracy.org": "Chinese Human Rights Defenders (movedemocracy.org)",
    "www.icj.org": "International Commission of Jurists",
    "defence.pk": "defence.pk (repost of a news article)",
    "www.rights-practice.org": "The Rights Practice",
    "savetibet.de": "International Campaign for Tibet Germany: release",
    "humanists.international": "Humanists International (German-language page)",
}
DEBATE_2020_10_12 = "Commons/2020-10-12"
DEBATE_2021_04_22 = "Commons/2021-04-22"


@dataclass
class _Loaded:
    actors: int = 0
    memberships: int = 0
    signatures: int = 0
    recipients: int = 0
    events: int = 0
    claims: int = 0
    sources: int = 0
    letters: list[str] = field(default_factory=list)


def demo_present(session: Session) -> bool:
    return session.scalar(select(Letter.id).where(Letter.slug.in_(DEMO_LETTER_SLUGS)).limit(1)) is not None


def load_demo(session: Session) -> bool:
    """Load the demo data. False (and nothing written) when a demo letter exists already."""
    if demo_present(session):
        return False
    letters_doc = json.loads((DATA / "letters.json").read_text(encoding="utf-8"))
    by_id = {item["id"]: item for item in letters_doc["letters"]}
    stats = _Loaded()

    campaign = _campaign(session)
    members = _parliament(session, stats)

    mps_meta = by_id["uk-parliamentarians-to-liu-xiaoming-2020-09"]
    un_meta = by_id["global-call-un-mechanism-china-2020-09"]
    mps = _letter(session, mps_meta, campaign, stats)
    un = _letter(session, un_meta, campaign, stats)
    session.flush()

    _mps_signatures(session, mps, members, stats)
    _organisation_signatures(session, un, stats)
    rollups.added(session, Signature.letter_id.in_([mps.id, un.id]))
    rollups.touch_all(session)  # (the parliament's seats: every letter's share of it)
    for letter, meta in ((mps, mps_meta), (un, un_meta)):
        _recipients(session, letter, meta, stats)
        _events(session, letter, meta, stats)

    record_change(
        session,
        KEY_NAME,
        "load",
        "demo",
        CAMPAIGN_SLUG,
        after={
            "campaign": CAMPAIGN_SLUG,
            "letters": stats.letters,
            "actors_created": stats.actors,
            "memberships": stats.memberships,
            "signatures": stats.signatures,
            "recipients": stats.recipients,
            "claims": stats.claims,
            "sources": stats.sources,
            "events": stats.events,
        },
    )
    session.flush()
    return True


def slugify(name: str) -> str:
    return fold(name).replace(" ", "-")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _read_csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _campaign(session: Session) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.slug == CAMPAIGN_SLUG))
    if campaign is None:
        campaign = Campaign(slug=CAMPAIGN_SLUG, name=CAMPAIGN_NAME, description=CAMPAIGN_DESCRIPTION)
        session.add(campaign)
        session.flush()
    return campaign


def _get_or_create_body(session: Session, slug: str, name: str) -> Body:
    row = session.scalar(select(Body).where(Body.slug == slug))
    if row is None:
        row = Body(slug=slug, name=name, country="GB")
        session.add(row)
    return row


def _parliament(session: Session, stats: _Loaded) -> dict[str, int]:
    """Both Houses on 2020-09-09, in bulk. Returns mnis_id -> actor id. Members already in the
    registry (same `ukparliament` id) are kept as they are."""
    rows = _read_csv("uk-parliament-2020-09.csv")
    bodies = {house: _get_or_create_body(session, slug, name) for house, (slug, name) in BODIES.items()}
    existing_parties = {p.slug: p for p in session.scalars(select(Party))}
    parties: dict[str, Party] = {}
    for party_name in sorted({r["party"] for r in rows if r["party"]}):
        slug = slugify(party_name)
        party = existing_parties.get(slug)
        if party is None:
            party = Party(slug=slug, name=party_name, country="GB")
            session.add(party)
        parties[party_name] = party
    session.flush()

    taken = {
        (scheme, value): actor_id
        for scheme, value, actor_id in session.execute(
            select(Identifier.scheme, Identifier.value, Identifier.actor_id).where(
                Identifier.scheme.in_(("ukparliament", "theyworkforyou"))
            )
        )
    }
    members: dict[str, int] = {}
    new: list[tuple[dict[str, str], Actor]] = []
    for r in rows:
        mnis = r["mnis_id"]
        if ("ukparliament", mnis) in taken:
            members[mnis] = taken[("ukparliament", mnis)]
            continue
        actor = Actor(
            kind="person",
            name=r["name"],
            sort_name=None,  # not derivable from the data without guessing ("Duncan Smith")
            country="GB",
            org_type=None,
            match_name=match_name(r["name"]),
            search_text=search_text(r["name"], r["constituency"] or None),
        )
        new.append((r, actor))
    # The actors in one flush (their ids are needed), then their identifiers and memberships as
    # two executemany INSERTs: no per-row round trips for the 1,454 members.
    session.add_all([actor for _, actor in new])
    session.flush()
    identifiers: list[dict[str, Any]] = []
    memberships: list[dict[str, Any]] = []
    for r, actor in new:
        members[r["mnis_id"]] = actor.id
        identifiers.append({"actor_id": actor.id, "scheme": "ukparliament", "value": r["mnis_id"]})
        twfy = r["twfy_person_id"]
        if twfy and ("theyworkforyou", twfy) not in taken:
            identifiers.append({"actor_id": actor.id, "scheme": "theyworkforyou", "value": twfy})
        start = _date(r["membership_start"])
        assert start is not None, f"member {r['mnis_id']} has no membership start"
        party = parties.get(r["party"]) if r["party"] else None
        memberships.append(
            {
                "actor_id": actor.id,
                "body_id": bodies[r["house"]].id,
                "party_id": party.id if party else None,
                "constituency": r["constituency"] or None,
                "start_date": start,
                "end_date": _date(r["membership_end"]),
            }
        )
    # Core INSERTs on the tables: every row has the same keys (None included), so each is one
    # executemany (the ORM's bulk path would split rows by which values are None).
    if identifiers:
        session.execute(insert(Base.metadata.tables["identifiers"]), identifiers)
    if memberships:
        session.execute(insert(Base.metadata.tables["memberships"]), memberships)
    stats.actors += len(new)
    stats.memberships += len(memberships)
    return members


def _claim(item: dict[str, Any]) -> Claim:
    count, detail, url = item["count"], item.get("detail") or "", item.get("source")
    if len(detail) > 1 and detail[0] == detail[-1] == "'" and detail.count("'") == 2:
        detail = detail[1:-1]  # a quotation alone: drop its quote marks
    if isinstance(count, int):
        return Claim(count=count, wording=detail or None, url=url)
    # A count in words ("more than 100"): keep the words, no number.
    wording = detail if str(count) in detail else f"{count} ({detail})" if detail else str(count)
    return Claim(count=None, wording=wording, url=url)


def _source(url: str) -> Source:
    parts = urlsplit(url)
    label = SOURCE_LABELS.get(parts.netloc, parts.netloc)
    if parts.netloc == "parallelparliament.co.uk":
        if DEBATE_2020_10_12 in url:
            label = "Hansard via Parallel Parliament: Westminster Hall debate, 12 October 2020"
        elif DEBATE_2021_04_22 in url:
            label = "Hansard via Parallel Parliament: Human Rights: Xinjiang debate, 22 April 2021"
    return Source(label=label, url=url)


def _summary(meta: dict[str, Any], slug: str) -> str:
    parts: list[str] = []
    if slug == MPS_LETTER:
        org = meta["organiser"]
        parts.append(
            f"Organised by {org['name']} {org['role']} ({org['party']}, {org['constituency']}) and "
            f"addressed to {meta['addressees'][0]['name']}: “{meta['key_quote']}”"
        )
    else:
        parts.append(meta["opening"].rstrip(".") + ". Asks: " + meta["asks_summary"])
        parts.append(meta["follow_up"])
    parts.append(meta["date_note"])
    counts = ", ".join(str(c["count"]) for c in meta["reported_signatory_counts"])
    parts.append(f"Reported signatory counts: {counts}; the claimed count is {CLAIMED[slug]}.")
    parts.append(
        f"The signatory list recorded here is PARTIAL ({meta['signatories_known']} named by the stored "
        "sources); the full list could not be read from them."
    )
    return "\n\n".join(parts)


def _letter(session: Session, meta: dict[str, Any], campaign: Campaign, stats: _Loaded) -> Letter:
    slug = LETTER_SLUGS[meta["id"]]
    reported = [c["count"] for c in meta["reported_signatory_counts"]]
    assert CLAIMED[slug] in reported, f"{slug}: claimed count not among the reported ones"
    summary = _summary(meta, slug)
    claims = [_claim(c) for c in meta["reported_signatory_counts"]]
    sources = [_source(url) for url in meta["sources"]]
    letter = Letter(
        slug=slug,
        title=meta["title"],
        summary=summary,
        body=None,  # the full text is not in the stored sources
        language="en",
        published_on=_date(meta["letter_date"]),
        status=STATUS[slug],
        claimed_signatory_count=CLAIMED[slug],
        campaign_id=campaign.id,
        search_text=search_text(meta["title"], meta.get("subject_line"), summary),
        claims=claims,
        sources=sources,
    )
    session.add(letter)
    stats.letters.append(slug)
    stats.claims += len(claims)
    stats.sources += len(sources)
    return letter


def _signature(letter: Letter, actor_id: int, capacity: str | None, source: str, status: str) -> Signature:
    assert letter.published_on is not None
    return Signature(
        letter_id=letter.id,
        actor_id=actor_id,
        signed_on=letter.published_on,
        capacity=capacity,
        source=source,
        status=status,
    )


def _mps_signatures(session: Session, letter: Letter, members: dict[str, int], stats: _Loaded) -> None:
    # Signed on the letter's date, 8 September 2020. Jon Cruddas's own page says he signed "on the
    # 9th September"; the letter was dated and sent on the 8th and reported on the 9th, so that
    # page most likely gives the day of the news, and the letter's date is kept for him too.
    rows = _read_csv("letter-130-signatories.csv")
    for r in rows:
        actor_id = members.get(r["mnis_id"])
        if actor_id is None:
            raise ValueError(f"signatory {r['name']} (mnis {r['mnis_id']}) is not in the parliament file")
        capacity = f"MP for {r['constituency']}" if r["role"] == "MP" and r["constituency"] else r["role"]
        session.add(_signature(letter, actor_id, capacity, r["evidence_url"], "confirmed"))
    stats.signatures += len(rows)


def _find_actor(session: Session, kind: str, name: str) -> Actor | None:
    return session.scalars(
        select(Actor).where(Actor.kind == kind, Actor.match_name == match_name(name)).order_by(Actor.id)
    ).first()


def _new_actor(
    kind: str, name: str, *, org_type: str | None = None, extra_search: str | None = None
) -> Actor:
    return Actor(
        kind=kind,
        name=name,
        org_type=org_type,
        match_name=match_name(name),
        search_text=search_text(name, extra_search),
    )


def _organisation_signatures(session: Session, letter: Letter, stats: _Loaded) -> None:
    rows = _read_csv("letter-321-signatories.csv")
    for r in rows:
        name = r["organisation"]
        actor = _find_actor(session, "organisation", name)
        if actor is None:
            # Country is left empty: the data does not say where each group is based.
            actor = _new_actor("organisation", name, org_type="ngo", extra_search=r["acronym"] or None)
            session.add(actor)
            session.flush()
            stats.actors += 1
        weak = name in WEAK_EVIDENCE or "weaker evidence" in r["evidence"].lower()
        session.add(
            _signature(letter, actor.id, None, r["evidence_url"], "unverified" if weak else "confirmed")
        )
    stats.signatures += len(rows)


def _recipients(session: Session, letter: Letter, meta: dict[str, Any], stats: _Loaded) -> None:
    for addressee in meta["addressees"]:
        name = NAME_SPELLING.get(addressee["name"], addressee["name"])
        org_type = ORGANISATION_ADDRESSEES.get(name)
        kind = "organisation" if org_type else "person"
        actor = _find_actor(session, kind, name)
        if actor is None:
            actor = _new_actor(kind, name, org_type=org_type)
            session.add(actor)
            session.flush()
            stats.actors += 1
        capacity = None if org_type else addressee["role"]
        session.add(Recipient(letter_id=letter.id, actor_id=actor.id, role="to", capacity=capacity))
        stats.recipients += 1


def _events(session: Session, letter: Letter, meta: dict[str, Any], stats: _Loaded) -> None:
    """The dated events letters.json records for the letter (and nothing it does not say)."""
    urls: list[str] = meta["sources"]

    def url_with(fragment: str) -> str | None:
        return next((u for u in urls if fragment in u), None)

    letter_day = _date(meta["letter_date"])
    reported = _date(meta["first_reported"])
    assert letter_day is not None and reported is not None
    events: list[tuple[date, str, str, str | None]] = []
    if letter.slug == MPS_LETTER:
        events += [
            (
                letter_day,
                "published",
                "Letter dated 8 September 2020 (a Tuesday) and released by the organiser's office; "
                "Lord Alton reposted it the same day.",
                url_with("davidalton.net"),
            ),
            (
                letter_day,
                "delivered",
                "Sent to the Ambassador: the organiser 'has today sent a cross-party letter' "
                "(her release as reposted on davidalton.net).",
                url_with("davidalton.net"),
            ),
            (
                reported,
                "other",
                "Reported by the Independent, ITV, AP and Bloomberg (Straits Times); counts reported "
                "range from 'more than 100' to 133.",
                url_with("independent.co.uk"),
            ),
            (
                date(2020, 10, 12),
                "debated",
                "Westminster Hall debate on China's policy on its Uyghur population: the organiser "
                "said 'Some 141 parliamentarians ... joined me'.",
                url_with(DEBATE_2020_10_12),
            ),
            (date(2021, 4, 22), "debated", meta["reply"], url_with(DEBATE_2021_04_22)),
        ]
    else:
        events += [
            (letter_day, "published", meta["date_note"], url_with("hrw.org")),
            (reported, "response", meta["government_response"], url_with("theepochtimes.com")),
        ]
    for day, kind, note, url in events:
        session.add(Event(letter_id=letter.id, date=day, kind=kind, note=note, url=url))
    stats.events += len(events)
