"""Bad input as a user meets it: every bad file and question is refused in one clear line.

Every file case runs the real ``scholar-chat ingest`` against a copy of a store that already
holds the default collection. A refused file: exit status 1, exactly one stderr line naming
the file, the line and the problem, no traceback, and the store's files byte for byte as
they were. An accepted oddity (no link, a duplicated link, pipes and line breaks in cells):
exit status 0, its warnings, and exactly the papers it should add. Questions go through the
CLI, the ``Assistant`` API and the chat page; uploads through the page's size limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import httpx
import huggingface_hub.constants
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from assistant import ui
from assistant.answer import Answer, Assistant
from assistant.collection import parse_collection
from assistant.settings import DEFAULT_COLLECTION, load_settings
from assistant.store import PaperStore
from tests.conftest import free_port, open_store

SCHOLAR = "Bad Input"
HEADER = f"## {SCHOLAR} Papers (2024)\n\n| Year | Title | Abstract | Link |\n|---|---|---|---|\n"
FINE = "| 2024 | A Fine Paper | A fine abstract. | https://example.org/fine |\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"


def scholar_chat(
    *args: str | Path,
    prefix: tuple[str, ...] = (),
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it (``prefix`` runs it through another program)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "assistant", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def snapshot(store: Path) -> dict[str, str]:
    """Every file of the store and a hash of its bytes: "unchanged" means all of them."""
    return {
        str(path.relative_to(store)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(store.rglob("*"))
        if path.is_file()
    }


def unprivileged() -> tuple[str, ...]:
    """A prefix under which file modes bind: root ignores them unless it drops the capability."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root ignores file modes, and setpriv is not here to drop that power")
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--")


@pytest.fixture
def seeded(default_store_path: Path, tmp_path: Path) -> Path:
    """A store of this test's own that already holds the default collection."""
    store = tmp_path / "store"
    shutil.copytree(default_store_path, store)
    return store


# ---- the table of collection files --------------------------------------------------------


@dataclass(frozen=True)
class FileCase:
    """A collection file and what ``ingest`` must do with it.

    A refused file names ``problem`` at ``line``; an accepted one prints ``warnings``
    (line, problem) and stores exactly ``stored``: (title, year, url, abstract) per paper.
    """

    id: str
    name: str
    content: bytes | None  # None: the path does not exist
    line: int | None = None
    problem: str = ""
    warnings: tuple[tuple[int, str], ...] = ()
    stored: tuple[tuple[str, int | None, str, str], ...] = ()
    locked_store: bool = False  # the store directory is not writable


def md(*rows: str) -> bytes:
    return (HEADER + "".join(rows)).encode()


