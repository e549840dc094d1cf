"""Parse a paper collection (Markdown tables or JSONL) into ``Paper`` records.

Every problem a user can fix is a ``CollectionError`` naming the file, the line and
what is wrong, raised before anything touches the store.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from markdown_it import MarkdownIt

TRUNCATION_MARKS = ("…", "...")
SUPPORTED_SUFFIXES = (".md", ".markdown", ".jsonl", ".jsonl.gz")
MAX_YEAR = 2100
MIN_YEAR = 1900

_HEADING = re.compile(r"^##\s+(?P<name>.+?)\s*$")
_SCHOLAR_SUFFIX = re.compile(r"\s+papers?\b.*$", re.IGNORECASE)
_SEPARATOR_CELL = re.compile(r"^:?-{2,}:?$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_MARKDOWN_LINK = re.compile(r"^\[[^\]]*\]\((?P<url>[^\s]*)\)$")  # greedy: URLs may hold ")"
# Formatting tags only: "n<k and m>1" in an abstract is text, not HTML.
_HTML_TAG = re.compile(r"</?(b|i|em|strong|sup|sub|p|span|div|a|u|code|small)\b[^>]*>", re.I)
_EMPTY_LINK = {"", "-", "—", "n/a", "na", "none"}
# Characters that can start inline Markdown or HTML; a cell without them is plain text.
_MARKDOWN_CHARS = re.compile(r"[\\`*_\[\]<>&!~]")
_COLUMN_ALIASES = {
    "year": "year",
    "title": "title",
    "abstract": "abstract",
    "summary": "abstract",
    "link": "url",
    "url": "url",
}
_markdown = MarkdownIt("commonmark", {"html": False})


class CollectionError(ValueError):
    """A user-fixable problem in a collection file, printed as ``file:line: problem``."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper as the rest of the pipeline sees it."""

    paper_id: str
    scholar: str
    year: int | None
    title: str
    abstract: str
    url: str | None
    truncated: bool
    source: str
    line: int

    def content_hash(self) -> str:
        """Changes whenever anything stored for this paper would change."""
        fields = [self.scholar, str(self.year), self.title, self.abstract, self.url or ""]
        return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()[:16]


@dataclass
class ParsedCollection:
    path: Path
    papers: list[Paper]
    warnings: list[str] = field(default_factory=list)


