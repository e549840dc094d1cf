"""Collection parsing: a hand-written messy fixture, bad files, JSONL and the default data."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from assistant.collection import CollectionError, Paper, parse_collection

FIXTURES = Path(__file__).parent / "fixtures"
MESSY = FIXTURES / "messy.md"
SMALL = FIXTURES / "small.jsonl"
DEFAULT_COLLECTION = Path(__file__).resolve().parents[1] / "data" / "papers.md"

TABLE = "## Some One Papers\n\n| Year | Title | Abstract | Link |\n|---|---|---|---|\n"
TABLE_LINES = 4  # the first data row after TABLE is line 5


def _by_title(papers: list[Paper]) -> dict[str, Paper]:
    return {p.title: p for p in papers}


@pytest.fixture(scope="module")
def messy() -> dict[str, Paper]:
    return _by_title(parse_collection(MESSY).papers)


# --- the messy Markdown fixture ------------------------------------------------------------


def test_messy_parses_every_distinct_paper_once() -> None:
    parsed = parse_collection(MESSY)
    assert parsed.path == MESSY
    # 6 rows, one of them a duplicate of an earlier row
    assert len(parsed.papers) == 5
    assert sorted(p.title for p in parsed.papers) == [
        "Computing Machinery and Intelligence",
        "Notes on the Analytical Engine | Sketch",
        "On Computable Numbers",
        "Poetical Science",
        "Untitled Lecture",
    ]


def test_messy_scholars_come_from_headings_without_papers_suffix(
    messy: dict[str, Paper],
) -> None:
    assert {p.scholar for p in messy.values()} == {"Ada Lovelace", "Alan Turing"}
    assert messy["Poetical Science"].scholar == "Ada Lovelace"
    assert messy["On Computable Numbers"].scholar == "Alan Turing"


def test_messy_years_follow_their_column_whatever_its_position(
    messy: dict[str, Paper],
) -> None:
    assert messy["Notes on the Analytical Engine | Sketch"].year == 2023
    assert messy["Poetical Science"].year == 2024
    # second table is Title | Year | Link | Abstract
    assert messy["On Computable Numbers"].year == 2024
    assert messy["Computing Machinery and Intelligence"].year == 2024
    assert all(isinstance(p.year, int) for p in messy.values())


def test_messy_reordered_columns_map_link_and_abstract(messy: dict[str, Paper]) -> None:
    turing = messy["Computing Machinery and Intelligence"]
    assert turing.url == "https://example.org/turing/imitation"  # bare URL
    assert turing.abstract == 'I propose to consider the question, "Can machines think?"'
    computable = messy["On Computable Numbers"]
    assert computable.url == "https://example.org/turing/computable"  # <autolink>


def test_messy_escaped_pipes_are_restored_in_title_and_abstract(
    messy: dict[str, Paper],
) -> None:
    assert "Notes on the Analytical Engine | Sketch" in messy
    assert "finite means | a definition" in messy["On Computable Numbers"].abstract
    assert all("\\" not in p.title + p.abstract for p in messy.values())


def test_messy_markdown_and_html_are_stripped(messy: dict[str, Paper]) -> None:
    engine = messy["Notes on the Analytical Engine | Sketch"]
    assert engine.abstract == (
        "We describe a general-purpose engine using punched cards, see the notes. "
        "It computes Bernoulli numbers."
    )
    assert messy["Untitled Lecture"].abstract == "An abstract without a link."
    # `code` in a title and <br> between two words
    assert "Untitled Lecture" in messy
    assert "Poetical Science" in messy
    for paper in messy.values():
        for marker in ("**", "`", "](", "<br", "*"):
            assert marker not in paper.title
            assert marker not in paper.abstract


def test_messy_truncation_marks(messy: dict[str, Paper]) -> None:
    assert messy["Poetical Science"].abstract.endswith("…")
    assert messy["Poetical Science"].truncated is True
    assert messy["On Computable Numbers"].abstract.endswith("...")
    assert messy["On Computable Numbers"].truncated is True
    assert messy["Computing Machinery and Intelligence"].truncated is False
    assert messy["Notes on the Analytical Engine | Sketch"].truncated is False
    assert sum(p.truncated for p in messy.values()) == 2


def test_messy_missing_link_is_none(messy: dict[str, Paper]) -> None:
    assert messy["Untitled Lecture"].url is None
    assert all(p.url for title, p in messy.items() if title != "Untitled Lecture")


def test_messy_duplicate_is_merged_keeping_the_longer_abstract_with_a_warning() -> None:
    parsed = parse_collection(MESSY)
    engine = [p for p in parsed.papers if p.title.startswith("Notes on the Analytical")]
    assert len(engine) == 1
    kept = engine[0]
    assert kept.abstract.endswith("It computes Bernoulli numbers.")  # the longer one
    assert kept.line == 12
    assert parsed.warnings == [
        f"{MESSY}:12: duplicate of line 9 ('Notes on the Analytical Engine | Sketch'); merged"
    ]
    # the merged paper keeps its place in the order (first seen)
    assert parsed.papers[0] is kept


def test_messy_line_and_source_point_at_the_row(messy: dict[str, Paper]) -> None:
    lines = MESSY.read_text(encoding="utf-8").splitlines()
    for paper in messy.values():
        assert paper.source == str(MESSY.resolve())
        row = lines[paper.line - 1]
        assert row.startswith("|")
        assert paper.title.split()[0] in row


# --- paper ids ------------------------------------------------------------------------------


def test_ids_are_stable_across_parses() -> None:
    first = [p.paper_id for p in parse_collection(MESSY).papers]
    second = [p.paper_id for p in parse_collection(MESSY).papers]
    assert first == second
    assert len(set(first)) == len(first)
    assert all(len(pid) == 16 for pid in first)


def test_same_link_same_id_even_when_retitled(tmp_path: Path) -> None:
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text(TABLE + "| 2024 | Old title | x | [Link](https://example.org/p/1) |\n")
    # different title, host case, scheme and trailing slash: still the same paper
    b.write_text(TABLE + "| 2024 | New title | y | [Link](http://EXAMPLE.org/p/1/) |\n")
    (pa,) = parse_collection(a).papers
    (pb,) = parse_collection(b).papers
    assert pa.paper_id == pb.paper_id


def test_different_links_different_ids(tmp_path: Path) -> None:
    path = tmp_path / "c.md"
    path.write_text(
        TABLE
        + "| 2024 | Same title | x | https://example.org/p/1 |\n"
        + "| 2024 | Same title | x | https://example.org/p/2 |\n"
    )
    parsed = parse_collection(path)
    assert len({p.paper_id for p in parsed.papers}) == 2
    assert parsed.warnings == []


def test_id_from_title_when_no_link(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.md", tmp_path / "b.md", tmp_path / "c.md"
    a.write_text(TABLE + "| 2024 | Deep Learning: A Survey | x | |\n")
    # case and punctuation do not change a title-derived id
    b.write_text(TABLE + "| 2023 | deep learning -- a survey! | y | - |\n")
    c.write_text(TABLE + "| 2024 | Shallow Learning: A Survey | x | |\n")
    ids = [parse_collection(p).papers[0].paper_id for p in (a, b, c)]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


def test_same_title_without_link_is_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "dup.md"
    path.write_text(TABLE + "| 2024 | A Title | short… | |\n| 2024 | A title | complete. | |\n")
    parsed = parse_collection(path)
    assert len(parsed.papers) == 1
    assert parsed.papers[0].abstract == "complete."  # untruncated wins
    assert len(parsed.warnings) == 1
    assert f"{path}:6: duplicate of line 5" in parsed.warnings[0]


# --- bad files ------------------------------------------------------------------------------

ROW = TABLE.encode()
BAD_FILES = [
    # id, content (None: do not create the file), suffix, expected line, message substring
    ("missing", None, ".md", None, "no such file"),
    ("empty", b"", ".md", None, "the file is empty"),
    ("blank", b"  \n\n\t\n", ".md", None, "the file is empty"),
    ("binary", b"| Title |\x00\x01\x02\x00 |", ".md", None, "binary file"),
    ("latin-1", ROW + "| 2024 | Café | x | |\n".encode("latin-1"), ".md", 5, "not UTF-8"),
    ("no-table", b"# Papers\n\nJust some prose.\n", ".md", None, "no table"),
    ("no-abstract", b"| Title | Year |\n|---|---|\n| A | 2024 |\n", ".md", 1, "abstract column"),
    ("too-many", ROW + b"| 2024 | A | b | c | |\n", ".md", 5, "unescaped '|'"),
    ("too-few", ROW + b"| 2024 | A |\n", ".md", 5, "row has 2 cells but the header has 4"),
    ("bad-year", ROW + b"| 20x4 | A | b | |\n", ".md", 5, "year '20x4' is not a year"),
    ("old-year", ROW + b"| 1066 | A | b | |\n", ".md", 5, "year '1066' is not a year"),
    (
        "js-link",
        ROW + b"| 2024 | A | b | [Link](javascript:alert(1)) |\n",
        ".md",
        5,
        "is not an http(s) URL",
    ),
    ("ftp-link", ROW + b"| 2024 | A | b | ftp://x |\n", ".md", 5, "'ftp://x' is not an http(s)"),
    ("empty-title", ROW + b"| 2024 |  | b | |\n", ".md", 5, "the title is empty"),
    ("not-json", b'{"title": "a", "text": "b"}\n{not json\n', ".jsonl", 2, "not valid JSON"),
    ("json-list", b'{"title": "a", "text": "b"}\n["a", "b"]\n', ".jsonl", 2, "JSON object"),
    ("jsonl-empty", b"\n\n", ".jsonl", None, "the file is empty"),
    ("jsonl-no-title", b'{"text": "b"}\n', ".jsonl", 1, "the title is empty"),
    ("bad-gzip", b"this is not gzip", ".jsonl.gz", None, "cannot read the file"),
    ("txt", b"Title | Abstract\n", ".txt", None, "unknown file type"),
]


@pytest.mark.parametrize(
    ("content", "suffix", "line", "message"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_raises_collection_error_naming_file_line_and_problem(
    tmp_path: Path, content: bytes | None, suffix: str, line: int | None, message: str
) -> None:
    path = tmp_path / f"collection{suffix}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CollectionError) as caught:
        parse_collection(path)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.path == str(path)
    assert error.line == line
    assert message in error.problem
    text = str(error)
    assert text.startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert message in text


def test_a_directory_is_not_a_collection(tmp_path: Path) -> None:
    folder = tmp_path / "papers.md"
    folder.mkdir()
    with pytest.raises(CollectionError, match="not a file"):
        parse_collection(folder)


def test_latin1_error_names_the_offending_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin.md"
    path.write_bytes(
        ROW + b"| 2024 | Fine | ok | |\n" + "| 2024 | Résumé | x | |\n".encode("cp1252")
    )
    with pytest.raises(CollectionError) as caught:
        parse_collection(path)
    assert caught.value.line == 6
    assert "0xe9" in str(caught.value)
    assert "save the file as UTF-8" in str(caught.value)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom_parses(tmp_path: Path, encoding: str) -> None:
    bom = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[encoding]
    path = tmp_path / "wide.md"
    text = TABLE + "| 2024 | Café Society | Über alles. | [Link](https://example.org/cafe) |\n"
    path.write_bytes(bom + text.encode(encoding))
    (paper,) = parse_collection(path).papers
    assert paper.title == "Café Society"
    assert paper.abstract == "Über alles."
    assert paper.url == "https://example.org/cafe"
    assert paper.scholar == "Some One"
    assert paper.line == 5


def test_utf8_bom_and_crlf_parse(tmp_path: Path) -> None:
    path = tmp_path / "windows.md"
    text = TABLE + "| 2024 | Windows Paper | Saved by Notepad. | |\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    (paper,) = parse_collection(path).papers
    assert paper.title == "Windows Paper"
    assert paper.abstract == "Saved by Notepad."


def test_scholar_defaults_to_file_stem_without_heading(tmp_path: Path) -> None:
    path = tmp_path / "GraceHopper.md"
    path.write_text("| Title | Summary |\n|---|---|\n| Cobol | A language. |\n")
    (paper,) = parse_collection(path).papers
    assert paper.scholar == "GraceHopper"
    assert paper.year is None
    assert paper.abstract == "A language."  # "Summary" is an alias of Abstract


def test_link_with_parentheses_in_url(tmp_path: Path) -> None:
    path = tmp_path / "paren.md"
    url = "https://en.wikipedia.org/wiki/Turing_(disambiguation)"
    path.write_text(TABLE + f"| 2024 | A | b | [Link]({url}) |\n")
    assert parse_collection(path).papers[0].url == url


def test_angle_brackets_in_abstract_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "lt.md"
    path.write_text(TABLE + "| 2024 | Bounds | It converges when n<k and m>1 holds. | |\n")
    assert parse_collection(path).papers[0].abstract == "It converges when n<k and m>1 holds."


# --- JSONL ----------------------------------------------------------------------------------


def test_small_jsonl_fixture() -> None:
    parsed = parse_collection(SMALL)
    assert parsed.warnings == []
    papers = {p.paper_id: p for p in parsed.papers}
    assert list(papers) == ["doc-1", "doc-2", "doc-3"]  # "id" is used as is

    fedavg = papers["doc-1"]
    assert fedavg.title == "Federated Averaging Revisited"
    assert fedavg.abstract == "We revisit federated averaging. It converges."
    assert fedavg.year == 2024
    assert fedavg.url == "https://example.org/fedavg"
    assert fedavg.scholar == "small"  # the file name without its suffixes
    assert fedavg.line == 1

    assert papers["doc-2"].year is None
    assert papers["doc-2"].line == 2

    distil = papers["doc-3"]  # "abstract" instead of "text", blank line before it
    assert distil.abstract == "We distil datasets into a few images..."
    assert distil.truncated is True
    assert distil.scholar == "Grace Hopper"
    assert distil.line == 4


def test_jsonl_gz_parses_like_jsonl(tmp_path: Path) -> None:
    packed = tmp_path / "small.jsonl.gz"
    with gzip.open(packed, "wb") as handle:
        handle.write(SMALL.read_bytes())
    plain = parse_collection(SMALL).papers
    unpacked = parse_collection(packed).papers
    assert [p.paper_id for p in unpacked] == [p.paper_id for p in plain]
    assert [(p.title, p.abstract, p.year, p.url) for p in unpacked] == [
        (p.title, p.abstract, p.year, p.url) for p in plain
    ]
    assert unpacked[0].scholar == "small"
    assert unpacked[0].source == str(packed.resolve())


def test_jsonl_without_id_gets_a_link_id_and_duplicates_merge(tmp_path: Path) -> None:
    path = tmp_path / "noid.jsonl"
    path.write_text(
        '{"title": "A", "text": "short", "url": "https://example.org/a"}\n'
        '{"title": "A again", "text": "a longer abstract", "url": "https://example.org/a/"}\n'
    )
    parsed = parse_collection(path)
    assert len(parsed.papers) == 1
    assert parsed.papers[0].abstract == "a longer abstract"
    assert len(parsed.papers[0].paper_id) == 16
    assert parsed.warnings and f"{path}:2: duplicate of line 1" in parsed.warnings[0]


def test_jsonl_uppercase_suffix_and_copy(tmp_path: Path) -> None:
    path = tmp_path / "Copy.JSONL"
    shutil.copy(SMALL, path)
    assert len(parse_collection(path).papers) == 3


def test_jsonl_null_text_falls_back_to_abstract(tmp_path: Path) -> None:
    path = tmp_path / "nulls.jsonl"
    path.write_text('{"title": "A", "text": null, "abstract": "The real abstract."}\n')
    assert parse_collection(path).papers[0].abstract == "The real abstract."


# --- the default collection ------------------------------------------------------------------


def test_default_collection() -> None:
    parsed = parse_collection(DEFAULT_COLLECTION)
    papers = parsed.papers
    assert len(papers) == 24
    assert {p.scholar for p in papers} == {"YuhaoZhou"}
    assert sum(p.truncated for p in papers) == 3
    assert sum("federated" in p.title.lower() for p in papers) == 5
    assert len({p.paper_id for p in papers}) == 24
    assert parsed.warnings == []
    assert all(p.url and p.url.startswith("https://") for p in papers)
    assert {p.year for p in papers} <= {2024, 2025}
