"""Citations: numbered references that resolve to a retrieved paper's own metadata.

A citation is made only from a retrieved ``PaperHit``; its title, year and link come
from the store's metadata, never from generated text, so a link cannot be invented.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from assistant.retrieval import PaperHit


@dataclass(frozen=True)
class Citation:
    n: int
    paper_id: str
    title: str
    year: int | None
    url: str | None
    scholar: str

    def as_json(self) -> dict[str, object]:
        return asdict(self)

    def reference(self) -> str:
        """``[n] Title (year). link`` as the sources list shows it."""
        year = f" ({self.year})" if self.year else ""
        link = f" {self.url}" if self.url else " (no link in the collection)"
        return f"[{self.n}] {self.title}{year}.{link}"


def cite(hits: list[PaperHit]) -> list[Citation]:
    """Number the papers an answer cites, in the order the answer cites them."""
    return [
        Citation(n, hit.paper_id, hit.title, hit.year, hit.url, hit.scholar)
        for n, hit in enumerate(hits, start=1)
    ]


def sources_block(citations: list[Citation]) -> str:
    if not citations:
        return ""
    return "Sources:\n" + "\n".join(c.reference() for c in citations)


_KEY_GROUP = re.compile(r"\[([A-Za-z0-9_, ;-]{1,80})\]")
_KEY_SHAPE = re.compile(r"^[A-Za-z]{0,4}-?\d{1,4}$|^[A-Za-z0-9_-]{1,12}$")
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]{1,200})\]\((?:https?|javascript|data):[^)\s]*\)", re.I)
_URL = re.compile(r"\b(?:https?|ftp|javascript|data):[^\s\]>]+", re.I)


class CitationResolver:
    """Turn source keys in generated text into ``[n]`` citations, streaming.

    Keys that name a retrieved source are numbered in order of first use; anything
    else in key position is dropped (and counted), as are links: the only links an
    answer shows are the cited papers' own, in the sources list. Text is held back
    only while a key or a word may still be incomplete.
    """

    def __init__(self, sources: dict[str, PaperHit]) -> None:
        self.sources = sources
        self.order: list[str] = []
        self.dropped = 0
        self._buffer = ""

    @property
    def cited(self) -> list[PaperHit]:
        return [self.sources[key] for key in self.order]

    def feed(self, text: str) -> str:
        self._buffer += text
        cut = max(self._buffer.rfind(" "), self._buffer.rfind("\n"))
        opened = self._buffer.rfind("[", 0, cut + 1)
        if opened > self._buffer.rfind("]", 0, cut + 1):  # never cut inside brackets
            cut = opened - 1
        if cut < 0:
            return ""
        ready, self._buffer = self._buffer[: cut + 1], self._buffer[cut + 1 :]
        return self._resolve(ready)

    def flush(self) -> str:
        ready, self._buffer = self._buffer, ""
        return self._resolve(ready)

    def _resolve(self, text: str) -> str:
        text = _URL.sub("", _MARKDOWN_LINK.sub(r"\1", text))
        return _KEY_GROUP.sub(self._numbers, text)

    def _numbers(self, match: re.Match[str]) -> str:
        parts = [p.strip() for p in re.split(r"[,;]", match[1]) if p.strip()]
        if not parts or not all(_KEY_SHAPE.match(p) for p in parts):
            return match[0]  # ordinary bracketed text, not a citation
        numbers = []
        for key in parts:
            if key not in self.sources:
                self.dropped += 1
                continue
            if key not in self.order:
                self.order.append(key)
            numbers.append(self.order.index(key) + 1)
        return "".join(f"[{n}]" for n in dict.fromkeys(numbers))
