"""Incremental, idempotent, resumable ingest against a real embedded Chroma."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.embeddings import MiniLMEmbeddings
from assistant.ingest import ingest, parse_all
from assistant.settings import DEFAULT_COLLECTION, Settings
from assistant.store import PaperStore
from tests.conftest import open_store


def _copy_default(tmp_path: Path) -> Path:
    target = tmp_path / "papers.md"
    target.write_text(DEFAULT_COLLECTION.read_text(encoding="utf-8"), encoding="utf-8")
    return target


def _consistent(store: PaperStore) -> None:
    """Every stored paper complete, and the BM25 index holds exactly the same chunks."""
    manifest = store.manifest()
    assert all(p.complete for p in manifest.values())
    store.sync_keywords()
    assert store.keywords.count_papers() == len(manifest)
    assert set(store.keywords.paper_hashes()) == set(manifest)


def test_second_ingest_adds_nothing(store: PaperStore, settings: Settings) -> None:
    first = ingest(parse_all([DEFAULT_COLLECTION]), store, settings)
    assert (first.papers, first.added, first.unchanged) == (24, 24, 0)
    assert first.chunks == store.count_chunks() > 24
    second = ingest(parse_all([DEFAULT_COLLECTION]), store, settings)
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 0, 0, 24)
    assert store.count_chunks() == first.chunks
    _consistent(store)


def test_a_different_embedding_reembeds_every_paper(store: PaperStore, settings: Settings) -> None:
    """Vectors made with another token limit are replaced, never mixed with new ones."""
    ingest(parse_all([DEFAULT_COLLECTION]), store, settings)
    before = store.collection.get(include=["embeddings"])
    shorter = settings.model_copy(
        update={"embedding": settings.embedding.model_copy(update={"max_tokens": 32})}
    )
    rebuilt = PaperStore(shorter, MiniLMEmbeddings(shorter.embedding))
    report = ingest(parse_all([DEFAULT_COLLECTION]), rebuilt, shorter)
    assert (report.updated, report.unchanged) == (24, 0)
    after = rebuilt.collection.get(include=["embeddings"])
    assert len(after["ids"]) == len(before["ids"]) and not set(after["ids"]) & set(before["ids"])
    _consistent(rebuilt)


def test_changed_paper_replaced_and_gone_paper_removed(
    tmp_path: Path, store: PaperStore, settings: Settings
) -> None:
    path = _copy_default(tmp_path)
    ingest(parse_all([path]), store, settings)
    text = path.read_text(encoding="utf-8")
    text = text.replace("830 expert-verified VQA pairs", "912 expert-verified VQA pairs")
    lines = [line for line in text.splitlines() if "Verigui" not in line]
    path.write_text("\n".join(lines), encoding="utf-8")

    report = ingest(parse_all([path]), store, settings)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 1, 22)
    documents = store.collection.get(include=["documents"])["documents"]
    assert any("912 expert-verified" in d for d in documents)
    assert not any("830 expert-verified" in d for d in documents)
    assert not any(d.startswith("Verigui") for d in documents)
    _consistent(store)


def test_collections_live_side_by_side(
    tmp_path: Path, store: PaperStore, settings: Settings
) -> None:
    other = tmp_path / "other.md"
    other.write_text(
        "## Grace Hopper Papers (1952)\n\n| Year | Title | Abstract | Link |\n|---|---|---|---|\n"
        "| 1952 | The Education of a Computer | Compilers translate programs. "
        "| https://example.org/a0 |\n",
        encoding="utf-8",
    )
    ingest(parse_all([DEFAULT_COLLECTION]), store, settings)
    report = ingest(parse_all([other]), store, settings)
    assert (report.added, report.removed) == (1, 0)  # the other file's papers stay
    assert len(store.manifest()) == 25
    assert store.scholars() == ["Grace Hopper", "YuhaoZhou"]


def test_interrupted_ingest_resumes_without_duplicates(tmp_path: Path, settings: Settings) -> None:
    small_batches = settings.model_copy(update={"write_batch_chunks": 4})
    store = open_store(small_batches)

    def crash_after_first_batch(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(parse_all([DEFAULT_COLLECTION]), store, small_batches, crash_after_first_batch)
    written = len(store.manifest())
    assert 0 < written < 24

    reopened = open_store(small_batches)  # as a new process would
    report = ingest(parse_all([DEFAULT_COLLECTION]), reopened, small_batches)
    assert (report.added, report.unchanged) == (24 - written, written)
    assert reopened.count_chunks() == report.chunks
    _consistent(reopened)


def test_half_written_paper_is_rewritten(store: PaperStore, settings: Settings) -> None:
    ingest(parse_all([DEFAULT_COLLECTION]), store, settings)
    multi = next(p for p, s in store.manifest().items() if s.n_chunks > 1)
    chunk_ids = store.collection.get(where={"paper_id": multi})["ids"]
    store.collection.delete(ids=chunk_ids[:1])
    assert not store.manifest()[multi].complete

    report = ingest(parse_all([DEFAULT_COLLECTION]), store, settings)
    assert (report.updated, report.unchanged) == (1, 23)
    assert store.manifest()[multi].complete
    _consistent(store)


def test_keyword_index_catches_up_from_the_vector_store(
    store: PaperStore, settings: Settings
) -> None:
    """The BM25 side is derived: deleting it loses nothing (as for a fresh client)."""
    ingest(parse_all([DEFAULT_COLLECTION]), store, settings)
    store.keywords.close()
    Path(store.keywords.path).unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(store.keywords.path) + suffix).unlink(missing_ok=True)
    fresh = open_store(settings)
    assert fresh.keywords.count_papers() == 0
    fresh.sync_keywords(force=True)
    _consistent(fresh)
    assert fresh.keywords.search("federated", 50)
