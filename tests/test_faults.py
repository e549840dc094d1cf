"""Crashes and faults: kill -9 mid-ingest, a Chroma server that goes away, a model that
talks nonsense. Real processes, real Chroma, the real embedding model; after every fault
the store must still be consistent.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import huggingface_hub.constants
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from assistant import store as store_module
from assistant import ui
from assistant.answer import Assistant
from assistant.chunking import chunk_paper
from assistant.collection import parse_collection
from assistant.ingest import ingest, parse_all
from assistant.llm import BackendError
from assistant.settings import LLMSettings, Settings, load_settings
from assistant.store import GENERATION, PaperStore, StoreError, open_store
from tests.conftest import free_port
from tests.test_cli import run
from tests.test_llm import _fails_clearly

TOPIC = "tidal turbine corrosion"
TOPICS = [
    "graph sparsification",
    "protein docking",
    "speech enhancement",
    "code search",
    "traffic forecasting",
    "image denoising",
    "robot grasping",
    "music tagging",
    "crop yield prediction",
    "malware detection",
]
PROGRESS = re.compile(r"ingest: (\d+)/(\d+) chunks$")


def write_collection(path: Path, papers: int) -> Path:
    """A Markdown collection of short synthetic abstracts (some long enough for 2 chunks);
    every 97th paper is about ``TOPIC``."""
    rows = [
        "## Ada Synth Papers (2001-2024)",
        "",
        "| Year | Title | Abstract | Link |",
        "|---|---|---|---|",
    ]
    for i in range(papers):
        topic = TOPIC if i % 97 == 5 else TOPICS[i % len(TOPICS)]
        abstract = f"We study {topic} with method number {i}. Benchmark {i % 31} shows gains."
        if i % 60 == 7:
            abstract += " " + " ".join(f"Detail {j} explains the {topic} setup." for j in range(60))
        title = f"{topic.capitalize()} study {i}"
        rows.append(f"| {2001 + i % 24} | {title} | {abstract} | https://example.org/{i} |")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def topic_titles(path: Path) -> set[str]:
    return {p.title for p in parse_collection(path).papers if TOPIC in p.abstract}


def assert_consistent(store: PaperStore, path: Path, settings: Settings) -> None:
    """The store holds exactly the collection's papers, each whole, with no duplicate chunk;
    every vector is findable; the BM25 side is already in step (no re-sync needed)."""
    expected = {
        p.paper_id: len(chunk_paper(p, settings.chunking)) for p in parse_collection(path).papers
    }
    stored = store.collection.get(include=["metadatas", "embeddings"])
    ids = stored["ids"]
    assert len(ids) == len(set(ids)) == sum(expected.values())
    manifest = store.manifest()
    assert {pid: p.n_chunks for pid, p in manifest.items()} == expected
    assert all(p.complete for p in manifest.values())
    for chunk_id, meta in zip(ids, stored["metadatas"], strict=True):
        assert chunk_id.startswith(f"{meta['paper_id']}:{meta['content_hash']}:")
    nearest = store.collection.query(
        query_embeddings=stored["embeddings"], n_results=1, include=[]
    )["ids"]
    assert [found[0] for found in nearest] == ids  # the vector index holds every chunk
    current = store.vectors._client.get_collection(store.settings.collection_name)
    generation = (current.metadata or {}).get(GENERATION)
    assert generation and store.keywords.get_state(GENERATION) == generation
    assert store.keywords.paper_hashes() == {p: s.content_hash for p, s in manifest.items()}
    assert store.keywords.count_papers() == len(manifest)


class ChromaServer:
    """A real ``chroma run`` that a test can stop, restart on the same path and port,
    or freeze."""

    def __init__(self, path: Path) -> None:
        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
        assert chroma, "the chromadb package installs the `chroma` command"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [chroma, "run", "--path", str(path), "--host", "127.0.0.1"]
        self.command += ["--port", str(self.port)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the Chroma server did not start")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it was frozen
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def signal(self, number: int) -> None:
        assert self.process
        self.process.send_signal(number)


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma-server")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---- kill -9 during ingest -------------------------------------------------------------


def kill_mid_ingest(args: list[str | Path], env: dict[str, str]) -> None:
    """Start an ingest and SIGKILL it once it says it has written some, but at most half,
    of its chunks."""
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr
        for line in process.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                pytest.fail("ingest printed no progress within 120 s:\n" + "\n".join(seen))
            if line is None:
                pytest.fail("ingest ended before it was killed:\n" + "\n".join(seen))
            seen.append(line)
            if (match := PROGRESS.match(line)) and 0 < int(match[1]) <= int(match[2]) // 2:
                os.kill(process.pid, signal.SIGKILL)
                assert process.wait(timeout=30) == -signal.SIGKILL
                return
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("mode", ["embedded", "server"])
def test_kill_9_during_ingest_then_rerun_finishes_the_job(
    mode: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    collection = write_collection(tmp_path / "synthetic.md", 120)
    papers = len(parse_collection(collection).papers)
    chroma_url = request.getfixturevalue("chroma_server").url if mode == "server" else None
    where: list[str | Path] = ["--store", tmp_path / "store"]
    where += ["--chroma-url", chroma_url] if chroma_url else []
    env = {"SCHOLAR_CHAT_WRITE_BATCH_CHUNKS": "8"}  # many batches: the kill lands mid-way

    kill_mid_ingest([*where, "ingest", collection], env)
    rerun = run(*where, "ingest", collection, "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["papers"] == papers and report["removed"] == 0
    # It resumed: what the killed run wrote is kept, and every paper it left behind was
    # whole (a partly written one would count as "updated").
    assert 0 < report["unchanged"] < papers and report["updated"] == 0
    assert report["added"] == papers - report["unchanged"]

    settings = load_settings(store=tmp_path / "store", chroma_url=chroma_url)
    store = open_store(settings)
    assert report["chunks"] == store.count_chunks()
    assert_consistent(store, collection, settings)
    answer = Assistant(settings, store).ask(f"Which papers address {TOPIC}?")
    assert {c.title for c in answer.citations} == topic_titles(collection)


# ---- the Chroma server goes away mid-session ------------------------------------------


@pytest.fixture
def no_hub_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """gradio_client's huggingface_hub would phone home (telemetry, agent registry)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)


