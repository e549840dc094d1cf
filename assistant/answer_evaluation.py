"""Answer quality on a hand-written question set, through the product's own ``Assistant``.

Each line of the set is ``{"id", "kind", "turns", "relevant", "expect"?, "last_kind"?}``
(see ``data/eval/answers.jsonl``): the turns are asked as one conversation and the
last answer is scored against the expected paper titles.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.answer import Answer, Assistant
from assistant.llm import BackendError

KINDS = ("list", "summary", "fact", "out_of_scope", "followup")


class EvalSetError(ValueError):
    """A malformed evaluation set line."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    kind: str
    turns: list[str]
    relevant: frozenset[str]
    expect: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, record: dict[str, object]) -> EvalItem:
        kind = str(record["kind"])
        if kind == "followup":
            kind = str(record.get("last_kind", "list"))
        turns = record["turns"]
        if kind not in KINDS or not isinstance(turns, list) or not turns:
            raise ValueError(f"bad kind {kind!r} or turns")
        return cls(
            id=str(record["id"]),
            kind=kind,
            turns=[str(t) for t in turns],
            relevant=frozenset(map(str, record.get("relevant", []))),  # type: ignore[arg-type]
            expect=tuple(map(str, record.get("expect", []))),  # type: ignore[arg-type]
        )


@dataclass
class ItemResult:
    id: str
    kind: str
    cited: list[str]
    missing: list[str]
    extra: list[str]
    refused: bool
    correct: bool
    error: str | None = None


@dataclass
class AnswerReport:
    backend: str
    items: int = 0
    list_recall: float = 0.0
    summary_recall: float = 0.0
    citation_precision: float = 0.0
    refusal_accuracy: float = 0.0
    false_refusals: int = 0
    fact_accuracy: float = 0.0
    errors: int = 0
    seconds: float = 0.0
    results: list[ItemResult] = field(default_factory=list)

    def as_json(self, with_items: bool = False) -> dict[str, object]:
        data = asdict(self)
        data.pop("results")
        for key, value in data.items():
            if isinstance(value, float):
                data[key] = round(value, 3)
        if with_items:
            data["failures"] = [asdict(r) for r in self.results if not r.correct]
        return data


def load_eval_set(path: Path) -> list[EvalItem]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(EvalItem.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalSetError(f"{path}:{number}: not an evaluation item ({exc})") from None
    if not items:
        raise EvalSetError(f"{path}: no evaluation items")
    return items


def _score(item: EvalItem, answer: Answer) -> ItemResult:
    cited = [c.title for c in answer.citations]
    refused = not cited
    missing = sorted(item.relevant - set(cited))
    extra = sorted(set(cited) - item.relevant)
    if item.kind == "out_of_scope":
        correct = refused
    elif item.kind == "fact":
        text = answer.text.lower()
        correct = not missing and all(e.lower() in text for e in item.expect)
    else:
        correct = not missing and not extra
    return ItemResult(item.id, item.kind, cited, missing, extra, refused, correct)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluate_answers(assistant: Assistant, items: list[EvalItem]) -> AnswerReport:
    started = time.perf_counter()
    report = AnswerReport(backend=assistant.backend_label, items=len(items))
    for item in items:
        history: list[Answer] = []
        try:
            for turn in item.turns:
                history.append(assistant.ask(turn, history))
        except BackendError as exc:
            report.errors += 1
            report.results.append(
                ItemResult(
                    item.id, item.kind, [], sorted(item.relevant), [], False, False, str(exc)
                )
            )
            continue
        report.results.append(_score(item, history[-1]))
    by_kind = {kind: [r for r in report.results if r.kind == kind] for kind in KINDS}
    wanted = {item.id: item for item in items}

    def recall(results: list[ItemResult]) -> float:
        return _mean([1 - len(r.missing) / len(wanted[r.id].relevant) for r in results])

    report.list_recall = recall(by_kind["list"])
    report.summary_recall = recall(by_kind["summary"])
    cited = sum(len(r.cited) for r in report.results)
    extra = sum(len(r.extra) for r in report.results)  # out-of-scope citations included
    report.citation_precision = (cited - extra) / cited if cited else 0.0
    report.refusal_accuracy = _mean([float(r.correct) for r in by_kind["out_of_scope"]])
    report.false_refusals = sum(
        r.refused and r.error is None for r in report.results if r.kind != "out_of_scope"
    )
    report.fact_accuracy = _mean([float(r.correct) for r in by_kind["fact"]])
    report.seconds = time.perf_counter() - started
    return report
