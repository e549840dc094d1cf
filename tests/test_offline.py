"""The offline answerer's wording (its judging is tested end to end in test_answer.py)."""

from __future__ import annotations

import pytest

from assistant.citations import CitationResolver
from assistant.offline import heading, quote
from assistant.query import parse_query
from assistant.retrieval import PaperHit


@pytest.mark.parametrize(
    ("question", "count", "expected"),
    [
        ("Which papers address hypernetworks?", 1, "1 paper in the collection addresses"),
        ("Which papers address hypernetworks?", 3, "3 papers in the collection address"),
        ("Summarise the research on hypernetworks", 1, "1 paper on hypernetworks reports:"),
        ("Summarise the research on hypernetworks", 2, "2 papers on hypernetworks report:"),
    ],
)
def test_heading_agrees_with_the_number_of_papers(question: str, count: int, expected: str) -> None:
    assert expected in heading(parse_query(question), count)


def test_quoted_reference_marks_are_not_read_as_citation_keys() -> None:
    """An abstract's own "[13]" or a "[Re]" title must survive the citation resolver."""
    hit = PaperHit("p", "T", 2024, None, "S", False, 0.0, 0.0, ())
    resolver = CitationResolver({"S1": hit})
    text = quote(["Tracking allows reconstruction [13], [22, 36].", "It is w[1]-hard."])
    answer = resolver.feed(f"{quote(['[Re] A title'])}: {text} [S1]") + resolver.flush()
    assert (
        answer
        == "(Re) A title: Tracking allows reconstruction (13), (22, 36). It is w(1)-hard. [1]"
    )
    assert resolver.dropped == 0 and resolver.cited == [hit]
