"""The chat page, served in-process on 127.0.0.1 and driven through ``gradio_client``.

One page over a fresh store (so its first start ingests the default collection) serves
the API tests; the rendering, escaping and BibTeX helpers are tested directly.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path

import gradio as gr
import huggingface_hub.constants
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from markdown_it import MarkdownIt

from assistant import ui
from assistant.answer import Answer
from assistant.citations import Citation
from assistant.collection import parse_collection
from assistant.keyword_index import SearchFilters
from assistant.settings import DEFAULT_COLLECTION, load_settings
from assistant.store import PaperStore
from tests.conftest import FEDERATED_TITLES, free_port, open_store

# Gradio's queue statistics use pandas options that pandas 3 deprecates: not ours to fix.


QUESTION = "Which papers address federated learning?"
FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Page:
    demo: gr.Blocks
    store: PaperStore
    first_status: tuple[object, ...]

    @property
    def url(self) -> str:
        return str(self.demo.local_url)

    def client(self) -> Client:
        """A new client is a new session: its own conversation."""
        return Client(self.url, verbose=False)

    def papers(self) -> int:
        return len(self.store.manifest())


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    settings = load_settings(store=tmp_path_factory.mktemp("ui") / "store")
    store = open_store(settings)
    demo = ui.serve(settings, "127.0.0.1", free_port(), block=False, store=store)
    with pytest.MonkeyPatch.context() as patch:
        # gradio_client's huggingface_hub would phone home (telemetry, agent registry).
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
        try:
            first_status = Client(str(demo.local_url), verbose=False).predict(api_name="/prepare")
            yield Page(demo, store, first_status)
        finally:
            demo.close()


def citation_links(text: str) -> dict[str, tuple[int, str]]:
    """Title -> (year, url) for every ``[n] [Title (year)](url)`` line."""
    found = re.findall(r"^\[\d+\] \[(.+) \((\d{4})\)\]\((https?://[^)\s]+)\)$", text, re.M)
    return {title: (int(year), url) for title, year, url in found}


# ---- the served page -------------------------------------------------------------------


def test_first_start_ingests_the_default_collection(page: Page) -> None:
    status = str(page.first_status[0])
    assert "Ingested the default collection: 24 papers (24 added" in status
    assert "**Collection:** 24 papers by YuhaoZhou" in status
    assert page.papers() == 24


def test_page_binds_loopback_only(page: Page) -> None:
    assert page.url.startswith("http://127.0.0.1:")


def test_chat_answer_links_all_federated_papers(page: Page) -> None:
    text = page.client().predict(QUESTION, api_name="/chat")
    links = citation_links(text)
    assert set(links) == FEDERATED_TITLES
    assert all(url.startswith("https://") for _, url in links.values())
    assert text.startswith("5 papers in the collection address federated learning")
    assert text.rstrip().endswith("*Answered by offline*")


def test_chat_streams_the_answer(page: Page) -> None:
    job = page.client().submit(QUESTION, api_name="/chat")
    final = job.result()
    pieces = [str(out[0] if isinstance(out, tuple | list) else out) for out in job.outputs()]
    assert len(pieces) >= 3 and pieces[-1] == final
    assert pieces[0].startswith("5 papers") and "**Sources**" not in pieces[0]
    assert all(len(a) <= len(b) for a, b in pairwise(pieces))


def test_follow_ups_use_this_sessions_history_only(page: Page) -> None:
    client = page.client()
    client.predict(QUESTION, api_name="/chat")
    follow_up = client.predict("Which of those were published in 2024?", api_name="/chat")
    links = citation_links(follow_up)
    assert len(links) == 3 and set(links) < FEDERATED_TITLES
    assert {year for year, _ in links.values()} == {2024}
    assert "among the papers of the previous answer" in follow_up
    # Another session has no previous answer to narrow.
    fresh = page.client().predict("Which of those were published in 2024?", api_name="/chat")
    assert "among the papers of the previous answer" not in fresh


def test_page_filters_narrow_the_answer(page: Page) -> None:
    text = page.client().predict(QUESTION, year_from="2025", api_name="/chat")
    links = citation_links(text)
    assert len(links) == 2 and {year for year, _ in links.values()} == {2025}
    assert "published in 2025 or later" in text
    nobody = page.client().predict(QUESTION, scholar="Nobody", api_name="/chat")
    assert citation_links(nobody) == {} and "by Nobody" in nobody


def test_bibtex_export_of_the_conversation(page: Page) -> None:
    client = page.client()
    answer = client.predict(QUESTION, api_name="/chat")
    path = client.predict(api_name="/bibtex")
    assert path and Path(path).name == "scholar-chat-citations.bib"
    bib = Path(path).read_text(encoding="utf-8")
    entries = re.findall(r"@misc\{([^,]+),\n((?:  \w+ = \{.*\},\n)+)\}", bib)
    assert len(entries) == 5
    fields = [dict(re.findall(r"  (\w+) = \{(.*)\},", body)) for _, body in entries]
    assert {f["title"] for f in fields} == FEDERATED_TITLES
    assert {f["author"] for f in fields} == {"YuhaoZhou"}
    links = citation_links(answer)
    assert {f["url"] for f in fields} == {url for _, url in links.values()}
    assert {f["year"] for f in fields} == {str(year) for year, _ in links.values()}
    assert {key for key, _ in entries} <= set(page.store.manifest())  # keys are paper ids


def test_bibtex_export_is_empty_before_any_citation(page: Page) -> None:
    assert page.client().predict(api_name="/bibtex") is None


def test_failing_backend_is_one_clear_line_and_no_silent_switch(page: Page) -> None:
    closed = free_port()
    client = page.client()
    with pytest.raises(AppError) as failure:
        client.predict(
            QUESTION,
            backend="openai-compatible",
            base_url=f"http://127.0.0.1:{closed}/v1",
            api_name="/chat",
        )
    message = str(failure.value)
    assert f"openai-compatible (http://127.0.0.1:{closed}/v1, default model) failed" in message
    assert "Traceback" not in message and "\n" not in message.strip()
    # Nothing was switched: asking offline again answers offline.
    text = client.predict(QUESTION, backend="offline", api_name="/chat")
    assert len(citation_links(text)) == 5 and "*Answered by offline*" in text


def test_switch_to_a_real_local_model_server_and_back(page: Page, llama_server: str) -> None:
    """The page on a real llama.cpp server (SmolLM2-135M): its guarantees, then back."""
    client = page.client()
    local = {"backend": "openai-compatible", "base_url": llama_server, "model": "smollm2"}
    refusal = client.predict(
        "What is the best recipe for chocolate cake?", api_name="/chat", **local
    )
    assert refusal.startswith("No paper in the collection answers")
    assert f"*Answered by openai-compatible ({llama_server}, smollm2)*" in refusal
    try:
        listed = client.predict(QUESTION, api_name="/chat", **local)
    except AppError as failure:  # the tiny model may fail: one line naming it, no switch
        assert str(failure).count("openai-compatible (") == 1
    else:
        own = {p.title: (p.year, p.url) for p in parse_collection(DEFAULT_COLLECTION).papers}
        assert all(own[title] == link for title, link in citation_links(listed).items())
        assert "smollm2" in listed
    text = client.predict(QUESTION, backend="offline", api_name="/chat")
    assert len(citation_links(text)) == 5 and "*Answered by offline*" in text


def test_backend_without_base_url_says_so(page: Page) -> None:
    with pytest.raises(AppError, match="openai-compatible backend: no --base-url"):
        page.client().predict(QUESTION, backend="openai-compatible", api_name="/chat")


def test_bad_upload_names_the_line_and_leaves_the_store(page: Page, tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text(
        "## Someone Papers\n\n| Year | Title | Abstract | Link |\n|---|---|---|---|\n"
        "| 2024 | Fine | A fine abstract. | https://example.org/fine |\n"
        "| 2024 | Broken | An abstract | with a pipe. | https://example.org/broken |\n",
        encoding="utf-8",
    )
    before, chunks = page.papers(), page.store.count_chunks()
    status = page.client().predict(handle_file(str(bad)), api_name="/upload")
    assert "**Not ingested:** bad.md:6: row has 5 cells but the header has 4" in status
    assert "The collection is unchanged" in status
    assert (page.papers(), page.store.count_chunks()) == (before, chunks)


def test_good_upload_is_ingested(page: Page) -> None:
    before = page.papers()
    status = page.client().predict(handle_file(str(FIXTURES / "messy.md")), api_name="/upload")
    assert status.startswith("**Ingested messy.md:** 5 papers (5 added")
    assert "messy.md:12: duplicate of line 9" in status  # the warning, with its line
    assert page.papers() == before + 5


def test_empty_question_is_a_clear_error(page: Page) -> None:
    with pytest.raises(AppError, match="the question is empty"):
        page.client().predict("   ", api_name="/chat")


GUARDED_SERVER = """
import socket, sys
log = open(sys.argv[1], "a")

