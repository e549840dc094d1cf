"""The BM25 side on a real SQLite FTS5 index: whole papers, title weight, filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.chunking import chunk_paper
from assistant.collection import Paper
from assistant.keyword_index import KeywordIndex, KeywordPaper, SearchFilters
from assistant.settings import ChunkSettings
from assistant.store import _keyword_papers


def _paper(paper_id: str, title: str, abstract: str, year: int = 2024) -> KeywordPaper:
    return KeywordPaper(paper_id, "h-" + paper_id, title, abstract, year, "Ann")


@pytest.fixture
def index(tmp_path: Path) -> KeywordIndex:
    index = KeywordIndex(tmp_path / "keywords.sqlite")
    index.replace_papers(
        [
            _paper("a", "Federated learning at the edge", "We train models on phones.", 2023),
            _paper("b", "Graph neural networks", "A federated variant is discussed.", 2024),
            _paper("c", "Protein folding", "Nothing about the topic.", 2025),
        ]
    )
    return index


def test_one_score_per_paper_title_weighted(index: KeywordIndex) -> None:
    scores = index.search("federated", 10, title_weight=2.0)
    assert list(scores) == ["a", "b"]  # the title match ranks first
    assert scores["a"] > scores["b"] > 0
    assert index.search("the of and", 10) == {}  # stop words only


def test_filters_and_replacement(index: KeywordIndex) -> None:
    assert list(index.search("federated", 10, SearchFilters(year_min=2024))) == ["b"]
    index.replace_papers([_paper("b", "Graph neural networks", "Now about proteins.")])
    assert list(index.search("federated", 10)) == ["a"]
    assert index.count_papers() == 3
    index.remove_papers(["a"])
    assert index.search("federated", 10) == {}
    assert index.paper_hashes() == {"b": "h-b", "c": "h-c"}


def test_paper_rebuilt_from_chunks_counts_each_sentence_once(tmp_path: Path) -> None:
    """A word only in the last chunk finds the paper; overlapping sentences are not doubled."""
    sentences = [f"Sentence number {n} talks about topic{n} here." for n in range(12)]
    paper = Paper("p1", "Ann", 2024, "A long paper", " ".join(sentences), None, False, "f.md", 3)
    chunks = chunk_paper(paper, ChunkSettings(max_chars=200, overlap_sentences=1))
    assert len(chunks) > 2
    (rebuilt,) = _keyword_papers([c.text for c in chunks], [dict(c.metadata) for c in chunks])
    assert rebuilt.abstract == " ".join(sentences)
    assert (rebuilt.title, rebuilt.year, rebuilt.scholar) == ("A long paper", 2024, "Ann")
    index = KeywordIndex(tmp_path / "keywords.sqlite")
    index.replace_papers([rebuilt])
    assert list(index.search("topic11", 10)) == ["p1"]


def test_common_query_words_are_left_out_but_never_all(index: KeywordIndex) -> None:
    """ "federated" is in 2 of 3 papers: over a 0.5 share it is left out; alone it stays."""
    assert list(index.search("federated protein", 10, max_df=0.5)) == ["c"]
    assert set(index.search("federated protein", 10, max_df=1.0)) == {"a", "b", "c"}
    assert set(index.search("federated", 10, max_df=0.1)) == {"a", "b"}
    assert index.doc_counts(["federated", "proteins", "absent"]) == {
        "federated": 2,
        "proteins": 1,
        "absent": 0,
    }
