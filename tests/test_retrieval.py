from __future__ import annotations

import pytest

from assistant.keyword_index import SearchFilters
from assistant.retrieval import HybridRetriever, paper_ranking, reciprocal_rank_fusion
from assistant.store import PaperStore
from tests.conftest import FEDERATED_TITLES


def test_reciprocal_rank_fusion_by_hand() -> None:
    scores = reciprocal_rank_fusion([(["a", "b"], 1.0), (["b", "c"], 2.0)], rrf_k=10)
    assert scores["a"] == pytest.approx(1 / 11)
    assert scores["b"] == pytest.approx(1 / 12 + 2 / 11)
    assert scores["c"] == pytest.approx(2 / 12)


def test_paper_ranking_keeps_each_paper_once_at_its_best_rank() -> None:
    chunks = [("p1:0", "p1"), ("p2:0", "p2"), ("p1:1", "p1"), ("p3:0", "p3")]
    assert paper_ranking(chunks) == ["p1", "p2", "p3"]


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
