"""The same commands against a real Chroma server (`chroma run`) instead of the embedded store."""

from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from assistant.settings import load_settings
from assistant.store import open_store
from tests.conftest import FEDERATED_TITLES, free_port, running_server
from tests.test_cli import DEFAULT, run


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert chroma, "the chromadb package installs the `chroma` command"
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    url = f"http://127.0.0.1:{port}"
    command = [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    with running_server(command, f"{url}/api/v2/heartbeat", "Chroma server"):
        yield url


def test_ingest_ask_and_reingest_against_a_server(chroma_server: str, tmp_path: Path) -> None:
    client = ["--chroma-url", chroma_server, "--store", tmp_path / "client-a"]
    first = json.loads(run(*client, "ingest", DEFAULT, "--json").stdout)
    assert (first["added"], first["chunks"]) == (24, first["chunks"])
    again = json.loads(run(*client, "ingest", DEFAULT, "--json").stdout)
    assert (again["added"], again["unchanged"]) == (0, 24)

    answer = json.loads(
        run(*client, "ask", "Which papers address federated learning?", "--json").stdout
    )
    assert {c["title"] for c in answer["citations"]} == FEDERATED_TITLES
    assert not (tmp_path / "client-a" / "chroma.sqlite3").exists()  # nothing embedded

    # A second client, with its own (empty) local BM25 side, sees the same collection.
    other = ["--chroma-url", chroma_server, "--store", tmp_path / "client-b"]
    stats = json.loads(run(*other, "stats", "--json").stdout)
    assert (stats["papers"], stats["chunks"]) == (24, first["chunks"])
    found = json.loads(run(*other, "search", "federated learning", "--k", "5", "--json").stdout)
    assert {r["title"] for r in found["results"]} == FEDERATED_TITLES

    changed = tmp_path / "papers.md"
    changed.write_text(DEFAULT.read_text(encoding="utf-8").replace("830 expert", "831 expert"))
    report = json.loads(run(*client, "ingest", changed, "--json").stdout)
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 1, 23)
    fact = json.loads(run(*other, "ask", "How many VQA pairs are in SFE?", "--json").stdout)
    assert "831" in fact["answer"]


def test_a_long_running_client_sees_another_clients_ingest(
    chroma_server: str, tmp_path: Path
) -> None:
    """The chat page keeps its store open while someone else ingests into the server."""
    settings = load_settings(
        chroma_url=chroma_server, store=tmp_path / "page", collection_name="live"
    )
    page = open_store(settings)
    assert page.count_papers() == 0
    result = run(
        "--chroma-url",
        chroma_server,
        "--store",
        tmp_path / "cli",
        "ingest",
        DEFAULT,
        env={"SCHOLAR_CHAT_COLLECTION_NAME": "live"},
    )
    assert result.returncode == 0, result.stderr
    assert page.count_papers() == 24  # its own BM25 side caught up
    assert page.keywords.search("federated", 10)


def test_server_down_is_one_clear_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("--chroma-url", url, "--store", tmp_path, "stats")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach the Chroma server at {url}")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


class _TokenGate(http.server.BaseHTTPRequestHandler):
    """Hosted Chroma's front door in miniature: no valid ``x-chroma-token``, no entry."""

    protocol_version = "HTTP/1.1"
    upstream = ""
    token = ""
    seen: ClassVar[list[str | None]] = []

    def _forward(self) -> None:
        self.seen.append(self.headers.get("x-chroma-token"))
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.headers.get("x-chroma-token") != self.token:
            status, content = 401, b'{"error":"Unauthorized","message":"bad token"}'
        else:
            reply = httpx.request(
                self.command,
                self.upstream + self.path,
                content=body,
                headers={"content-type": self.headers.get("content-type", "application/json")},
            )
            status, content = reply.status_code, reply.content
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, *args: object) -> None:  # quiet
        pass


def test_a_token_protected_server_gets_the_configured_token(
    chroma_server: str, tmp_path: Path
) -> None:
    """``SCHOLAR_CHAT_CHROMA_TOKEN`` reaches the server on every request, as hosted Chroma needs."""
    _TokenGate.upstream, _TokenGate.token = chroma_server, "chroma-secret-7"
    gate = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenGate)
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{gate.server_port}"
    try:
        client = ["--chroma-url", url, "--store", tmp_path]
        env = {
            "SCHOLAR_CHAT_CHROMA_TOKEN": "chroma-secret-7",
            "SCHOLAR_CHAT_COLLECTION_NAME": "gated",
        }
        result = run(*client, "ingest", DEFAULT, "--json", env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["added"] == 24
        assert _TokenGate.seen and set(_TokenGate.seen) == {"chroma-secret-7"}

        refused = run(*client, "stats", env={**env, "SCHOLAR_CHAT_CHROMA_TOKEN": "wrong"})
        assert refused.returncode == 1 and refused.stderr.startswith("error: ")
        assert len(refused.stderr.strip().splitlines()) == 1 and "wrong" not in refused.stderr
    finally:
        gate.shutdown()