def assert_server_error(message: str, url: str) -> None:
    assert f"cannot reach the Chroma server at {url}" in message
    assert "\n" not in message.strip() and "Traceback" not in message


def test_long_lived_clients_survive_a_chroma_server_restart(
    chroma_server: ChromaServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_hub_calls: None,
) -> None:
    """The chat page and an ``Assistant`` hold one store open across a server outage."""
    monkeypatch.setattr(store_module, "CHROMA_TIMEOUT", httpx.Timeout(2.0, connect=2.0))
    url = chroma_server.url
    collection = write_collection(tmp_path / "synthetic.md", 30)
    titles = topic_titles(collection)
    question = f"Which papers address {TOPIC}?"
    settings = load_settings(chroma_url=url, store=tmp_path / "client")
    store = open_store(settings)
    ingest(parse_all([collection]), store, settings)
    assistant = Assistant(settings, store)
    page = ui.serve(settings, "127.0.0.1", free_port(), block=False, store=store)
    try:
        client = Client(str(page.local_url), verbose=False)
        assert {c.title for c in assistant.ask(question).citations} == titles
        assert all(title in client.predict(question, api_name="/chat") for title in titles)

        chroma_server.stop()
        started = time.monotonic()
        with pytest.raises(StoreError) as down:
            assistant.ask(question)
        assert time.monotonic() - started < 10
        assert_server_error(str(down.value), url)
        with pytest.raises(AppError) as page_down:
            client.predict(question, api_name="/chat")
        assert_server_error(str(page_down.value), url)

        chroma_server.start()  # the same path and port
        assert {c.title for c in assistant.ask(question).citations} == titles
        assert all(title in client.predict(question, api_name="/chat") for title in titles)

        chroma_server.signal(signal.SIGSTOP)  # up, but answers nothing
        started = time.monotonic()
        with pytest.raises(StoreError) as frozen:
            assistant.ask(question)
        assert time.monotonic() - started < 15  # bounded by the client's timeout
        assert_server_error(str(frozen.value), url)
        chroma_server.signal(signal.SIGCONT)
        assert {c.title for c in assistant.ask(question).citations} == titles
    finally:
        page.close()
    assert_consistent(store, collection, settings)


# ---- a model backend that returns garbage or cites nothing ----------------------------


class StubModel:
    """An OpenAI-compatible server on 127.0.0.1 whose replies a test sets; it records what
    it was sent."""

    def __init__(self) -> None:
        self.body = b""
        self.content_type = "application/json"
        self.reply = ""  # used when ``body`` is empty: a well-formed completion
        self.requests: list[dict[str, object]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(request)
                body, content_type = stub.respond(request)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def respond(self, request: dict[str, object]) -> tuple[bytes, str]:
        if self.body:
            return self.body, self.content_type
        prompt = str(request["messages"][-1]["content"])  # type: ignore[index]
        text = "yes" if prompt.startswith("Paper title:") else self.reply
        message = {"role": "assistant", "content": text}
        head = {"id": "stub", "created": 0, "model": "stub"}
        if not request.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            completion = {**head, "object": "chat.completion", "choices": [choice]}
            return json.dumps(completion).encode(), "application/json"
        events = [
            {"index": 0, "delta": message, "finish_reason": None},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        ]
        stream = "".join(
            f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'choices': [e]})}\n\n"
            for e in events
        )
        return (stream + "data: [DONE]\n\n").encode(), "text/event-stream"

    def given_keys(self) -> dict[str, str]:
        """Source key -> title, as the last answering prompt showed them."""
        prompt = str(self.requests[-1]["messages"][-1]["content"])  # type: ignore[index]
        return dict(re.findall(r'<source key="(S\d+)">\n(.+?)(?: \(\d{4}\))?\n', prompt))


