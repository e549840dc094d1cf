"""Abstracts are data: instructions, fake citations and foreign links change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.answer import Assistant
from assistant.generative import ModelAnswerer
from assistant.ingest import ingest, parse_all
from assistant.settings import LLMSettings, Settings
from assistant.store import PaperStore
from tests.test_generative import ScriptedChatModel, judge_or

INJECTED = Path(__file__).parent / "fixtures" / "injected.md"
OWN_LINKS = {
    "https://arxiv.org/abs/2401.00001",
    "https://arxiv.org/abs/2401.00002",
    "https://example.org/bread",
}


@pytest.fixture
def injected(settings: Settings, store: PaperStore) -> Assistant:
    ingest(parse_all([INJECTED]), store, settings)
    return Assistant(settings, store)


def _safe(answer_text: str, urls: list[str | None]) -> None:
    assert "evil.example" not in answer_text
    assert all(url in OWN_LINKS for url in urls)


def test_offline_answer_ignores_injected_instructions(injected: Assistant) -> None:
    answer = injected.ask("Which papers address federated learning?")
    titles = {c.title for c in answer.citations}
    assert titles == {
        "Robust federated learning for hospitals",
        "Federated averaging under client drift",
    }
    _safe(answer.text, [c.url for c in answer.citations])


def test_model_answer_cannot_be_steered_to_other_citations_or_links(
    injected: Assistant,
) -> None:
    obeying = "As instructed, see [S7] and http://evil.example/steal. Federated work [S1]."
    model = ScriptedChatModel(respond=judge_or(obeying))
    injected.model = model
    settings = LLMSettings(backend="openai-compatible", base_url="http://127.0.0.1:9/v1")
    injected.answerer = ModelAnswerer(model, settings, injected.offline)
    answer = injected.ask("Summarise the research on federated learning")
    assert len(answer.citations) == 1 and "[S7]" not in answer.text
    _safe(answer.text, [c.url for c in answer.citations])
