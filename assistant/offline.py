"""The offline answerer: grounded, extractive answers with no language model.

Each retrieved paper is judged on its own abstract with calibrated signals: the cosine
similarity of the whole paper to the topic, and the IDF-weighted share of the
topic's words that occur in the paper. Only judged-relevant papers are cited, each
with the abstract sentences that best support the answer; when none is relevant the
answer says so and cites nothing. Text is written with source keys (``[S1]``) that
``citations.CitationResolver`` turns into numbered citations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from assistant.chunking import split_sentences
from assistant.keyword_index import STOP_WORDS, query_terms, stem, stems
from assistant.query import ParsedQuery
from assistant.retrieval import PaperHit
from assistant.settings import AnswerSettings
from assistant.store import PaperStore

QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how many much does do did can could should "
    "would has have had were was is are paper papers work works research about tell me "
    "more summarise summarize give overview describe explain introduce introduces present "
    "presents propose proposes use uses using apply applies study studies address addresses "
    "discuss discusses".split()
)
_ALTERNATIVES = re.compile(r"\s+(?:or|and)\s+|\s*/\s*", re.IGNORECASE)
_CONTRIBUTION = re.compile(
    r"\b(we|this (paper|work|study)|in this (paper|work))\b.{0,40}\b(propose|introduce|present|"
    r"develop|design|build|construct)",
    re.IGNORECASE,
)
_FINDING = re.compile(
    r"\b(achiev|outperform|improv|surpass|reduc|demonstrat|show|reveal|result)", re.IGNORECASE
)
# Sentences that address a reader or model instead of describing research: never used
# as evidence of relevance, never quoted (abstracts are data, not instructions).
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|questions?|rules?)\b"
    r"|\b(cite|list|include|rank|recommend)\s+this\s+(paper|work|abstract)\b"
    r"|\b(system prompt|you are an? (ai|assistant|language model))\b",
    re.IGNORECASE,
)


def content_sentences(hit: PaperHit) -> list[str]:
    """The abstract's sentences, less any that read as instructions."""
    return [s for s in split_sentences(hit.abstract) if not _INSTRUCTION.search(s)]


def quote(sentences: list[str]) -> str:
    """Collection text (sentences, a title) in an answer: its brackets become parentheses.

    In an answer, square brackets hold citation keys: an abstract's "[13]" would be
    read as a key and dropped (and "w[1]-hard" changed to "w-hard").
    """
    return " ".join(sentences).replace("[", "(").replace("]", ")")


_HOW_MANY = re.compile(r"\bhow (many|much|large|big|fast|long)\b|\bnumber of\b|\bpercent", re.I)
_DIGIT = re.compile(r"\d")
GROUP_SIMILARITY = 0.35
"""Papers this alike once the topic is projected out share a paragraph in a summary."""

Sources = dict[str, PaperHit]


class Refusal(str):
    """The answer text that says the collection has no answer (and cites nothing)."""


@dataclass(frozen=True)
class Judgement:
    hit: PaperHit
    lexical: float
    together: float
    relevant: bool
    plausible: bool


def alternatives(topic: str) -> list[str]:
    """The topic and, for "A or B C" / "A and B", each alternative on its own.

    A one-word alternative beside a longer one shares its head noun: "continual or
    class-incremental learning" gives "continual learning" and "class-incremental learning".
    """
    parts = [p for p in _ALTERNATIVES.split(topic) if p.strip()]
    if len(parts) < 2:
        return [topic]
    last = parts[-1].split()
    if len(last) > 3:  # a clause, not a noun phrase: no shared head noun
        return [topic, *parts]
    return [topic] + [p if len(p.split()) > 1 else f"{p} {last[-1]}" for p in parts]


PREFIX = 5
"""Long stems sharing this many first letters count as one word ("scienc", "scientif")."""


def _present(term: str, text_stems: set[str], heads: set[str]) -> bool:
    return term in text_stems or (len(term) > PREFIX and term[:PREFIX] in heads)


