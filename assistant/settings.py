"""One settings object that every part of scholar-chat reads.

Precedence, lowest to highest: defaults < TOML file (``$SCHOLAR_CHAT_CONFIG`` or
``./scholar-chat.toml``) < ``SCHOLAR_CHAT_*`` environment variables (nested parts with
``__``, e.g. ``SCHOLAR_CHAT_RETRIEVAL__K=20``) < CLI flags (passed as init arguments).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COLLECTION = PROJECT_ROOT / "data" / "papers.md"

UserPath = Annotated[Path, AfterValidator(Path.expanduser)]
"""A path from a file, the environment or a flag: ``~`` means the home directory."""


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/scholar-chat``, or ``~/.cache/scholar-chat``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scholar-chat"


class ChunkSettings(BaseModel):
    """Sentence-packed chunks of a few sentences each, for the dense retriever.

    Short chunks embed better than whole abstracts (SciFact train dense nDCG@10 0.6938 at
    600 characters vs 0.6656 at 1,500, benchmarks/README.md); BM25 reads whole papers.
    """

    model_config = ConfigDict(frozen=True)
    max_chars: int = Field(600, ge=200, description="longest chunk body, in characters")
    overlap_sentences: int = Field(1, ge=0, description="sentences repeated between chunks")


class EmbeddingSettings(BaseModel):
    model_config = ConfigDict(frozen=True)
    # Measured on 400 abstracts, 2 cores: batch 8 gives 23 texts/s at 0.6 GB peak RSS,
    # batch 32 gives 21 texts/s at 1.5 GB (onnxruntime keeps the largest activations).
    batch_size: int = Field(8, ge=1)
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 = all cores")
    max_tokens: int = Field(256, ge=16, le=512)
    # The package's int8 weights are turned back into float32 when onnxruntime loads them.
    # int8 products (dynamic quantization, per channel) give about 2x the texts/s on 2 cores
    # at cosine 0.995 to the float32 vectors (benchmarks/README.md has the SciFact rows).
    int8_compute: bool = Field(
        True, description="run the model's matrix products in int8 (made once into cache_dir)"
    )
    cache_dir: UserPath = Field(
        default_factory=user_cache_dir,
        description="where the int8 build of the embedding model is kept",
    )


class HnswSettings(BaseModel):
    """Chroma's defaults (ef_search 10, M 16) lose recall on a few thousand chunks."""

    model_config = ConfigDict(frozen=True)
    space: Literal["cosine"] = "cosine"
    ef_construction: int = 200
    ef_search: int = 128
    max_neighbors: int = 32


class RetrievalSettings(BaseModel):
    model_config = ConfigDict(frozen=True)
    k: int = Field(10, ge=1, description="papers returned by search")
    # Tuned on SciFact train (benchmarks/README.md): hybrid nDCG@10 0.7096 -> 0.7385.
    candidates: int = Field(100, ge=1, description="chunks fetched from each retriever")
    dense_weight: float = Field(1.0, ge=0, description="weight of the dense z-scores")
    bm25_weight: float = Field(1.0, ge=0, description="weight of the BM25 z-scores")
    title_weight: float = Field(2.0, gt=0, description="a title word counts this many body words")
    # 1 keeps every word (best measured quality); 0.2 is part of the README's
    # large-collection setting: 87k search p95 116 -> 66 ms, SciFact hybrid -0.002 nDCG@10.
    bm25_max_df: float = Field(
        1.0, gt=0, le=1, description="BM25 leaves out query words in more than this share of papers"
    )


class AnswerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)
    strong_similarity: float = Field(
        0.5, description="a paper this similar to the topic is relevant on that alone"
    )
    together_lexical: float = Field(
        0.83, description="...as is one with this share of the topic's words in one sentence"
    )
    together_similarity: float = Field(0.08, description="...and at least this similarity")
    min_similarity: float = Field(0.35, description="otherwise it needs this similarity...")
    min_lexical: float = Field(0.6, description="...and this share of the topic's words")
    fact_lexical: float = Field(
        0.5, description="a fact is answered from the best paper if it holds this share"
    )
    max_papers: int = Field(50, ge=1, description="most papers a list answer may cite")
    floor_similarity: float = Field(
        0.2, description="a model judges only candidates at least this similar..."
    )
    floor_lexical: float = Field(0.5, description="...or holding this share of the topic's words")
    judge_concurrency: int = Field(4, ge=1, description="relevance-judging model calls at once")
    context_papers: int = Field(6, ge=1, description="most papers put before the model")
    context_chars: int = Field(900, ge=100, description="abstract characters per paper")


class LLMSettings(BaseModel):
    model_config = ConfigDict(frozen=True)
    backend: Literal["offline", "openai", "openai-compatible", "llamacpp"] = "offline"
    model: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    model_path: UserPath | None = None
    timeout_s: float = 30.0
    max_retries: int = 1
    max_tokens: int = 512
    context_tokens: int = Field(4096, description="llamacpp context window")
    temperature: float = 0.0


class UISettings(BaseModel):
    """The chat page's limits: it may be opened from many tabs by people who upload files."""

    model_config = ConfigDict(frozen=True)
    max_upload_mb: float = Field(20, gt=0, description="largest collection file a page accepts")
    # Each open chat keeps ~60 KiB of history in memory; gradio's default cap is 10,000.
    max_sessions: int = Field(1000, ge=1, description="chats kept in memory; oldest dropped")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCHOLAR_CHAT_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    store: UserPath = Field(Path("vectorstore"), description="embedded Chroma directory")
    chroma_url: str | None = Field(None, description="http(s)://host:port of a Chroma server")
    chroma_token: SecretStr | None = Field(None, description="API key of a hosted Chroma")
    chroma_tenant: str = "default_tenant"
    chroma_database: str = "default_database"
    collection_name: str = "papers"
    default_collection: UserPath = DEFAULT_COLLECTION
    write_batch_chunks: int = Field(256, ge=1, description="chunks per store write")
    chunking: ChunkSettings = Field(default_factory=ChunkSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    hnsw: HnswSettings = Field(default_factory=HnswSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    ui: UISettings = Field(default_factory=UISettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("SCHOLAR_CHAT_CONFIG", "scholar-chat.toml")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))


def load_settings(**overrides: object) -> Settings:
    """Settings from every source, with CLI flags (``overrides``) on top; ``None`` means unset."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
