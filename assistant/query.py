"""Query understanding without a model: the kind of question, its topic and its filters.

"Which papers address federated learning published since 2025?" becomes kind ``list``,
topic ``federated learning`` and ``year_min=2025``. The topic, not the whole question,
is what retrieval and the relevance judgement see: the question frame ("which papers
address") would otherwise dilute both.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Literal

from assistant.keyword_index import SearchFilters

Kind = Literal["list", "summary", "fact"]

_NOUN = r"(papers?|works?|articles?|publications?|studies)"
_VERB = (
    r"(address|addressing|discuss|discussing|cover|covering|study|studying|use|using|"
    r"propose|proposing|deal with|dealing with|focus on|focusing on|relate to|related to|"
    r"talk about|about|on|concerning|regarding|in|mention|mentioning|published|written)"
)
_THINGS = (
    r"(benchmarks|datasets|methods|models|approaches|frameworks|techniques|algorithms|"
    r"architectures|systems|tools|agents)"
)
_LIST = re.compile(
    rf"^\s*which (of|ones)\b|^\s*(which|what)\s+([\w-]+\s+){{0,3}}?{_THINGS}\b"
    rf"|^\s*(which|what|list|show|find|give me|are there|any)\b.*\b{_NOUN}\b"
    rf"|^\s*(list|enumerate)\b|^\s*{_NOUN}\s+(that|which|{_VERB})\b",
    re.IGNORECASE,
)
_SUMMARY = re.compile(
    r"^\s*(summari[sz]e|summary|overview|give (me )?an overview|describe|explain|"
    r"what (is|has been) the research|tell me (more )?about)\b",
    re.IGNORECASE,
)
_FRAME = re.compile(
    r"^\s*(please\s+)?(can you\s+)?("
    r"((which|what( are| were)?|list|show( me)?|find|give me|are there( any)?|any|enumerate)"
    r"( of)?( the| all)?( all| the)?( \w+'s)?( research)?\s*)?"
    rf"{_NOUN}( in the collection| in this collection)?( (that|which))?"
    rf"( (are|were|is|was|do|does|did|have|has))?( {_VERB})?"
    r"|(which|what)( ones)?( of)? (those|these|them)( papers)?( (that|which))?"
    rf"( (are|were|is|was|do|does|did|have|has))?( {_VERB})?"
    r"|what (is|has been) the (research|work) (on|about|in)"
    r"|summari[sz]e|give (me )?an overview of|overview of|describe|explain|tell me (more )?about"
    r"|(which|what)(?=\s+([\w-]+\s+){0,3}?" + _THINGS + r"\b)"
    r")\b[\s:,-]*",
    re.IGNORECASE,
)
_LEADING_FILLER = re.compile(
    r"^(the (research|work|papers?) (on|about|in)|research on|work on|(the )?topic of|the|"
    r"about|on|of|regarding)\s+",
    re.IGNORECASE,
)
_TRAILING_FILLER = re.compile(
    r"\s*(\bin (this|the) collection|\bin the papers)?\s*[?.!]*\s*$", re.IGNORECASE
)
_YEAR = r"((?:19|20)\d{2})"
_YEAR_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b(between|from) {_YEAR} (and|to|-) {_YEAR}\b", re.I), "range"),
    (re.compile(rf"\b(since|after|starting in|as of) {_YEAR}\b", re.I), "min"),
    (re.compile(rf"\b(from) {_YEAR} (on|onwards?)\b", re.I), "min"),
    (re.compile(rf"\b(before|until|up to|prior to) {_YEAR}\b", re.I), "max"),
    (re.compile(rf"\b(in|during|from|of|published in) {_YEAR}\b", re.I), "exact"),
    (re.compile(rf"\b{_YEAR}\b"), "bare"),
]
LATEST_PLAUSIBLE_YEAR = datetime.date.today().year + 1


_EXIST = re.compile(
    r"\s+(have been|has been|were|are|was|is)\s+(proposed|introduced|presented|developed|"
    r"released|published|studied)\s*[?.!]*\s*$|\s+(exist|are there)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_PUBLISHED = re.compile(
    r"\s*\b((that|which)\s+)?((were|was|are|is|have been|has been)"
    r"(\s+(published|written|appeared|released))?|published|written|appeared|released)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedQuery:
    question: str
    kind: Kind
    topic: str
    filters: SearchFilters = field(default_factory=SearchFilters)


def _year_filter(text: str) -> tuple[SearchFilters, str]:
    """Year bounds named in the question, and the question without them."""
    for pattern, how in _YEAR_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        years = [int(g) for g in match.groups() if g and g.isdigit()]
        if how == "bare" and years[0] > LATEST_PLAUSIBLE_YEAR:  # "2048 tokens"
            continue
        # "after 2024" excludes 2024, "since 2024" includes it; "before" likewise.
        word = match.group(1).lower() if match.lastindex and not match.group(1).isdigit() else ""
        if how == "range":
            bounds = SearchFilters(year_min=min(years), year_max=max(years))
        elif how == "min":
            bounds = SearchFilters(year_min=years[0] + (word == "after"))
        elif how == "max":
            bounds = SearchFilters(year_max=years[0] - (word in ("before", "prior to")))
        else:
            bounds = SearchFilters(year_min=years[0], year_max=years[0])
        rest = " ".join((text[: match.start()] + " " + text[match.end() :]).split())
        rest = _PUBLISHED.sub("", rest.rstrip(" ?.!")).strip()
        return bounds, rest
    return SearchFilters(), text


def _scholar_filter(text: str, scholars: list[str]) -> tuple[tuple[str, ...], str]:
    """Scholars named in the question ("by YuhaoZhou", "Yuhao Zhou's papers")."""
    found = []
    for name in scholars:
        spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
        for form in {name, spaced}:
            pattern = re.compile(rf"\b(by |from |of )?{re.escape(form)}('s)?\b", re.IGNORECASE)
            if pattern.search(text):
                found.append(name)
                text = pattern.sub(" ", text)
    return tuple(found), " ".join(text.split())


_REFERENCE = re.compile(
    r"\b(those|these|them|they|their|its|it|of the above|same|"
    r"the (first|second|third|fourth|fifth|last|latter|former)( one| paper)?|"
    r"the [\w -]{0,60}? one)\b",
    re.IGNORECASE,
)
_ORDINALS = {
    "first": 0,
    "second": 1,
    "third": 2,
    "fourth": 3,
    "fifth": 4,
    "last": -1,
    "latter": -1,
    "former": 0,
}


@dataclass(frozen=True)
class PreviousTurn:
    """What a follow-up can inherit: the last answer's topic, filters and cited papers."""

    topic: str
    kind: Kind
    filters: SearchFilters
    cited_ids: tuple[str, ...]


