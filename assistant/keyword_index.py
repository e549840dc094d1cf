"""BM25 over whole papers (title and abstract), kept beside the vector store in SQLite FTS5.

Papers, not chunks: the dense side reads short chunks, but BM25's term statistics work
best on the whole abstract (SciFact train: 0.7052 on papers, 0.6908 on 600-character
chunks, benchmarks/README.md), and only a paper's score is used.

Why FTS5 rather than rank-bm25/bm25s: those rebuild the whole index in memory on every
change and load it on every start; FTS5 is persistent, transactional and incremental
(adding or replacing one paper touches only its row), scores with standard BM25
(k1=1.2, b=0.75) and stems with Porter. Filters join a plain table indexed by paper.
The index is derived data: ``PaperStore.sync_keywords`` rebuilds whatever is missing
from the vector store, so it is also how a client catches up with a Chroma server.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import Stemmer

# Lucene's English stop words: they match nearly every chunk and only cost time.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
_TERM = re.compile(r"[^\W_]+", re.UNICODE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS papers(
    rowid INTEGER PRIMARY KEY, paper_id TEXT UNIQUE NOT NULL, content_hash TEXT NOT NULL,
    year INTEGER, scholar TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS paper_text USING fts5(
    title, body, tokenize = 'porter unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE IF NOT EXISTS paper_vocab USING fts5vocab(paper_text, 'row');
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Bump when the schema changes: an index of another version is dropped and rebuilt from
# the vector store (it is derived data), never queried with the wrong columns.
SCHEMA_VERSION = "3"
_TABLES = (
    "chunk_vocab",
    "chunk_text",
    "chunk_rows",
    "paper_vocab",
    "paper_text",
    "papers",
    "state",
)


@dataclass(frozen=True)
class KeywordPaper:
    paper_id: str
    content_hash: str
    title: str
    abstract: str
    year: int | None
    scholar: str


@dataclass(frozen=True)
class SearchFilters:
    """Metadata filters shared by both retrievers."""

    year_min: int | None = None
    year_max: int | None = None
    scholars: tuple[str, ...] = ()
    paper_ids: tuple[str, ...] | None = None  # a follow-up narrows to the papers before it

    def is_empty(self) -> bool:
        return (
            self.year_min is None
            and self.year_max is None
            and not self.scholars
            and self.paper_ids is None
        )

    def narrowed_by(self, other: SearchFilters) -> SearchFilters:
        """Both filters at once (the question's and the chat page's)."""
        if other.is_empty():
            return self
        lows = [y for y in (self.year_min, other.year_min) if y is not None]
        highs = [y for y in (self.year_max, other.year_max) if y is not None]
        scholars = self.scholars
        if other.scholars:
            scholars = tuple(s for s in self.scholars if s in other.scholars) or other.scholars
        paper_ids = self.paper_ids if other.paper_ids is None else other.paper_ids
        if self.paper_ids is not None and other.paper_ids is not None:
            paper_ids = tuple(p for p in self.paper_ids if p in other.paper_ids)
        return SearchFilters(
            year_min=max(lows) if lows else None,
            year_max=min(highs) if highs else None,
            scholars=scholars,
            paper_ids=paper_ids,
        )


# The same algorithm as FTS5's ``porter`` tokenizer, for matching terms outside SQLite.
_stemmer = Stemmer.Stemmer("porter")


def query_terms(text: str, stop_words: frozenset[str] = STOP_WORDS) -> list[str]:
    """Distinct lower-cased query words without stop words, in order."""
    terms = (t.lower() for t in _TERM.findall(text))
    return list(dict.fromkeys(t for t in terms if t not in stop_words))


def words(text: str) -> list[str]:
    """Every lower-cased word of ``text``, in order."""
    return [t.lower() for t in _TERM.findall(text)]


def stems(text: str) -> set[str]:
    """Porter stems of every word in ``text``, as the BM25 index sees them."""
    return set(_stemmer.stemWords([t.lower() for t in _TERM.findall(text)]))


def stem(term: str) -> str:
    return _stemmer.stemWord(term.lower())


class KeywordIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        if self.get_state("schema") != SCHEMA_VERSION:
            self._rebuild_empty()

    def _rebuild_empty(self) -> None:
        """Drop every table and start at this version; the next sync refills it.

        Idempotent, so an interruption here only means it runs again on the next open.
        """
        for table in _TABLES:
            self._db.execute(f"DROP TABLE IF EXISTS {table}")
        self._db.executescript(_SCHEMA)
        self.set_state("schema", SCHEMA_VERSION)

    def close(self) -> None:
        self._db.close()

    def paper_hashes(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT paper_id, content_hash FROM papers"))

    def get_state(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    def replace_papers(self, papers: Iterable[KeywordPaper]) -> None:
        """Add or replace these papers in one transaction."""
        papers = list(papers)
        with self._transaction():
            self._delete([p.paper_id for p in papers])
            for paper in papers:
                cursor = self._db.execute(
                    "INSERT INTO papers(paper_id, content_hash, year, scholar) VALUES (?,?,?,?)",
                    (paper.paper_id, paper.content_hash, paper.year, paper.scholar),
                )
                self._db.execute(
                    "INSERT INTO paper_text(rowid, title, body) VALUES (?, ?, ?)",
                    (cursor.lastrowid, paper.title, paper.abstract),
                )

    def remove_papers(self, paper_ids: list[str]) -> None:
        with self._transaction():
            self._delete(paper_ids)

    def _delete(self, paper_ids: list[str]) -> None:
        for start in range(0, len(paper_ids), 500):
            ids = paper_ids[start : start + 500]
            marks = ",".join("?" * len(ids))
            rows = f"SELECT rowid FROM papers WHERE paper_id IN ({marks})"
            self._db.execute(f"DELETE FROM paper_text WHERE rowid IN ({rows})", ids)
            self._db.execute(f"DELETE FROM papers WHERE paper_id IN ({marks})", ids)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def search(
        self,
        query: str,
        limit: int,
        filters: SearchFilters | None = None,
        title_weight: float = 1.0,
        max_df: float = 1.0,
    ) -> dict[str, float]:
        """``{paper_id: bm25}`` of the best ``limit`` papers; higher bm25 is better.

        A title term counts ``title_weight`` times a body term (BM25F-style column weight).
        Query words held by more than ``max_df`` of the papers are left out (the rarest
        word is always kept): FTS5 scores every paper matching any word, so a common word
        costs time while adding little to the ranking (benchmarks/README.md).
        """
        terms = query_terms(query)
        if not terms:
            return {}
        if max_df < 1.0:
            counts = self.doc_counts(terms)
            limit_count = max_df * self.count_papers()
            terms = [t for t in terms if counts[t] <= limit_count] or [min(terms, key=counts.get)]
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        where, params = _filter_sql(filters)
        bm25 = f"bm25(paper_text, {float(title_weight)}, 1.0)"
        sql = (
            f"SELECT r.paper_id, -{bm25} AS score FROM paper_text "
            "JOIN papers r ON r.rowid = paper_text.rowid "
            f"WHERE paper_text MATCH ? {where} ORDER BY {bm25} LIMIT ?"
        )
        return dict(self._db.execute(sql, [match, *params, limit]))

    def papers(self, filters: SearchFilters | None, limit: int) -> list[str]:
        """Ids of the papers within the filters, newest first."""
        where, params = _filter_sql(filters)
        sql = (
            "SELECT paper_id FROM papers r WHERE 1 " + where + " ORDER BY year DESC, rowid LIMIT ?"
        )
        return [row[0] for row in self._db.execute(sql, [*params, limit])]

    def scholars(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT scholar FROM papers")]

    def years(self) -> list[int]:
        sql = "SELECT DISTINCT year FROM papers WHERE year IS NOT NULL ORDER BY year"
        return [r[0] for r in self._db.execute(sql)]

    def count_papers(self) -> int:
        return self._db.execute("SELECT count(*) FROM papers").fetchone()[0]

    def doc_counts(self, terms: list[str]) -> dict[str, int]:
        """How many papers hold each term (as its Porter stem)."""
        stemmed = {term: stem(term) for term in terms}
        marks = ",".join("?" * len(stemmed))
        counts = dict(
            self._db.execute(
                f"SELECT term, doc FROM paper_vocab WHERE term IN ({marks})",
                list(stemmed.values()),
            )
        )
        return {term: counts.get(s, 0) for term, s in stemmed.items()}

    def idf(self, terms: list[str]) -> dict[str, float]:
        """BM25's smoothed inverse document frequency of each term (over papers)."""
        total = max(self.count_papers(), 1)
        return {
            term: math.log((total - n + 0.5) / (n + 0.5) + 1)
            for term, n in self.doc_counts(terms).items()
        }


def _filter_sql(filters: SearchFilters | None) -> tuple[str, list[object]]:
    """``AND ...`` conditions on ``papers r`` for the filters, with their parameters."""
    filters = filters or SearchFilters()
    where: list[str] = []
    params: list[object] = []
    if filters.year_min is not None:
        where.append("r.year >= ?")
        params.append(filters.year_min)
    if filters.year_max is not None:
        where.append("r.year <= ?")
        params.append(filters.year_max)
    if filters.scholars:
        where.append(f"r.scholar IN ({','.join('?' * len(filters.scholars))})")
        params.extend(filters.scholars)
    if filters.paper_ids is not None:
        where.append(f"r.paper_id IN ({','.join('?' * len(filters.paper_ids))})")
        params.extend(filters.paper_ids)
    return "".join(f" AND {w}" for w in where), params


class _Transaction:
    """``with`` block around BEGIN/COMMIT that rolls back on any error (autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
