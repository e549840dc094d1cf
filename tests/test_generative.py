"""The model-backed chain with LangChain's fake chat models: chain logic only.

These prove the plumbing (keys, validation, refusals, errors); the real-model tests in
``test_local_model.py`` prove the feature with a real llama.cpp model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from assistant.answer import Assistant
from assistant.collection import parse_collection
from assistant.generative import ModelAnswerer
from assistant.llm import BackendError
from assistant.settings import DEFAULT_COLLECTION, LLMSettings
from assistant.store import PaperStore
from tests.conftest import FEDERATED_TITLES

LINKS = {p.url for p in parse_collection(DEFAULT_COLLECTION).papers}


class ScriptedChatModel(GenericFakeChatModel):
    """A fake chat model whose reply depends on the prompt (streams word by word)."""

    respond: Callable[[str], str]
    messages: Iterator[AIMessage] = iter(())

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        text = self.respond(str(messages[-1].content))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def judge_or(answer: str, relevant: str = "federated") -> Callable[[str], str]:
    """Judge prompts: yes when the paper title mentions ``relevant``; else ``answer``."""

    def respond(prompt: str) -> str:
        if prompt.startswith("Paper title:"):
            return "yes" if relevant in prompt.splitlines()[0].lower() else "no"
        return answer

    return respond


def with_model(default_store: PaperStore, respond: Callable[[str], str]) -> Assistant:
    """An Assistant whose backend is a scripted fake model."""
    assistant = Assistant(default_store.settings, default_store)
    settings = LLMSettings(backend="openai-compatible", base_url="http://127.0.0.1:9/v1")
    model = ScriptedChatModel(respond=respond)
    assistant.model = model
    assistant.answerer = ModelAnswerer(model, settings, assistant.offline)
    assistant.backend, assistant.backend_label = "openai-compatible", "fake"
    return assistant


def test_summary_keeps_only_retrieved_keys_and_metadata_links(default_store: PaperStore) -> None:
    reply = (
        "Decentralised training is proposed [S1]. Another claim cites an invented key [S42]. "
        "Clustering helps [S2][S1]. Read more at https://evil.example/paper."
    )
    assistant = with_model(default_store, judge_or(reply))
    answer = assistant.ask("Summarise the research on federated learning")
    assert answer.backend == "openai-compatible"
    assert "[S42]" not in answer.text and "evil.example" not in answer.text
    assert [c.n for c in answer.citations] == [1, 2]
    assert all(c.url in LINKS for c in answer.citations)
    assert {c.title for c in answer.citations} <= FEDERATED_TITLES


def test_list_cites_exactly_the_papers_the_model_judged_relevant(
    default_store: PaperStore,
) -> None:
    assistant = with_model(default_store, judge_or("unused"))
    answer = assistant.ask("Which papers address federated learning?")
    assert {c.title for c in answer.citations} == FEDERATED_TITLES  # all say "federated"
    assistant = with_model(default_store, judge_or("unused", relevant="no paper title has this"))
    answer = assistant.ask("Which papers address federated learning?")
    assert answer.citations == [] and answer.refused
    assert "no paper on federated learning" in answer.text


def test_no_answer_is_a_refusal(default_store: PaperStore) -> None:
    assistant = with_model(default_store, judge_or("NO_ANSWER"))
    answer = assistant.ask("How many VQA pairs are in SFE?")
    assert answer.citations == [] and answer.refused
    assert answer.text.startswith("No paper in the collection answers")


def test_an_answer_without_citations_is_an_error(default_store: PaperStore) -> None:
    assistant = with_model(default_store, judge_or("SFE has many pairs, trust me."))
    with pytest.raises(BackendError, match="cites no retrieved paper"):
        assistant.ask("How many VQA pairs are in SFE?")


def test_streaming_from_the_python_api(default_store: PaperStore) -> None:
    reply = "SFE comprises 830 expert-verified VQA pairs [S1]."
    assistant = with_model(default_store, judge_or(reply))
    events = list(assistant.stream("How many VQA pairs are in SFE?"))
    answer = events[-1].answer
    assert answer is not None and len(events) > 2
    assert "".join(e.delta for e in events).strip() == answer.text
    assert "830" in answer.text and answer.citations[0].title.startswith("Scientists' First")


def test_out_of_scope_fact_never_reaches_the_model(default_store: PaperStore) -> None:
    assistant = with_model(default_store, judge_or("Bake it at 180 degrees [S1]."))
    answer = assistant.ask("What is the best recipe for chocolate cake?")
    assert answer.citations == [] and answer.refused


def test_follow_up_is_rewritten_by_the_model_and_stays_narrowed(
    default_store: PaperStore,
) -> None:
    seen: list[str] = []

    def respond(prompt: str) -> str:
        if prompt.startswith("Conversation so far:"):
            seen.append(prompt)
            return "Which federated learning papers were published in 2024?"
        return judge_or("unused")(prompt)

    assistant = with_model(default_store, respond)
    first = assistant.ask("Which papers address federated learning?")
    second = assistant.ask("Which of those came out in 2024?", [first])
    assert seen and "Which papers address federated learning?" in seen[0]
    assert {c.paper_id for c in second.citations} < {c.paper_id for c in first.citations}
    assert len(second.citations) == 3 and all(c.year == 2024 for c in second.citations)
