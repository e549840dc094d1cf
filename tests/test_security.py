"""An API key never shows: not in errors, logs, the page, its config or a settings dump.

The key is sent to model endpoints that fail in the three usual ways: nothing listens, the
server answers 401 with a body that echoes the ``Authorization`` header (servers do that),
or the server stalls past the timeout. Every channel a person or a log collector could
read is searched for the key: the command's stdout and stderr with the OpenAI client's
debug logging on, every log record at DEBUG in process, and what the chat page returns.
(The page binds 127.0.0.1 by default: tested in test_ui.py.)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gradio as gr
import huggingface_hub.constants
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from pydantic import SecretStr

from assistant import ui
from assistant.answer import Assistant
from assistant.llm import BackendError, describe, guarded
from assistant.settings import LLMSettings, load_settings
from assistant.store import PaperStore
from tests.conftest import free_port

SECRET = "sk-test-SECRET123"
PAGE_SECRET = "sk-page-SECRET789"  # typed into the page's key field
PLAIN_SECRET = "plain-SECRET-456-key"  # a key without the usual "sk-" prefix
QUESTION = "Summarise the research on federated learning"


@dataclass
class StubServer:
    """A model endpoint on 127.0.0.1 that fails.

    ``/echo``: 401 with the ``Authorization`` header echoed in the body; ``/echo-header``:
    in a response header as well; ``/stall``: never answers.
    """

    port: int
    seen: list[str] = field(default_factory=list)  # every Authorization header received

    def url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{behaviour}/v1"


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    stop = threading.Event()
    server_state = StubServer(0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization", "")
            server_state.seen.append(auth)
            if self.path.startswith("/stall/"):
                stop.wait(60)
                return
            body = json.dumps(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {auth}",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "headers": dict(self.headers),
                    }
                }
            ).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            if self.path.startswith("/echo-header/"):
                self.send_header("WWW-Authenticate", auth)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the request lines are not what is under test."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server_state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


ENDPOINTS = ["dead", "echo", "stall"]


def endpoint(stub: StubServer, kind: str) -> str:
    return f"http://127.0.0.1:{free_port()}/v1" if kind == "dead" else stub.url(kind)


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
    assert "SECRET" not in text  # not even a part of one


# ---- the command line ---------------------------------------------------------------------


def ask_cli(store: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``scholar-chat ask`` with the OpenAI client's own debug logging on stderr."""
    return subprocess.run(
        [sys.executable, "-m", "assistant", "--store", str(store), "ask", QUESTION, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", "OPENAI_LOG": "debug", **env},
    )


@pytest.mark.parametrize("kind", ENDPOINTS)
def test_cli_never_shows_the_configured_key(
    kind: str, stub: StubServer, default_store_path: Path
) -> None:
    url = endpoint(stub, kind)
    sent = len(stub.seen)
    result = ask_cli(
        default_store_path,
        {"SCHOLAR_CHAT_LLM__API_KEY": SECRET},
        *("--llm", "openai-compatible", "--base-url", url, "--timeout", "2"),
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: openai-compatible ({url}")
    assert "DEBUG" in result.stderr  # the client's debug log was on, and was searched too
    assert_no_secret(result.stdout + result.stderr, SECRET)
    if kind != "dead":
        assert f"Bearer {SECRET}" in stub.seen[sent:]  # the key was sent, and echoed back


def test_cli_never_shows_a_key_from_openai_api_key(
    stub: StubServer, default_store_path: Path
) -> None:
    result = ask_cli(
        default_store_path,
        {"OPENAI_API_KEY": PLAIN_SECRET, "SCHOLAR_CHAT_LLM__BASE_URL": stub.url("echo")},
        "--llm",
        "openai",
    )
    assert result.returncode == 1
    assert f"Bearer {PLAIN_SECRET}" in stub.seen
    assert_no_secret(result.stdout + result.stderr, PLAIN_SECRET)


def test_a_key_cut_by_the_one_line_limit_is_still_redacted() -> None:
    llm = LLMSettings(backend="openai-compatible", api_key=SecretStr(PLAIN_SECRET))
    for padding in range(200, 400):  # wherever the cut falls, no part of the key is left
        with pytest.raises(BackendError) as failure, guarded(llm):
            raise RuntimeError("x" * padding + f" Bearer {PLAIN_SECRET}")
        assert_no_secret(str(failure.value), PLAIN_SECRET)


# ---- in process, every logger at DEBUG ------------------------------------------------------


@pytest.mark.parametrize("kind", ENDPOINTS)
def test_assistant_never_logs_the_key(
    kind: str, stub: StubServer, assistant: Assistant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: httpx, httpcore, openai, langchain, ours
    llm = LLMSettings(
        backend="openai-compatible",
        base_url=endpoint(stub, kind),
        api_key=SecretStr(SECRET),
        timeout_s=2,
    )
    with pytest.raises(BackendError) as failure:
        assistant.with_backend(llm).ask(QUESTION)
    assert str(failure.value).startswith(f"{describe(llm)} failed: ")
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records)
    assert {"openai._base_client", "httpcore.connection"} & {r.name for r in caplog.records}
    assert_no_secret(str(failure.value) + logged + caplog.text, SECRET)


def test_a_key_echoed_in_a_response_header_is_not_logged(
    stub: StubServer, assistant: Assistant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    llm = LLMSettings(
        backend="openai-compatible", base_url=stub.url("echo-header"), api_key=SecretStr(SECRET)
    )
    with pytest.raises(BackendError):
        assistant.with_backend(llm).ask(QUESTION)
    assert f"Bearer {SECRET}" in stub.seen
    assert_no_secret(caplog.text, SECRET)


def test_settings_dumps_hide_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCHOLAR_CHAT_LLM__API_KEY", SECRET)
    settings = load_settings(store=tmp_path / "store", llm={"backend": "openai-compatible"})
    assert settings.llm.api_key and settings.llm.api_key.get_secret_value() == SECRET
    dumps = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        json.dumps(settings.model_dump(mode="json")),
        str(settings.model_dump()),
        describe(settings.llm),
    ]
    assert_no_secret("\n".join(dumps), SECRET)


# ---- the chat page ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(default_store: PaperStore) -> Iterator[gr.Blocks]:
    """The page with a configured key, over the default collection (read only)."""
    llm = LLMSettings(backend="openai-compatible", api_key=SecretStr(SECRET), timeout_s=2)
    settings = default_store.settings.model_copy(update={"llm": llm})
    demo = ui.serve(settings, "127.0.0.1", free_port(), block=False, store=default_store)
    with pytest.MonkeyPatch.context() as patch:
        # gradio_client's huggingface_hub would phone home (telemetry, agent registry).
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
        try:
            yield demo
        finally:
            demo.close()


@pytest.mark.parametrize("kind", ENDPOINTS)
@pytest.mark.parametrize("typed_key", ["", PAGE_SECRET], ids=["configured-key", "typed-key"])
def test_page_never_shows_a_key(
    page: gr.Blocks,
    stub: StubServer,
    kind: str,
    typed_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = endpoint(stub, kind)
    sent = len(stub.seen)
    with pytest.raises(AppError) as failure:
        Client(str(page.local_url), verbose=False).predict(
            QUESTION,
            backend="openai-compatible",
            base_url=url,
            api_key=typed_key,
            api_name="/chat",
        )
    message = str(failure.value)
    assert message.startswith(f"openai-compatible ({url}, default model) failed")
    assert_no_secret(message + caplog.text, SECRET, PAGE_SECRET)
    if kind != "dead":
        assert f"Bearer {typed_key or SECRET}" in stub.seen[sent:]


def test_page_config_and_html_hold_no_key(page: gr.Blocks) -> None:
    base = str(page.local_url).rstrip("/")
    for path in ("/", "/config", "/gradio_api/info"):
        with urllib.request.urlopen(base + path, timeout=30) as response:
            assert_no_secret(response.read().decode("utf-8", "replace"), SECRET)