class OfflineAnswerer:
    backend = "offline"

    def __init__(self, store: PaperStore, settings: AnswerSettings) -> None:
        self.store = store
        self.settings = settings

    # ---- relevance ------------------------------------------------------------------

    def _weights(self, topic: str) -> dict[str, float]:
        terms = query_terms(topic, STOP_WORDS | QUESTION_WORDS)
        return self.store.keywords.idf(terms) if terms else {}

    @staticmethod
    def _coverage(weights: dict[str, float], text_stems: set[str]) -> float:
        """IDF-weighted share of the topic's words found in a text (1.0 = all of them)."""
        total = sum(weights.values())
        if not total:
            return 0.0
        heads = {s[:PREFIX] for s in text_stems if len(s) > PREFIX}
        return (
            sum(w for term, w in weights.items() if _present(stem(term), text_stems, heads)) / total
        )

    def judge(self, topic: str, hits: list[PaperHit]) -> list[Judgement]:
        """Judge each paper on its own abstract with three calibrated signals.

        ``similarity``: cosine of the whole paper to the topic. ``lexical``: IDF-weighted
        share of the topic's words anywhere in title and abstract. ``together``: the
        same share within one sentence (or the title), which tells a paper about the
        topic from one that uses its words apart. A topic with alternatives ("Mamba and
        state space models") scores by its best alternative.
        """
        weights = [self._weights(part) for part in alternatives(topic)]
        s = self.settings
        judged = []
        for hit in hits:
            sentence_stems = [stems(text) for text in [hit.title, *content_sentences(hit)]]
            paper_stems = set().union(*sentence_stems)
            lexical = max(self._coverage(w, paper_stems) for w in weights)
            together = max(self._coverage(w, ss) for w in weights for ss in sentence_stems)
            relevant = (
                hit.similarity >= s.strong_similarity
                or (together >= s.together_lexical and hit.similarity >= s.together_similarity)
                or (hit.similarity >= s.min_similarity and lexical >= s.min_lexical)
            )
            plausible = hit.similarity >= s.floor_similarity or lexical >= s.floor_lexical
            judged.append(Judgement(hit, lexical, together, relevant, plausible or relevant))
        return judged

    def relevant(self, parsed: ParsedQuery, hits: list[PaperHit]) -> list[PaperHit]:
        """The papers the answer will cite, best first for a fact, retrieval order otherwise."""
        if not parsed.topic or points_at_one(parsed):
            return hits
        narrowing = parsed.filters.paper_ids is not None and parsed.kind != "list"
        judged = self.judge(parsed.topic, hits)
        if parsed.kind == "fact":  # the one paper that best holds the question's words
            s = self.settings
            best = max(judged, key=lambda j: j.lexical + j.hit.similarity, default=None)
            if best and (best.relevant or narrowing or best.lexical >= s.fact_lexical):
                return [best.hit]
            return []
        return [j.hit for j in judged if j.relevant or (narrowing and j.plausible)]

    # ---- writing --------------------------------------------------------------------

    def evidence(
        self, topic: str, hits: list[PaperHit], per_paper: int = 1, contribution: float = 0.1
    ) -> list[list[str]]:
        """The abstract sentences of each paper that best support the topic, in text order.

        A sentence scores by similarity to the topic, the share of the topic's words it
        holds (words of the paper's own title aside: every sentence is about those), a
        digit when the question asks how many, and a bonus for stating the paper's
        contribution ("we propose") or, in summaries, a finding. With no topic, the
        contribution sentence alone decides.
        """
        weights = self._weights(topic) if topic else {}
        wants_number = bool(_HOW_MANY.search(topic))
        sentences = [content_sentences(hit) or [hit.title] for hit in hits]
        flat = [s for group in sentences for s in group]
        if topic:
            vectors = self.store.embeddings.embed_array(flat)
            scores = vectors @ np.asarray(self.store.embeddings.embed_query(topic))
        else:
            scores = np.zeros(len(flat))
        chosen, offset = [], 0
        for hit, group in zip(hits, sentences, strict=True):
            title = stems(hit.title)
            own = {t: w for t, w in weights.items() if stem(t) not in title} or weights
            group_scores = [
                scores[offset + i]
                + 0.5 * self._coverage(own, stems(sentence))
                + 0.3 * (wants_number and bool(_DIGIT.search(sentence)))
                + contribution * bool(_CONTRIBUTION.search(sentence))
                + (contribution - 0.1) * bool(_FINDING.search(sentence))
                for i, sentence in enumerate(group)
            ]
            best = sorted(np.argsort(group_scores)[::-1][:per_paper])
            chosen.append([group[i] for i in best])
            offset += len(group)
        return chosen

    def write(self, parsed: ParsedQuery, sources: Sources) -> Iterator[str]:
        """The answer, a line at a time, citing sources by key."""
        if not sources:
            yield nothing_found(parsed)
            return
        keys, hits = list(sources), list(sources.values())
        if parsed.kind == "summary":
            yield from self._summary(parsed, keys, hits)
            return
        evidence = self.evidence(parsed.topic, hits, per_paper=2 if parsed.kind == "fact" else 1)
        if parsed.kind == "fact":
            for key, hit, sentences in zip(keys, hits, evidence, strict=True):
                yield f"{quote(sentences)} [{key}]{_cut_note(hit, sentences)}\n"
            return
        yield heading(parsed, len(hits)) + "\n\n"
        for n, (key, hit, sentences) in enumerate(zip(keys, hits, evidence, strict=True), 1):
            title, text = quote([hit.title]), quote(sentences)
            yield f"{n}. {title}{_year(hit)}: {text} [{key}]{_cut_note(hit, sentences)}\n"

    def _summary(self, parsed: ParsedQuery, keys: list[str], hits: list[PaperHit]) -> Iterator[str]:
        """Extractive summary: a paragraph per sub-theme, two sentences from each paper."""
        yield heading(parsed, len(hits)) + "\n\n"
        evidence = self.evidence(parsed.topic, hits, per_paper=2, contribution=0.3)
        for group in self._groups(parsed.topic, hits):
            sentences = [
                f"{quote(evidence[i])} [{keys[i]}]{_cut_note(hits[i], evidence[i])}" for i in group
            ]
            yield " ".join(sentences) + "\n\n"

    def _groups(self, topic: str, hits: list[PaperHit]) -> list[list[int]]:
        """Greedy grouping into sub-themes: papers alike once the shared topic is removed."""
        vectors = self.store.embeddings.embed_array([h.title + " " + h.abstract for h in hits])
        if topic:
            direction = np.asarray(self.store.embeddings.embed_query(topic))
            vectors = vectors - np.outer(vectors @ direction, direction)
            vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9, None)
        groups: list[list[int]] = []
        for i, vector in enumerate(vectors):
            for group in groups:
                centroid = vectors[group].mean(axis=0)
                if vector @ centroid / np.linalg.norm(centroid) >= GROUP_SIMILARITY:
                    group.append(i)
                    break
            else:
                groups.append([i])
        return groups


