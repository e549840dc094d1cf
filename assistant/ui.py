"""The chat page: a Gradio Blocks app over the same ``Assistant`` as the command line.

One process serves every browser tab; what belongs to a conversation (its ``Answer``
history, hence follow-ups and the BibTeX export) lives in per-session ``gr.State``, so
two tabs never share a chat. The store, and one ``Assistant`` per backend setting, are
shared. Every event that reads or writes the store runs in one concurrency group of
size one, so an upload never races an answer.

Everything shown from the collection (titles, abstracts, scholar names) is HTML-escaped
and its Markdown syntax neutralised; the only links are papers' own http(s) URLs.
The ``chat`` endpoint (``gradio_client.Client(url).predict(question, api_name="/chat")``)
returns the same Markdown the page shows; a failing backend raises ``gr.Error`` with the
backend's one-line message.
"""

from __future__ import annotations

import atexit
import html
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from assistant.answer import Answer, Assistant
from assistant.citations import Citation, sources_block
from assistant.collection import CollectionError
from assistant.embeddings import EmbeddingModelError
from assistant.ingest import IngestReport, ingest, parse_all
from assistant.keyword_index import SearchFilters
from assistant.llm import BackendError, one_line
from assistant.settings import LLMSettings, Settings
from assistant.store import PaperStore, StoreError, open_store

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported
import gradio as gr

log = logging.getLogger(__name__)

BACKENDS = [
    ("Offline (no model)", "offline"),
    ("OpenAI", "openai"),
    ("OpenAI-compatible server", "openai-compatible"),
    ("llama.cpp (GGUF file)", "llamacpp"),
]
ANY = "Any"
EXAMPLES = [
    "Which papers address federated learning?",
    "Summarise the research on federated learning",
]
USER_ERRORS = (BackendError, CollectionError, StoreError, EmbeddingModelError, ValueError)
MAX_CACHED_BACKENDS = 4
MB = 1024 * 1024
NO_SOURCES = "<p class='sc-empty'>The papers cited by the latest answer appear here.</p>"
CSS = """
.sc-source { margin: 0 0 1.1em 0; }
.sc-source h4 { margin: 0 0 0.2em 0; }
.sc-meta { color: var(--body-text-color-subdued); font-size: 0.9em; margin: 0 0 0.3em 0; }
.sc-abstract mark { padding: 0 0.15em; }
.sc-cut { display: inline-block; font-size: 0.85em; padding: 0 0.4em; border-radius: 4px;
          border: 1px solid var(--border-color-accent); margin-left: 0.4em; }
"""
# System fonts only: the page loads nothing from outside this server.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "Consolas", "monospace"],
)


# ---- answers as Markdown and HTML --------------------------------------------------------

_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]{}#|~!])")
_URL_UNSAFE = re.compile(r"[\s()<>\"'\\\[\]`{}|^]")


def md_text(text: str) -> str:
    """Collection text as inert Markdown: no HTML, no links, no emphasis or code."""
    return html.escape(_MARKDOWN_SYNTAX.sub(r"\\\1", text), quote=False)


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), with characters that could end a link percent-encoded."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), url)


def citation_line(citation: Citation) -> str:
    """``[n] [Title (year)](url)``, or the title unlinked when it has no http(s) link."""
    year = f" ({citation.year})" if citation.year else ""
    label = md_text(citation.title) + year
    url = safe_url(citation.url)
    if url is None:
        return f"[{citation.n}] {label} (no link in the collection)"
    return f"[{citation.n}] [{label}]({url})"


def answer_body(answer: Answer) -> str:
    """The answer text without the plain-text sources list the CLI prints."""
    tail = "\n\n" + sources_block(answer.citations) if answer.citations else ""
    if tail and answer.text.endswith(tail):
        return answer.text[: -len(tail)].rstrip()
    return visible_text(answer.text)


def visible_text(streamed: str) -> str:
    """Streamed text up to the plain sources list (the page shows its own, linked)."""
    return streamed.split("\n\nSources:\n", 1)[0].strip()


_CITATION_MARK = re.compile(r"\\\[(\d{1,4})\\\]")


