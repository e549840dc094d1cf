"""Load test of the chat page: many concurrent conversations against a real server.

Why: the chat page is one process shared by every browser tab. This checks that it keeps
answering, and answering correctly, when many people chat at once: no errors, every
answer cites a paper of the collection, follow-ups narrow their own session's previous
answer (never another session's), and memory after the run comes back near where it
started (no per-request leak).

How: it makes a temporary store, starts ``scholar-chat serve --llm offline`` on a free
127.0.0.1 port in a subprocess, waits until the page answers HTTP, loads the page once
(which ingests the default collection into the empty store) and asks one warm-up
question. Then N conversations run at once, each its own ``gradio_client`` session
asking a list question, a follow-up narrowing it ("Which of those were published in
2024?") and a theme summary, through the page's ``/chat`` API. It reports latency per
question (from submit to the last streamed piece, queueing included: the page answers one
question at a time), throughput, and the server's RSS (its child processes included)
after the warm-up, at the peak, at the end and after a short idle. The first follow-ups
and summaries grow native memory once (e.g. the embedding runtime's buffers for larger
batches): ``--warm-up 3`` asks a whole conversation first, so that one-off growth is in
the baseline rather than in the reported growth.

    python benchmarks/load.py                                  # 50 conversations x 3
    python benchmarks/load.py --conversations 5 --questions 2 --json

Everything is bounded: ``--timeout`` for the whole run, ``--request-timeout`` per
question. The server is always stopped (also on Ctrl-C). Exit status 1 if any question
failed, timed out or was skipped, any answer cites no paper, or a follow-up did not
narrow its own previous answer. Timings on a loaded 2-core machine are noisy: the load
generator shares the CPU with the server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# gradio_client's huggingface_hub would phone home (telemetry); read when imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client

from assistant.collection import parse_collection
from assistant.llm import one_line
from assistant.settings import DEFAULT_COLLECTION

REPO = Path(__file__).resolve().parent.parent
NARROWED = "among the papers of the previous answer"

# (question, kind): each conversation is one script; a follow-up narrows the turn before.
Turn = tuple[str, str]
SCRIPTS: list[list[Turn]] = [
    [
        ("Which papers address federated learning?", "list"),
        ("Which of those were published in 2024?", "follow-up"),
        ("Summarise the research on federated learning.", "summary"),
    ],
    [
        ("Which papers work on Mamba or state space models?", "list"),
        ("Which of those were published in 2025?", "follow-up"),
        ("Summarise the work on Mamba and state space models.", "summary"),
    ],
    [
        ("Which papers address federated learning?", "list"),
        ("Which of them use hypernetworks?", "follow-up"),
        ("Summarise the research on hypernetworks.", "summary"),
    ],
    [
        ("Which papers study continual or class-incremental learning?", "list"),
        ("Which of those were published in 2025?", "follow-up"),
        ("Summarise the contributions to online continual learning.", "summary"),
    ],
    [
        ("Which papers propose benchmarks for Earth science?", "list"),
        ("Which of those were published in 2025?", "follow-up"),
        ("Give me an overview of the Earth science benchmarks.", "summary"),
    ],
    [
        (
            "Which papers introduce benchmarks for evaluating how well LLMs understand science?",
            "list",
        ),
        ("Which of them focus on Earth science?", "follow-up"),
        ("Summarise how the scientific foundation models were trained.", "summary"),
    ],
    [
        ("Which papers make vision models more efficient through token pruning?", "list"),
        ("Which of those were published in 2024?", "follow-up"),
        ("Summarise the research on dataset distillation.", "summary"),
    ],
    [
        ("Which papers use hypernetworks or networks that generate model weights?", "list"),
        ("Which of those were published in 2025?", "follow-up"),
        ("Summarise the research on neural architecture search.", "summary"),
    ],
]
# "[n] [Title (year)](url)" lines of the page's Sources block.
SOURCE_LINE = re.compile(r"^\[(\d+)\] \[.+\]\((https?://[^)\s]+)\)$", re.M)
SHOWN_ERRORS = 5


# ---- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(store: Path, port: int) -> list[str]:
    """``scholar-chat serve`` from this interpreter's environment, offline backend."""
    script = Path(sys.executable).parent / "scholar-chat"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "assistant"]
    args = ["serve", "--store", str(store), "--host", "127.0.0.1", "--port", str(port)]
    return [*base, *args, "--llm", "offline"]