FILE_CASES = [
    FileCase("missing", "missing.md", None, problem="no such file"),
    FileCase("empty", "empty.md", b"", problem="the file is empty"),
    FileCase("blank", "blank.md", b"  \n\n\t\n", problem="the file is empty"),
    FileCase("binary", "picture.md", PNG, problem="binary file, not a text collection"),
    FileCase(
        "latin-1",
        "latin.md",
        md(FINE) + "| 2024 | Café | An abstract. | |\n".encode("latin-1"),
        line=6,
        problem="not UTF-8 (byte 0xe9); save the file as UTF-8",
    ),
    FileCase(
        "utf-16-without-bom",
        "wide.md",
        (HEADER + FINE).encode("utf-16-le"),
        problem="UTF-16 without a byte-order mark; save the file as UTF-8",
    ),
    FileCase(
        "markdown-without-table",
        "prose.md",
        b"# Papers\n\nSome prose | with a pipe, but no table.\n",
        problem="no table with a Title | Abstract header found",
    ),
    FileCase(
        "no-abstract-column",
        "titles.md",
        f"## {SCHOLAR} Papers\n\n| Year | Title |\n|---|---|\n| 2024 | A |\n".encode(),
        line=3,
        problem="the table header has no abstract column",
    ),
    FileCase(
        "too-few-cells",
        "few.md",
        md(FINE, "| 2024 | Short Row |\n"),
        line=6,
        problem="row has 2 cells but the header has 4",
    ),
    FileCase(
        "too-many-cells",
        "many.md",
        md("| 2024 | A | An a|b abstract. | https://example.org/a |\n"),
        line=5,
        problem="row has 5 cells but the header has 4 "
        "(an unescaped '|' inside a cell? write it as \\|)",
    ),
    FileCase(
        "raw-line-break-in-cell",
        "broken.md",
        md("| 2024 | A | First line\nsecond line. | https://example.org/a |\n"),
        line=5,
        problem="row has 3 cells but the header has 4 "
        "(a line break inside a cell? write it as <br>)",
    ),
    FileCase(
        "year-not-a-year",
        "year.md",
        md("| 20x4 | A | An abstract. | |\n"),
        line=5,
        problem="year '20x4' is not a year",
    ),
    FileCase(
        "year-out-of-range",
        "old.md",
        md(FINE, "| 1066 | A | An abstract. | |\n"),
        line=6,
        problem="year '1066' is not a year",
    ),
    FileCase(
        "malformed-link",
        "typo.md",
        md("| 2024 | A | An abstract. | [Link](htps//example.org/a) |\n"),
        line=5,
        problem="link '[Link](htps//example.org/a)' is not an http(s) URL",
    ),
    FileCase(
        "javascript-link",
        "script.md",
        md("| 2024 | A | An abstract. | [Link](javascript:alert(1)) |\n"),
        line=5,
        problem="link '[Link](javascript:alert(1))' is not an http(s) URL",
    ),
    FileCase(
        "empty-title",
        "untitled.md",
        md("| 2024 |  | An abstract. | |\n"),
        line=5,
        problem="the title is empty",
    ),
    FileCase(
        "jsonl-line-not-json",
        "corpus.jsonl",
        b'{"title": "A", "text": "An abstract."}\n{not json\n',
        line=2,
        problem="not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
    ),
    FileCase(
        "jsonl-line-not-object",
        "list.jsonl",
        b'{"title": "A", "text": "An abstract."}\n["A", "An abstract."]\n',
        line=2,
        problem="each line must be a JSON object",
    ),
    FileCase(
        "unknown-file-type",
        "papers.txt",
        HEADER.encode() + FINE.encode(),
        problem="unknown file type; expected one of .md, .markdown, .jsonl, .jsonl.gz",
    ),
    FileCase("store-not-writable", "fine.md", md(FINE), locked_store=True),
    # Accepted: a missing link is allowed and never invented; duplicates merge with a
    # warning; an escaped pipe and <br> inside cells are text.
    FileCase(
        "missing-link",
        "nolink.md",
        md(
            "| 2024 | Paper Without A Link | An abstract. | |\n",
            "| 2024 | Paper With A Dash | Another abstract. | - |\n",
        ),
        stored=(
            ("Paper With A Dash", 2024, "", "Another abstract."),
            ("Paper Without A Link", 2024, "", "An abstract."),
        ),
    ),
    FileCase(
        "utf-16-with-bom",
        "wide.md",
        (HEADER + "| 2024 | Café Society | Über alles. | https://example.org/cafe |\n").encode(
            "utf-16"
        ),
        stored=(("Café Society", 2024, "https://example.org/cafe", "Über alles."),),
    ),
    FileCase(
        "duplicated-link",
        "twice.md",
        md(
            "| 2024 | Listed Twice | Short. | [Link](https://example.org/twice) |\n",
            "| 2024 | Listed Twice | The longer abstract. | [Link](https://EXAMPLE.org/twice/) |\n",
        ),
        warnings=((6, "duplicate of line 5 ('Listed Twice'); merged"),),
        stored=(("Listed Twice", 2024, "https://EXAMPLE.org/twice/", "The longer abstract."),),
    ),
    FileCase(
        "pipes-and-line-breaks-in-cells",
        "pipes.md",
        md(
            "| 2024 | Pipes \\| Breaks | First line<br>second line \\| a pipe.<br/>Third. "
            "| https://example.org/pipes |\n"
        ),
        stored=(
            (
                "Pipes | Breaks",
                2024,
                "https://example.org/pipes",
                "First line second line | a pipe. Third.",
            ),
        ),
    ),
]


@pytest.mark.parametrize("case", FILE_CASES, ids=[case.id for case in FILE_CASES])
def test_collection_file(case: FileCase, seeded: Path, tmp_path: Path) -> None:
    path = tmp_path / case.name
    if case.content is not None:
        path.write_bytes(case.content)
    before = snapshot(seeded)
    prefix: tuple[str, ...] = ()
    if case.locked_store:
        prefix = unprivileged()
        seeded.chmod(0o500)
    try:
        result = scholar_chat("--store", seeded, "ingest", path, prefix=prefix)
    finally:
        seeded.chmod(0o700)
    assert "Traceback" not in result.stderr + result.stdout
    where = f"{path}:{case.line}" if case.line else str(path)
    if case.locked_store:
        error = f"error: {seeded}: the store directory is not writable"
    elif case.problem:
        error = f"error: {where}: {case.problem}"
    else:
        error = ""
    if error:
        assert (result.returncode, result.stderr.splitlines(), result.stdout) == (1, [error], "")
        assert snapshot(seeded) == before
        return
    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if not line.startswith("ingest: ")]
    assert notices == [f"warning: {path}:{line}: {problem}" for line, problem in case.warnings]
    added = len(case.stored)
    assert result.stdout.startswith(f"Ingested {added} papers ({added} added, 0 updated")
    store = open_store(load_settings(store=seeded))
    assert len(store.manifest()) == 24 + added
    got = store.collection.get(where={"scholar": SCHOLAR}, include=["metadatas", "documents"])
    papers = sorted(
        (meta["title"], meta.get("year"), meta["url"], document.split("\n", 1)[1])
        for meta, document in zip(got["metadatas"], got["documents"], strict=True)
    )
    assert papers == sorted(case.stored)  # one chunk each: a merged duplicate is stored once