def md_answer_text(text: str) -> str:
    """Answer text as inert Markdown, its ``[n]`` citation marks kept readable."""
    return _CITATION_MARK.sub(r"[\1]", md_text(text))


def format_answer(answer: Answer, backend_label: str) -> str:
    """The answer as the page shows it: text, linked citations, and who wrote it."""
    parts = [md_answer_text(answer_body(answer))]
    if answer.citations:
        parts.append("**Sources**\n" + "\n".join(citation_line(c) for c in answer.citations))
    parts.append(f"*Answered by {md_text(backend_label)}*")
    return "\n\n".join(parts)


def format_error(message: str) -> str:
    """A failed turn: the one-line problem, and that no other backend stood in."""
    return (
        f"**Error:** {md_text(message)}\n\n*Nothing was answered and no other backend was "
        "tried: choose another backend or fix its settings, then ask again.*"
    )


def mark_sentences(abstract: str, sentences: Sequence[str]) -> str:
    """The abstract as HTML with the supporting sentences in ``<mark>``."""
    spans = sorted(
        (start, start + len(s)) for s in sentences if s and (start := abstract.find(s)) >= 0
    )
    out, position = [], 0
    for start, end in spans:
        start = max(start, position)
        if start >= end:
            continue
        out += [html.escape(abstract[position:start]), "<mark>", html.escape(abstract[start:end])]
        out.append("</mark>")
        position = end
    out.append(html.escape(abstract[position:]))
    missing = [s for s in sentences if s and s not in abstract]
    if missing:
        out.append(" — supporting: " + " ".join(f"<mark>{html.escape(s)}</mark>" for s in missing))
    return "".join(out)


@dataclass(frozen=True)
class SourceView:
    citation: Citation
    abstract: str
    supporting: tuple[str, ...]
    truncated: bool


def render_sources(sources: Sequence[SourceView]) -> str:
    """The sources panel: each cited paper's abstract, supporting sentences marked."""
    if not sources:
        return "<p class='sc-empty'>The latest answer cites no paper.</p>"
    parts = [
        "<div class='sc-sources'><p class='sc-meta'>The papers the latest answer cites; "
        "the sentences that support it are <mark>marked</mark>.</p>"
    ]
    for view in sources:
        c = view.citation
        title = html.escape(c.title)
        url = safe_url(c.url)
        if url:
            title = (
                f"<a href='{html.escape(url, quote=True)}' target='_blank' "
                f"rel='noopener noreferrer nofollow'>{title}</a>"
            )
        year = f" ({c.year})" if c.year else ""
        cut = (
            "<span class='sc-cut' title='The collection holds only the start of this abstract'>"
            "abstract cut short in the collection</span>"
            if view.truncated
            else ""
        )
        abstract = mark_sentences(view.abstract, view.supporting) or "<em>no abstract</em>"
        parts.append(
            f"<section class='sc-source'><h4>[{c.n}] {title}{year}</h4>"
            f"<p class='sc-meta'>{html.escape(c.scholar)}</p>"
            f"<p class='sc-abstract'>{abstract}{cut}</p></section>"
        )
    parts.append("</div>")
    return "".join(parts)


# ---- BibTeX ------------------------------------------------------------------------------

_BIB_SPECIAL = re.compile(r"[\\{}]")
_BIB_ESCAPES = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}"}


def bib_escape(text: str) -> str:
    return _BIB_SPECIAL.sub(lambda m: _BIB_ESCAPES[m[0]], " ".join(text.split()))


def bibtex_key(paper_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_:.-]+", "_", paper_id).strip("_") or "paper"


def cited_papers(answers: Sequence[Answer]) -> list[Citation]:
    """Every paper cited in the conversation, once, in order of first citation."""
    seen: dict[str, Citation] = {}
    for answer in answers:
        for citation in answer.citations:
            seen.setdefault(citation.paper_id, citation)
    return list(seen.values())