def process_tree_rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and all its descendants, in MiB (0 if it is gone)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    kib = 0
    for member in tree:
        with suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
    return kib / 1024


@contextmanager
def running_page(store: Path, port: int, log: Path, deadline: float) -> Iterator[int]:
    """The chat page in its own process group until it answers HTTP; the pid. Always stopped."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            serve_command(store, port),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped with every child it starts
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the chat page exited with status {process.returncode}:\n{tail(log)}"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the chat page did not start in time:\n{tail(log)}"
                    ) from None
                time.sleep(0.3)
        yield process.pid
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the page's process group, SIGKILL after 15 s."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(log: Path, lines: int = 15) -> str:
    with suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


class RssSampler:
    """The process tree's RSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, process_tree_rss_mb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ---- the conversations -------------------------------------------------------------------


@dataclass
class Outcome:
    """What one conversation saw."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    uncited: list[str] = field(default_factory=list)
    bad_follow_ups: list[str] = field(default_factory=list)
    skipped: int = 0


def cited_links(answer: str, papers: set[str]) -> set[str]:
    """Links of the collection's papers that the answer cites as ``[n]`` in its text."""
    body, _, sources = answer.partition("**Sources**")
    return {
        url
        for n, url in SOURCE_LINE.findall(sources)
        if url in papers and re.search(rf"\[{n}\]", body)
    }


def new_client(url: str, request_timeout: float) -> Client:
    """A new client is a new session: its own conversation history.

    httpx's 5 s default is too short for a page busy answering: its HTTP calls get the
    per-question timeout instead (at most 60 s each).
    """
    return Client(
        url,
        verbose=False,
        download_files=False,
        analytics_enabled=False,
        httpx_kwargs={"timeout": min(request_timeout, 60.0)},
    )


def ask(client: Client, question: str, deadline: float, request_timeout: float) -> str:
    left = min(request_timeout, deadline - time.monotonic())
    if left <= 0:
        raise TimeoutError("the run's --timeout was reached before this question")
    job = client.submit(question, api_name="/chat")
    try:
        return str(job.result(timeout=left))
    except TimeoutError:
        job.cancel()
        limit = "--request-timeout" if left == request_timeout else "the run's --timeout"
        raise TimeoutError(f"no answer within {left:.0f} s ({limit})") from None


def converse(
    number: int,
    url: str,
    turns: Sequence[Turn],
    papers: set[str],
    deadline: float,
    request_timeout: float,
) -> Outcome:
    """One session asks its turns in order; the first failure skips the rest."""
    outcome = Outcome()
    client: Client | None = None
    previous: set[str] = set()
    try:
        client = new_client(url, request_timeout)
        for index, (question, kind) in enumerate(turns):
            where = f"conversation {number} question {index + 1}"
            started = time.monotonic()
            try:
                answer = ask(client, question, deadline, request_timeout)
            except Exception as exc:
                outcome.errors.append(f"{where}: {type(exc).__name__}: {one_line(exc)}")
                outcome.skipped = len(turns) - index - 1
                break
            outcome.latencies.append(time.monotonic() - started)
            cited = cited_links(answer, papers)
            if not cited:
                outcome.uncited.append(f"{where} {question!r}: {one_line(answer)[:160]}")
            if kind == "follow-up" and (NARROWED not in answer or not cited <= previous):
                outcome.bad_follow_ups.append(
                    f"{where} {question!r} did not narrow its own previous answer: "
                    f"{one_line(answer)[:160]}"
                )
            previous = cited
    except Exception as exc:  # the session could not even be opened
        outcome.errors.append(f"conversation {number}: {type(exc).__name__}: {one_line(exc)}")
        outcome.skipped = len(turns) - len(outcome.latencies) - 1
    finally:
        if client is not None:
            with suppress(Exception):
                client.close()
    return outcome


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ---- the run -----------------------------------------------------------------------------


