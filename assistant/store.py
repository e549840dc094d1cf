"""The paper store: chunks and vectors in Chroma, BM25 beside them, kept in step.

Chroma is the source of truth. It is an embedded ``PersistentClient`` directory by
default and a Chroma server (``chromadb.HttpClient``) when ``chroma_url`` is set: the
rest of the code cannot tell the difference. Every chunk carries its paper's content
hash and chunk count, so the store itself is the ingest manifest, and a paper whose
chunks are not all there is known to be incomplete.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import chromadb
import httpx
import numpy as np
from chromadb.config import Settings as ChromaClientSettings
from langchain_chroma import Chroma

from assistant.chunking import Chunk, abstract_from_chunks
from assistant.embeddings import (
    EmbeddingModelError,
    MiniLMEmbeddings,
    shared_embeddings,
    vector_fingerprint,
)
from assistant.keyword_index import KeywordIndex, KeywordPaper, SearchFilters
from assistant.settings import Settings

# Chunks per read when paging through the whole collection. Chroma keeps memory in step
# with the largest page it has returned: paging 94k chunks' metadata left the process
# 340 MB bigger with pages of 5,000 and 190 MB with 1,000, in the same time (500: slower).
PAGE = 1000
GENERATION = "generation"
VECTORS = "vectors"  # what made the stored vectors (``embeddings.vector_fingerprint``)
# Chroma's HTTP client waits forever by default: a stalled server would hang every reader.
CHROMA_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

F = TypeVar("F", bound=Callable[..., Any])


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says which and why."""


@dataclass(frozen=True)
class StoredPaper:
    content_hash: str
    source: str
    chunks_present: int
    n_chunks: int

    @property
    def complete(self) -> bool:
        return self.chunks_present == self.n_chunks


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: str
    text: str
    metadata: dict[str, Any]
    similarity: float  # cosine to the question
    vector: np.ndarray


def _chroma_headers(settings: Settings) -> dict[str, str]:
    """Hosted Chroma (and a server with token auth) reads its API key from this header."""
    if settings.chroma_token is None:
        return {}
    return {"x-chroma-token": settings.chroma_token.get_secret_value()}


def _chroma_client(settings: Settings) -> chromadb.ClientAPI:
    client_settings = ChromaClientSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlsplit(settings.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise StoreError(f"chroma_url {settings.chroma_url!r} is not http(s)://host:port")
        try:
            client = chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                headers=_chroma_headers(settings),
                settings=client_settings,
                tenant=settings.chroma_tenant,
                database=settings.chroma_database,
            )
        except Exception as exc:
            raise StoreError(
                f"cannot reach the Chroma server at {settings.chroma_url}: {exc}"
            ) from None
        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):  # no public setting for it in chromadb 1.x
            session.timeout = CHROMA_TIMEOUT
        return client
    settings.store.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.store), settings=client_settings)