def bibtex(answers: Sequence[Answer]) -> str:
    """``@misc`` entries for the papers cited in the conversation."""
    entries, keys = [], set()
    for c in cited_papers(answers):
        key = base = bibtex_key(c.paper_id)
        n = 1
        while key in keys:
            n += 1
            key = f"{base}-{n}"
        keys.add(key)
        fields = {
            "title": c.title,
            "author": c.scholar,
            "year": str(c.year) if c.year else "",
            "url": safe_url(c.url) or "",
        }
        lines = [f"  {name} = {{{bib_escape(value)}}}," for name, value in fields.items() if value]
        entries.append("\n".join([f"@misc{{{key},", *lines, "}"]))
    return "\n\n".join(entries) + "\n" if entries else ""


# ---- the page's filters and backends -------------------------------------------------------


def _year(value: object) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def page_filters(year_from: object, year_to: object, scholar: object) -> SearchFilters:
    low, high = _year(year_from), _year(year_to)
    if low is not None and high is not None and low > high:
        low, high = high, low
    name = str(scholar or "").strip()
    return SearchFilters(
        year_min=low, year_max=high, scholars=(name,) if name and name != ANY else ()
    )


def page_llm(
    base: LLMSettings,
    backend: str,
    base_url: str | None = None,
    model: str | None = None,
    model_path: str | None = None,
    api_key: str | None = None,
) -> LLMSettings:
    """The configured model settings with the page's backend fields on top."""
    valid = [value for _, value in BACKENDS]
    if backend not in valid:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(valid)}")

    def given(value: str | None) -> str | None:
        return (value or "").strip() or None

    update: dict[str, Any] = {"backend": backend, "base_url": None, "model": None}
    if backend == "openai":
        update.update(base_url=base.base_url if base.backend == "openai" else None)
    if backend == "openai-compatible":
        update.update(base_url=given(base_url))
    if backend in ("openai", "openai-compatible"):
        update.update(model=given(model))
    if backend == "llamacpp":
        path = given(model_path)
        update.update(model_path=Path(path).expanduser() if path else None)
    if given(api_key):
        update.update(api_key=SecretStr(given(api_key) or ""))
    return base.model_copy(update=update)


# ---- the shared library: store, assistants, ingest -----------------------------------------


OnProgress = Callable[[int, int], None]
"""Called with (chunks embedded, chunks to embed) as a collection is ingested."""


@dataclass(frozen=True)
class CollectionInfo:
    papers: int
    years: list[int]
    scholars: list[str]

    def describe(self) -> str:
        if not self.papers:
            return "**Collection:** empty."
        who = ", ".join(self.scholars) if len(self.scholars) <= 3 else f"{len(self.scholars)}"
        by = f" by {md_text(who)}" if len(self.scholars) <= 3 else f" by {who} scholars"
        years = f", {self.years[0]} to {self.years[-1]}" if self.years else ""
        return f"**Collection:** {self.papers} papers{by}{years}."


class Library:
    """What every session shares: the store, one assistant per backend, and ingest."""

    def __init__(self, settings: Settings, store: PaperStore | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings, for_writing=True)
        self.lock = threading.RLock()
        self._assistants: OrderedDict[tuple[object, ...], Assistant] = OrderedDict()

    def assistant(self, llm: LLMSettings) -> Assistant:
        """The assistant for these model settings, made once (a local model loads once)."""
        key: tuple[object, ...] = ("offline",)
        if llm.backend != "offline":
            secret = llm.api_key.get_secret_value() if llm.api_key else None
            key = (llm.backend, llm.base_url, llm.model, llm.model_path, secret)
        with self.lock:
            if key in self._assistants:
                self._assistants.move_to_end(key)
                return self._assistants[key]
            made = Assistant(self.settings.model_copy(update={"llm": llm}), self.store)
            self._assistants[key] = made
            while len(self._assistants) > MAX_CACHED_BACKENDS:
                self._assistants.popitem(last=False)
            return made

    def is_empty(self) -> bool:
        return self.store.count_chunks() == 0

    def info(self) -> CollectionInfo:
        return CollectionInfo(self.store.count_papers(), self.store.years(), self.store.scholars())

    def ensure_collection(self, on_progress: OnProgress | None = None) -> IngestReport | None:
        """Ingest the default collection into an empty store; ``None`` if not empty."""
        with self.lock:
            if not self.is_empty():
                return None
            path = self.settings.default_collection
            print(f"The store is empty: ingesting the default collection {path}", file=sys.stderr)
            report = ingest(parse_all([path]), self.store, self.settings, on_progress)
            print(f"Ingested {report.summary()}.", file=sys.stderr)
            return report

    def add_collection(self, path: Path, on_progress: OnProgress | None = None) -> IngestReport:
        """Parse the whole file first: a bad file leaves the store as it was."""
        with self.lock:
            collections = parse_all([path])
            return ingest(collections, self.store, self.settings, on_progress)

    def sources(self, answer: Answer, assistant: Assistant) -> list[SourceView]:
        """Each cited paper's abstract and the sentences that best support the answer."""
        if not answer.citations:
            return []
        ids = tuple(c.paper_id for c in answer.citations)
        hits = {
            h.paper_id: h
            for h in assistant.retriever.browse(SearchFilters(paper_ids=ids), len(ids))
        }
        found = [c for c in answer.citations if c.paper_id in hits]
        per_paper, bonus = {"list": (1, 0.1), "summary": (2, 0.3)}.get(answer.kind, (2, 0.1))
        evidence = assistant.offline.evidence(
            answer.topic, [hits[c.paper_id] for c in found], per_paper=per_paper, contribution=bonus
        )
        return [
            SourceView(
                c,
                hits[c.paper_id].abstract,
                tuple(sentences),
                hits[c.paper_id].truncated,
            )
            for c, sentences in zip(found, evidence, strict=True)
        ]


