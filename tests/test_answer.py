"""The offline answerer on the default collection: complete lists, no invented citations."""

from __future__ import annotations

import re

from assistant.answer import Assistant
from assistant.collection import parse_collection
from assistant.settings import DEFAULT_COLLECTION
from tests.conftest import FEDERATED_TITLES

LINKS = {p.title: p.url for p in parse_collection(DEFAULT_COLLECTION).papers}


def _cited_numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def test_federated_learning_list_is_complete_and_exact(assistant: Assistant) -> None:
    answer = assistant.ask("Which papers address federated learning?")
    assert answer.kind == "list" and answer.backend == "offline"
    assert {c.title for c in answer.citations} == FEDERATED_TITLES
    assert answer.text.startswith("5 papers")
    for citation in answer.citations:
        assert citation.url == LINKS[citation.title]  # the collection's own link
        assert citation.url in answer.text
    assert _cited_numbers(answer.text) == {c.n for c in answer.citations}


def test_out_of_scope_question_cites_nothing(assistant: Assistant) -> None:
    for question in (
        "Which papers are about protein folding?",
        "What is the best recipe for chocolate cake?",
    ):
        answer = assistant.ask(question)
        assert answer.citations == []
        assert "no paper" in answer.text.lower()
        assert "http" not in answer.text


def test_fact_question_quotes_its_paper(assistant: Assistant) -> None:
    answer = assistant.ask("How many VQA pairs are in SFE?")
    assert answer.citations[0].title.startswith("Scientists' First Exam")
    assert "830" in answer.text


def test_year_only_list(assistant: Assistant) -> None:
    answer = assistant.ask("Which papers were published in 2024?")
    assert len(answer.citations) == 4
    assert all(c.year == 2024 for c in answer.citations)


def test_truncated_abstracts_are_flagged_where_the_quote_is_cut(assistant: Assistant) -> None:
    answer = assistant.ask("Which papers were published in 2024?")
    lines = [line for line in answer.text.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
    cut = [line for line in lines if "…" in line]
    assert cut, "the 2024 list quotes at least one abstract where it is cut"
    for line in lines:
        assert ("cut short" in line) == ("…" in line)


def test_json_shape(assistant: Assistant) -> None:
    data = assistant.ask("Which papers address federated learning?").as_json()
    assert set(data) == {"question", "answer", "citations", "backend"}
    assert set(data["citations"][0]) == {"n", "paper_id", "title", "year", "url", "scholar"}
