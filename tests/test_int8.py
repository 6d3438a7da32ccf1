"""The int8 variant of the ONNX model: made once beside the fp32 export, verified against it
before use (identical token ids, cosine ≥ 0.99 on the fidelity texts), atomic and idempotent;
chosen by ``model_precision``; recorded in every index, whose vectors never mix with the other
precision's, and a mismatch is refused with a message that says what to do.

The real variant is the one in the model cache (made on first use, like the fp32 export); the
folder-handling tests stub the costly step so they exercise only the folder discipline.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from restake_qa.build import build_index
from restake_qa.config import load_settings
from restake_qa.embedding import HashEmbedder, OnnxEmbedder, load_embedder
from restake_qa.errors import ConfigError, IndexLoadError, ModelBackendError
from restake_qa.index import load_index
from restake_qa.models import ONNX_MARKER, onnx_int8, read_onnx_marker
from restake_qa.models.fidelity import fidelity_texts
from restake_qa.models.onnx_int8 import INT8_MIN_COSINE, int8_dir, quantize_onnx
from restake_qa.retrieval import Retriever
from restake_qa.service import Engine

from helpers import CORPUS, make_settings, model_cache_environ

pytest.importorskip("onnxruntime")


def _settings(precision: str, **extra):
    return load_settings({"model_precision": precision, "query_cache_size": 0, **extra}, environ=model_cache_environ())


@pytest.fixture(scope="module")
def int8_embedder() -> OnnxEmbedder:
    embedder = load_embedder(_settings("int8"), progress=print)
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


# ------------------------------------------------------------------ the real variant


@pytest.mark.slow
def test_the_variant_is_made_beside_the_fp32_export_verified_and_reused(real_embedder, int8_embedder):
    assert real_embedder.precision == "fp32" and int8_embedder.precision == "int8"
    assert int8_embedder.folder == int8_dir(real_embedder.folder)
    marker = read_onnx_marker(int8_embedder.folder)
    assert marker is not None and marker["precision"] == "int8"
    assert marker["verified"]["token_ids_identical"] is True
    assert marker["verified"]["texts"] == 2 * len(fidelity_texts())
    assert INT8_MIN_COSINE <= marker["verified"]["min_cosine"] < 0.9999  # close, and not the fp32 file
    assert marker["quantization"]["fused"].get("Attention") == 12
    # the graph really is quantised: integer products, and a smaller file than fp32's
    model = int8_embedder.folder / "model.onnx"
    assert model.stat().st_size < 0.85 * (real_embedder.folder / "model.onnx").stat().st_size
    before = model.stat().st_mtime_ns
    assert quantize_onnx(real_embedder.folder) == int8_embedder.folder
    assert model.stat().st_mtime_ns == before  # made once


@pytest.mark.slow
def test_int8_reproduces_fp32_on_the_fidelity_texts(real_embedder, int8_embedder):
    texts = fidelity_texts()
    prompted = [p + t for p in ("query: ", "passage: ") for t in texts]
    assert int8_embedder.token_ids(prompted) == real_embedder.token_ids(prompted)
    for prefix in ("query: ", "passage: "):  # one text per call, as the verification compares them
        ours = np.vstack([int8_embedder.encode_texts([prefix + t]) for t in texts])
        reference = np.vstack([real_embedder.encode_texts([prefix + t]) for t in texts])
        cosines = np.sum(ours * reference, axis=1)
        assert cosines.min() >= INT8_MIN_COSINE, (cosines.min(), texts[int(cosines.argmin())])
        assert cosines.max() < 0.99999  # int8, not the fp32 model again
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    # in a batch a row shares its activations' quantisation range with the others: further off
    short = [t for t in texts if len(t) < 200]
    batched = np.sum(int8_embedder.embed_queries(short) * real_embedder.embed_queries(short), axis=1)
    assert 0.98 <= batched.min() < cosines.min()


@pytest.mark.slow
def test_int8_finds_the_same_paragraphs_of_the_page(real_embedder, int8_embedder):
    from restake_qa.corpus import load_corpus
    from restake_qa.evaluation import load_questions

    from helpers import QUESTIONS

    # the zh-TW page and zh-TW questions (the page's other language versions say the same
    # things, so a nearest paragraph may move to its translation: not what this measures)
    paragraphs = [p for s in load_corpus(CORPUS) if s.lang == "zh-tw" for p in s.text.split("\n") if p.strip()]
    questions = [q.question for q in load_questions(QUESTIONS) if q.lang == "zh-tw"][:40]
    top = {}
    for name, e in (("fp32", real_embedder), ("int8", int8_embedder)):
        top[name] = np.argmax(e.embed_queries(questions) @ e.embed_passages(paragraphs).T, axis=1)
    assert (top["int8"] == top["fp32"]).mean() >= 0.8  # measured 0.825; a broken variant gives ~0


@pytest.mark.slow
def test_a_variant_that_is_not_faithful_is_refused_and_leaves_nothing(real_embedder, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_int8, "INT8_MIN_COSINE", 0.99999)  # stricter than int8 can be
    target = tmp_path / "int8"
    with pytest.raises(ModelBackendError, match=r"does not reproduce the fp32 model .*RESTAKE_QA_MODEL_PRECISION=fp32"):
        quantize_onnx(real_embedder.folder, target, heads=12)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


# ------------------------------------------------------------------ folder handling (stubbed)


def _fake_fp32(tmp_path: Path) -> Path:
    folder = tmp_path / "restake_qa_onnx"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"fp32 v1")
    (folder / "tokenizer.json").write_text("{}")
    (folder / ONNX_MARKER).write_text(json.dumps({"format": 1, "dimension": 4, "prompts": {}}))
    return folder


def _fake_quantize(calls: list[int]):
    def quantize(fp32_folder, source, work: Path, heads: int) -> dict:
        calls.append(1)
        (work / "model.onnx").write_bytes(b"int8")
        (work / "tokenizer.json").write_text("{}")
        return {"dimension": source["dimension"], "verified": {"min_cosine": 0.995}}

    return quantize


def test_an_interrupted_quantisation_leaves_nothing_that_loads(tmp_path, monkeypatch):
    fp32 = _fake_fp32(tmp_path)

    def crash(fp32_folder, source, work: Path, heads: int) -> dict:
        (work / "model.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_int8, "_quantize", crash)
    with pytest.raises(KeyboardInterrupt):
        quantize_onnx(fp32)
    assert not int8_dir(fp32).exists() and read_onnx_marker(int8_dir(fp32)) is None
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["restake_qa_onnx"]

    calls: list[int] = []
    monkeypatch.setattr(onnx_int8, "_quantize", _fake_quantize(calls))
    assert quantize_onnx(fp32) == int8_dir(fp32) == tmp_path / "restake_qa_onnx-int8"
    marker = json.loads((int8_dir(fp32) / ONNX_MARKER).read_text())
    assert marker["precision"] == "int8" and marker["dimension"] == 4 and calls == [1]


def test_quantisation_is_idempotent_and_redone_when_the_fp32_export_changes(tmp_path, monkeypatch):
    fp32 = _fake_fp32(tmp_path)
    calls: list[int] = []
    monkeypatch.setattr(onnx_int8, "_quantize", _fake_quantize(calls))
    quantize_onnx(fp32)
    quantize_onnx(fp32)
    assert calls == [1]
    (fp32 / "model.onnx").write_bytes(b"fp32 v2, exported again")
    quantize_onnx(fp32)
    assert calls == [1, 1]


def test_a_damaged_variant_without_its_marker_is_remade(tmp_path, monkeypatch):
    fp32 = _fake_fp32(tmp_path)
    calls: list[int] = []
    monkeypatch.setattr(onnx_int8, "_quantize", _fake_quantize(calls))
    quantize_onnx(fp32)
    (int8_dir(fp32) / ONNX_MARKER).unlink()
    quantize_onnx(fp32)
    assert calls == [1, 1] and read_onnx_marker(int8_dir(fp32)) is not None


# ------------------------------------------------------------------ settings


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(ConfigError, match="model_precision must be 'fp32' or 'int8', got 'int4'"):
        load_embedder(load_settings({"model_precision": "int4"}, environ={}))


def test_int8_needs_the_onnx_backend():
    with pytest.raises(ConfigError, match="int8 runs on the onnx backend only"):
        load_embedder(load_settings({"model_precision": "int8", "model_backend": "torch"}, environ={}))


def test_int8_does_not_fall_back_to_torch_when_the_export_fails(monkeypatch):
    from restake_qa import embedding

    def refuse(*args, **kwargs):
        raise OSError("read-only model cache")

    monkeypatch.setattr(embedding, "export_onnx", refuse)
    with pytest.raises(ModelBackendError, match="needs the model's ONNX export.*read-only model cache"):
        load_embedder(_settings("int8"))


# ------------------------------------------------------------------ the index records it


def _int8_hash() -> HashEmbedder:
    embedder = HashEmbedder()
    embedder.precision = "int8"
    return embedder


def test_the_manifest_records_the_precision_and_a_mismatch_is_refused(tmp_path, corpus_copy, tools):
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    build_index(corpus_copy, settings.data_path, _int8_hash(), settings, tools=tools)
    index = load_index(settings.data_path)
    assert index.manifest["model"]["precision"] == index.precision == "int8"
    Retriever(index, _int8_hash(), tools, settings)  # the same precision loads
    message = (
        r"built with the model at int8 precision, but the model runs at fp32; "
        r"set RESTAKE_QA_MODEL_PRECISION=int8 or rebuild with `restake-qa build --force`"
    )
    with pytest.raises(IndexLoadError, match=message):
        Retriever(index, HashEmbedder(), tools, settings)
    # a server started with the other precision serves nothing and says why
    engine = Engine(settings, embedder=HashEmbedder(), tools=tools)
    health = engine.health()
    assert health["status"] == "error" and "RESTAKE_QA_MODEL_PRECISION=int8" in health["error"]
    with pytest.raises(IndexLoadError, match="int8 precision"):
        engine.answer("再質押是什麼？")


def test_an_index_from_before_precision_was_recorded_counts_as_fp32(tmp_path, corpus_copy, tools):
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    report = build_index(corpus_copy, settings.data_path, HashEmbedder(), settings, tools=tools)
    folder = settings.data_path / "builds" / report.version
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    del manifest["model"]["precision"]
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    index = load_index(settings.data_path)
    assert index.precision == "fp32"
    Retriever(index, HashEmbedder(), tools, settings)
    with pytest.raises(IndexLoadError, match="at fp32 precision, but the model runs at int8"):
        Retriever(index, _int8_hash(), tools, settings)


def test_changing_the_precision_rebuilds_and_never_reuses_the_other_precisions_vectors(tmp_path, corpus_copy, tools):
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    data = settings.data_path
    fp32 = build_index(corpus_copy, data, HashEmbedder(), settings, tools=tools)
    int8 = build_index(corpus_copy, data, _int8_hash(), settings, tools=tools)
    assert not int8.up_to_date and int8.version != fp32.version
    assert int8.embedded == fp32.embedded > 0  # nothing taken from the fp32 rows of the cache
    again = build_index(corpus_copy, data, _int8_hash(), settings, tools=tools)
    assert again.up_to_date
    back = build_index(corpus_copy, data, HashEmbedder(), settings, tools=tools)
    assert not back.up_to_date and back.embedded == 0  # the fp32 vectors are still cached
    import sqlite3

    db = sqlite3.connect(data / "cache" / "embeddings.sqlite")
    spaces = dict(db.execute("SELECT model, COUNT(*) FROM embeddings GROUP BY model").fetchall())
    db.close()
    assert spaces == {"test/hash-embedder": fp32.embedded, "test/hash-embedder@int8": fp32.embedded}


@pytest.mark.slow
def test_the_cli_refuses_an_index_of_the_other_precision_in_one_line(tmp_path, corpus_copy, tools):
    import subprocess
    import sys

    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    build_index(corpus_copy, settings.data_path, _int8_hash(), settings, tools=tools)
    manifest_model = load_index(settings.data_path).manifest["model"]
    assert manifest_model["precision"] == "int8"
    # the index claims the real model's id, so only the precision differs
    folder = load_index(settings.data_path).path
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    manifest["model"]["id"] = "intfloat/multilingual-e5-small"
    manifest["model"]["dimension"] = 64
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    env = {**model_cache_environ(), "PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    env["RESTAKE_QA_DATA_DIR"] = str(settings.data_path)
    out = subprocess.run(
        [sys.executable, "-m", "restake_qa.cli", "ask", "再質押是什麼？"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 1
    error = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "RESTAKE_QA_MODEL_PRECISION=int8" in error[0], out.stderr[-2000:]
    shutil.rmtree(settings.data_path)
