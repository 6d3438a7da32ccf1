"""The ONNX backend: same token ids and the same vectors as the torch model, made once.

The export under test is the real one (in the model cache, made on first use); the torch
model is loaded beside it as the reference. The atomicity/idempotence tests stub the costly
export step so they only exercise the folder handling.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from restake_qa import embedding, models
from restake_qa.config import Settings, load_settings
from restake_qa.embedding import OnnxEmbedder, SentenceTransformerEmbedder, load_embedder
from restake_qa.evaluation import load_questions
from restake_qa.models import ONNX_MARKER, ResolvedModel, export_onnx, onnx_export, read_onnx_marker
from restake_qa.models.fidelity import fidelity_texts

from helpers import QUESTIONS, model_cache_environ

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime")


def _settings(backend: str) -> Settings:
    return load_settings({"model_backend": backend, "query_cache_size": 0}, environ=model_cache_environ())


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    embedder = load_embedder(_settings("torch"), progress=print)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    embedder = load_embedder(_settings("onnx"), progress=print)
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


def varied_texts() -> list[str]:
    """Texts covering scripts, widths, emoji, combining marks, whitespace and length (the same
    list the int8 variant is verified on)."""
    return fidelity_texts()


def test_token_ids_are_identical(torch_embedder, onnx_embedder):
    texts = ["query: " + t for t in varied_texts()] + ["passage: " + t for t in varied_texts()]
    features = torch_embedder.model.tokenize(texts)
    expected = [
        [int(i) for i, m in zip(ids, mask) if m]
        for ids, mask in zip(features["input_ids"].tolist(), features["attention_mask"].tolist())
    ]
    assert onnx_embedder.token_ids(texts) == expected
    assert max(len(x) for x in expected) == 512  # the long texts were truncated alike


def test_query_and_passage_vectors_match_torch(torch_embedder, onnx_embedder):
    # the long text alone: in a batch, torch would pad every other row to 512 tokens
    texts = [t for t in varied_texts() if len(t) < 200]
    long = [t for t in varied_texts() if len(t) >= 200]
    cosine = onnx_embedder.embed_queries(long) @ torch_embedder.embed_queries(long).T
    assert cosine.min() >= 0.999
    for ours, reference in (
        (onnx_embedder.embed_queries(texts), torch_embedder.embed_queries(texts)),
        (onnx_embedder.embed_passages(texts), torch_embedder.embed_passages(texts)),
    ):
        assert ours.shape == reference.shape == (len(texts), 384) and ours.dtype == np.float32
        cosines = np.sum(ours * reference, axis=1)
        assert cosines.min() >= 0.999, (cosines.min(), texts[int(cosines.argmin())])
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_batching_and_padding_do_not_change_vectors(onnx_embedder):
    texts = [t for t in varied_texts() if len(t) < 200]
    together = onnx_embedder.embed_passages(texts)
    alone = np.vstack([onnx_embedder.embed_passages([t]) for t in texts])
    assert np.sum(together * alone, axis=1).min() >= 0.99999


def test_rankings_over_the_page_are_the_same(torch_embedder, onnx_embedder):
    from restake_qa.corpus import load_corpus

    from helpers import CORPUS

    paragraphs = [p for s in load_corpus(CORPUS) for p in s.text.split("\n") if p.strip()]
    questions = [q.question for q in load_questions(QUESTIONS)][:20]
    top = {}
    for name, e in (("torch", torch_embedder), ("onnx", onnx_embedder)):
        scores = e.embed_queries(questions) @ e.embed_passages(paragraphs).T
        top[name] = np.argsort(-scores, axis=1)[:, :3]
    assert (top["onnx"][:, 0] == top["torch"][:, 0]).mean() >= 0.97
    assert (top["onnx"] == top["torch"]).mean() >= 0.95


def test_the_export_is_marked_complete_and_reused(onnx_embedder):
    folder = onnx_embedder.folder
    marker = read_onnx_marker(folder)
    assert marker is not None and marker["verified_min_cosine"] >= 0.9999
    assert marker["word_embeddings"] == "float16"  # exact: the converted weights are float16
    before = (folder / "model.onnx").stat().st_mtime_ns
    resolved = models.resolve_model("", cache_dir=folder.parent.parent)
    assert export_onnx(resolved, target=folder) == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == before


# ------------------------------------------------------------------ folder handling (stubbed)


def _fake_source(tmp_path: Path) -> ResolvedModel:
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    (source / "model.safetensors").write_bytes(b"weights v1")
    return ResolvedModel("test/model", str(source), "local-dir")


def _fake_export(calls: list[int]):
    def export(resolved, work: Path) -> dict:
        calls.append(1)
        (work / "model.onnx").write_bytes(b"onnx")
        (work / "tokenizer.json").write_text("{}")
        return {"dimension": 4}

    return export


def test_an_interrupted_export_leaves_nothing_that_loads(tmp_path, monkeypatch):
    resolved = _fake_source(tmp_path)
    target = tmp_path / "cache" / "export"

    def crash(resolved, work: Path) -> dict:
        (work / "model.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "_export_encoder", crash)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(resolved, target=target)
    assert not target.exists() and read_onnx_marker(target) is None
    assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")] == []

    calls: list[int] = []
    monkeypatch.setattr(onnx_export, "_export_encoder", _fake_export(calls))
    assert export_onnx(resolved, target=target) == target
    marker = json.loads((target / ONNX_MARKER).read_text())
    assert marker["dimension"] == 4 and marker["model_id"] == "test/model"
    assert calls == [1]


def test_export_is_idempotent_and_redone_when_the_source_changes(tmp_path, monkeypatch):
    resolved = _fake_source(tmp_path)
    target = tmp_path / "cache" / "export"
    calls: list[int] = []
    monkeypatch.setattr(onnx_export, "_export_encoder", _fake_export(calls))
    export_onnx(resolved, target=target)
    export_onnx(resolved, target=target)
    assert calls == [1]
    (Path(resolved.location) / "model.safetensors").write_bytes(b"weights v2, retrained")
    export_onnx(resolved, target=target)
    assert calls == [1, 1]


def test_a_users_model_folder_is_never_written(tmp_path):
    resolved = _fake_source(tmp_path)
    folder = models.onnx_dir(resolved, cache_dir=tmp_path / "cache")
    assert folder.is_relative_to(tmp_path / "cache") and not folder.is_relative_to(resolved.location)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(models.ModelBackendError, match="model_backend must be 'torch' or 'onnx'"):
        load_embedder(load_settings({"model_backend": "tensorflow"}, environ={}))


def test_a_model_that_cannot_be_exported_runs_with_torch(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("read-only model cache")

    monkeypatch.setattr(embedding, "export_onnx", refuse)
    messages: list[str] = []
    embedder = load_embedder(_settings("onnx"), progress=messages.append)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert any("with torch instead of onnxruntime" in m and "read-only model cache" in m for m in messages)
