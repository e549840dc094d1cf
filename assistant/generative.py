"""Answering with a language model: judging, summarising and answering facts.

The model sees only retrieved abstracts, each inside ``<source key="S1">`` tags, and
cites by key; ``CitationResolver`` keeps only keys it was given. Lists stay complete
and exact: the model judges every plausible candidate yes/no in small batches, and the
list itself is written from the judged papers with their own sentences as evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from assistant.llm import BackendError, describe, guarded
from assistant.offline import OfflineAnswerer, Sources, nothing_found, points_at_one
from assistant.prompts import chat_prompt, template
from assistant.query import ParsedQuery
from assistant.retrieval import PaperHit
from assistant.settings import LLMSettings

NO_ANSWER = "NO_ANSWER"
_YES = re.compile(r"^\W*yes\b", re.IGNORECASE)
_KEYS = re.compile(r"\[([^\[\]\n]{1,80})\]")


def _cites(text: str, sources: Sources) -> bool:
    """Whether ``text`` cites a given source by key, as ``[S1]`` or ``[S1, S2]``."""
    groups = _KEYS.findall(text)
    return any(key.strip() in sources for group in groups for key in re.split(r"[,;]", group))


def source_block(sources: Sources, chars: int) -> str:
    """Sources as the model sees them: data inside tags, abstracts cut to ``chars``."""
    blocks = []
    for key, hit in sources.items():
        abstract = hit.abstract if len(hit.abstract) <= chars else hit.abstract[:chars] + " …"
        year = f" ({hit.year})" if hit.year else ""
        blocks.append(f'<source key="{key}">\n{hit.title}{year}\n{abstract}\n</source>')
    return "\n\n".join(blocks)


class ModelAnswerer:
    def __init__(
        self, model: BaseChatModel, settings: LLMSettings, offline: OfflineAnswerer
    ) -> None:
        self.model = model
        self.settings = settings
        self.offline = offline
        self.backend = settings.backend

    def relevant(self, parsed: ParsedQuery, hits: list[PaperHit]) -> list[PaperHit]:
        """Plausible candidates, each judged yes/no by the model on its own abstract.

        One short prompt per paper (small models follow it; batched, so a server that
        serves requests in parallel judges them in parallel).
        """
        chosen = self._judged(parsed, hits)
        # A summary or fact cites by key, and only the keys the model was shown may resolve:
        # the sources are exactly the papers put before it, never the ones after.
        return chosen if parsed.kind == "list" else chosen[: self.offline.settings.context_papers]

    def _judged(self, parsed: ParsedQuery, hits: list[PaperHit]) -> list[PaperHit]:
        if not parsed.topic or points_at_one(parsed):
            return hits
        plausible = [j.hit for j in self.offline.judge(parsed.topic, hits) if j.plausible]
        if parsed.kind == "fact":  # the offline cut-off decides whether there is an answer
            return plausible if self.offline.relevant(parsed, hits) else []
        chars = self.offline.settings.context_chars
        chain = ChatPromptTemplate.from_template(template("judge")) | self.model | StrOutputParser()
        inputs = [
            {"title": hit.title, "abstract": hit.abstract[:chars], "topic": parsed.topic}
            for hit in plausible
        ]
        with guarded(self.settings):
            replies = chain.batch(
                inputs, config={"max_concurrency": self.offline.settings.judge_concurrency}
            )
        return [hit for hit, reply in zip(plausible, replies, strict=True) if _YES.match(reply)]

    def write(self, parsed: ParsedQuery, sources: Sources) -> Iterator[str]:
        """Lists from the judged papers; summaries and facts generated, streamed."""
        if not sources:
            yield nothing_found(parsed)
            return
        if parsed.kind == "list":
            yield from self.offline.write(parsed, sources)
            return
        chain = chat_prompt(parsed.kind) | self.model | StrOutputParser()
        inputs = {
            "example_key": "S1",
            "question": parsed.question,
            "topic": parsed.topic,
            "sources": source_block(sources, self.offline.settings.context_chars),
        }
        # Hold the start back while it may still be NO_ANSWER, and until it cites a source
        # it was given: an answer that cites nothing is an error, never shown, not even
        # while it streams.
        buffered, holding = "", True
        with guarded(self.settings):
            for token in chain.stream(inputs):
                if holding:
                    buffered += token
                    start = buffered.lstrip()
                    if start.startswith(NO_ANSWER):
                        yield nothing_found(parsed)
                        return
                    if NO_ANSWER.startswith(start) or not _cites(buffered, sources):
                        continue
                    holding, token = False, buffered
                yield token
        if holding:
            start = buffered.strip()
            if start and NO_ANSWER.startswith(start):
                yield nothing_found(parsed)
                return
            if not start:
                raise BackendError(f"{describe(self.settings)} returned an empty answer")
            raise BackendError(
                f"{describe(self.settings)} gave an answer that cites no retrieved paper"
            )
