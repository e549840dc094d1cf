"""Scale benchmark: ingest and query at 1k, 10k and all 87k CS abstracts.

For each size, in a fresh store and a fresh process (so peak memory is that size's own):
ingest throughput (abstracts/s, embedding included), peak RSS, store size on disk, and,
with the store warm, p50/p95 latency of a search and of a full offline answer; then the
cold start to a first answer (a new ``scholar-chat ask`` process).

    python benchmarks/scale.py                  # 1000, 10000 and 87410
    python benchmarks/scale.py --sizes 1000 --json

Reads ``../shared/data/scale/abstracts-87k.jsonl.gz``; skips with a message if absent.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "scale" / "abstracts-87k.jsonl.gz"
QUERIES = 50


def _subset(size: int, target: Path) -> list[str]:
    """The first ``size`` abstracts as a JSONL file; returns titles to ask about."""
    titles = []
    with gzip.open(DATA, "rt", encoding="utf-8") as src, target.open("w") as out:
        for number, line in enumerate(src):
            if number >= size:
                break
            out.write(line)
            if number % max(size // QUERIES, 1) == 0:
                titles.append(json.loads(line)["title"])
    return titles[:QUERIES]


def _directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def measure(size: int) -> dict[str, float]:
    """One size, measured in this process (run it in a fresh one)."""
    from assistant.answer import Assistant
    from assistant.embeddings import shared_embeddings
    from assistant.ingest import ingest, parse_all
    from assistant.retrieval import HybridRetriever
    from assistant.settings import load_settings
    from assistant.store import PaperStore

    work = Path(tempfile.mkdtemp(prefix=f"scale-{size}-"))
    corpus = work / "abstracts.jsonl"
    titles = _subset(size, corpus)
    settings = load_settings(store=work / "store")
    store = PaperStore(settings, shared_embeddings(settings.embedding))
    started = time.perf_counter()
    report = ingest(parse_all([corpus]), store, settings)
    ingest_s = time.perf_counter() - started

    retriever = HybridRetriever(store=store, settings=settings.retrieval)
    assistant = Assistant(settings, store)
    questions = [" ".join(t.split()[:6]) for t in titles]
    retriever.search(questions[0])  # warm
    search_ms, answer_ms = [], []
    for question in questions:
        t0 = time.perf_counter()
        retriever.search(question)
        search_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        assistant.ask(f"Which papers address {question}?")
        answer_ms.append((time.perf_counter() - t0) * 1000)

    env = {**os.environ, "SCHOLAR_CHAT_STORE": str(settings.store)}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "assistant", "ask", f"Which papers address {questions[1]}?"],
        env=env,
        capture_output=True,
        check=True,
    )
    cold_s = time.perf_counter() - t0

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    return {
        "abstracts": size,
        "chunks": report.chunks,
        "ingest_s": ingest_s,
        "abstracts_per_s": size / ingest_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "store_mb": _directory_mb(settings.store),
        "search_p50_ms": pct(search_ms, 50),
        "search_p95_ms": pct(search_ms, 95),
        "answer_p50_ms": pct(answer_ms, 50),
        "answer_p95_ms": pct(answer_ms, 95),
        "cold_start_s": cold_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 87410])
    parser.add_argument("--json", action="store_true", help="one JSON object per size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the per-size child
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is not here (it lives in the project's shared data)")
        return
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    rows = []
    for size in args.sizes:
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(size)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        if args.json:
            print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"scale benchmark, {os.cpu_count()} cores")
        for key in rows[0]:
            table.add_column(key)
        for row in rows:
            table.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()))
        Console().print(table)


if __name__ == "__main__":
    main()
