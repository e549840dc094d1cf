"""Hybrid retrieval: BM25 and dense rankings fused with reciprocal rank fusion, per paper.

A paper is one result however many of its chunks matched: each ranking is collapsed
to papers (a paper ranks where its best chunk ranks) before fusion, so a paper is
cited once. Every result carries its best chunk and cosine similarity to the
question, which the answerer uses as a calibrated relevance score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.keyword_index import SearchFilters
from assistant.settings import RetrievalSettings
from assistant.store import PaperStore, StoredChunk

Mode = Literal["hybrid", "dense", "bm25"]


@dataclass(frozen=True)
class PaperHit:
    """One retrieved paper: what a citation needs, its best chunk and its scores."""

    paper_id: str
    title: str
    year: int | None
    url: str | None
    scholar: str
    truncated: bool
    score: float
    similarity: float
    chunks: tuple[StoredChunk, ...]

    @property
    def best_chunk(self) -> StoredChunk:
        return max(self.chunks, key=lambda c: c.similarity)

    @property
    def abstract(self) -> str:
        """The abstract as stored, rebuilt from the chunks (title line dropped)."""
        ordered = sorted(self.chunks, key=lambda c: c.metadata["chunk"])
        return " ".join(c.text.split("\n", 1)[-1] for c in ordered)

    def to_document(self) -> Document:
        return Document(
            page_content=self.best_chunk.text,
            id=self.paper_id,
            metadata={
                "paper_id": self.paper_id,
                "title": self.title,
                "year": self.year,
                "url": self.url,
                "scholar": self.scholar,
                "truncated": self.truncated,
                "score": self.score,
                "similarity": self.similarity,
            },
        )


def paper_ranking(chunk_ranking: Iterable[tuple[str, str]]) -> list[str]:
    """Collapse ``(chunk_id, paper_id)`` best-first into distinct paper ids best-first."""
    return list(dict.fromkeys(paper_id for _, paper_id in chunk_ranking))


def reciprocal_rank_fusion(rankings: list[tuple[list[str], float]], rrf_k: int) -> dict[str, float]:
    """RRF score per item: the sum over rankings of ``weight / (rrf_k + rank)``, rank from 1."""
    scores: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (rrf_k + rank)
    return scores


class HybridRetriever(BaseRetriever):
    """LangChain retriever returning one ``Document`` per paper, best first."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: PaperStore
    settings: RetrievalSettings
    mode: Mode = "hybrid"
    filters: SearchFilters | None = None

    def search(
        self, query: str, k: int | None = None, filters: SearchFilters | None = None
    ) -> list[PaperHit]:
        k = k or self.settings.k
        filters = filters or self.filters
        query_vector = self.store.embeddings.embed_query(query)
        rankings: list[tuple[list[str], float]] = []
        n = max(self.settings.candidates, k)
        if self.mode in ("hybrid", "dense"):
            dense = self.store.dense_search(query_vector, n, filters)
            rankings.append((paper_ranking(dense), self.settings.dense_weight))
        if self.mode in ("hybrid", "bm25"):
            self.store.sync_keywords()
            bm25 = self.store.keywords.search(query, n, filters)
            rankings.append((paper_ranking((c, p) for c, p, _ in bm25), self.settings.bm25_weight))
        fused = reciprocal_rank_fusion(rankings, self.settings.rrf_k)
        top = sorted(fused, key=fused.__getitem__, reverse=True)[:k]
        return self._hits(top, fused, query_vector)

    def browse(self, filters: SearchFilters | None, limit: int) -> list[PaperHit]:
        """Every paper within the filters (no topic), newest first."""
        self.store.sync_keywords()
        paper_ids = self.store.keywords.papers(filters, limit)
        zero = [0.0] * self.store.embeddings.dimension
        return self._hits(paper_ids, dict.fromkeys(paper_ids, 0.0), zero)

    def _hits(
        self, paper_ids: list[str], scores: dict[str, float], query_vector: list[float]
    ) -> list[PaperHit]:
        by_paper: dict[str, list[StoredChunk]] = {pid: [] for pid in paper_ids}
        for chunk in self.store.paper_chunks(paper_ids, query_vector):
            by_paper[chunk.metadata["paper_id"]].append(chunk)
        hits = []
        for paper_id, chunks in by_paper.items():
            if not chunks:  # deleted between the search and this read
                continue
            meta = chunks[0].metadata
            hits.append(
                PaperHit(
                    paper_id=paper_id,
                    title=meta["title"],
                    year=meta.get("year"),
                    url=meta["url"] or None,
                    scholar=meta["scholar"],
                    truncated=bool(meta["truncated"]),
                    score=scores[paper_id],
                    similarity=max(c.similarity for c in chunks),
                    chunks=tuple(chunks),
                )
            )
        return hits

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [hit.to_document() for hit in self.search(query)]
