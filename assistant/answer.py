"""Answering: question → query understanding → hybrid retrieval → judged, cited answer.

``Assistant`` is what the CLI and the chat page talk to. Retrieval is generous (up to
``answer.max_papers`` papers) so that list answers are complete; the answerer judges
each candidate on its own abstract and cites only the relevant ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.citations import Citation, cite, sources_block
from assistant.embeddings import shared_embeddings
from assistant.keyword_index import SearchFilters
from assistant.offline import OfflineAnswerer
from assistant.query import ParsedQuery, parse_query
from assistant.retrieval import HybridRetriever, PaperHit
from assistant.settings import Settings
from assistant.store import PaperStore


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: list[Citation]
    backend: str
    kind: str
    filters: SearchFilters = field(default_factory=SearchFilters)

    def as_json(self) -> dict[str, object]:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [c.as_json() for c in self.citations],
            "backend": self.backend,
        }


class Assistant:
    def __init__(self, settings: Settings, store: PaperStore | None = None) -> None:
        self.settings = settings
        self.store = store or PaperStore(settings, shared_embeddings(settings.embedding))
        self.retriever = HybridRetriever(store=self.store, settings=settings.retrieval)
        self.answerer = OfflineAnswerer(self.store, settings.answer)

    def understand(self, question: str) -> ParsedQuery:
        return parse_query(question, self.store.scholars())

    def candidates(self, parsed: ParsedQuery) -> list[PaperHit]:
        """Every paper that might answer: a generous hybrid search, or all papers in scope."""
        limit = self.settings.answer.max_papers
        if not parsed.topic:
            return self.retriever.browse(parsed.filters, limit)
        return self.retriever.search(parsed.topic, k=limit, filters=parsed.filters)

    def ask(self, question: str) -> Answer:
        parsed = self.understand(question)
        hits = self.candidates(parsed)
        if parsed.topic:
            hits = [j.hit for j in self.answerer.judge(parsed.topic, hits) if j.relevant]
        body, cited = self.answerer.compose(parsed, hits)
        citations = cite(cited)
        text = "\n\n".join(part for part in (body, sources_block(citations)) if part)
        return Answer(
            question=question,
            text=text,
            citations=citations,
            backend=self.answerer.backend,
            kind=parsed.kind,
            filters=parsed.filters,
        )
