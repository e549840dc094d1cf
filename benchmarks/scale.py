"""Scale benchmark: ingest and query at 1k, 10k and all 87k CS abstracts.

For each size, in a fresh store:

* ingest through the real CLI (``scholar-chat ingest FILE --json``) in its own process:
  throughput (abstracts/s, embedding included) and that process's peak RSS. With
  ``--kill-at 0.5`` the first ingest is killed with SIGKILL once half of the chunks are
  written and the same command is run again: the table then shows that it resumed
  (papers written before the kill are unchanged, the rest added) and that the store holds
  every paper and chunk exactly once; the rate counts both runs' time;
* store size on disk;
* in a fresh process with the store warm: p50/p95 latency of a search and of a full
  offline answer over 50 questions, and that process's peak RSS;
* cold start to a first answer: a new ``scholar-chat ask`` process.

    python benchmarks/scale.py                              # 1000, 10000 and 87410
    python benchmarks/scale.py --sizes 87410 --kill-at 0.5  # and prove the resume
    SCHOLAR_CHAT_EMBEDDING__MAX_TOKENS=128 python benchmarks/scale.py --sizes 1000

Reads ``../shared/data/scale/abstracts-87k.jsonl.gz``; skips with a message if absent.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "scale" / "abstracts-87k.jsonl.gz"
QUERIES = 50
CLI = [sys.executable, "-m", "assistant"]
PROGRESS = re.compile(r"ingest: (\d+)/(\d+) chunks")


def _subset(size: int, target: Path) -> None:
    """The first ``size`` abstracts as a JSONL file."""
    with gzip.open(DATA, "rt", encoding="utf-8") as src, target.open("w") as out:
        for number, line in enumerate(src):
            if number >= size:
                break
            out.write(line)


def _directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _reap(process: subprocess.Popen[str]) -> tuple[int, float]:
    """Wait for ``process``; its exit status and its own peak RSS in MB."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024


def _cli(*args: str) -> tuple[str, float]:
    """Run a CLI command to the end: its stdout and its peak RSS in MB."""
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [*CLI, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO
        )
        assert process.stdout is not None
        stdout = process.stdout.read()
        code, peak = _reap(process)
        if code != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(args)} exited {code}: {stderr.read()[-2000:]}")
    return stdout, peak


def _ingest_killed_at(corpus: Path, store: Path, fraction: float) -> tuple[int, float]:
    """Run an ingest and SIGKILL it once ``fraction`` of its chunks are written."""
    process = subprocess.Popen(
        [*CLI, "ingest", str(corpus), "--store", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stderr is not None
    for line in process.stderr:
        match = PROGRESS.search(line)
        if match and int(match[1]) >= fraction * int(match[2]):
            process.send_signal(signal.SIGKILL)
            return int(match[1]), _reap(process)[1]
    code, _ = _reap(process)
    raise SystemExit(f"the ingest ended (exit {code}) before it could be killed")


def ingest(size: int, corpus: Path, store: Path, kill_at: float | None) -> dict[str, float]:
    """Ingest through the CLI, optionally killed once and resumed; checks the result."""
    started = time.perf_counter()
    killed_after, killed_peak = _ingest_killed_at(corpus, store, kill_at) if kill_at else (0, 0)
    stdout, peak = _cli("ingest", str(corpus), "--store", str(store), "--json")
    seconds = time.perf_counter() - started
    report = json.loads(stdout)
    stats = json.loads(_cli("stats", "--store", str(store), "--json")[0])
    # Every paper and chunk exactly once: the store holds what the last report counted.
    if (stats["papers"], stats["chunks"]) != (report["papers"], report["chunks"]):
        raise SystemExit(f"store {stats} does not match the ingest report {report}")
    if kill_at and not (report["unchanged"] > 0 and report["added"] > 0):
        raise SystemExit(f"the second ingest did not resume: {report}")
    return {
        "abstracts": size,
        "papers": report["papers"],
        "chunks": report["chunks"],
        "killed_after_chunks": killed_after,
        "resumed_unchanged": report["unchanged"] if kill_at else 0,
        "ingest_s": seconds,
        "abstracts_per_s": size / seconds,
        "ingest_peak_rss_mb": max(peak, killed_peak),
        "store_mb": _directory_mb(store),
    }


def _sample_titles(corpus: Path, count: int) -> list[str]:
    """``count`` titles spread evenly over the corpus, read line by line.

    Reading the whole corpus at once (110 MB at 87k) would put the benchmark's own
    strings into the peak RSS it reports for the query process.
    """
    with corpus.open(encoding="utf-8") as lines:
        total = sum(1 for _ in lines)
    step = max(total // count, 1)
    titles = []
    with corpus.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number % step == 0 and len(titles) < count:
                titles.append(json.loads(line)["title"])
    return titles


def measure_queries(corpus: Path, store: Path) -> dict[str, float]:
    """Search and answer latency with the store warm, measured in this process."""
    from assistant.answer import Assistant
    from assistant.retrieval import HybridRetriever
    from assistant.settings import load_settings
    from assistant.store import open_store

    settings = load_settings(store=store)
    paper_store = open_store(settings)
    questions = [" ".join(title.split()[:6]) for title in _sample_titles(corpus, QUERIES)]
    retriever = HybridRetriever(store=paper_store, settings=settings.retrieval)
    assistant = Assistant(settings, paper_store)
    assistant.ask(f"Which papers address {questions[0]}?")  # warm
    search_ms, answer_ms = [], []
    for question in questions:
        t0 = time.perf_counter()
        retriever.search(question)
        search_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        assistant.ask(f"Which papers address {question}?")
        answer_ms.append((time.perf_counter() - t0) * 1000)

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    return {
        "max_tokens": settings.embedding.max_tokens,
        "search_p50_ms": pct(search_ms, 50),
        "search_p95_ms": pct(search_ms, 95),
        "answer_p50_ms": pct(answer_ms, 50),
        "answer_p95_ms": pct(answer_ms, 95),
        "query_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(size: int, kill_at: float | None) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"scale-{size}-"))
    corpus, store = work / "abstracts.jsonl", work / "store"
    _subset(size, corpus)
    row = ingest(size, corpus, store, kill_at)
    queries = subprocess.run(
        [sys.executable, __file__, "--queries-of", str(corpus), str(store)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    row.update(json.loads(queries.stdout.strip().splitlines()[-1]))
    t0 = time.perf_counter()
    _cli("ask", "Which papers address neural networks?", "--store", str(store))
    row["cold_start_s"] = time.perf_counter() - t0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 87410])
    parser.add_argument(
        "--kill-at",
        type=float,
        metavar="FRACTION",
        help="SIGKILL the first ingest when this fraction of chunks is written, then resume",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per size")
    parser.add_argument("--queries-of", nargs=2, type=Path, help=argparse.SUPPRESS)  # child
    args = parser.parse_args()
    if args.queries_of:
        print(json.dumps(measure_queries(*args.queries_of)))
        return
    if not DATA.exists():
        print(f"skipped: {DATA} is not here (it lives in the project's shared data)")
        return
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.kill_at))
        if args.json:
            print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"scale benchmark, {os.cpu_count()} cores")
        table.add_column("")
        for row in rows:
            table.add_column(f"{row['abstracts']:,}", justify="right")
        for key in rows[0]:
            values = (row[key] for row in rows)
            table.add_row(key, *(f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" for v in values))
        Console().print(table)


if __name__ == "__main__":
    main()