def _check(address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if not str(host).startswith(("127.", "::1", "localhost")):
        log.write(f"connect {address}\\n"); log.flush()
        raise OSError("network access blocked by the test")

_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
def connect(self, address):
    if self.family != socket.AF_UNIX:
        _check(address)
    return _connect(self, address)
def getaddrinfo(host, *args, **kwargs):
    _check((host,))
    return _getaddrinfo(host, *args, **kwargs)
socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo

from assistant.settings import load_settings
from assistant.ui import serve
serve(load_settings(store=sys.argv[2]), port=int(sys.argv[3]))
"""


def test_serving_and_answering_opens_no_outside_connection(
    default_store_path: Path, tmp_path: Path
) -> None:
    log, port = tmp_path / "connections.log", free_port()
    log.touch()
    server = subprocess.Popen(
        [sys.executable, "-c", GUARDED_SERVER, str(log), str(default_store_path), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                page_html = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "the page did not start in 90 s"
                time.sleep(0.3)
        assert "Scholar Chat" in page_html
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
            patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
            text = Client(url, verbose=False).predict(QUESTION, api_name="/chat")
        assert len(citation_links(text)) == 5
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert log.read_text() == ""


# ---- rendering: escaping, links, sources, BibTeX ----------------------------------------

EVIL = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) <script>x</script>"


class Tags(HTMLParser):
    """The tags and link targets of an HTML fragment."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.hrefs: list[str] = []
        self.feed(fragment)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs += [value or "" for name, value in attrs if name in ("href", "src")]


def rendered(markdown: str) -> Tags:
    """The Markdown as a browser would get it, raw HTML allowed (the worst case)."""
    return Tags(MarkdownIt("commonmark", {"html": True}).render(markdown))


def evil_citation(url: str | None = "javascript:alert(1)") -> Citation:
    return Citation(1, "id{1}", f"Title {EVIL}", 2024, url, "Eve <b>")


def test_citation_lines_link_only_http() -> None:
    bad = ui.citation_line(evil_citation())
    assert rendered(bad).tags == {"p"} and rendered(bad).hrefs == []
    assert bad.endswith("(no link in the collection)")
    good = ui.citation_line(evil_citation("https://example.org/a_(b) c"))
    assert rendered(good).tags == {"p", "a"}
    assert rendered(good).hrefs == ["https://example.org/a_%28b%29%20c"]
    assert "<img src=x onerror=alert(1)> [click](javascript:alert(1))" in html.unescape(
        re.sub(r"<[^>]+>", "", MarkdownIt().render(good))
    )  # the title reads as it is written


def test_answer_text_is_escaped() -> None:
    answer = Answer(
        question="q",
        text=f"Body {EVIL} [1]\n\nSources:\n[1] whatever",
        citations=[evil_citation("http://example.org/x")],
        backend="offline",
        kind="list",
    )
    shown = ui.format_answer(answer, "offline <b>")
    page = rendered(shown)
    assert page.tags <= {"p", "a", "br", "strong", "em"}
    assert page.hrefs == ["http://example.org/x"]
    assert "Body &lt;img" in shown and " [1]\n\n**Sources**\n[1] [Title" in shown
    assert shown.endswith("*Answered by offline &lt;b&gt;*")


def test_sources_panel_escapes_and_marks() -> None:
    abstract = f"First {EVIL}. The supporting sentence is here. Last one…"
    views = [
        ui.SourceView(evil_citation(), abstract, ("The supporting sentence is here.",), True),
        ui.SourceView(
            Citation(2, "p2", "Plain", None, "https://example.org/p?a=1&b='x'", "Bob"),
            "Only sentence.",
            ("Not in the abstract.",),
            False,
        ),
    ]
    panel = ui.render_sources(views)
    parsed = Tags(panel)
    assert parsed.tags <= {"div", "p", "section", "h4", "a", "mark", "span"}
    assert parsed.hrefs == ["https://example.org/p?a=1&b=%27x%27"]  # only the http(s) link
    assert "<mark>The supporting sentence is here.</mark>" in panel
    assert panel.count("abstract cut short in the collection") == 1  # the truncated one
    assert "supporting: <mark>Not in the abstract.</mark>" in panel


def test_bibtex_escapes_braces_and_dedupes() -> None:
    first = Citation(1, "abc/1", "A {Braced} \\ title", 2024, "https://example.org/a", "Ann")
    other = Citation(1, "abc 1", "B", None, "javascript:x", "Bo}b")
    answers = [
        Answer("q", "t", [first], "offline", "list"),
        Answer("q", "t", [first, other], "offline", "list"),
    ]
    bib = ui.bibtex(answers)
    assert bib.count("@misc{") == 2
    assert "@misc{abc_1,\n  title = {A \\{Braced\\} \\textbackslash{} title}," in bib
    assert "@misc{abc_1-2,\n  title = {B},\n  author = {Bo\\}b},\n}" in bib  # no year, no url
    assert ui.bibtex([]) == ""


def test_page_filters_combine_with_the_questions() -> None:
    page = ui.page_filters("2025", "2024", "Ann")  # reversed years are swapped
    assert page == SearchFilters(year_min=2024, year_max=2025, scholars=("Ann",))
    assert ui.page_filters(ui.ANY, "", ui.ANY).is_empty()
    asked = SearchFilters(year_min=2025, scholars=("Bob",))
    both = asked.narrowed_by(page)
    assert both == SearchFilters(year_min=2025, year_max=2025, scholars=("Ann",))
    narrowed = SearchFilters(paper_ids=("a",))
    assert narrowed.narrowed_by(page).paper_ids == ("a",)


def test_page_llm_uses_only_the_chosen_backends_fields() -> None:
    base = load_settings().llm
    llm = ui.page_llm(base, "openai-compatible", " http://h:1/v1 ", "m", "/x.gguf", "")
    assert (llm.backend, llm.base_url, llm.model, llm.api_key) == (
        "openai-compatible",
        "http://h:1/v1",
        "m",
        None,
    )
    assert ui.page_llm(base, "openai", "http://h:1/v1", "", "", "sk-x").base_url is None
    assert ui.page_llm(base, "llamacpp", model_path="/m.gguf").model_path == Path("/m.gguf")
    with pytest.raises(ui.BackendError, match="unknown backend"):
        ui.page_llm(base, "gpt-17")
