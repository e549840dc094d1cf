"""Sentence splitting and sentence-packed chunks with title and metadata."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from assistant.chunking import abstract_from_chunks, chunk_paper, split_sentences
from assistant.collection import Paper
from assistant.settings import ChunkSettings

TITLE = "Federated Learning at Scale"
SENTENCES = [
    f"Sentence {i} reports finding number {i} about federated optimisation on device {i}."
    for i in range(30)
]


def make_paper(abstract: str, **changes: object) -> Paper:
    paper = Paper(
        paper_id="abc123",
        scholar="Ada Lovelace",
        year=2024,
        title=TITLE,
        abstract=abstract,
        url="https://example.org/p",
        truncated=False,
        source="/data/papers.md",
        line=7,
    )
    return dataclasses.replace(paper, **changes)


def body(chunk_text: str) -> str:
    title, _, rest = chunk_text.partition("\n")
    assert title == TITLE
    return rest


# --- split_sentences ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Prior work (e.g. FedAvg) fails. It is slow.",
            ["Prior work (e.g. FedAvg) fails.", "It is slow."],
        ),
        (
            "Smith et al. showed this. We agree.",
            ["Smith et al. showed this.", "We agree."],
        ),
        (
            "As Fig. 2 shows, loss falls. See Eq. 3 for details.",
            ["As Fig. 2 shows, loss falls.", "See Eq. 3 for details."],
        ),
        (
            "Accuracy rose by 3.5% on CIFAR-10. Loss fell 0.25 points.",
            ["Accuracy rose by 3.5% on CIFAR-10.", "Loss fell 0.25 points."],
        ),
        (
            "Ours beats X vs. Y baselines, i.e. All of them. Done!",
            ["Ours beats X vs. Y baselines, i.e. All of them.", "Done!"],
        ),
        (
            "Does it work? Yes! It does.",
            ["Does it work?", "Yes!", "It does."],
        ),
        (
            'We study LLMs. 2025 was a big year. (Results) follow. "Quoted" too.',
            ["We study LLMs.", "2025 was a big year.", "(Results) follow.", '"Quoted" too.'],
        ),
        (
            "  Spread\n over   lines.\n\nNext  one.  ",
            ["Spread over lines.", "Next one."],
        ),
        ("", []),
        ("no end mark", ["no end mark"]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_split_sentences_keeps_lowercase_continuations_together() -> None:
    # a period followed by a lower-case word is not a sentence end
    assert split_sentences("We use approx. ten nodes. Then stop.") == [
        "We use approx. ten nodes.",
        "Then stop.",
    ]


# --- short abstracts ------------------------------------------------------------------------


def test_short_abstract_is_one_chunk_starting_with_the_title() -> None:
    abstract = "We propose a method. It works well, e.g. on CIFAR-10."
    chunks = chunk_paper(make_paper(abstract), ChunkSettings())
    assert len(chunks) == 1
    (chunk,) = chunks
    assert chunk.text == f"{TITLE}\n{abstract}"
    assert chunk.metadata["chunk"] == 0
    assert chunk.metadata["n_chunks"] == 1


def test_empty_abstract_is_one_title_only_chunk() -> None:
    (chunk,) = chunk_paper(make_paper(""), ChunkSettings())
    assert chunk.text == TITLE
    assert chunk.metadata["n_chunks"] == 1


def test_typical_abstract_becomes_a_few_short_chunks_by_default() -> None:
    abstract = " ".join(SENTENCES[:12])  # 941 characters, a typical abstract
    chunks = chunk_paper(make_paper(abstract), ChunkSettings())
    assert 2 <= len(chunks) <= 3
    bodies = [c.text.split("\n", 1)[1] for c in chunks]
    assert all(len(body) <= ChunkSettings().max_chars for body in bodies)
    assert abstract_from_chunks([c.text for c in chunks]) == abstract  # overlaps once


# --- long abstracts -------------------------------------------------------------------------

LONG = ChunkSettings(max_chars=300, overlap_sentences=1)


@pytest.fixture(scope="module")
def long_chunks() -> list:
    return chunk_paper(make_paper(" ".join(SENTENCES)), LONG)


def test_long_abstract_is_split_into_several_chunks(long_chunks: list) -> None:
    assert len(long_chunks) >= 5
    assert [c.metadata["chunk"] for c in long_chunks] == list(range(len(long_chunks)))
    assert {c.metadata["n_chunks"] for c in long_chunks} == {len(long_chunks)}


def test_every_chunk_starts_with_the_title_and_fits(long_chunks: list) -> None:
    for chunk in long_chunks:
        assert chunk.text.startswith(TITLE + "\n")
        text = body(chunk.text)
        assert 0 < len(text) <= LONG.max_chars
        assert len(chunk.text) <= LONG.max_chars + len(TITLE) + 1


def test_consecutive_chunks_share_exactly_one_sentence(long_chunks: list) -> None:
    groups = [split_sentences(body(c.text)) for c in long_chunks]
    for group in groups:
        assert all(s in SENTENCES for s in group)  # never cut mid-sentence here
    for previous, current in itertools.pairwise(groups):
        shared = set(previous) & set(current)
        assert len(shared) == 1
        assert previous[-1] == current[0]


def test_all_sentences_are_covered_in_order(long_chunks: list) -> None:
    groups = [split_sentences(body(c.text)) for c in long_chunks]
    rebuilt = groups[0] + [s for g in groups[1:] for s in g[1:]]  # drop each overlap
    assert rebuilt == SENTENCES


def test_no_overlap_setting_partitions_the_sentences() -> None:
    settings = ChunkSettings(max_chars=300, overlap_sentences=0)
    chunks = chunk_paper(make_paper(" ".join(SENTENCES)), settings)
    groups = [split_sentences(body(c.text)) for c in chunks]
    assert [s for g in groups for s in g] == SENTENCES
    assert len(chunks) > 1


def test_sentence_longer_than_max_chars_is_split_at_word_boundaries() -> None:
    words = [f"word{i:03d}" for i in range(120)]  # 7 chars each, ~960 chars in all
    sentence = " ".join(words) + "."
    settings = ChunkSettings(max_chars=200, overlap_sentences=0)
    chunks = chunk_paper(make_paper(sentence), settings)
    assert len(chunks) >= 5
    bodies = [body(c.text) for c in chunks]
    for text in bodies:
        assert len(text) <= settings.max_chars
        # each piece is whole words only
        assert all(w in words or w == "word119." for w in text.split())
    assert " ".join(bodies).split() == sentence.split()


def test_unbreakable_token_is_cut_at_max_chars() -> None:
    blob = "x" * 450
    settings = ChunkSettings(max_chars=200, overlap_sentences=0)
    bodies = [body(c.text) for c in chunk_paper(make_paper(blob), settings)]
    assert [len(b) for b in bodies] == [200, 200, 50]
    assert "".join(bodies) == blob


def test_no_chunk_only_repeats_its_predecessor() -> None:
    sentences = ["Short opener here.", "M" + "m" * 198 + ".", "L" + "l" * 248 + "."]
    chunks = chunk_paper(make_paper(" ".join(sentences)), LONG)
    groups = [split_sentences(body(c.text)) for c in chunks]
    for previous, current in itertools.pairwise(groups):
        assert not set(current) <= set(previous)


# --- metadata and ids -----------------------------------------------------------------------


def test_metadata_keys_and_values() -> None:
    paper = make_paper(" ".join(SENTENCES))
    chunks = chunk_paper(paper, LONG)
    for index, chunk in enumerate(chunks):
        meta = chunk.metadata
        assert set(meta) == {
            "paper_id",
            "scholar",
            "year",
            "title",
            "url",
            "truncated",
            "chunk",
            "n_chunks",
            "content_hash",
            "source",
        }
        assert meta["paper_id"] == "abc123"
        assert meta["scholar"] == "Ada Lovelace"
        assert meta["year"] == 2024
        assert meta["title"] == TITLE
        assert meta["url"] == "https://example.org/p"
        assert meta["truncated"] is False
        assert meta["chunk"] == index
        assert meta["n_chunks"] == len(chunks)
        assert meta["source"] == "/data/papers.md"
        assert isinstance(meta["content_hash"], str) and len(meta["content_hash"]) == 16
        # every value is a scalar a vector store accepts
        assert all(isinstance(v, str | int | bool) for v in meta.values())
    assert len({c.metadata["content_hash"] for c in chunks}) == 1


def test_no_year_key_when_year_is_none_and_empty_url() -> None:
    (chunk,) = chunk_paper(make_paper("Short.", year=None, url=None, truncated=True), LONG)
    assert "year" not in chunk.metadata
    assert chunk.metadata["url"] == ""
    assert chunk.metadata["truncated"] is True


def test_content_hash_changes_with_settings_and_content_only() -> None:
    paper = make_paper(" ".join(SENTENCES))
    base = chunk_paper(paper, LONG)[0].metadata["content_hash"]
    assert chunk_paper(paper, LONG)[0].metadata["content_hash"] == base
    for other in (
        ChunkSettings(max_chars=301, overlap_sentences=1),
        ChunkSettings(max_chars=300, overlap_sentences=0),
    ):
        assert chunk_paper(paper, other)[0].metadata["content_hash"] != base
    # a different embedding (model or token limit) must re-embed, not mix vectors
    assert chunk_paper(paper, LONG, "model:128")[0].metadata["content_hash"] != base
    edited = dataclasses.replace(paper, abstract=paper.abstract + " One more.")
    assert chunk_paper(edited, LONG)[0].metadata["content_hash"] != base
    # where the paper was read from is not content
    moved = dataclasses.replace(paper, source="/elsewhere.md", line=99)
    assert chunk_paper(moved, LONG)[0].metadata["content_hash"] == base


def test_chunk_ids_are_unique_and_carry_paper_hash_and_index() -> None:
    paper = make_paper(" ".join(SENTENCES))
    chunks = chunk_paper(paper, LONG)
    ids = [c.chunk_id for c in chunks]
    assert len(set(ids)) == len(ids)
    for index, chunk in enumerate(chunks):
        assert chunk.chunk_id == f"abc123:{chunk.metadata['content_hash']}:{index}"
    other = chunk_paper(dataclasses.replace(paper, paper_id="zzz"), LONG)
    assert not set(ids) & {c.chunk_id for c in other}
    # new settings give new ids, so a re-chunked paper never collides with its old chunks
    rechunked = chunk_paper(paper, ChunkSettings(max_chars=400, overlap_sentences=1))
    assert not set(ids) & {c.chunk_id for c in rechunked}