# ---- the page ------------------------------------------------------------------------------


def upload_limit_bytes(settings: Settings) -> int:
    """The largest upload the page accepts, in bytes (``ui.max_upload_mb``)."""
    return int(settings.ui.max_upload_mb * MB)


def too_large(path: Path, settings: Settings) -> str | None:
    """Why an uploaded file is refused for its size, or ``None``: big files go through the CLI."""
    size = path.stat().st_size
    if size <= upload_limit_bytes(settings):
        return None
    return (
        f"{path.name} is {size / MB:.1f} MB, over the page's limit of "
        f"{settings.ui.max_upload_mb:g} MB (ui.max_upload_mb); ingest it with "
        "scholar-chat ingest instead"
    )


def _collection_error(exc: CollectionError) -> str:
    """``name:line: problem`` with the uploaded file's own name, not its temp path."""
    where = Path(exc.path).name + (f":{exc.line}" if exc.line else "")
    return f"{where}: {exc.problem}"


def _user_message(exc: Exception) -> str:
    """A problem the user can fix, as one line (a bad file named as the user knows it)."""
    return one_line(_collection_error(exc) if isinstance(exc, CollectionError) else str(exc))


def build_app(settings: Settings, store: PaperStore | None = None) -> gr.Blocks:
    """The chat page. ``store`` defaults to the one ``settings`` names (opened now)."""
    library = Library(settings, store)
    exports = Path(tempfile.mkdtemp(prefix="scholar-chat-bib-"))
    atexit.register(shutil.rmtree, exports, ignore_errors=True)
    llm = settings.llm
    group = {"concurrency_id": "store", "concurrency_limit": 1}

    def answering(
        backend: str, base_url: str, model: str, model_path: str, api_key: str
    ) -> Assistant:
        return library.assistant(page_llm(llm, backend, base_url, model, model_path, api_key))

    def turn(
        assistant: Assistant, question: str, answers: list[Answer], filters: SearchFilters
    ) -> Iterator[tuple[str, Answer | None]]:
        """(text so far, the answer once it is complete) as the answer streams."""
        library.ensure_collection()
        streamed = ""
        for event in assistant.stream(question, answers or [], filters):
            streamed += event.delta
            yield streamed, event.answer
            if event.answer is not None:
                return
        raise RuntimeError("the answer stream ended without an answer")

    def export(answers: list[Answer]) -> str | None:
        """A .bib file of the papers cited in this conversation (none if none is cited)."""
        text = bibtex(answers or [])
        if not text:
            return None
        path = exports / uuid.uuid4().hex / "scholar-chat-citations.bib"
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        return str(path)

    def respond(
        question: str,
        chat: list[Any],
        answers: list[Answer],
        backend: str,
        base_url: str,
        model: str,
        model_path: str,
        api_key: str,
        year_from: str,
        year_to: str,
        scholar: str,
    ) -> Iterator[tuple[Any, ...]]:
        """The page's chat: the question, then the answer streaming in, then its sources."""
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chat = [
            *(chat or []),
            {"role": "user", "content": md_text(question)},
            {"role": "assistant", "content": "*Searching the papers…*"},
        ]
        yield "", chat, gr.skip(), gr.skip()
        try:
            assistant = answering(backend, base_url, model, model_path, api_key)
            filters = page_filters(year_from, year_to, scholar)
            for text, answer in turn(assistant, question, answers, filters):
                if answer is None:
                    if shown := visible_text(text):
                        chat[-1] = {"role": "assistant", "content": md_answer_text(shown)}
                        yield gr.skip(), chat, gr.skip(), gr.skip()
                    continue
                shown = format_answer(answer, assistant.backend_label)
                chat[-1] = {"role": "assistant", "content": shown}
                sources = render_sources(library.sources(answer, assistant))
                yield gr.skip(), chat, [*(answers or []), answer], sources
        except USER_ERRORS as exc:
            chat[-1] = {"role": "assistant", "content": format_error(_user_message(exc))}
            yield gr.skip(), chat, gr.skip(), gr.skip()
        except Exception as exc:
            log.exception("the chat page failed to answer")
            chat[-1] = {
                "role": "assistant",
                "content": format_error(f"unexpected failure: {one_line(exc)}"),
            }
            yield gr.skip(), chat, gr.skip(), gr.skip()

    def chat(
        message: str,
        answers: list[Answer],
        backend: str = "offline",
        base_url: str = "",
        model: str = "",
        model_path: str = "",
        api_key: str = "",
        year_from: str = ANY,
        year_to: str = ANY,
        scholar: str = ANY,
    ) -> Iterator[tuple[Any, ...]]:
        """Answer a question (a follow-up within this client's session), citing papers.

        Returns the answer as Markdown, ending with its numbered, linked sources and the
        backend that wrote it; a failing backend is an error with one line of text.
        """
        try:
            assistant = answering(backend, base_url, model, model_path, api_key)
            filters = page_filters(year_from, year_to, scholar)
            for text, answer in turn(assistant, message, answers, filters):
                if answer is None:
                    yield md_answer_text(visible_text(text)), gr.skip()
                else:
                    yield format_answer(answer, assistant.backend_label), [*(answers or []), answer]
        except USER_ERRORS as exc:
            raise gr.Error(_user_message(exc), print_exception=False) from None
        except Exception as exc:
            log.exception("the chat endpoint failed to answer")
            raise gr.Error(f"unexpected failure: {one_line(exc)}", print_exception=False) from None

    def collection_status() -> tuple[Any, ...]:
        info = library.info()
        years = [ANY, *map(str, info.years)]
        return (
            info.describe(),
            gr.Dropdown(choices=years),
            gr.Dropdown(choices=years),
            gr.Dropdown(choices=[ANY, *info.scholars]),
        )

    def prepare(progress: gr.Progress = gr.Progress()) -> Iterator[tuple[Any, ...]]:  # noqa: B008
        """On page load: ingest the default collection into an empty store, with progress."""
        note = ""
        try:
            if library.is_empty():
                name = html.escape(settings.default_collection.name)
                yield (
                    f"**The store is empty:** ingesting the default collection `{name}`…",
                    gr.skip(),
                    gr.skip(),
                    gr.skip(),
                )
                progress(0, desc="Ingesting the default collection")
                report = library.ensure_collection(
                    lambda done, total: progress(
                        done / max(total, 1),
                        desc=f"Ingesting the default collection: {done}/{total} chunks",
                    )
                )
                if report:
                    note = f"Ingested the default collection: {report.summary()}.\n\n"
            status = collection_status()
            yield (note + status[0], *status[1:])
        except USER_ERRORS as exc:
            yield f"**Error:** {md_text(_user_message(exc))}", gr.skip(), gr.skip(), gr.skip()

    def upload(path: str | None, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        """Ingest an uploaded collection (.md or .jsonl); a bad or too big file changes nothing."""
        if not path:
            return ""
        name = Path(path).name
        if refused := too_large(Path(path), settings):
            return f"**Not ingested:** {md_text(refused)}.\n\nThe collection is unchanged."
        progress(0, desc=f"Reading {name}")
        try:
            report = library.add_collection(
                Path(path),
                lambda done, total: progress(
                    done / max(total, 1), desc=f"Ingesting {name}: {done}/{total} chunks"
                ),
            )
        except CollectionError as exc:
            return (
                f"**Not ingested:** {md_text(_collection_error(exc))}\n\n"
                "The collection is unchanged: fix the file and upload it again."
            )
        except USER_ERRORS as exc:
            return f"**Not ingested:** {md_text(one_line(str(exc)))}"
        warnings = "".join(
            f"\n- {md_text(Path(w.split(':', 1)[0]).name + ':' + w.split(':', 1)[-1])}"
            for w in report.warnings
        )
        return f"**Ingested {md_text(name)}:** {report.summary()}." + (
            f"\n\nWarnings:{warnings}" if warnings else ""
        )

    def backend_fields(backend: str) -> tuple[Any, ...]:
        return (
            gr.Textbox(visible=backend == "openai-compatible"),
            gr.Textbox(visible=backend in ("openai", "openai-compatible")),
            gr.Textbox(visible=backend == "llamacpp"),
            gr.Textbox(visible=backend in ("openai", "openai-compatible")),
        )

    first_backend = llm.backend
    known = library.info()
    years = [ANY, *map(str, known.years)]
    with gr.Blocks(title="Scholar Chat", analytics_enabled=False) as demo:
        answers = gr.State([])
        gr.Markdown(
            "# Scholar Chat\nAsk about the papers in the collection; every answer cites "
            "the papers it draws on."
        )
        status = gr.Markdown(known.describe(), elem_id="collection-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    elem_id="chat",
                    height=560,
                    feedback_options=None,
                    buttons=["copy"],
                    latex_delimiters=[],
                    allow_tags=False,
                    sanitize_html=True,
                    placeholder="Ask a question about the papers, or pick an example below.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        show_label=False,
                        placeholder="Ask about the papers…",
                        elem_id="question",
                        scale=5,
                        max_lines=4,
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", elem_id="ask", scale=1)
                gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question])
                with gr.Accordion("Sources of the latest answer", open=False, elem_id="sources"):
                    sources = gr.HTML(NO_SOURCES, elem_id="sources-html")
            with gr.Column(scale=1, min_width=280):
                with gr.Group():
                    backend = gr.Dropdown(
                        BACKENDS,
                        value=first_backend,
                        label="Model backend",
                        info="Used from the next question on; each answer names its backend.",
                        elem_id="backend",
                    )
                    base_url = gr.Textbox(
                        value=llm.base_url or "",
                        label="Base URL",
                        placeholder="http://127.0.0.1:11434/v1",
                        elem_id="base-url",
                        visible=first_backend == "openai-compatible",
                    )
                    model = gr.Textbox(
                        value=llm.model or "",
                        label="Model",
                        placeholder="server default",
                        elem_id="model",
                        visible=first_backend in ("openai", "openai-compatible"),
                    )
                    model_path = gr.Textbox(
                        value=str(llm.model_path or ""),
                        label="GGUF model file",
                        placeholder="path on the server; default: the packaged SmolLM2",
                        elem_id="model-path",
                        visible=first_backend == "llamacpp",
                    )
                    api_key = gr.Textbox(
                        value="",
                        type="password",
                        label="API key",
                        placeholder="default: the configured key or OPENAI_API_KEY",
                        elem_id="api-key",
                        visible=first_backend in ("openai", "openai-compatible"),
                    )
                with gr.Group():
                    with gr.Row():
                        year_from = gr.Dropdown(
                            years,
                            value=ANY,
                            label="From year",
                            allow_custom_value=True,
                            elem_id="year-from",
                        )
                        year_to = gr.Dropdown(
                            years,
                            value=ANY,
                            label="To year",
                            allow_custom_value=True,
                            elem_id="year-to",
                        )
                    scholar = gr.Dropdown(
                        [ANY, *known.scholars],
                        value=ANY,
                        label="Scholar",
                        allow_custom_value=True,
                        elem_id="scholar",
                    )
                export_button = gr.DownloadButton(
                    "Export BibTeX", interactive=False, elem_id="export", variant="secondary"
                )
                clear = gr.Button("New conversation", elem_id="clear")
                upload_file = gr.File(
                    label="Add a collection (.md or .jsonl)",
                    file_types=[".md", ".markdown", ".jsonl", ".gz"],
                    elem_id="upload",
                )
                upload_status = gr.Markdown(elem_id="upload-status")

        # The API endpoint: the same answer as the page's, as Markdown text.
        api_question = gr.Textbox(visible=False)
        api_answer = gr.Markdown(visible=False)
        api_button = gr.Button(visible=False)

        settings_inputs = [backend, base_url, model, model_path, api_key, year_from, year_to]
        settings_inputs.append(scholar)
        demo.load(
            prepare,
            None,
            [status, year_from, year_to, scholar],
            api_name="prepare",
            show_progress_on=[status],
            **group,
        )
        gr.on(
            [question.submit, send.click],
            respond,
            [question, chatbot, answers, *settings_inputs],
            [question, chatbot, answers, sources],
            api_visibility="private",
            show_progress="minimal",
            **group,
        ).then(export, [answers], [export_button], api_name="bibtex").then(
            lambda path: gr.DownloadButton(interactive=bool(path)),
            [export_button],
            [export_button],
            api_visibility="private",
            queue=False,
        )
        api_button.click(
            chat,
            [api_question, answers, *settings_inputs],
            [api_answer, answers],
            api_name="chat",
            **group,
        )
        backend.change(
            backend_fields,
            [backend],
            [base_url, model, model_path, api_key],
            api_visibility="private",
            queue=False,
        )

        def new_conversation() -> tuple[Any, ...]:
            return [], [], NO_SOURCES, gr.DownloadButton(value=None, interactive=False)

        conversation = [chatbot, answers, sources, export_button]
        clear.click(new_conversation, None, conversation, api_visibility="private", queue=False)
        chatbot.clear(new_conversation, None, conversation, api_visibility="private", queue=False)
        uploaded = upload_file.upload(
            upload, [upload_file], [upload_status], api_name="upload", **group
        )
        uploaded.then(lambda: None, None, [upload_file], api_visibility="private", queue=False)
        uploaded.then(
            collection_status,
            None,
            [status, year_from, year_to, scholar],
            api_visibility="private",
            **group,
        )
    demo.queue(default_concurrency_limit=1)
    return demo


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    *,
    block: bool = True,
    store: PaperStore | None = None,
) -> gr.Blocks:
    """Serve the chat page; with ``block=False`` return the running app (``.close()`` it)."""
    demo = build_app(settings, store)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=not block,
        show_error=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        max_file_size=upload_limit_bytes(settings),  # gradio refuses larger uploads first
        state_session_capacity=settings.ui.max_sessions,
        run_history=False,  # it would keep questions in the browser and offer a cloud bucket
        footer_links=["api", "settings"],
        theme=THEME,
        css=CSS,
    )
    return demo


def serve_command(
    settings: Settings, host: str = "127.0.0.1", port: int = 7860, share: bool = False
) -> None:
    """``scholar-chat serve``: a problem the user can fix exits with one ``error:`` line."""
    if not _is_loopback(host) and not share:
        print(
            f"warning: serving on {host}: anyone who can reach port {port} can use the page",
            file=sys.stderr,
        )
    if share:
        print("warning: --share makes the page public through a gradio.live link", file=sys.stderr)
    try:
        store = open_store(settings, for_writing=True)
        serve(settings, host, port, share, store=store)
    except (StoreError, EmbeddingModelError, CollectionError) as exc:
        raise SystemExit(f"error: {one_line(exc)}") from None
    except OSError as exc:  # the port is taken, or the host is not this machine's
        raise SystemExit(f"error: cannot serve on {host}:{port}: {one_line(exc)}") from None