@dataclass
class Report:
    conversations: int
    questions_per_conversation: int
    questions_planned: int
    answered: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    skipped: int = 0
    uncited: int = 0
    uncited_examples: list[str] = field(default_factory=list)
    bad_follow_ups: int = 0
    bad_follow_up_examples: list[str] = field(default_factory=list)
    latency_p50_s: float = 0.0
    latency_p95_s: float = 0.0
    latency_max_s: float = 0.0
    latency_mean_s: float = 0.0
    wall_s: float = 0.0
    throughput_qps: float = 0.0
    startup_s: float = 0.0
    warm_up_questions: int = 1
    warm_up_s: float = 0.0
    rss_started_mb: float = 0.0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_settled_mb: float = 0.0
    rss_growth_mb: float = 0.0
    settle_s: float = 0.0
    cpus: int = field(default_factory=lambda: os.cpu_count() or 0)
    load_average_before: float = 0.0
    load_average_after: float = 0.0
    ok: bool = False

    def add(self, outcome: Outcome) -> None:
        self.answered += len(outcome.latencies)
        self.errors += len(outcome.errors)
        self.skipped += outcome.skipped
        self.uncited += len(outcome.uncited)
        self.bad_follow_ups += len(outcome.bad_follow_ups)
        for kept, new in (
            (self.error_messages, outcome.errors),
            (self.uncited_examples, outcome.uncited),
            (self.bad_follow_up_examples, outcome.bad_follow_ups),
        ):
            kept += new[: SHOWN_ERRORS - len(kept)]


def run(args: argparse.Namespace) -> Report:
    started = time.monotonic()
    deadline = started + args.timeout
    papers = {p.url for p in parse_collection(DEFAULT_COLLECTION).papers if p.url}
    scripts = [
        [SCRIPTS[c % len(SCRIPTS)][q % 3] for q in range(args.questions)]
        for c in range(args.conversations)
    ]
    report = Report(args.conversations, args.questions, args.conversations * args.questions)
    report.load_average_before = round(os.getloadavg()[0], 2)
    report.warm_up_questions = args.warm_up
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory(prefix="scholar-chat-load-") as work:
        store, log = Path(work) / "store", Path(work) / "serve.log"
        with running_page(store, port, log, deadline) as pid:
            report.startup_s = time.monotonic() - started
            report.rss_started_mb = process_tree_rss_mb(pid)
            progress(args, f"page up on {url} (pid {pid}) after {report.startup_s:.1f} s")

            # The first page load ingests the default collection; then the warm-up answers.
            t0 = time.monotonic()
            try:
                warm = new_client(url, args.request_timeout)
                try:
                    left = max(deadline - time.monotonic(), 1)
                    warm.submit(api_name="/prepare").result(timeout=left)
                    for question, _ in [SCRIPTS[0][q % 3] for q in range(args.warm_up)]:
                        ask(warm, question, deadline, args.request_timeout)
                finally:
                    warm.close()
            except Exception as exc:
                raise RuntimeError(
                    f"the warm-up failed: {type(exc).__name__}: {one_line(exc)}\n{tail(log)}"
                ) from None
            report.warm_up_s = time.monotonic() - t0
            report.rss_before_mb = process_tree_rss_mb(pid)
            progress(
                args,
                f"warmed up in {report.warm_up_s:.1f} s; {report.questions_planned} "
                f"questions in {args.conversations} conversations…",
            )

            t0 = time.monotonic()
            with RssSampler(pid) as sampler:
                pool = ThreadPoolExecutor(max_workers=args.conversations)
                try:
                    futures = [
                        pool.submit(
                            converse, n + 1, url, turns, papers, deadline, args.request_timeout
                        )
                        for n, turns in enumerate(scripts)
                    ]
                    # Every question is bounded by the deadline; a little grace to report it.
                    wait_for(futures, timeout=max(deadline - time.monotonic(), 0) + 10)
                finally:
                    pool.shutdown(wait=False, cancel_futures=True)
            report.wall_s = time.monotonic() - t0
            report.rss_end_mb = process_tree_rss_mb(pid)
            report.rss_peak_mb = max(sampler.peak_mb, report.rss_end_mb)
            latencies: list[float] = []
            for number, future in enumerate(futures, 1):
                if future.done() and not future.cancelled() and future.exception() is None:
                    outcome = future.result()
                else:
                    outcome = Outcome(
                        errors=[f"conversation {number}: did not finish within --timeout"],
                        skipped=args.questions - 1,
                    )
                report.add(outcome)
                latencies += outcome.latencies

            settle = min(args.settle, max(deadline - time.monotonic(), 0))
            progress(args, f"run done in {report.wall_s:.1f} s; idling {settle:.0f} s")
            time.sleep(settle)
            report.settle_s = settle
            report.rss_settled_mb = process_tree_rss_mb(pid)

    report.latency_p50_s = percentile(latencies, 50)
    report.latency_p95_s = percentile(latencies, 95)
    report.latency_max_s = max(latencies, default=0.0)
    report.latency_mean_s = sum(latencies) / len(latencies) if latencies else 0.0
    report.throughput_qps = report.answered / report.wall_s if report.wall_s else 0.0
    report.rss_growth_mb = report.rss_settled_mb - report.rss_before_mb
    report.load_average_after = round(os.getloadavg()[0], 2)
    report.ok = (
        report.answered == report.questions_planned
        and not report.errors
        and not report.uncited
        and not report.bad_follow_ups
    )
    return report


