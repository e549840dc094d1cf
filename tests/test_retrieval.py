from __future__ import annotations

import numpy as np
import pytest

from assistant.ingest import ingest, parse_all
from assistant.keyword_index import SearchFilters
from assistant.retrieval import (
    HybridRetriever,
    PaperHit,
    paper_scores,
    whole_paper_similarity,
    z_score_fusion,
)
from assistant.settings import DEFAULT_COLLECTION, Settings
from assistant.store import PaperStore, StoredChunk, StoreError
from tests.conftest import FEDERATED_TITLES, open_store


def test_z_score_fusion_by_hand() -> None:
    # dense: mean 0.5, std 0.1 -> a +1, b -1; bm25: mean 6, std 2 -> b +1, c -1
    dense = {"a": 0.6, "b": 0.4}
    bm25 = {"b": 8.0, "c": 4.0}
    scores = z_score_fusion([(dense, 1.0), (bm25, 2.0)])
    # an item missing from a run takes that run's lowest z-score (-1 in both runs)
    assert scores["a"] == pytest.approx(1.0 + 2.0 * -1.0)
    assert scores["b"] == pytest.approx(-1.0 + 2.0 * 1.0)
    assert scores["c"] == pytest.approx(-1.0 + 2.0 * -1.0)


def test_z_score_fusion_edge_cases() -> None:
    assert z_score_fusion([({}, 1.0), ({}, 1.0)]) == {}
    assert z_score_fusion([({"a": 3.0}, 1.0), ({}, 1.0)]) == {"a": 0.0}
    ties = z_score_fusion([({"a": 0.5, "b": 0.5}, 1.0), ({"b": 2.0, "c": 1.0}, 1.0)])
    assert ties["b"] > ties["a"] and ties["b"] > ties["c"]


def test_paper_scores_keep_each_papers_best_chunk() -> None:
    chunks = [("p1:0", "p1", 0.2), ("p2:0", "p2", 0.5), ("p1:1", "p1", 0.9), ("p3:0", "p3", 0.1)]
    assert paper_scores(chunks) == {"p1": 0.9, "p2": 0.5, "p3": 0.1}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_federated_learning_papers_rank_first(default_store: PaperStore, mode: str) -> None:
    retriever = HybridRetriever(
        store=default_store, settings=default_store.settings.retrieval, mode=mode
    )
    hits = retriever.search("federated learning", k=10)
    assert {h.title for h in hits[:5]} == FEDERATED_TITLES
    assert len({h.paper_id for h in hits}) == len(hits)  # one result per paper


def test_filters_apply_to_both_retrievers(default_store: PaperStore) -> None:
    retriever = HybridRetriever(store=default_store, settings=default_store.settings.retrieval)
    hits = retriever.search("federated learning", k=24, filters=SearchFilters(2025, 2025))
    assert hits and all(h.year == 2025 for h in hits)
    assert len([h for h in hits if h.title in FEDERATED_TITLES]) == 2
    nobody = SearchFilters(scholars=("Nobody",))
    assert retriever.search("federated learning", filters=nobody) == []


def test_langchain_retriever_interface(default_store: PaperStore) -> None:
    retriever = HybridRetriever(store=default_store, settings=default_store.settings.retrieval)
    documents = retriever.invoke("dataset distillation")
    assert documents[0].metadata["title"].startswith("Dd-ranking")
    assert documents[0].metadata["url"] == "https://arxiv.org/abs/2505.13300"
    assert len(documents) == default_store.settings.retrieval.k


def test_browse_lists_every_paper_in_scope(default_store: PaperStore) -> None:
    retriever = HybridRetriever(store=default_store, settings=default_store.settings.retrieval)
    hits = retriever.browse(SearchFilters(2024, 2024), limit=50)
    assert len(hits) == 4 and all(h.year == 2024 for h in hits)


def test_paper_abstract_shows_overlapping_sentences_once() -> None:
    meta = {"paper_id": "p", "chunk": 0}
    chunks = (
        StoredChunk(
            "c1", "T\nOne sentence here. Two sentence here.", {**meta, "chunk": 0}, 0.0, np.ones(2)
        ),
        StoredChunk(
            "c2",
            "T\nTwo sentence here. Three sentence here.",
            {**meta, "chunk": 1},
            0.0,
            np.ones(2),
        ),
    )
    hit = PaperHit("p", "T", 2024, None, "S", False, 0.0, 0.0, chunks)
    assert hit.abstract == "One sentence here. Two sentence here. Three sentence here."


def test_whole_paper_similarity_is_cosine_to_the_mean_chunk_vector() -> None:
    """One passing on-topic chunk does not make the paper as similar as that chunk."""
    on, off = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    chunks = [StoredChunk(f"c{i}", "T\nx", {}, 0.0, v) for i, v in enumerate([on, off, off])]
    assert whole_paper_similarity(chunks, [1.0, 0.0]) == pytest.approx(1 / np.sqrt(5))
    assert whole_paper_similarity(chunks[:1], [1.0, 0.0]) == pytest.approx(1.0)
    assert whole_paper_similarity(chunks, [0.0, 0.0]) == 0.0


def test_vectors_made_by_other_settings_are_refused(settings: Settings) -> None:
    float32 = settings.model_copy(
        update={"embedding": settings.embedding.model_copy(update={"int8_compute": False})}
    )
    ingest(parse_all([DEFAULT_COLLECTION]), open_store(float32), float32)
    assert HybridRetriever(store=open_store(float32), settings=float32.retrieval).search("mamba")

    retriever = HybridRetriever(store=open_store(settings), settings=settings.retrieval)
    with pytest.raises(StoreError, match=r"vectors were made by .*run `scholar-chat ingest`"):
        retriever.search("mamba")

    report = ingest(parse_all([DEFAULT_COLLECTION]), retriever.store, settings)
    assert report.updated == report.papers  # every paper re-embedded
    assert retriever.search("mamba")
