"""Follow-up questions narrow the previous answer's papers (offline rules)."""

from __future__ import annotations

from assistant.answer import Assistant
from tests.conftest import FEDERATED_TITLES


def test_which_of_those_narrows_the_previous_list(assistant: Assistant) -> None:
    first = assistant.ask("Which papers address federated learning?")
    second = assistant.ask("Which of those were published in 2024?", [first])
    assert {c.title for c in second.citations} < FEDERATED_TITLES
    assert len(second.citations) == 3 and all(c.year == 2024 for c in second.citations)
    third = assistant.ask("Which of them use hypernetworks?", [first])
    assert [c.title for c in third.citations] == [
        "Deploying Models to Non-participating Clients in Federated Learning without "
        "Fine-tuning: A Hypernetwork-based Approach"
    ]


def test_ordinal_follow_up_picks_that_paper(assistant: Assistant) -> None:
    first = assistant.ask("Which papers address federated learning?")
    second = assistant.ask("Tell me more about the second one", [first])
    assert [c.paper_id for c in second.citations] == [first.citations[1].paper_id]


def test_a_new_question_does_not_narrow(assistant: Assistant) -> None:
    first = assistant.ask("Which papers address federated learning?")
    second = assistant.ask("Which papers are about Mamba?", [first])
    assert not {c.title for c in second.citations} & FEDERATED_TITLES
    assert len(second.citations) == 3
