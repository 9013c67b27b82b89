"""When two names may be one actor, and when they must not be: the rules of identity that the
write paths (a new actor, an inline actor, an import row) and the review queue share.

- `variant_key` — the name as people vary it, folded further than `match_name`: short forms
  expanded ("Intl" -> international, "Assn" -> association, "Ed" -> edward for persons),
  spellings made one ("Organization", "Center", "Uighur"), the small words dropped ("and", "&",
  "of", "for") and the words sorted. Two actors with equal variant keys are *possibly* one
  ("Sir Ed Davey" and "Sir Edward Davey", "Amnesty Intl" and "Amnesty International"): never
  merged on that alone, shown as a possible match and in the review queue.
- `distinguishing` — the words that tell two otherwise alike names apart: a country or
  nationality ("UK", "USA", "Deutschland", "French"), a number ("Local 32", "Charter 08"), a
  branch or chapter word ("Section", "Chapter", "Branch", "Youth"); for persons, the surname
  (the last word: "David Davis" is not "David Davies"). Names that differ by one of them never
  fuzzy-match: "Amnesty International UK" is not "Amnesty International".
"""

from __future__ import annotations

from functools import lru_cache

from app.countries import country_names
from app.text import fold, match_folded

# Short forms and spellings -> one form (compared after folding; keys are single words).
_SHORT_FORMS = {
    "intl": "international",
    "int": "international",
    "internat": "international",
    "assn": "association",
    "assoc": "association",
    "asso": "association",
    "org": "organisation",
    "orgs": "organisations",
    "organization": "organisation",
    "organizations": "organisations",
    "ctr": "centre",
    "cntr": "centre",
    "center": "centre",
    "univ": "university",
    "uni": "university",
    "dept": "department",
    "inst": "institute",
    "natl": "national",
    "nat": "national",
    "govt": "government",
    "fdn": "foundation",
    "fndn": "foundation",
    "found": "foundation",
    "soc": "society",
    "cttee": "committee",
    "cmte": "committee",
    "comm": "committee",
    "fed": "federation",
    "coop": "cooperative",
    "co-op": "cooperative",
    "ltd": "limited",
    "inc": "incorporated",
    "st": "saint",
    "mt": "mount",
    "hr": "human rights",
    "defense": "defence",
    "labor": "labour",
    "program": "programme",
    "uighur": "uyghur",
    "uigur": "uyghur",
    "uighurs": "uyghurs",
}
# Given names people shorten (persons only).
_NICKNAMES = {
    "ed": "edward",
    "eddie": "edward",
    "ted": "edward",
    "ned": "edward",
    "bill": "william",
    "billy": "william",
    "will": "william",
    "liam": "william",
    "bob": "robert",
    "bobby": "robert",
    "rob": "robert",
    "robbie": "robert",
    "jim": "james",
    "jimmy": "james",
    "jamie": "james",
    "mike": "michael",
    "mick": "michael",
    "tony": "anthony",
    "dave": "david",
    "davy": "david",
    "nick": "nicholas",
    "chris": "christopher",
    "andy": "andrew",
    "drew": "andrew",
    "tom": "thomas",
    "tommy": "thomas",
    "dan": "daniel",
    "danny": "daniel",
    "steve": "stephen",
    "ben": "benjamin",
    "sam": "samuel",
    "alex": "alexander",
    "sandy": "alexander",
    "liz": "elizabeth",
    "beth": "elizabeth",
    "betty": "elizabeth",
    "kate": "katherine",
    "cathy": "catherine",
    "jenny": "jennifer",
    "jen": "jennifer",
    "pat": "patrick",
    "rich": "richard",
    "rick": "richard",
    "dick": "richard",
    "matt": "matthew",
    "pete": "peter",
    "phil": "philip",
    "greg": "gregory",
    "jon": "jonathan",
    "tim": "timothy",
    "harry": "henry",
    "hal": "henry",
    "fred": "frederick",
    "charlie": "charles",
    "chuck": "charles",
    "ken": "kenneth",
    "ron": "ronald",
    "don": "donald",
    "jo": "joanna",
    "jess": "jessica",
    "maggie": "margaret",
    "meg": "margaret",
    "peggy": "margaret",
    "sue": "susan",
    "val": "valerie",
    "vicky": "victoria",
    "nicky": "nicola",
    "di": "diana",
    "debbie": "deborah",
    "geoff": "geoffrey",
    "jeff": "jeffrey",
    "stu": "stuart",
    "ian": "iain",
}
# Small words that carry no identity ("&" folds to nothing already).
_SMALL = frozenset(["and", "of", "for", "the", "on", "in", "at", "to", "et", "und", "y", "e"])