@pytest.fixture
def stub_model() -> Iterator[StubModel]:
    stub = StubModel()
    thread = threading.Thread(target=stub.server.serve_forever, daemon=True)
    thread.start()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()
    thread.join()


def stub_assistant(default_store: PaperStore, stub: StubModel) -> Assistant:
    llm = LLMSettings(backend="openai-compatible", base_url=stub.url, model="stub", timeout_s=5)
    return Assistant(default_store.settings.model_copy(update={"llm": llm}), default_store)


SUMMARY = "Summarise the research on federated learning"
FACT = "How many VQA pairs are in SFE?"
GARBAGE = {
    "cut-off JSON": (b'{"choices": [{"message": ', "application/json"),
    "an HTML error page": (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    "JSON of another shape": (b'{"result": "ok"}', "application/json"),
}


@pytest.mark.parametrize("question", [SUMMARY, FACT])
@pytest.mark.parametrize("garbage", list(GARBAGE))
def test_garbage_from_the_model_is_one_line_naming_the_endpoint(
    garbage: str, question: str, stub_model: StubModel, default_store: PaperStore
) -> None:
    stub_model.body, stub_model.content_type = GARBAGE[garbage]
    assistant = stub_assistant(default_store, stub_model)
    started = time.monotonic()
    with pytest.raises(BackendError) as failure:
        assistant.ask(question)
    assert time.monotonic() - started < 15  # no waiting out the 5 s timeout, no retry loop
    message = str(failure.value)
    assert message.startswith(f"openai-compatible ({stub_model.url}, stub)")
    assert "\n" not in message and stub_model.requests


def test_garbage_from_the_model_fails_the_command_without_another_backend(
    stub_model: StubModel, default_store_path: Path
) -> None:
    stub_model.body, stub_model.content_type = GARBAGE["an HTML error page"]
    _fails_clearly(["--model", "stub", "--timeout", "5"], stub_model.url, 30, default_store_path)
    assert stub_model.requests


@pytest.mark.parametrize(
    "reply",
    [
        "SFE is a large benchmark with many question pairs.",  # no key at all
        "SFE has 830 pairs [S99]. See also [1] and [Smith2020].",  # no key it was given
    ],
)
@pytest.mark.parametrize("question", [SUMMARY, FACT])
def test_an_answer_citing_no_given_source_is_an_error_and_never_shown(
    reply: str, question: str, stub_model: StubModel, default_store: PaperStore
) -> None:
    stub_model.reply = reply
    shown: list[str] = []
    with pytest.raises(BackendError, match="cites no retrieved paper") as failure:
        for event in stub_assistant(default_store, stub_model).stream(question):
            shown.append(event.delta)
    assert str(failure.value).startswith(f"openai-compatible ({stub_model.url}, stub)")
    assert "".join(shown) == ""  # not even streamed before the error


def test_only_keys_the_model_was_given_become_citations(
    stub_model: StubModel, default_store: PaperStore
) -> None:
    """More papers are judged relevant than the model sees; a key past those it was
    shown (or invented) is dropped, never resolved to a paper it did not read."""
    assistant = stub_assistant(default_store, stub_model)
    stub_model.reply = "Probe [S1]."
    assistant.ask(SUMMARY)
    given = stub_model.given_keys()
    assert "S1" in given and len(given) <= default_store.settings.answer.context_papers
    unseen = f"S{len(given) + 1}"
    stub_model.reply = (
        f"Clustering helps [S2]. An uncited sentence. Another claim [{unseen}][S9]. "
        "A made-up one [S42]. Read https://evil.example/x"
    )
    answer = assistant.ask(SUMMARY)
    assert [(c.n, c.title) for c in answer.citations] == [(1, given["S2"])]
    body = answer.text.split("\n\nSources:")[0]
    assert body.count("[1]") == 1 and "[2]" not in body
    assert "An uncited sentence." in body  # shown, but not as if cited
    assert not re.search(r"\[S?\d+\]", body.replace("[1]", ""))
    assert "evil.example" not in answer.text
