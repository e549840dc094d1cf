from pathlib import Path

import pytest

from assistant.settings import load_settings


def test_defaults() -> None:
    settings = load_settings()
    assert settings.store == Path("vectorstore")
    assert settings.chroma_url is None
    assert settings.llm.backend == "offline"
    assert settings.default_collection.name == "papers.md"


def test_precedence_defaults_file_environment_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "scholar-chat.toml"
    config.write_text('store = "from-file"\n[retrieval]\nk = 7\ncandidates = 30\n')
    monkeypatch.setenv("SCHOLAR_CHAT_CONFIG", str(config))
    settings = load_settings()
    assert (settings.store, settings.retrieval.k, settings.retrieval.candidates) == (
        Path("from-file"),
        7,
        30,
    )

    monkeypatch.setenv("SCHOLAR_CHAT_STORE", "from-env")
    monkeypatch.setenv("SCHOLAR_CHAT_RETRIEVAL__K", "9")
    settings = load_settings()
    assert (settings.store, settings.retrieval.k, settings.retrieval.candidates) == (
        Path("from-env"),
        9,
        30,
    )

    settings = load_settings(store=Path("from-flag"), chroma_url=None)
    assert settings.store == Path("from-flag")
    assert settings.retrieval.k == 9  # a flag for one field leaves the others alone


def test_invalid_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHOLAR_CHAT_RETRIEVAL__K", "0")
    with pytest.raises(ValueError, match="k"):
        load_settings()


def test_paths_expand_the_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHOLAR_CHAT_EMBEDDING__CACHE_DIR", "~/model-cache")
    settings = load_settings(store="~/papers-store")
    assert settings.embedding.cache_dir == Path.home() / "model-cache"
    assert settings.store == Path.home() / "papers-store"


def test_int8_cache_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert load_settings().embedding.cache_dir == Path("/somewhere/cache/scholar-chat")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert load_settings().embedding.cache_dir == Path.home() / ".cache" / "scholar-chat"
