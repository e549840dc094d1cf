"""Retrieval metrics against hand-computed cases, and the BEIR loaders on tmp files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from assistant.evaluation import (
    load_qrels,
    load_queries,
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)

LOG2_3 = math.log2(3)  # 1.5849625007211563


def test_ndcg_graded_gains_and_ideal_from_grades() -> None:
    # ranked d1 (grade 1), d2 (0), d3 (2); d4 (grade 1) is never retrieved.
    # DCG@3  = 1/log2(2) + 0/log2(3) + 2/log2(4) = 1 + 0 + 1 = 2
    # IDCG@3 from grades sorted [2, 1, 1] = 2/1 + 1/log2(3) + 1/2 = 2.5 + 0.63093 = 3.13093
    # nDCG@3 = 2 / 3.13093 = 0.638788
    relevant = {"d1": 1, "d3": 2, "d4": 1}
    expected = 2 / (2.5 + 1 / LOG2_3)
    assert ndcg_at_k(["d1", "d2", "d3"], relevant, 3) == pytest.approx(expected)
    assert ndcg_at_k(["d1", "d2", "d3"], relevant, 3) == pytest.approx(0.638788, abs=1e-6)


def test_ndcg_truncates_ranking_and_ideal_at_k() -> None:
    # k=1: DCG = 1/log2(2) = 1 (d1); IDCG = best grade 2 / log2(2) = 2; nDCG = 0.5
    assert ndcg_at_k(["d1", "d3"], {"d1": 1, "d3": 2}, 1) == pytest.approx(0.5)


def test_ndcg_perfect_ranking_is_one() -> None:
    # DCG = IDCG = 2/1 + 1/log2(3)
    assert ndcg_at_k(["a", "b", "c"], {"a": 2, "b": 1}, 10) == pytest.approx(1.0)


def test_ndcg_counts_a_repeated_id_once() -> None:
    # distinct top 2 = [d1, d3]: DCG = 0/1 + 1/log2(3) = 0.63093; IDCG = 1/1 = 1
    assert ndcg_at_k(["d1", "d1", "d3"], {"d3": 1}, 2) == pytest.approx(1 / LOG2_3)


def test_ndcg_without_relevant_docs_is_zero() -> None:
    assert ndcg_at_k(["a", "b"], {}, 10) == 0.0
    assert ndcg_at_k(["a", "b"], {"a": 0}, 10) == 0.0
    assert ndcg_at_k([], {"a": 1}, 10) == 0.0


def test_recall_counts_only_positive_grades() -> None:
    # relevant (grade > 0) = {a, c, e}; f has grade 0 and does not count
    relevant = {"a": 1, "c": 2, "e": 1, "f": 0}
    # top 2 = [a, b]: found {a} -> 1/3
    assert recall_at_k(["a", "b", "c", "d", "f"], relevant, 2) == pytest.approx(1 / 3)
    # top 5 = [a, b, c, d, f]: found {a, c} -> 2/3
    assert recall_at_k(["a", "b", "c", "d", "f"], relevant, 5) == pytest.approx(2 / 3)
    # k larger than the ranking: still {a, c} -> 2/3
    assert recall_at_k(["a", "b", "c", "d", "f"], relevant, 100) == pytest.approx(2 / 3)


def test_recall_without_relevant_docs_is_zero() -> None:
    assert recall_at_k(["a"], {"a": 0}, 10) == 0.0


def test_mrr_uses_first_relevant_rank_within_k() -> None:
    # first relevant doc (a) is at rank 3 -> 1/3
    assert mrr_at_k(["x", "y", "a", "b"], {"a": 1, "b": 1}, 3) == pytest.approx(1 / 3)
    # rank 3 is outside k=2 -> 0
    assert mrr_at_k(["x", "y", "a"], {"a": 1}, 2) == 0.0
    # relevant at rank 1 -> 1
    assert mrr_at_k(["a", "x"], {"a": 1}, 10) == 1.0
    # grade 0 is not relevant
    assert mrr_at_k(["a", "x"], {"a": 0}, 10) == 0.0


def test_bad_k_is_rejected() -> None:
    with pytest.raises(ValueError):
        recall_at_k(["a"], {"a": 1}, 0)


def test_mean_metrics_averages_over_judged_queries() -> None:
    runs = {"q1": ["a", "b"], "q2": ["c"], "q3": ["a"]}
    qrels = {
        "q1": {"b": 1},  # b at rank 2
        "q2": {"d": 1},  # d never retrieved
        "q4": {"e": 1},  # judged but no run: scores 0
        "q5": {"z": 0},  # no positive grade: not judged, left out of the mean
    }
    # q3 has a run but no qrels: ignored. Judged queries: q1, q2, q4 (3 of them).
    # q1: nDCG@10 = (1/log2(3)) / 1 = 0.63093, recall = 1, MRR = 1/2; q2 and q4: all 0
    result = mean_metrics(runs, qrels)
    assert set(result) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert result["ndcg@10"] == pytest.approx((1 / LOG2_3) / 3)  # 0.21031
    assert result["recall@10"] == pytest.approx(1 / 3)
    assert result["recall@100"] == pytest.approx(1 / 3)
    assert result["mrr@10"] == pytest.approx(0.5 / 3)  # 0.16667


def test_mean_metrics_custom_cutoffs_and_errors() -> None:
    # q1: top 1 = [a] misses b -> recall@1 = 0; top 2 finds b -> recall@2 = 1
    result = mean_metrics({"q1": ["a", "b"]}, {"q1": {"b": 1}}, ["recall@1", "recall@2"])
    assert result == {"recall@1": 0.0, "recall@2": 1.0}
    assert mean_metrics({}, {}, ["ndcg@10"]) == {"ndcg@10": 0.0}
    for bad in ("ndcg", "map@10", "ndcg@0", "ndcg@x"):
        with pytest.raises(ValueError):
            mean_metrics({}, {}, [bad])


def test_load_qrels(tmp_path: Path) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text(
        "query-id\tcorpus-id\tscore\n0\t31715818\t1\n0\t42\t2\n10\t32587939\t1\n\n",
        encoding="utf-8",
    )
    assert load_qrels(path) == {"0": {"31715818": 1, "42": 2}, "10": {"32587939": 1}}


def test_load_qrels_rejects_short_rows(tmp_path: Path) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text("query-id\tcorpus-id\tscore\n0\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="3 tab-separated columns"):
        load_qrels(path)


def test_load_queries(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text(
        '{"id": "0", "text": "0-dimensional biomaterials lack inductive properties."}\n'
        "\n"
        '{"id": 2, "text": "1 in 5 million in UK have abnormal PrP positivity."}\n'
        '{"_id": "4", "text": "BEIR spells the key _id."}\n',
        encoding="utf-8",
    )
    assert load_queries(path) == {
        "0": "0-dimensional biomaterials lack inductive properties.",
        "2": "1 in 5 million in UK have abnormal PrP positivity.",
        "4": "BEIR spells the key _id.",
    }
