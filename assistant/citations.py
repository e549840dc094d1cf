"""Citations: numbered references that resolve to a retrieved paper's own metadata.

A citation is made only from a retrieved ``PaperHit``; its title, year and link come
from the store's metadata, never from generated text, so a link cannot be invented.
"""

from __future__ import annotations

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
