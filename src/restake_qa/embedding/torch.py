"""The model run with sentence-transformers on torch (the fallback; same vectors as ONNX)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import CachingEmbedder, Progress, embed_sorted


class SentenceTransformerEmbedder(CachingEmbedder):
    """A sentence-transformers model (torch) with query/passage prompts and a query LRU cache."""

    def __init__(
        self, model: Any, *, model_id: str, source: str, batch_size: int = 32, query_cache_size: int = 1024
    ) -> None:
        super().__init__(
            model_id=model_id,
            source=source,
            dimension=int(model.get_embedding_dimension()),
            batch_size=batch_size,
            query_cache_size=query_cache_size,
        )
        self.model = model
        self.backend = "torch"
        prompts = getattr(model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = "passage" if "passage" in prompts else ("document" if "document" in prompts else None)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        return embed_sorted(
            texts,
            [len(t) for t in texts],
            self.batch_size,
            0,
            lambda batch: self._encode(batch, self._passage_prompt),
            self.dimension,
            progress,
        )

    def _encode(self, texts: list[str], prompt_name: str | None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = self.model.encode(
                texts,
                prompt_name=prompt_name,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
