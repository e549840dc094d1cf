"""The offline answerer's wording (its judging is tested end to end in test_answer.py)."""

from __future__ import annotations

import pytest

from assistant.offline import heading
from assistant.query import parse_query


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
