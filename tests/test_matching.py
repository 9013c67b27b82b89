"""Name normalisation and actor resolution (identifier, exact name, fuzzy with blocking)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz
from sqlalchemy.orm import Session

from app.imports.matching import (
    BLOCK_CAP,
    IN_LIST,
    QGRAM,
    SCAN_AFTER,
    Candidate,
    Resolver,
    _bounds,
    conflicts,
    decide_fuzzy,
    scorer_named,
)
from app.models import Actor
from app.text import fold, match_name
from tests import builders as b


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("The Rt Hon Sir Ed Davey MP", "ed davey"),
        ("Ed Davey", "ed davey"),
        ("Lord Alton of Liverpool", "alton of liverpool"),
        ("Baroness Kennedy of The Shaws", "kennedy of the shaws"),
        ("Dr John Smith PhD", "john smith"),
        (
            "Fédération internationale pour les droits humains",
            "federation internationale pour les droits humains",
        ),
        ("The Uyghur Human Right Project", "uyghur human right project"),  # 'right' inside stays
        ("AMNESTY INTERNATIONAL (UK)", "amnesty international uk"),
        ("世界维吾尔代表大会", "世界维吾尔代表大会"),
        ("ئۇيغۇر", "يۇيغۇر"),  # NFKD splits the hamza off like an accent: folded, consistently
        ("The Lord Bishop", "the lord bishop"),  # nothing but titles: kept folded
        ("Ms Nusrat Ghani MP", "nusrat ghani"),
    ],
)
def test_match_name(given: str, key: str) -> None:
    assert match_name(given) == key


def test_decide_fuzzy() -> None:
    assert decide_fuzzy([]) == (None, [])
    one = Candidate(1, "a", 0.97)
    assert decide_fuzzy([one, Candidate(2, "b", 0.93)]) == (one, [])
    best, close = decide_fuzzy([one, Candidate(2, "b", 0.95), Candidate(3, "c", 0.92)])
    assert best is None and [c.id for c in close] == [1, 2]


def test_conflicting_identifier() -> None:
    assert conflicts([("ukparliament", "1")], {"ukparliament": "2"})
    assert not conflicts([("ukparliament", "1")], {"ukparliament": "1", "wikidata": "Q1"})
    assert not conflicts([("wikidata", "Q1")], {"ukparliament": "2"})


def test_scorer_setting() -> None:
    assert scorer_named("token_sort_ratio")("a b", "b a") == 100
    with pytest.raises(ValueError, match="unknown rapidfuzz scorer"):
        scorer_named("nope")


def test_resolver_bulk_lookups(db: Session) -> None:
    hrw = b.actor(db, "Human Rights Watch", kind="organisation", identifiers={"wikidata": "Q184920"})
    person = b.actor(db, "Human Rights Watch", kind="person")
    resolver = Resolver(db)
    assert resolver.by_identifiers([("wikidata", "Q184920"), ("wikidata", "Q0")]) == {
        ("wikidata", "Q184920"): hrw.id
    }
    assert resolver.by_names("organisation", ["human rights watch"]) == {"human rights watch": [hrw.id]}
    assert resolver.by_names("person", ["human rights watch", "nobody"]) == {
        "human rights watch": [person.id]
    }
    assert resolver.identifiers_of([hrw.id, person.id]) == {hrw.id: {"wikidata": "Q184920"}}


def test_resolver_lookups_of_more_values_than_one_statement_takes(db: Session) -> None:
    """Identifiers, identifiers held and names of more values than an IN list holds (SQLite):
    what lies past the first list is found too."""
    first = b.actor(db, "Human Rights Watch", kind="organisation", identifiers={"wikidata": "Q0"})
    last = b.actor(db, "Amnesty International", kind="organisation", identifiers={"wikidata": "Qzz"})
    unknown = [("wikidata", f"Q{i:06d}") for i in range(1, 2 * IN_LIST + 2)]
    resolver = Resolver(db)
    found = resolver.by_identifiers([*unknown, ("wikidata", "Qzz"), ("wikidata", "Q0")])
    assert found == {("wikidata", "Q0"): first.id, ("wikidata", "Qzz"): last.id}
    ids = [*range(-2 * IN_LIST, 0), first.id, last.id]  # (the known ones sort last)
    assert resolver.identifiers_of(ids) == {first.id: {"wikidata": "Q0"}, last.id: {"wikidata": "Qzz"}}
    resolver.fetch_names(ids)
    assert resolver.names == {first.id: "Human Rights Watch", last.id: "Amnesty International"}


def test_resolver_lookups_of_values_that_hold_separators(db: Session) -> None:
    """On PostgreSQL the values of a lookup go as one string the server splits, when they can:
    values holding a comma, quotes, braces, a backslash or the separator itself are still
    looked up as themselves, and so are ids of any sign."""
    odd = ["Q,1", 'Q"2', "Q\x1f3", "Q{4}", "Q\\5", "Q 6", "Q'7"]
    actors = [
        b.actor(db, f"Odd Value {i}", kind="organisation", identifiers={"wikidata": v})
        for i, v in enumerate(odd)
    ]
    resolver = Resolver(db)
    expected = {("wikidata", v): a.id for v, a in zip(odd, actors, strict=True)}
    assert resolver.by_identifiers([*expected, ("wikidata", "Q")]) == expected
    plain = {pair: i for pair, i in expected.items() if "\x1f" not in pair[1]}
    assert resolver.by_identifiers([*plain, ("wikidata", "Q3")]) == plain
    assert resolver.by_aliases("organisation", ["odd value 1", "nobody"]) == {}
    ids = [-5, 0, *(a.id for a in actors)]
    assert resolver.identifiers_of(ids) == {a.id: {"wikidata": v} for v, a in zip(odd, actors, strict=True)}
    assert resolver.by_names_bulk("organisation", ["odd value 1", "odd value 6", "x,y"]) == {
        "odd value 1": [actors[1].id],
        "odd value 6": [actors[6].id],
    }


def test_fuzzy_scores_and_threshold(db: Session) -> None:
    amnesty = b.actor(db, "Amnesty International", kind="organisation")
    b.actor(db, "Amnesty International", kind="person")  # another kind: never a candidate
    resolver = Resolver(db)
    found = resolver.fuzzy("organisation", "amnesty internationl")
    assert [c.id for c in found] == [amnesty.id] and 0.92 <= found[0].score < 1
    assert resolver.fuzzy("organisation", "amnesty") == []  # below the threshold
    strict = Resolver(db, threshold=99)
    assert strict.fuzzy("organisation", "amnesty internationl") == []


def test_fuzzy_blocking_skips_common_tokens(db: Session) -> None:
    """A token shared by BLOCK_CAP actors or more does not make candidates; a rarer one does."""
    db.add_all(
        Actor(kind="organisation", name=f"common {i:05d}", match_name=f"common {i:05d}", search_text="")
        for i in range(BLOCK_CAP)
    )
    db.flush()
    target = b.actor(db, "common raretoken", kind="organisation")
    resolver = Resolver(db)
    # Shares only the common token (the other has a typo): not blocked together, so not found —
    # the documented limit of blocking.
    assert resolver.fuzzy("organisation", "common raretokem") == []
    found = resolver.fuzzy("organisation", "commom raretoken")  # shares the rare token
    assert [c.id for c in found][:1] == [target.id]
    batch = Resolver(db).fuzzy_many("organisation", ["common raretokem", "commom raretoken"])
    assert batch == {"commom raretoken": found}


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(len(word))
    op = rng.randrange(3)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    if op == 0:
        return word[:i] + letter + word[i + 1 :]
    if op == 1:
        return word[:i] + word[i + 1 :] or word
    return word[:i] + letter + word[i:]


@pytest.mark.parametrize(("scorer", "threshold"), [("token_sort_ratio", 92), ("ratio", 85), ("WRatio", 90)])
def test_fuzzy_many_gives_what_fuzzy_gives(db: Session, scorer: str, threshold: float) -> None:
    """The batch search (one read of the kind, blocks scored together, a q-gram index for a
    large block) answers exactly what the one-name search answers: same candidates, scores and
    order — over names that block on rare tokens, on common ones (capped), on none."""
    rng = random.Random(7)
    vocabulary = ["human", "rights", "watch", "amnesty", "union", "trust", "league", "forum"]
    common = [f"common {i:04d}" for i in range(BLOCK_CAP)]  # 'common': a token too common to block on
    names = [" ".join(rng.sample(vocabulary, rng.randint(2, 4))) for _ in range(300)]
    names += [f"{rng.choice(vocabulary)} {_typo(rng, 'international')} {i}" for i in range(50)]
    db.add_all(
        Actor(kind="organisation", name=n, match_name=match_name(n), search_text="") for n in common + names
    )
    db.add_all(Actor(kind="person", name=n, match_name=match_name(n), search_text="") for n in names[:40])
    db.flush()
    keys = {match_name(n) for n in names}  # exact names: scores of 100 and near ones
    keys |= {" ".join(_typo(rng, w) for w in match_name(n).split()) for n in names}  # every word misspelt
    keys |= {match_name(n).replace(w, _typo(rng, w), 1) for n in names for w in n.split()[:1]}
    keys |= {
        f"common {_typo(rng, f'{i:04d}')}" for i in range(0, BLOCK_CAP, 7)
    }  # blocked on 'common', capped
    keys |= {"nothing shared", "", "common"}
    one = Resolver(db, scorer=scorer, threshold=threshold)
    expected = {k: found for k in sorted(keys) if k and (found := one.fuzzy("organisation", k))}
    assert len(expected) > 200
    many = Resolver(db, scorer=scorer, threshold=threshold)
    assert many.fuzzy_many("organisation", keys) == expected
    person = {k: found for k in sorted(keys) if k and (found := one.fuzzy("person", k))}
    assert many.fuzzy_many("person", keys) == person


def test_by_names_bulk_reads_the_kind_once_for_many_names(db: Session) -> None:
    hrw = b.actor(db, "Human Rights Watch", kind="organisation")
    twin = b.actor(db, "Human Rights Watch", kind="organisation")
    b.actor(db, "Human Rights Watch", kind="person")
    wanted = {"human rights watch"} | {f"nobody {i}" for i in range(SCAN_AFTER)}
    resolver = Resolver(db)
    assert resolver.by_names_bulk("organisation", wanted) == {"human rights watch": [hrw.id, twin.id]}
    assert resolver.by_names_bulk("organisation", ["human rights watch"]) == resolver.by_names(
        "organisation", ["human rights watch"]
    )


names = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Z", "Cc"]), max_size=30)
spaced = st.lists(
    st.sampled_from(["ab", "ba", "a", "é", "ǅ", "x-y", "\u3000", "\x1f", "\xa0", " ", "\t", "The", "MP"])
)


@given(st.one_of(names, spaced.map("".join), st.text(max_size=30)))
@settings(max_examples=400, deadline=None)
def test_fold_gives_words_and_single_spaces(text: str) -> None:
    """Folded text is its letters and digits, in words split by single spaces (what search and
    matching compare); folding again changes nothing; ASCII keeps every alphanumeric run."""
    folded = fold(text)
    assert folded == folded.strip() and "  " not in folded
    assert all(ch == " " or ch.isalnum() for ch in folded)
    assert fold(folded) == folded
    if text.isascii():
        runs = "".join(ch if ch.isalnum() else " " for ch in text.casefold()).split()
        assert folded.split() == runs


@given(st.one_of(names, spaced.map("".join)), st.one_of(names, spaced.map("".join)))
@settings(max_examples=400, deadline=None)
def test_token_sort_ratio_is_ratio_of_the_sorted_token_strings(a: str, b_: str) -> None:
    """What fuzzy_many relies on to sort each name's tokens once rather than once per pair, for
    the names it compares: normalised ones (`match_name`: words and single spaces; rapidfuzz
    and Python do not split on quite the same spaces, so this holds for those only)."""

    def form(s: str) -> str:
        return " ".join(sorted(s.split()))

    a, b_ = match_name(a), match_name(b_)
    assert fuzz.token_sort_ratio(a, b_) == fuzz.ratio(form(a), form(b_))


@given(st.text("abc d", max_size=24), st.text("abc d", max_size=24), st.sampled_from([50, 80, 92, 100]))
@settings(max_examples=600, deadline=None)
def test_length_and_qgram_bounds_never_leave_out_a_match(s: str, t: str, threshold: int) -> None:
    """A pair at or above the threshold has a length within the bounds and shares at least
    `need` q-grams (counted with repeats): the filters of the q-gram search lose no match."""
    if fuzz.ratio(s, t) < threshold:
        return
    low, high, need = _bounds(len(s), threshold)
    assert low <= len(t) <= high

    def grams(x: str) -> Counter[str]:
        return Counter(x[i : i + QGRAM] for i in range(len(x) - QGRAM + 1))

    assert sum((grams(s) & grams(t)).values()) >= need