def refers_back(question: str) -> bool:
    return bool(_REFERENCE.search(question))


def follow_up(parsed: ParsedQuery, previous: PreviousTurn | None) -> ParsedQuery:
    """Narrow a question that refers back ("which of those…") to the previous answer.

    It keeps the set being narrowed (the papers the previous answer cited, or the one an
    ordinal names), inherits the previous topic when it has none of its own, and adds
    its own year and scholar filters to the previous ones.
    """
    if previous is None or not previous.cited_ids or not refers_back(parsed.question):
        return parsed
    ids = previous.cited_ids
    ordinal = re.search(
        r"\bthe (first|second|third|fourth|fifth|last|latter|former)\b",
        parsed.question,
        re.IGNORECASE,
    )
    if ordinal and abs(_ORDINALS[ordinal[1].lower()]) < len(ids) + (ordinal[1] == "last"):
        ids = (ids[_ORDINALS[ordinal[1].lower()]],)
    own, before = parsed.filters, previous.filters
    filters = SearchFilters(
        year_min=own.year_min if own.year_min is not None else before.year_min,
        year_max=own.year_max if own.year_max is not None else before.year_max,
        scholars=own.scholars or before.scholars,
        paper_ids=ids,
    )
    topic = _REFERENCE.sub(" ", parsed.topic) if parsed.kind != "fact" else parsed.topic
    topic = " ".join(topic.split()).strip(" ,;:-?") or previous.topic
    return ParsedQuery(question=parsed.question, kind=parsed.kind, topic=topic, filters=filters)


def parse_query(question: str, scholars: list[str] | None = None) -> ParsedQuery:
    question = " ".join(question.split())
    kind: Kind = "list" if _LIST.search(question) else "fact"
    if _SUMMARY.search(question):
        kind = "summary"
    named, text = _scholar_filter(question, scholars or [])
    years, text = _year_filter(text)
    topic = _FRAME.sub("", text, count=1)
    topic = _EXIST.sub("", topic)
    topic = _TRAILING_FILLER.sub("", _LEADING_FILLER.sub("", topic)).strip(" ,;:-")
    filters = SearchFilters(year_min=years.year_min, year_max=years.year_max, scholars=named)
    return ParsedQuery(question=question, kind=kind, topic=topic, filters=filters)