# Words that distinguish two organisations whose names are otherwise alike.
_BRANCH_WORDS = frozenset(
    """section sections chapter chapters branch branches youth young student students women womens
    local regional region office division affiliate network junior seniors""".split()  # noqa: SIM905
)
# Nationalities and the names of countries people write in their own language or in short.
_NATIONAL_WORDS = frozenset(
    """uk usa us gb eu british english scottish welsh irish american canadian australian german
    french italian spanish dutch belgian swiss austrian swedish norwegian danish finnish polish
    czech hungarian greek turkish russian ukrainian chinese japanese korean indian pakistani
    bangladeshi nepali tibetan uyghur uyghurs uighur taiwanese hongkong hong kong mexican brazilian
    argentine chilean colombian peruvian african nigerian kenyan ghanaian egyptian moroccan israeli
    palestinian iranian iraqi syrian lebanese saudi european asian latin deutschland deutsche
    deutscher france francaise francais espana espanol italia italiana nederland nederlandse
    belgique belgie schweiz suisse svizzera osterreich sverige norge danmark suomi polska
    cesko magyarorszag hellas turkiye rossiya ukraina nippon zhongguo bharat mexico brasil
    scotland wales england ireland britain america""".split()  # noqa: SIM905
)


@lru_cache(maxsize=1)
def _country_words() -> frozenset[str]:
    """Every word of an English country name ("united", "kingdom", …) that is not also a word of
    ordinary organisation names, plus the nationality words above."""
    common = {"and", "of", "the", "islands", "island", "republic", "democratic", "saint", "new", "south"}
    common |= {"north", "east", "west", "central", "united", "states", "people", "s", "federal", "state"}
    words = {w for name in country_names() for w in fold(name).split(" ") if w and w not in common}
    return frozenset(words | _NATIONAL_WORDS)


def distinguishing(words: set[str]) -> set[str]:
    """The words among `words` that tell an actor apart from another with the same other words."""
    countries = _country_words()
    return {w for w in words if w.isdigit() or w in _BRANCH_WORDS or w in countries}


def _words(name: str, kind: str) -> list[str]:
    """The words of a name with its short forms expanded (nicknames for persons)."""
    return _key_words(match_folded(fold(name)), kind)


def _key_words(key: str, kind: str) -> list[str]:
    """`_words` of a name's `match_name` (`app.text.match_folded` of it folded)."""
    out: list[str] = []
    folded = f" {key} ".replace(" int l ", " intl ")  # "Int'l"
    for word in folded.split(" "):
        if not word:
            continue
        if kind == "person" and word in _NICKNAMES:
            word = _NICKNAMES[word]
        out.extend(_SHORT_FORMS.get(word, word).split(" "))
    return out


def variant_key(name: str, kind: str) -> str:
    """The key under which spellings and short forms of a name meet (see the module's docstring)."""
    return variant_key_of_match(match_folded(fold(name)), kind)


def variant_key_of_match(key: str, kind: str) -> str:
    """`variant_key` of a name whose `match_name` is `key`: for a caller that has that already
    (an import has it for every row), so the name is not folded again."""
    words = _key_words(key, kind)
    kept = [w for w in words if w not in _SMALL] or words
    return " ".join(sorted(kept))


def differ_by_distinguishing(a: str, b: str, kind: str) -> set[str]:
    """The distinguishing words one name has and the other lacks (after short forms are
    expanded): empty when the two may be one actor."""
    left, right = _words(a, kind), _words(b, kind)
    found = distinguishing(set(left) ^ set(right))
    if kind == "person" and left and right and left[-1] != right[-1]:
        found |= {left[-1], right[-1]}
    return found