def parse_collection(path: Path) -> ParsedCollection:
    """Parse a ``.md`` or ``.jsonl[.gz]`` collection; duplicates are merged with a warning."""
    path = Path(path)
    if not path.exists():
        raise CollectionError(path, None, "no such file")
    if not path.is_file():
        raise CollectionError(path, None, "not a file")
    name = path.name.lower()
    # Rows are streamed into papers: holding every raw row as well as every paper
    # doubled a large file's peak memory (87k abstracts: about 300 MB instead of 150).
    if name.endswith((".jsonl", ".jsonl.gz")):
        records = _jsonl_records(path)
    elif name.endswith((".md", ".markdown")):
        records = _markdown_records(path, _read_text(path, path.read_bytes()))
    else:
        raise CollectionError(
            path, None, f"unknown file type; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    parsed = _merge_duplicates(path, records)
    if not parsed.papers:
        raise CollectionError(path, None, "no papers found")
    return parsed


def _read_text(path: Path, raw: bytes) -> str:
    """Decode UTF-8 (or UTF-16 with a byte-order mark); anything else is an error."""
    if not raw.strip():
        raise CollectionError(path, None, "the file is empty")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if b"\x00" in raw[:8192]:
        if _looks_like_utf16(raw[:8192]):
            raise CollectionError(
                path, None, "UTF-16 without a byte-order mark; save the file as UTF-8"
            )
        raise CollectionError(path, None, "binary file, not a text collection")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CollectionError(
            path, line, f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _looks_like_utf16(sample: bytes) -> bool:
    """Mostly-ASCII UTF-16 has a zero byte in every other position, all on one side."""
    fewer, more = sorted((sample[0::2].count(0), sample[1::2].count(0)))
    half = len(sample) // 2
    return half > 0 and more > 0.8 * half and fewer < 0.05 * half


def strip_markdown(cell: str) -> str:
    """Plain text of a Markdown table cell: emphasis, code and link syntax removed."""
    if not _MARKDOWN_CHARS.search(cell):  # most cells: parsing them is most of the parse time
        return " ".join(cell.split())
    cell = _HTML_TAG.sub("", re.sub(r"<br\s*/?>", " ", cell, flags=re.IGNORECASE))
    parts: list[str] = []
    for token in _markdown.parseInline(cell):
        for child in token.children or []:
            if child.type in ("text", "code_inline"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _split_row(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _UNESCAPED_PIPE.split(body)]


def _markdown_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, fields)`` for every table row, checking the shape of each."""
    lines = text.splitlines()
    scholar = path.stem
    saw_table = False
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = _HEADING.match(line)
        if heading:
            scholar = _SCHOLAR_SUFFIX.sub("", heading["name"]).strip() or scholar
            i += 1
            continue
        is_table = line.lstrip().startswith("|") and i + 1 < len(lines)
        if not (is_table and _is_separator(lines[i + 1])):
            i += 1
            continue
        saw_table = True
        columns = _columns(path, i + 1, _split_row(line))
        i += 2
        while i < len(lines) and lines[i].lstrip().startswith("|"):
            cells = _split_row(lines[i])
            if len(cells) != len(columns):
                hint = _shape_hint(len(cells) > len(columns), lines[i + 1 : i + 2])
                raise CollectionError(
                    path,
                    i + 1,
                    f"row has {len(cells)} cells but the header has {len(columns)}{hint}",
                )
            row = {
                name: cell if name == "url" else strip_markdown(cell)
                for name, cell in zip(columns, cells, strict=True)
                if name
            }
            row["scholar"] = scholar
            yield i + 1, row
            i += 1
    if not saw_table:
        raise CollectionError(path, None, "no table with a Title | Abstract header found")


def _shape_hint(too_many: bool, following: list[str]) -> str:
    """The usual cause of a row with the wrong number of cells, as a hint."""
    if too_many:
        return " (an unescaped '|' inside a cell? write it as \\|)"
    if following and following[0].strip() and not following[0].lstrip().startswith("|"):
        return " (a line break inside a cell? write it as <br>)"
    return ""


def _is_separator(line: str) -> bool:
    cells = _split_row(line)
    return bool(cells) and all(_SEPARATOR_CELL.match(c.replace(" ", "")) for c in cells)


def _columns(path: Path, line: int, header: list[str]) -> list[str | None]:
    columns = [_COLUMN_ALIASES.get(strip_markdown(h).lower()) for h in header]
    missing = [c for c in ("title", "abstract") if c not in columns]
    if missing:
        names = " and ".join(missing)
        raise CollectionError(path, line, f"the table header has no {names} column")
    return columns


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    empty = True
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise CollectionError(path, number, f"not valid JSON ({exc})") from None
                if not isinstance(record, dict):
                    raise CollectionError(path, number, "each line must be a JSON object")
                fields = {
                    "id": record.get("id"),
                    "title": record.get("title"),
                    "abstract": record.get("text") or record.get("abstract"),
                    "url": record.get("url"),
                    "year": record.get("year"),
                    "scholar": record.get("scholar") or path.name.split(".")[0],
                }
                empty = False
                yield number, {k: "" if v is None else str(v) for k, v in fields.items()}
    except (OSError, EOFError) as exc:
        raise CollectionError(path, None, f"cannot read the file ({exc})") from None
    if empty:
        raise CollectionError(path, None, "the file is empty")


def _paper(path: Path, line: int, row: dict[str, str], source: str) -> Paper:
    title = " ".join(row.get("title", "").split())
    abstract = " ".join(row.get("abstract", "").split())
    if not title:
        raise CollectionError(path, line, "the title is empty")
    url = _parse_link(path, line, row.get("url", ""))
    year = _parse_year(path, line, row.get("year", ""))
    paper_id = row.get("id") or _paper_id(url, title)
    return Paper(
        paper_id=paper_id,
        scholar=row.get("scholar", "").strip() or path.stem,
        year=year,
        title=title,
        abstract=abstract,
        url=url,
        truncated=abstract.endswith(TRUNCATION_MARKS),
        source=source,
        line=line,
    )


def _parse_year(path: Path, line: int, cell: str) -> int | None:
    cell = cell.strip()
    if not cell:
        return None
    if not cell.isdigit() or not MIN_YEAR <= int(cell) <= MAX_YEAR:
        raise CollectionError(path, line, f"year {cell!r} is not a year")
    return int(cell)


def _parse_link(path: Path, line: int, cell: str) -> str | None:
    """The paper's URL from ``[Link](url)``, ``<url>`` or a bare URL; only http(s)."""
    cell = cell.strip()
    if cell.lower() in _EMPTY_LINK:
        return None
    link = _MARKDOWN_LINK.match(cell)
    url = (link["url"] if link else cell).strip("<>").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        raise CollectionError(path, line, f"link {cell!r} is not an http(s) URL")
    return url


def _paper_id(url: str | None, title: str) -> str:
    """Stable id: from the link when there is one (so a retitled paper keeps it), else the title."""
    if url:
        parts = urlsplit(url)
        key = urlunsplit(("", parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))
    else:
        key = re.sub(r"\W+", " ", title.lower()).strip()
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _merge_duplicates(
    path: Path, records: Iterable[tuple[int, dict[str, str]]]
) -> ParsedCollection:
    papers: dict[str, Paper] = {}
    warnings: list[str] = []
    source = str(path.resolve())  # once: resolving per row was half of a large file's parse
    for line, row in records:
        paper = _paper(path, line, row, source)
        kept = papers.get(paper.paper_id)
        if kept is None:
            papers[paper.paper_id] = paper
            continue
        warnings.append(f"{path}:{line}: duplicate of line {kept.line} ({kept.title!r}); merged")
        if _completeness(paper) > _completeness(kept):
            papers[paper.paper_id] = paper
    return ParsedCollection(path=path, papers=list(papers.values()), warnings=warnings)


def _completeness(paper: Paper) -> tuple[bool, int]:
    return (not paper.truncated, len(paper.abstract))
