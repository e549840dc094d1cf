"""CitationResolver: keys to numbers, streaming, invented keys and links dropped."""

from __future__ import annotations

from assistant.citations import CitationResolver, cite, sources_block
from assistant.retrieval import PaperHit


def hit(paper_id: str, url: str | None = None) -> PaperHit:
    return PaperHit(
        paper_id=paper_id,
        title=f"Title {paper_id}",
        year=2024,
        url=url,
        scholar="S",
        truncated=False,
        score=0.0,
        similarity=0.0,
        chunks=(),
    )


SOURCES = {"S1": hit("a", "https://a.example/1"), "S2": hit("b"), "S3": hit("c")}


def resolve_streamed(text: str, step: int) -> tuple[str, CitationResolver]:
    resolver = CitationResolver(SOURCES)
    out = "".join(resolver.feed(text[i : i + step]) for i in range(0, len(text), step))
    return out + resolver.flush(), resolver


def test_keys_are_numbered_in_order_of_first_use() -> None:
    text, resolver = resolve_streamed("B first [S2], then A [S1] and B again [S2].", 1000)
    assert text == "B first [1], then A [2] and B again [1]."
    assert [h.paper_id for h in resolver.cited] == ["b", "a"]


def test_streaming_in_any_token_size_gives_the_same_text() -> None:
    text = "Grouped [S1, S3] and odd spacing [ S2 ]. Done [S1;S2]"
    whole, _ = resolve_streamed(text, 1000)
    for step in (1, 2, 3, 5, 7):
        assert resolve_streamed(text, step)[0] == whole
    assert whole == "Grouped [1][2] and odd spacing [3]. Done [1][3]"


def test_invented_keys_are_dropped_and_counted() -> None:
    text, resolver = resolve_streamed("Real [S1], invented [S9], a number [4], mixed [S2, X7].", 3)
    assert text == "Real [1], invented , a number , mixed [2]."
    assert resolver.dropped == 3
    assert [h.paper_id for h in resolver.cited] == ["a", "b"]


def test_links_in_generated_text_are_removed() -> None:
    text, _ = resolve_streamed(
        "See [the paper](https://evil.example/x) or http://evil.example/y and "
        "javascript:alert(1) [S1]",
        4,
    )
    assert "evil" not in text and "javascript" not in text
    assert text.startswith("See the paper or") and text.endswith("[1]")


def test_ordinary_brackets_survive() -> None:
    text, resolver = resolve_streamed("Accuracy rises (see [Fig. 2], [a, b, c]) [S3]", 2)
    assert "[Fig. 2]" in text and "[1]" in text
    assert resolver.dropped == 0 or "[a, b, c]" not in text


def test_sources_block_uses_metadata_links_only() -> None:
    citations = cite([SOURCES["S1"], SOURCES["S2"]])
    block = sources_block(citations)
    assert "[1] Title a (2024). https://a.example/1" in block
    assert "[2] Title b (2024). (no link in the collection)" in block
    assert sources_block([]) == ""
