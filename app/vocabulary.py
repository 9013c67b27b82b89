"""The closed vocabularies of the registry (SPEC §1), each written once.

Each is a `Literal`, which the request schemas use as their type (so the OpenAPI document lists
its values); the import's row checks, the import's JSON schema and the models' CHECK
constraints read the same values through `values`, `json_enum` and `one_of`. The words the
analytics show for a value (`ACTOR_KIND_LABELS`, `ORG_TYPE_LABELS`) are written here too,
checked against their vocabulary when this module loads.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal, get_args

from app.text import fold

ActorKind = Literal["person", "organisation"]
OrgType = Literal["ngo", "union", "faith", "academic", "business", "government", "intergovernmental", "other"]
LetterStatus = Literal["draft", "open", "published", "delivered", "closed", "withdrawn"]
SignatureStatus = Literal["confirmed", "unverified"]
RecipientRole = Literal["to", "cc"]
EventKind = Literal["published", "delivered", "response", "debated", "other"]


def values(vocabulary: Any) -> tuple[str, ...]:
    """The values of a vocabulary, in the order written."""
    return tuple(get_args(vocabulary))


ACTOR_KINDS = values(ActorKind)
ORG_TYPES = values(OrgType)
LETTER_STATUSES = values(LetterStatus)
SIGNATURE_STATUSES = values(SignatureStatus)
RECIPIENT_ROLES = values(RecipientRole)
EVENT_KINDS = values(EventKind)


def labelled(vocabulary: Any, labels: dict[str, str]) -> dict[str, str]:
    """`labels` (value -> the word shown for it), refused unless it names every value of
    `vocabulary`, in its order, and nothing else: a value added to a vocabulary needs its label."""
    if tuple(labels) != values(vocabulary):
        raise ValueError(f"labels {tuple(labels)} do not match the vocabulary {values(vocabulary)}")
    return labels


ACTOR_KIND_LABELS = labelled(ActorKind, {"person": "Person", "organisation": "Organisation"})
ORG_TYPE_LABELS = labelled(
    OrgType,
    {
        "ngo": "NGO",
        "union": "Union",
        "faith": "Faith",
        "academic": "Academic",
        "business": "Business",
        "government": "Government",
        "intergovernmental": "Intergovernmental",
        "other": "Other",
    },
)


def spelled(choices: tuple[str, ...]) -> str:
    """'person or organisation'; 'one of ngo, union, …, other'."""
    return " or ".join(choices) if len(choices) < 3 else f"one of {', '.join(choices)}"


def json_enum(choices: tuple[str, ...]) -> dict[str, Any]:
    """A JSON schema for a string of the vocabulary."""
    return {"type": "string", "enum": list(choices)}


def one_of(column: str, choices: tuple[str, ...]) -> str:
    """The SQL of a CHECK constraint holding `column` to the vocabulary (NULL passes, as in SQL
    any CHECK does; NOT NULL is the column's own rule)."""
    return f"{column} IN ({', '.join(repr(c) for c in choices)})"


# Words people write for a vocabulary's values (folded: lower case, no accents).
SYNONYMS: dict[str, str] = {
    "org": "organisation", "organization": "organisation", "organisme": "organisation",
    "organizacion": "organisation", "group": "organisation", "individual": "person",
    "people": "person", "personne": "person", "persona": "person", "individu": "person",
    "charity": "ngo", "nonprofit": "ngo", "non profit": "ngo", "ong": "ngo", "trade union": "union",
    "syndicat": "union", "gewerkschaft": "union", "sindicato": "union", "university": "academic",
    "company": "business", "verified": "confirmed",
}  # fmt: skip


def suggestion(value: str, choices: tuple[str, ...]) -> str | None:
    """The value of `choices` that `value` most likely means ('org', 'Organization', 'persn'),
    for an error message's "did you mean"; None when none is close."""
    key = fold(value)
    if (known := SYNONYMS.get(key)) in choices:
        return known
    starting = [c for c in choices if len(key) >= 2 and c.startswith(key)]
    if len(starting) == 1:
        return starting[0]
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.75)
    return close[0] if close else None
