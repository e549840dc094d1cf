"""Query understanding: kind, topic and filters of a question, and query terms."""

from __future__ import annotations

import pytest

from assistant.keyword_index import STOP_WORDS, SearchFilters, query_terms, stems
from assistant.query import parse_query

SCHOLARS = ["YuhaoZhou", "Ada Lovelace"]
NO_FILTERS = SearchFilters()

YZ = ("YuhaoZhou",)


def q(
    question: str,
    kind: str,
    topic: str,
    years: tuple[int | None, int | None] = (None, None),
    scholars: tuple[str, ...] = (),
) -> object:
    """One table row, named by its question."""
    return pytest.param(question, kind, topic, years, scholars, id=question)


CASES = [
    q("Which papers address federated learning?", "list", "federated learning"),
    q("Which papers were published in 2024?", "list", "", (2024, 2024)),
    q("Summarise the research on federated learning", "summary", "federated learning"),
    q("Summarize the research on federated learning.", "summary", "federated learning"),
    q("Give an overview of Earth science benchmarks", "summary", "Earth science benchmarks"),
    q("overview of federated learning", "summary", "federated learning"),
    q("Tell me about Intern-S1", "summary", "Intern-S1"),
    q("How many VQA pairs are in SFE?", "fact", "How many VQA pairs are in SFE"),
    q("What does DeFTA propose?", "fact", "What does DeFTA propose"),
    q(
        "papers about dataset distillation between 2024 and 2025",
        "list",
        "dataset distillation",
        (2024, 2025),
    ),
    q(
        "Show me papers from 2025 to 2023 about vision transformers",
        "list",
        "vision transformers",
        (2023, 2025),
    ),
    q(
        "Which papers address federated learning published since 2025?",
        "list",
        "federated learning",
        (2025, None),
    ),
    q("papers about LLM agents as of 2025", "list", "LLM agents", (2025, None)),
    q("List papers after 2024", "list", "", (2025, None)),
    q("Which papers were published since 2025?", "list", "", (2025, None)),
    q("List papers on benchmarks before 2025", "list", "benchmarks", (None, 2024)),
    q(
        "Which works study continual learning prior to 2025?",
        "list",
        "continual learning",
        (None, 2024),
    ),
    q(
        "Which papers discuss federated learning until 2024?",
        "list",
        "federated learning",
        (None, 2024),
    ),
    q(
        "What papers discuss federated learning in 2024?",
        "list",
        "federated learning",
        (2024, 2024),
    ),
    q("Which papers on Mamba appeared in 2025?", "list", "Mamba", (2025, 2025)),
    q(
        "Are there any papers about reinforcement learning in this collection?",
        "list",
        "reinforcement learning",
    ),
    q("Papers that use Mamba", "list", "Mamba"),
    q("Which papers use CIFAR-10?", "list", "CIFAR-10"),
    q("Which papers use 1000 tasks?", "list", "1000 tasks"),
    q(
        "Which papers by YuhaoZhou discuss dataset distillation?",
        "list",
        "dataset distillation",
        scholars=YZ,
    ),
    q("Which of Yuhao Zhou's papers discuss Mamba?", "list", "Mamba", scholars=YZ),
    q("Which of YuhaoZhou's papers discuss Mamba?", "list", "Mamba", scholars=YZ),
    q("papers on federated learning by Yuhao Zhou", "list", "federated learning", scholars=YZ),
    q(
        "Summarize YuhaoZhou's work on federated learning",
        "summary",
        "federated learning",
        scholars=YZ,
    ),
    q(
        "Which of Ada Lovelace's papers discuss the analytical engine?",
        "list",
        "analytical engine",
        scholars=("Ada Lovelace",),
    ),
    q(
        "Which papers by yuhao zhou address federated learning since 2025?",
        "list",
        "federated learning",
        (2025, None),
        YZ,
    ),
    # --- formerly wrong: year phrases mid-question, 'what are', bare numbers ---
    q(
        "Which papers about federated learning were published in 2024?",
        "list",
        "federated learning",
        (2024, 2024),
    ),
    q(
        "Which papers on Mamba were published after 2024?",
        "list",
        "Mamba",
        (2025, None),
    ),
    q(
        "Which papers in 2024 discuss federated learning?",
        "list",
        "federated learning",
        (2024, 2024),
    ),
    q(
        "What are Yuhao Zhou's papers on Mamba?",
        "list",
        "Mamba",
        scholars=YZ,
    ),
    q(
        "What are the papers on Mamba?",
        "list",
        "Mamba",
    ),
    q(
        "What is the research on federated learning?",
        "summary",
        "federated learning",
    ),
    q(
        "Which papers mention 2048 tokens?",
        "list",
        "2048 tokens",
    ),
]