def progress(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def table(report: Report) -> str:
    """The report as a two-column text table, then the first few problems."""
    r = report
    rows = [
        ("conversations x questions", f"{r.conversations} x {r.questions_per_conversation}"),
        ("questions answered", f"{r.answered} / {r.questions_planned}"),
        ("errors", f"{r.errors} (skipped after an error: {r.skipped})"),
        ("answers without a citation", str(r.uncited)),
        ("follow-ups not narrowing their session", str(r.bad_follow_ups)),
        (
            "latency p50 / p95 / max",
            f"{r.latency_p50_s:.2f} / {r.latency_p95_s:.2f} / {r.latency_max_s:.2f} s",
        ),
        ("latency mean", f"{r.latency_mean_s:.2f} s"),
        ("wall time", f"{r.wall_s:.1f} s"),
        ("throughput", f"{r.throughput_qps:.2f} questions/s"),
        ("startup / ingest + warm-up", f"{r.startup_s:.1f} s / {r.warm_up_s:.1f} s"),
        ("RSS page up", f"{r.rss_started_mb:.0f} MiB"),
        (f"RSS before (after {r.warm_up_questions} warm-up q.)", f"{r.rss_before_mb:.0f} MiB"),
        ("RSS peak during run", f"{r.rss_peak_mb:.0f} MiB"),
        ("RSS at end", f"{r.rss_end_mb:.0f} MiB"),
        (f"RSS after {r.settle_s:.0f} s idle", f"{r.rss_settled_mb:.0f} MiB"),
        ("RSS growth (idle - before)", f"{r.rss_growth_mb:+.0f} MiB"),
        (
            "CPUs / load average before, after",
            f"{r.cpus} / {r.load_average_before}, {r.load_average_after}",
        ),
        ("result", "OK" if r.ok else "FAILED"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'metric'.ljust(width)} | value", f"|{'-' * (width + 2)}|------"]
    lines += [f"| {name.ljust(width)} | {value}" for name, value in rows]
    for title, examples in (
        ("errors", r.error_messages),
        ("answers without a citation", r.uncited_examples),
        ("follow-ups not narrowing their session", r.bad_follow_up_examples),
    ):
        if examples:
            lines += ["", f"First {title}:", *(f"  - {e}" for e in examples)]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load-test the chat page: N concurrent gradio_client conversations "
        "against a real `scholar-chat serve` (offline backend, temporary store).",
        epilog="Exit status 1 if any question failed or was skipped, any answer cites no "
        "paper, or a follow-up did not narrow its own session's previous answer.",
    )
    parser.add_argument(
        "--conversations", type=positive, default=50, help="concurrent sessions (default 50)"
    )
    parser.add_argument(
        "--questions",
        type=positive,
        default=3,
        help="questions per conversation: list, follow-up, summary, repeating (default 3)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds for the whole run, server start included (default 600)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=180.0,
        help="seconds per question, queueing included (default 180)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="idle seconds after the run before the last RSS reading (default 5)",
    )
    parser.add_argument(
        "--warm-up",
        type=positive,
        default=1,
        help="questions of one conversation asked before the 'before' RSS reading (default 1)",
    )
    parser.add_argument("--port", type=int, default=0, help="port for the page (default: free)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def terminated(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # so the server is stopped on the way out

    signal.signal(signal.SIGTERM, terminated)
    try:
        report = run(args)
    except KeyboardInterrupt:
        print("interrupted: the chat page was stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report), indent=2) if args.json else table(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