def points_at_one(parsed: ParsedQuery) -> bool:
    """A follow-up that named one earlier paper ("the second one") needs no judging."""
    return parsed.filters.paper_ids is not None and len(parsed.filters.paper_ids) == 1


def _year(hit: PaperHit) -> str:
    return f" ({hit.year})" if hit.year else ""


def _cut_note(hit: PaperHit, sentences: list[str]) -> str:
    """Say an abstract is cut short when a quoted sentence is where it was cut."""
    if hit.truncated and sentences and sentences[-1].rstrip().endswith(("…", "...")):
        return " (the abstract in the collection is cut short here)"
    return ""


def scope(parsed: ParsedQuery) -> str:
    """The question's filters in words: "published in 2024 by YuhaoZhou"."""
    f = parsed.filters
    parts = []
    if f.year_min is not None and f.year_min == f.year_max:
        parts.append(f"published in {f.year_min}")
    else:
        if f.year_min is not None:
            parts.append(f"published in {f.year_min} or later")
        if f.year_max is not None:
            parts.append(f"published in {f.year_max} or earlier")
    if f.scholars:
        parts.append("by " + " or ".join(f.scholars))
    if f.paper_ids is not None:
        parts.append("among the papers of the previous answer")
    return " ".join(parts)


def verb(plural: str, count: int) -> str:
    """The verb agreeing with ``count`` papers: "1 paper addresses", "2 papers address"."""
    if count != 1:
        return plural
    return plural + ("es" if plural.endswith(("s", "sh", "ch", "x")) else "s")


def heading(parsed: ParsedQuery, count: int) -> str:
    papers = "paper" if count == 1 else "papers"
    where = scope(parsed)
    if not parsed.topic:
        return f"{count} {papers} in the collection {'were' if count > 1 else 'was'} {where}:"
    about = f"on {parsed.topic}" + (f", {where}" if where else "")
    if parsed.kind == "summary":
        subject = f" {where}" if parsed.filters.paper_ids is not None else f" {about}"
        return f"What the collection's {count} {papers}{subject} {verb('report', count)}:"
    return f"{count} {papers} in the collection {verb('address', count)} {parsed.topic}" + (
        f", {where}:" if where else ":"
    )


def nothing_found(parsed: ParsedQuery) -> Refusal:
    """The plain refusal: no paper in the collection fits."""
    where = scope(parsed)
    if parsed.kind == "fact":
        return Refusal(f"No paper in the collection answers “{parsed.question}”")
    if not parsed.topic:
        text = f"The collection has no paper {where}." if where else "The collection is empty."
        return Refusal(text)
    return Refusal(
        f"The collection has no paper on {parsed.topic}" + (f" {where}." if where else ".")
    )
