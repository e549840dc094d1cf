"""Turn a paper into chunks: title + sentence-packed abstract, with overlap.

An abstract is split on sentence boundaries into chunks of a few sentences (the dense
model matches a question to a short passage better than to a whole abstract), and every
chunk repeats the title, so each chunk can be retrieved and cited on its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.collection import Paper
from assistant.settings import ChunkSettings

# A regex splitter, not nltk/pysbd: punkt needs a download and pysbd takes ~1 ms per
# abstract (minutes at 87k papers); this one keeps "e.g.", "et al." and "Fig. 2" whole.
_ABBREVIATIONS = r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bet al\.)(?<!\bvs\.)(?<!\bFig\.)(?<!\bEq\.)"
_SENTENCE_END = re.compile(
    _ABBREVIATIONS + r"(?:(?<=[.!?])|(?<=[.!?][)\"']))\s+(?=[\"'(\[]?[A-Z0-9])"
)


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    text: str
    metadata: dict[str, str | int | bool]


def split_sentences(text: str) -> list[str]:
    """Sentences of an abstract, whitespace-normalised."""
    text = " ".join(text.split())
    return [s for s in _SENTENCE_END.split(text) if s]


def abstract_from_chunks(chunk_texts: Sequence[str]) -> str:
    """An abstract rebuilt from its chunks' texts in order: title lines dropped, the
    sentences chunks repeat shown once."""
    sentences: list[str] = []
    for text in chunk_texts:
        more = split_sentences(text.split("\n", 1)[-1])
        shared = range(min(len(sentences), len(more)), 0, -1)
        overlap = next((k for k in shared if sentences[-k:] == more[:k]), 0)
        sentences += more[overlap:]
    return " ".join(sentences)


def _pack(sentences: list[str], max_chars: int, overlap: int) -> list[list[str]]:
    """Greedily pack sentences into groups of at most ``max_chars``, overlapping groups."""
    pieces: list[str] = []
    for sentence in sentences:  # a sentence longer than a chunk is cut at word boundaries
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        pieces.append(sentence)
    groups: list[list[str]] = []
    start = 0
    while start < len(pieces):
        end, size = start, 0
        while end < len(pieces) and (end == start or size + len(pieces[end]) + 1 <= max_chars):
            size += len(pieces[end]) + 1
            end += 1
        groups.append(pieces[start:end])
        if end >= len(pieces):
            break
        start = max(end - overlap, start + 1)
        # Overlap only if the next chunk still has room for a new sentence.
        if sum(len(p) + 1 for p in pieces[start : end + 1]) > max_chars:
            start = end
    return groups


def chunk_paper(paper: Paper, settings: ChunkSettings, vectors: str = "") -> list[Chunk]:
    """Chunks of one paper, each carrying the metadata a citation needs.

    ``vectors`` names what embeds the chunks (see ``embeddings.vector_fingerprint``).
    """
    groups = _pack(split_sentences(paper.abstract), settings.max_chars, settings.overlap_sentences)
    groups = groups or [[]]
    # The chunking and embedding settings are part of the hash: changing either re-chunks
    # and re-embeds on the next ingest instead of mixing old and new vectors.
    content_hash = hashlib.sha256(
        (paper.content_hash() + settings.model_dump_json() + vectors).encode()
    ).hexdigest()[:16]
    chunks = []
    for index, group in enumerate(groups):
        metadata: dict[str, str | int | bool] = {
            "paper_id": paper.paper_id,
            "scholar": paper.scholar,
            "title": paper.title,
            "url": paper.url or "",
            "truncated": paper.truncated,
            "chunk": index,
            "n_chunks": len(groups),
            "content_hash": content_hash,
            "source": paper.source,
        }
        if paper.year is not None:
            metadata["year"] = paper.year
        text = "\n".join([paper.title, " ".join(group)]).strip()
        chunks.append(Chunk(f"{paper.paper_id}:{content_hash}:{index}", text, metadata))
    return chunks