def chroma_where(filters: SearchFilters | None) -> dict[str, Any] | None:
    """The same filters as a Chroma ``where`` clause."""
    if filters is None or filters.is_empty():
        return None
    clauses: list[dict[str, Any]] = []
    if filters.year_min is not None:
        clauses.append({"year": {"$gte": filters.year_min}})
    if filters.year_max is not None:
        clauses.append({"year": {"$lte": filters.year_max}})
    if filters.scholars:
        clauses.append({"scholar": {"$in": list(filters.scholars)}})
    if filters.paper_ids is not None:
        clauses.append({"paper_id": {"$in": list(filters.paper_ids) or [""]}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _reaching_server(method: F) -> F:
    """A Chroma server that is down or stalls is one ``StoreError`` line naming it.

    Nothing is cached across the failure: the next call tries the server again, so a
    long-lived client (the chat page) works again once the server is back.
    """

    @functools.wraps(method)
    def wrapper(self: PaperStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except httpx.TransportError as exc:
            problem = str(exc) or type(exc).__name__
            raise StoreError(
                f"cannot reach the Chroma server at {self.settings.chroma_url}: {problem}"
            ) from None

    return cast(F, wrapper)


class PaperStore:
    def __init__(self, settings: Settings, embeddings: MiniLMEmbeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.vectors = Chroma(
            client=_chroma_client(settings),
            collection_name=settings.collection_name,
            embedding_function=embeddings,
            collection_configuration={"hnsw": settings.hnsw.model_dump()},
        )
        self.collection = self.vectors._collection
        self.keywords = KeywordIndex(self._keyword_index_path())

    def _keyword_index_path(self) -> Path:
        """Beside the embedded store; per server, database and collection when remote."""
        name = self.settings.collection_name
        if self.settings.chroma_url:
            server = self.settings
            where = f"{server.chroma_url}|{server.chroma_tenant}|{server.chroma_database}"
            name += "-" + hashlib.sha1(where.encode()).hexdigest()[:8]
        self.settings.store.mkdir(parents=True, exist_ok=True)
        return self.settings.store / f"keywords-{name}.sqlite"

    # ---- manifest -------------------------------------------------------------------

    def _pages(self, **query: Any) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.collection.get(limit=PAGE, offset=offset, **query)
            if not page["ids"]:
                return
            yield page
            offset += len(page["ids"])

    @_reaching_server
    def manifest(self) -> dict[str, StoredPaper]:
        """Every stored paper with its hash, source file and how many chunks are present."""
        counts: dict[str, int] = {}
        # Only the fields a StoredPaper needs: keeping each paper's whole first metadata
        # dict cost about 100 MB at 87k papers.
        first: dict[str, tuple[str, str, int]] = {}
        for page in self._pages(include=["metadatas"]):
            for meta in page["metadatas"]:
                paper_id = meta["paper_id"]
                counts[paper_id] = counts.get(paper_id, 0) + 1
                if paper_id not in first:
                    first[paper_id] = (meta["content_hash"], meta["source"], meta["n_chunks"])
        return {
            pid: StoredPaper(content_hash, source, counts[pid], n_chunks)
            for pid, (content_hash, source, n_chunks) in first.items()
        }

    @_reaching_server
    def count_chunks(self) -> int:
        return self.collection.count()

    def scholars(self) -> list[str]:
        self.sync_keywords()
        return sorted(self.keywords.scholars())

    def years(self) -> list[int]:
        self.sync_keywords()
        return self.keywords.years()

    def count_papers(self) -> int:
        self.sync_keywords()
        return self.keywords.count_papers()

    # ---- writes ---------------------------------------------------------------------

    @_reaching_server
    def begin_write(self) -> None:
        """Mark the store as changing, so readers re-sync BM25 even if this write dies.

        It also records what makes the vectors now; an ingest under new embedding
        settings re-embeds every paper (their content hashes change), so once it
        finishes the label is true of every vector.
        """
        self.collection.modify(
            metadata={
                GENERATION: uuid.uuid4().hex,
                VECTORS: vector_fingerprint(self.settings.embedding),
            }
        )

    @_reaching_server
    def write_chunks(self, chunks: list[Chunk], embeddings: np.ndarray) -> None:
        """Replace the papers these chunks belong to with exactly these chunks."""
        paper_ids = list(dict.fromkeys(str(c.metadata["paper_id"]) for c in chunks))
        self.delete_papers(paper_ids)
        self.collection.add(
            ids=[c.chunk_id for c in chunks],
            documents=[c.text for c in chunks],
            metadatas=[dict(c.metadata) for c in chunks],
            embeddings=embeddings,
        )

    @_reaching_server
    def delete_papers(self, paper_ids: list[str]) -> None:
        for start in range(0, len(paper_ids), 500):
            self.collection.delete(where={"paper_id": {"$in": paper_ids[start : start + 500]}})

    @_reaching_server
    def sync_keywords(self, force: bool = False) -> None:
        """Bring the BM25 index in step with the vector store, touching only what differs."""
        self._sync_keywords(self._current_metadata().get(GENERATION, ""), force)

    def _sync_keywords(self, generation: str, force: bool = False) -> None:
        if not force and generation == self.keywords.get_state(GENERATION):
            return
        stored = {pid: p for pid, p in self.manifest().items() if p.complete}
        indexed = self.keywords.paper_hashes()
        stale = [
            pid for pid, h in indexed.items() if pid not in stored or stored[pid].content_hash != h
        ]
        self.keywords.remove_papers(stale)
        missing = [pid for pid, p in stored.items() if indexed.get(pid) != p.content_hash]
        for start in range(0, len(missing), 500):
            page = self.collection.get(
                where={"paper_id": {"$in": missing[start : start + 500]}},
                include=["documents", "metadatas"],
            )
            self.keywords.replace_papers(_keyword_papers(page["documents"], page["metadatas"]))
        self.keywords.set_state(GENERATION, generation)

    # ---- reads ----------------------------------------------------------------------

    def _current_metadata(self) -> dict[str, Any]:
        # Read afresh: another process (a CLI ingest, another client of a Chroma server)
        # may have written since this collection object was made.
        current = self.vectors._client.get_collection(self.settings.collection_name)
        return dict(current.metadata or {})

    @_reaching_server
    def begin_read(self) -> None:
        """Before a search: check the stored vectors suit the question's, sync BM25.

        Refuses vectors that other embedding settings made: a different model,
        arithmetic or input length gives vectors that look valid but rank worse; the fix
        is one ingest, which re-embeds every paper. One read of the collection's metadata
        serves both checks (one round trip to a Chroma server).
        """
        metadata = self._current_metadata()
        made_by = metadata.get(VECTORS)
        wanted = vector_fingerprint(self.settings.embedding)
        if made_by != wanted and self.count_chunks():
            where = self.settings.chroma_url or self.settings.store
            raise StoreError(
                f"{where}: its vectors were made by {made_by or 'an earlier version'}, "
                f"the settings embed with {wanted}; run `scholar-chat ingest` to re-embed "
                "(or change the embedding settings back)"
            )
        self._sync_keywords(metadata.get(GENERATION, ""))

    @_reaching_server
    def dense_search(
        self, query_vector: list[float], limit: int, filters: SearchFilters | None = None
    ) -> list[tuple[str, str, float]]:
        """``(chunk_id, paper_id, cosine similarity)`` nearest first."""
        # No count() first: it scans the collection (12 ms at 94k chunks), and an empty one
        # returns nothing anyway. langchain-chroma returns Chroma's distance here (cosine
        # space: 1 - similarity).
        found = self.vectors.similarity_search_by_vector_with_relevance_scores(
            query_vector, k=limit, filter=chroma_where(filters)
        )
        return [(str(doc.id), doc.metadata["paper_id"], 1.0 - dist) for doc, dist in found]

    @_reaching_server
    def paper_chunks(self, paper_ids: list[str], query_vector: list[float]) -> list[StoredChunk]:
        """All chunks of these papers with their cosine similarity to the query."""
        if not paper_ids:
            return []
        page = self.collection.get(
            where={"paper_id": {"$in": paper_ids}},
            include=["documents", "metadatas", "embeddings"],
        )
        vectors = np.asarray(page["embeddings"], dtype=np.float32)
        similarities = vectors @ np.asarray(query_vector, dtype=np.float32)
        return [
            StoredChunk(cid, text, meta, float(sim), vector)
            for cid, text, meta, sim, vector in zip(
                page["ids"],
                page["documents"],
                page["metadatas"],
                similarities,
                vectors,
                strict=True,
            )
        ]


def _keyword_papers(texts: list[str], metadatas: list[dict[str, Any]]) -> list[KeywordPaper]:
    """Whole papers for the BM25 index, rebuilt from their chunks."""
    chunks: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for text, meta in zip(texts, metadatas, strict=True):
        chunks.setdefault(meta["paper_id"], []).append((meta["chunk"], text, meta))
    papers = []
    for paper_id, parts in chunks.items():
        parts.sort(key=lambda part: part[0])
        meta = parts[0][2]
        abstract = abstract_from_chunks([text for _, text, _ in parts])
        papers.append(
            KeywordPaper(
                paper_id,
                meta["content_hash"],
                meta["title"],
                abstract,
                meta.get("year"),
                meta["scholar"],
            )
        )
    return papers


def open_store(settings: Settings, for_writing: bool = False) -> PaperStore:
    """The store with the shared embedding model, or one ``StoreError`` line saying why not."""
    if for_writing and not settings.chroma_url:
        target = settings.store.resolve()
        while not target.exists() and target != target.parent:  # it will be made
            target = target.parent
        if not os.access(target, os.W_OK):
            raise StoreError(f"{settings.store}: the store directory is not writable")
    try:
        return PaperStore(settings, shared_embeddings(settings.embedding))
    except (StoreError, EmbeddingModelError):
        raise
    except Exception as exc:
        where = settings.chroma_url or settings.store
        raise StoreError(f"{where}: cannot open the store ({exc})") from exc
