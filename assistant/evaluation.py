"""BEIR-style retrieval metrics and loaders for BEIR-format qrels and queries.

Conventions follow BEIR (which uses pytrec_eval): nDCG uses linear gains (the grade
itself) with a ``log2(rank + 1)`` discount, and the ideal DCG comes from the query's
relevance grades; a document counts as relevant when its grade is above zero. A
document id repeated in a ranking counts only at its first position.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

Qrels = dict[str, dict[str, int]]
DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def _top_k(ranked: Sequence[str], k: int) -> list[str]:
    """The first ``k`` distinct ids of ``ranked``, in order."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    seen: set[str] = set()
    top: list[str] = []
    for doc_id in ranked:
        if doc_id not in seen:
            seen.add(doc_id)
            top.append(doc_id)
            if len(top) == k:
                break
    return top


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain of the top ``k``; 0.0 with no relevant docs."""
    grades = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(grades, start=1))
    if ideal == 0:
        return 0.0
    dcg = sum(
        max(relevant.get(doc_id, 0), 0) / math.log2(rank + 1)
        for rank, doc_id in enumerate(_top_k(ranked, k), start=1)
    )
    return dcg / ideal


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Fraction of the relevant docs (grade > 0) found in the top ``k``; 0.0 with none."""
    wanted = {doc_id for doc_id, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(_top_k(ranked, k))) / len(wanted)


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant doc in the top ``k``, else 0.0."""
    for rank, doc_id in enumerate(_top_k(ranked, k), start=1):
        if relevant.get(doc_id, 0) > 0:
            return 1.0 / rank
    return 0.0


METRIC_FUNCTIONS = {"ndcg": ndcg_at_k, "recall": recall_at_k, "mrr": mrr_at_k}


def _parse_metric(name: str) -> tuple[str, int]:
    """Split ``"ndcg@10"`` into ``("ndcg", 10)``, rejecting unknown metrics."""
    metric, sep, k = name.partition("@")
    if not sep or metric not in METRIC_FUNCTIONS or not k.isdigit() or int(k) < 1:
        known = ", ".join(METRIC_FUNCTIONS)
        raise ValueError(f"bad metric {name!r}: expected NAME@K with NAME one of {known}")
    return metric, int(k)


def mean_metrics(
    runs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Iterable[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Each metric (``"ndcg@10"``, ``"recall@100"``, ...) averaged over judged queries.

    A query is judged when its qrels hold at least one doc with grade > 0; a judged
    query missing from ``runs`` scores 0. Runs for unjudged queries are ignored.
    With no judged queries every metric is 0.0.
    """
    parsed = {name: _parse_metric(name) for name in metrics}
    judged = [qid for qid, rel in qrels.items() if any(g > 0 for g in rel.values())]
    if not judged:
        return {name: 0.0 for name in parsed}
    totals = dict.fromkeys(parsed, 0.0)
    for qid in judged:
        ranked = runs.get(qid, ())
        for name, (metric, k) in parsed.items():
            totals[name] += METRIC_FUNCTIONS[metric](ranked, qrels[qid], k)
    return {name: total / len(judged) for name, total in totals.items()}


def load_qrels(path: str | Path) -> Qrels:
    """Read a BEIR qrels TSV (header ``query-id corpus-id score``) as {query: {doc: grade}}."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for row_number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or not "".join(row).strip():
                continue
            if row_number == 1 and row[0].strip() == "query-id":
                continue
            if len(row) < 3:
                raise ValueError(f"{path}:{row_number}: expected 3 tab-separated columns")
            query_id, doc_id, score = (cell.strip() for cell in row[:3])
            qrels.setdefault(query_id, {})[doc_id] = int(float(score))
    return qrels


def load_queries(path: str | Path) -> dict[str, str]:
    """Read queries JSONL, one ``{"id", "text"}`` object a line (or BEIR's ``_id``)."""
    queries: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                query_id = record["id"] if "id" in record else record["_id"]
                queries[str(query_id)] = record["text"]
    return queries


def evaluate_retrieval(
    retrievers: Mapping[str, Callable[[str, int], list[str]]],
    queries: Mapping[str, str],
    qrels: Qrels,
    depth: int = 100,
    on_query: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Every judged query through each named retriever (``query, k -> ranked ids``)."""
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    results = {}
    for name, retrieve in retrievers.items():
        runs = {}
        for qid, text in judged.items():
            runs[qid] = retrieve(text, depth)
            if on_query:
                on_query()
        results[name] = mean_metrics(runs, qrels)
    return results
