"""The offline answerer: grounded, extractive answers with no language model.

Each retrieved paper is judged on its own abstract with two calibrated signals: the
cosine similarity of its best chunk to the topic, and the IDF-weighted share of the
topic's words that occur in the paper. Only judged-relevant papers are cited, each
with the abstract sentence that best supports it; when none is relevant the answer
says so and cites nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from assistant.chunking import split_sentences
from assistant.keyword_index import STOP_WORDS, query_terms, stem, stems
from assistant.query import ParsedQuery
from assistant.retrieval import PaperHit
from assistant.settings import AnswerSettings
from assistant.store import PaperStore

QUESTION_WORDS = frozenset(
    [
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "many",
        "much",
        "does",
        "do",
        "did",
        "can",
        "could",
        "should",
        "would",
        "has",
        "have",
        "had",
        "were",
        "was",
        "is",
        "are",
        "paper",
        "papers",
        "work",
        "works",
        "research",
        "about",
        "tell",
        "me",
    ]
)


_CONTRIBUTION = re.compile(
    r"\b(we|this (paper|work|study)|in this (paper|work))\b.{0,40}\b(propose|introduce|present|"
    r"develop|design|build|construct)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Judgement:
    hit: PaperHit
    lexical: float
    relevant: bool


class OfflineAnswerer:
    backend = "offline"

    def __init__(self, store: PaperStore, settings: AnswerSettings) -> None:
        self.store = store
        self.settings = settings

    def _terms(self, topic: str) -> dict[str, float]:
        terms = query_terms(topic, STOP_WORDS | QUESTION_WORDS)
        return self.store.keywords.idf(terms) if terms else {}

    @staticmethod
    def _coverage(weights: dict[str, float], text_stems: set[str]) -> float:
        """IDF-weighted share of the topic's words found in a text (1.0 = all of them)."""
        total = sum(weights.values())
        if not total:
            return 0.0
        return sum(w for term, w in weights.items() if stem(term) in text_stems) / total

    def judge(self, topic: str, hits: list[PaperHit]) -> list[Judgement]:
        """Relevant iff very similar, or containing the topic's words and fairly similar."""
        weights = self._terms(topic)
        s = self.settings
        judged = []
        for hit in hits:
            lexical = self._coverage(weights, stems(hit.title + " " + hit.abstract))
            relevant = (
                hit.similarity >= s.strong_similarity
                or lexical >= s.full_lexical
                or (hit.similarity >= s.min_similarity and lexical >= s.min_lexical)
            )
            judged.append(Judgement(hit, lexical, relevant))
        return judged

    def evidence(self, topic: str, hits: list[PaperHit], per_paper: int = 1) -> list[list[str]]:
        """The abstract sentences of each paper that best support the topic, in text order.

        A sentence scores by similarity to the topic, the share of the topic's words it
        holds, and a small bonus for stating the paper's contribution ("we propose").
        With no topic, the contribution sentence alone decides.
        """
        weights = self._terms(topic) if topic else {}
        sentences = [split_sentences(hit.abstract) or [hit.title] for hit in hits]
        flat = [s for group in sentences for s in group]
        if not flat:
            return []
        if topic:
            vectors = self.store.embeddings.embed_array(flat)
            scores = vectors @ np.asarray(self.store.embeddings.embed_query(topic))
        else:
            scores = np.zeros(len(flat))
        chosen, offset = [], 0
        for group in sentences:
            group_scores = [
                scores[offset + i]
                + 0.5 * self._coverage(weights, stems(sentence))
                + 0.1 * bool(_CONTRIBUTION.search(sentence))
                for i, sentence in enumerate(group)
            ]
            best = sorted(np.argsort(group_scores)[::-1][:per_paper])
            chosen.append([group[i] for i in best])
            offset += len(group)
        return chosen

    def compose(self, parsed: ParsedQuery, hits: list[PaperHit]) -> tuple[str, list[PaperHit]]:
        """Answer text (citations as ``[n]``) and the papers it cites, in citation order."""
        topic = parsed.topic
        if not hits:
            return _nothing_found(parsed), []
        if parsed.kind == "fact":
            hits = hits[:3]
        per_paper = 2 if parsed.kind == "summary" else 1
        evidence = self.evidence(topic, hits, per_paper)
        lines = []
        for n, (hit, sentences) in enumerate(zip(hits, evidence, strict=True), start=1):
            quote = " ".join(sentences)
            cut = " (the abstract in the collection is cut short)" if hit.truncated else ""
            year = f" ({hit.year})" if hit.year else ""
            if parsed.kind == "fact":
                lines.append(f"{quote} [{n}]{cut}")
            else:
                lines.append(f"{n}. {hit.title}{year}: {quote} [{n}]{cut}")
        return _heading(parsed, len(hits)) + "\n\n" + "\n".join(lines), hits


def _scope(parsed: ParsedQuery) -> str:
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
    return " ".join(parts)


def _heading(parsed: ParsedQuery, count: int) -> str:
    papers = "paper" if count == 1 else "papers"
    scope = _scope(parsed)
    if not parsed.topic:
        return f"{count} {papers} in the collection {'were' if count > 1 else 'was'} {scope}:"
    about = f"on {parsed.topic}" + (f", {scope}" if scope else "")
    if parsed.kind == "fact":
        return f"From the collection ({count} {papers}):"
    if parsed.kind == "summary":
        return f"The collection has {count} {papers} {about}. What they report:"
    return f"{count} {papers} in the collection address {parsed.topic}" + (
        f", {scope}:" if scope else ":"
    )


def _nothing_found(parsed: ParsedQuery) -> str:
    scope = _scope(parsed)
    if not parsed.topic:
        return f"The collection has no paper {scope}." if scope else "The collection is empty."
    if parsed.kind == "fact":
        return f"No paper in the collection answers “{parsed.question}”"
    return f"The collection has no paper on {parsed.topic}" + (f" {scope}." if scope else ".")
