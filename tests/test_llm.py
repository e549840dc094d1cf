"""Backends: asked-for backends that cannot work fail fast with one clear line."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.llm import BackendError, describe, make_chat_model
from assistant.settings import LLMSettings
from tests.conftest import free_port
from tests.test_cli import run

QUESTION = "Summarise the research on federated learning"


def test_offline_has_no_model() -> None:
    assert make_chat_model(LLMSettings()) is None
    assert describe(LLMSettings()) == "offline"


def test_openai_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        make_chat_model(LLMSettings(backend="openai"))


def test_openai_compatible_needs_a_base_url() -> None:
    with pytest.raises(BackendError, match="--base-url"):
        make_chat_model(LLMSettings(backend="openai-compatible"))


def test_llamacpp_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(BackendError, match=f"model file {missing} not found"):
        make_chat_model(LLMSettings(backend="llamacpp", model_path=missing))


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """A server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _fails_clearly(args: list[str], endpoint: str, within_s: float, store: Path) -> None:
    started = time.monotonic()
    result = run(
        "--store",
        store,
        "ask",
        QUESTION,
        "--llm",
        "openai-compatible",
        "--base-url",
        endpoint,
        *args,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: openai-compatible (")
    assert endpoint in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""  # no answer from another backend
    assert elapsed < within_s


def test_dead_endpoint_fails_fast(default_store_path: Path) -> None:
    _fails_clearly([], f"http://127.0.0.1:{free_port()}/v1", 30, default_store_path)


def test_stalling_endpoint_fails_within_the_timeout(
    stalling_server: str, default_store_path: Path
) -> None:
    _fails_clearly(["--timeout", "2"], stalling_server, 25, default_store_path)