# ---- a 10 MB collection ------------------------------------------------------------------

ROWS = 7000
WORDS = (
    "federated learning clients privacy aggregation graph neural network vision transformer "
    "benchmark dataset distillation language model retrieval evaluation robust noisy labels "
    "optimisation convergence communication sparse attention memory scientific earth climate "
    "protein reasoning agents reinforcement policy reward sampling diffusion image text "
    "segmentation detection tracking compression pruning quantisation hardware latency energy "
    "theory bound regret bandit causal inference fairness bias explanation uncertainty"
).split()


def synthetic_abstract(rng: random.Random) -> str:
    """About 1,300 characters of sentences: the length of a real abstract."""
    sentences: list[str] = []
    while sum(len(s) + 1 for s in sentences) < 1300:
        words = [rng.choice(WORDS) for _ in range(rng.randint(10, 24))]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def write_large_collection(path: Path, rows: int, scholars: int = 7) -> None:
    """Distinct synthetic papers in one table per scholar, as the default collection is laid out."""
    rng = random.Random(20240601)
    with path.open("w", encoding="utf-8") as out:
        for s in range(scholars):
            out.write(f"## Scholar{s} Papers (2000-2025)\n\n")
            out.write("| Year | Title | Abstract | Link |\n|---|---|---|---|\n")
            for n in range(s * rows // scholars, (s + 1) * rows // scholars):
                title = f"Study {n}: " + " ".join(rng.choice(WORDS) for _ in range(6)).title()
                link = f"[Link](https://example.org/papers/{n})"
                out.write(f"| {2000 + n % 26} | {title} | {synthetic_abstract(rng)} | {link} |\n")
            out.write("\n")


def test_a_10_mb_collection_parses_fast_and_ingests_once(tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    write_large_collection(big, ROWS)
    size = big.stat().st_size
    assert 9.5e6 < size < 11e6
    started = time.perf_counter()
    parsed = parse_collection(big)
    seconds = time.perf_counter() - started
    assert len(parsed.papers) == ROWS and parsed.warnings == []
    assert len({p.paper_id for p in parsed.papers}) == ROWS
    assert seconds < 10, f"parsing 10 MB took {seconds:.1f} s"
    tracemalloc.start()
    try:
        parse_collection(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * size, f"parsing a {size / 1e6:.0f} MB file peaked at {peak / 1e6:.0f} MB"

    # The real model reads only the first 16 tokens of each chunk: the whole ingest path
    # runs on 10 MB in about a minute; embedding speed itself is benchmarks/scale.py's job.
    short = {"SCHOLAR_CHAT_EMBEDDING__MAX_TOKENS": "16"}
    store = tmp_path / "store"
    first = scholar_chat("--store", store, "ingest", big, "--json", timeout=900, env=short)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["papers"], report["added"]) == (ROWS, ROWS)
    again = json.loads(scholar_chat("--store", store, "ingest", big, "--json", env=short).stdout)
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, ROWS)
    stats = json.loads(scholar_chat("--store", store, "stats", "--json", env=short).stdout)
    assert stats["papers"] == ROWS and len(stats["scholars"]) == 7


# ---- questions ---------------------------------------------------------------------------

REFUSED_QUESTIONS = [
    ("empty", "   ", "the question is empty"),
    ("10000-characters", "a" * 10_000, "the question is 10000 characters long; at most 2000"),
    ("only-punctuation", "?!...;", "the question has no words"),
]
FOREIGN_QUESTIONS = [
    ("german", "Welche Arbeiten behandeln föderiertes Lernen?"),
    ("chinese", "哪些论文涉及联邦学习？"),  # noqa: RUF001 (a Chinese question mark)
    ("french-with-english-terms", "Quels articles traitent du federated learning ?"),
]
COLLECTION = {p.title: (p.year, p.url) for p in parse_collection(DEFAULT_COLLECTION).papers}
NO_ANSWER = ("No paper in the collection answers", "The collection has no paper")


@pytest.mark.parametrize(
    ("question", "problem"),
    [case[1:] for case in REFUSED_QUESTIONS],
    ids=[case[0] for case in REFUSED_QUESTIONS],
)
def test_refused_question(
    question: str, problem: str, default_store_path: Path, assistant: Assistant
) -> None:
    result = scholar_chat("--store", default_store_path, "ask", question)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {problem}"]
    assert result.stdout == "" and "Traceback" not in result.stderr
    with pytest.raises(ValueError) as refused:
        assistant.ask(question)
    assert str(refused.value) == problem


def assert_grounded(answer: dict[str, object]) -> None:
    """A citation of the collection's own paper, or the plain no-answer message."""
    citations = answer["citations"]
    assert isinstance(citations, list)
    for citation in citations:
        assert COLLECTION[citation["title"]] == (citation["year"], citation["url"])
    if not citations:
        assert str(answer["answer"]).startswith(NO_ANSWER)


@pytest.mark.parametrize(
    "question", [case[1] for case in FOREIGN_QUESTIONS], ids=[case[0] for case in FOREIGN_QUESTIONS]
)
def test_question_in_another_language(
    question: str, default_store_path: Path, assistant: Assistant
) -> None:
    result = scholar_chat("--store", default_store_path, "ask", question, "--json")
    assert result.returncode == 0, result.stderr
    assert_grounded(json.loads(result.stdout))
    answer = assistant.ask(question)
    assert isinstance(answer, Answer)
    assert_grounded(answer.as_json())


# ---- the chat page -----------------------------------------------------------------------


@dataclass
class Pages:
    served: gr.Blocks  # as ``scholar-chat serve`` runs it: gradio enforces the upload limit
    bare: gr.Blocks  # the same app launched without gradio's limit: the handler's own check
    store: PaperStore

    def client(self, demo: gr.Blocks) -> Client:
        return Client(str(demo.local_url), verbose=False)


@pytest.fixture(scope="module")
def pages(default_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    store_dir = tmp_path_factory.mktemp("page") / "store"
    shutil.copytree(default_store_path, store_dir)
    settings = load_settings(store=store_dir, ui={"max_upload_mb": 1})
    store = open_store(settings)
    served = ui.serve(settings, "127.0.0.1", free_port(), block=False, store=store)
    bare = ui.build_app(settings, store)
    bare.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, ssr_mode=False
    )
    with pytest.MonkeyPatch.context() as patch:
        # gradio_client's huggingface_hub would phone home (telemetry, agent registry).
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
        try:
            yield Pages(served, bare, store)
        finally:
            served.close()
            bare.close()


@pytest.mark.parametrize(
    ("question", "problem"),
    [case[1:] for case in REFUSED_QUESTIONS[1:]],  # an empty one: test_ui.py
    ids=[case[0] for case in REFUSED_QUESTIONS[1:]],
)
def test_page_refuses_a_bad_question_and_stays_usable(
    pages: Pages, question: str, problem: str
) -> None:
    client = pages.client(pages.served)
    with pytest.raises(AppError) as refused:
        client.predict(question, api_name="/chat")
    assert str(refused.value).strip() == problem
    text = client.predict("Which papers address federated learning?", api_name="/chat")
    assert text.startswith("5 papers in the collection address federated learning")


def big_upload(tmp_path: Path) -> Path:
    """A valid collection of 2 MB, twice the page's limit."""
    path = tmp_path / "big.md"
    write_large_collection(path, 1500, scholars=1)
    assert 1.9 * ui.MB < path.stat().st_size < 2.5 * ui.MB
    return path


def test_served_page_refuses_an_upload_over_the_limit(pages: Pages, tmp_path: Path) -> None:
    """The limit reaches the page's config (clients check it) and its upload route."""
    upload = big_upload(tmp_path)
    before = snapshot(pages.store.settings.store)
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {ui.MB} bytes"):
        pages.client(pages.served).predict(handle_file(str(upload)), api_name="/upload")
    refused = httpx.post(
        f"{pages.served.local_url}gradio_api/upload",
        files={"files": (upload.name, upload.read_bytes())},
        timeout=60,
    )
    assert refused.status_code == 413
    assert refused.text == f"File size exceeded maximum allowed size of {ui.MB} bytes."
    assert snapshot(pages.store.settings.store) == before


def test_upload_handler_refuses_a_file_over_the_limit(pages: Pages, tmp_path: Path) -> None:
    before = snapshot(pages.store.settings.store)
    upload = big_upload(tmp_path)
    status = pages.client(pages.bare).predict(handle_file(str(upload)), api_name="/upload")
    size = upload.stat().st_size / ui.MB
    assert status == (
        f"**Not ingested:** big.md is {size:.1f} MB, over the page's limit of 1 MB "
        "(ui.max\\_upload\\_mb); ingest it with scholar-chat ingest instead.\n\n"
        "The collection is unchanged."
    )
    assert snapshot(pages.store.settings.store) == before