@pytest.mark.parametrize(("question", "kind", "topic", "years", "scholars"), CASES)
def test_parse_query(
    question: str,
    kind: str,
    topic: str,
    years: tuple[int | None, int | None],
    scholars: tuple[str, ...],
) -> None:
    parsed = parse_query(question, SCHOLARS)
    assert parsed.question == " ".join(question.split())
    assert parsed.kind == kind
    assert parsed.filters == SearchFilters(year_min=years[0], year_max=years[1], scholars=scholars)
    assert parsed.topic == topic


def test_since_includes_and_after_excludes_the_year() -> None:
    assert parse_query("papers on Mamba since 2025").filters.year_min == 2025
    assert parse_query("papers on Mamba after 2025").filters.year_min == 2026
    assert parse_query("papers on Mamba before 2025").filters.year_max == 2024
    assert parse_query("papers on Mamba up to 2025").filters.year_max == 2025
    for question in ("papers on Mamba since 2025", "papers on Mamba after 2024"):
        assert parse_query(question).filters.year_max is None
    assert parse_query("papers on Mamba before 2025").filters.year_min is None


def test_scholars_are_only_matched_from_the_given_list() -> None:
    question = "Which papers by YuhaoZhou discuss Mamba?"
    without = parse_query(question)
    assert without.filters.scholars == ()
    assert "YuhaoZhou" in without.topic
    assert parse_query(question, ["Someone Else"]).filters.scholars == ()
    assert parse_query(question, SCHOLARS).filters.scholars == ("YuhaoZhou",)


def test_no_filters_without_years_or_scholars() -> None:
    parsed = parse_query("Which papers address federated learning?", SCHOLARS)
    assert parsed.filters == NO_FILTERS
    assert parsed.filters.is_empty()


def test_whitespace_in_the_question_is_normalised() -> None:
    parsed = parse_query("  Which   papers address\n federated   learning ?  ")
    assert parsed.question == "Which papers address federated learning ?"
    assert parsed.kind == "list"
    assert parsed.topic == "federated learning"


# --- query_terms / stems --------------------------------------------------------------------


def test_query_terms_drop_stop_words_and_dedupe_in_order() -> None:
    terms = query_terms("What are the papers on the Federated learning and federated AVERAGING?")
    assert terms == ["what", "papers", "federated", "learning", "averaging"]
    assert not set(terms) & STOP_WORDS


def test_query_terms_split_on_punctuation_and_underscores() -> None:
    assert query_terms("Intern-S1: e.g. snake_case, 3.5%") == [
        "intern",
        "s1",
        "e",
        "g",
        "snake",
        "case",
        "3",
        "5",
    ]
    assert query_terms("the of and a to") == []
    assert query_terms("") == []


def test_query_terms_custom_stop_words() -> None:
    assert query_terms("the federated papers", frozenset({"papers"})) == ["the", "federated"]


def test_stems_are_porter_stems_of_every_word() -> None:
    assert stems("federated learning learns") == {"feder", "learn"}
    assert stems("The Papers") == {"the", "paper"}  # stems keep stop words
    assert stems("") == set()
