"""Answering: question (+ history) → understanding → hybrid retrieval → cited answer.

``Assistant`` is what the CLI and the chat page talk to. Its ``chain`` is an LCEL
pipeline of three runnables: understand the question (follow-ups rewritten and
narrowed), retrieve generously so that lists are complete, then let the backend's
answerer pick the relevant papers and write the answer, whose source keys a
``CitationResolver`` turns into numbered citations as the text streams.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from assistant.citations import Citation, CitationResolver, cite, sources_block
from assistant.embeddings import shared_embeddings
from assistant.generative import ModelAnswerer
from assistant.keyword_index import SearchFilters
from assistant.llm import BackendError, describe, guarded, make_chat_model
from assistant.offline import OfflineAnswerer, Refusal
from assistant.prompts import chat_prompt
from assistant.query import ParsedQuery, PreviousTurn, follow_up, parse_query, refers_back
from assistant.retrieval import HybridRetriever, PaperHit
from assistant.settings import LLMSettings, Settings
from assistant.store import PaperStore

log = logging.getLogger(__name__)
MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: list[Citation]
    backend: str
    kind: str
    topic: str = ""
    filters: SearchFilters = field(default_factory=SearchFilters)
    refused: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [c.as_json() for c in self.citations],
            "backend": self.backend,
        }

    def as_previous(self) -> PreviousTurn:
        return PreviousTurn(
            topic=self.topic,
            kind=self.kind,  # type: ignore[arg-type]
            filters=replace(self.filters, paper_ids=None),
            cited_ids=tuple(c.paper_id for c in self.citations),
        )


@dataclass(frozen=True)
class StreamEvent:
    """A piece of answer text; the last event also carries the whole ``Answer``."""

    delta: str
    answer: Answer | None = None


@dataclass(frozen=True)
class _Turn:
    parsed: ParsedQuery
    hits: list[PaperHit] = field(default_factory=list)


class Assistant:
    def __init__(self, settings: Settings, store: PaperStore | None = None) -> None:
        self.settings = settings
        self.store = store or PaperStore(settings, shared_embeddings(settings.embedding))
        self.retriever = HybridRetriever(store=self.store, settings=settings.retrieval)
        self.offline = OfflineAnswerer(self.store, settings.answer)
        self.model = make_chat_model(settings.llm)
        self.answerer: OfflineAnswerer | ModelAnswerer = (
            ModelAnswerer(self.model, settings.llm, self.offline) if self.model else self.offline
        )
        self.backend = settings.llm.backend
        self.backend_label = describe(settings.llm)  # with its endpoint, for people
        self.chain: Runnable[dict[str, object], StreamEvent] = (
            RunnableLambda(self._understand)
            | RunnableLambda(self._retrieve)
            | RunnableGenerator(self._generate)
        )

    def with_backend(self, llm: LLMSettings) -> Assistant:
        """The same store and retriever, answering with another backend."""
        return Assistant(self.settings.model_copy(update={"llm": llm}), self.store)

    # ---- the public API ---------------------------------------------------------------

    def stream(
        self,
        question: str,
        history: Sequence[Answer] = (),
        filters: SearchFilters | None = None,
    ) -> Iterator[StreamEvent]:
        """The answer as it is written; ``filters`` narrow what the question asks for."""
        question = " ".join(question.split())
        if not question:
            raise ValueError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(
                f"the question is {len(question)} characters long; at most {MAX_QUESTION_CHARS}"
            )
        if not any(character.isalnum() for character in question):
            raise ValueError("the question has no words")  # "?!" would get a random answer
        inputs = {"question": question, "history": list(history), "filters": filters}
        yield from self.chain.stream(inputs)

    def ask(
        self,
        question: str,
        history: Sequence[Answer] = (),
        filters: SearchFilters | None = None,
    ) -> Answer:
        for event in self.stream(question, history, filters):
            if event.answer is not None:
                return event.answer
        raise RuntimeError("the answer stream ended without an answer")

    # ---- the chain's steps -----------------------------------------------------------

    def _understand(self, inputs: dict[str, object]) -> ParsedQuery:
        question = str(inputs["question"])
        history: list[Answer] = inputs["history"]  # type: ignore[assignment]
        scholars = self.store.scholars()
        previous = next((a for a in reversed(history) if a.citations), None)
        parsed = parse_query(question, scholars)
        if previous and self.model is not None and refers_back(question):
            standalone = self._condense(question, history)
            parsed = replace(parse_query(standalone, scholars), question=question)
        parsed = follow_up(parsed, previous.as_previous() if previous else None)
        extra = inputs.get("filters")
        if isinstance(extra, SearchFilters):
            parsed = replace(parsed, filters=parsed.filters.narrowed_by(extra))
        return parsed

    def _condense(self, question: str, history: list[Answer]) -> str:
        """The model's standalone rewrite of a follow-up question."""
        turns = "\n".join(
            f"User: {a.question}\nAssistant: {a.text.split('Sources:')[0][:600].strip()}"
            for a in history[-3:]
        )
        chain = chat_prompt("condense") | self.model
        with guarded(self.settings.llm):
            reply = chain.invoke({"example_key": "S1", "history": turns, "question": question})
        rewritten = " ".join(str(reply.content).split())
        return rewritten[:MAX_QUESTION_CHARS] or question

    def _retrieve(self, parsed: ParsedQuery) -> _Turn:
        """Every paper that might answer: a generous hybrid search, or all papers in scope."""
        limit = self.settings.answer.max_papers
        if not parsed.topic:
            return _Turn(parsed, self.retriever.browse(parsed.filters, limit))
        return _Turn(parsed, self.retriever.search(parsed.topic, k=limit, filters=parsed.filters))

    def _generate(self, turns: Iterator[_Turn]) -> Iterator[StreamEvent]:
        for turn in turns:
            parsed = turn.parsed
            relevant = self.answerer.relevant(parsed, turn.hits)
            sources = {f"S{i}": hit for i, hit in enumerate(relevant, start=1)}
            resolver = CitationResolver(sources)
            refused, streamed = False, []
            for piece in self.answerer.write(parsed, sources):
                refused = refused or isinstance(piece, Refusal)
                if delta := resolver.feed(piece):
                    streamed.append(delta)
                    yield StreamEvent(delta)
            body = resolver.flush()
            if resolver.dropped:
                log.warning("dropped %d citations of sources not retrieved", resolver.dropped)
            citations = cite(resolver.cited)
            if not refused and not citations and self.model is not None:
                raise BackendError(
                    f"{self.backend_label} gave an answer that cites no retrieved paper"
                )
            tail = "\n\n" + sources_block(citations) if citations else ""
            yield StreamEvent(body + tail)
            yield StreamEvent(
                "",
                Answer(
                    question=parsed.question,
                    text=("".join(streamed) + body).strip() + tail,
                    citations=citations,
                    backend=self.backend,
                    kind=parsed.kind,
                    topic=parsed.topic,
                    filters=parsed.filters,
                    refused=refused,
                ),
            )
