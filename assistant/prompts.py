"""Prompt templates live in ``prompts/*.txt``, apart from the code that fills them."""

from __future__ import annotations

from functools import cache

from langchain_core.prompts import ChatPromptTemplate

from assistant.settings import PROJECT_ROOT

PROMPTS_DIR = PROJECT_ROOT / "prompts"


@cache
def template(name: str) -> str:
    return (PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8")


def chat_prompt(name: str) -> ChatPromptTemplate:
    """The shared system rules plus the named task template, as a LangChain prompt."""
    return ChatPromptTemplate.from_messages(
        [("system", template("system")), ("human", template(name))]
    )
