"""Index build/publish/load plumbing, with the tiny deterministic embedder."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from restake_qa.build import build_index, build_lock, rollback
from restake_qa.corpus import CorpusError
from restake_qa.embedding import HashEmbedder
from restake_qa.errors import BuildLockedError, IndexLoadError
from restake_qa.index import FORMAT_VERSION, builds_dir, current_version, load_index

from helpers import make_settings


@pytest.fixture
def setup(tmp_path, corpus_copy, tools):
    settings = make_settings(tmp_path, corpus_dir=str(corpus_copy))
    data = settings.data_path
    embedder = HashEmbedder()

    def build(**kw):
        return build_index(corpus_copy, data, embedder, settings, tools=tools, **kw)

    return corpus_copy, data, embedder, build


def test_build_writes_a_complete_manifest_and_loads(setup):
    _, data, embedder, build = setup
    report = build()
    assert not report.up_to_date and report.chunks > 20 and report.embedded > report.chunks
    index = load_index(data, expected_model=embedder.model_id)
    m = index.manifest
    assert m["model"] == {
        "id": "test/hash-embedder",
        "source": "test",
        "dimension": 64,
        "precision": "fp32",
        "prompts": {"query": "query: ", "passage": "passage: "},
    }
    assert m["chunker"] == {"target": 48, "maximum": 96}
    assert m["counts"]["chunks"] == len(index.chunks) == index.vectors.ntotal
    assert len(m["corpus_sha256"]) == 64 and m["format_version"] == FORMAT_VERSION
    assert set(m["files"]) >= {"chunks.jsonl", "sections.json", "vectors.faiss", "sentences.jsonl"}


def test_second_build_does_no_work(setup):
    _, data, embedder, build = setup
    first = build()
    calls = embedder.calls
    second = build()
    assert second.up_to_date and second.version == first.version
    assert embedder.calls == calls
    assert len([p for p in builds_dir(data).iterdir()]) == 1


def test_a_parser_change_rebuilds_though_no_page_changed(setup, monkeypatch):
    """The pages are the same bytes, but the code reads them differently (a new version of the
    package): the index is rebuilt, not declared up to date."""
    import dataclasses

    import restake_qa.build as build_module

    _, data, _, build = setup
    first = build()
    parse = build_module.load_corpus_report

    def parse_differently(*args, **kwargs):
        report = parse(*args, **kwargs)
        sections = [dataclasses.replace(s, title=s.title + "!") for s in report.sections]
        return dataclasses.replace(report, sections=sections)

    monkeypatch.setattr(build_module, "load_corpus_report", parse_differently)
    second = build()
    assert not second.up_to_date and second.version != first.version
    assert build().up_to_date  # and the same reading again is up to date


def test_a_tokeniser_change_rebuilds_though_no_page_changed(setup, monkeypatch):
    """Same pages, same sections, but the lexical tokens are made differently (a new stemmer):
    the lexical index would be stale, so the index is rebuilt."""
    from restake_qa.text import TextTools

    _, _, _, build = setup
    first = build()
    tokens = TextTools.lexical_tokens
    monkeypatch.setattr(TextTools, "lexical_tokens", lambda self, text: [t.upper() for t in tokens(self, text)])
    second = build()
    assert not second.up_to_date and second.version != first.version
    assert build().up_to_date


def test_only_changed_chunks_are_embedded(setup):
    corpus, data, embedder, build = setup
    build()
    page = corpus / "restaking.zh-tw.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(
        text.replace("想像兩個世界；一個有再質押，一個沒有。", "想像兩個世界：一個有再質押，另一個沒有。"),
        encoding="utf-8",
    )
    before = embedder.passages_embedded
    report = build()
    assert report.sections_changed == ("restaking.zh-tw.md#why-do-we-need-restaking",)
    assert report.chunks_added == 1 and report.chunks_removed == 1
    # one chunk and one sentence are new; everything else comes from the cache
    assert embedder.passages_embedded - before == report.embedded == 2
    assert report.reused > 50


def test_bad_corpus_leaves_the_index_untouched(setup):
    corpus, data, _, build = setup
    good = build()
    (corpus / "broken.zh-tw.md").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(CorpusError, match="broken.zh-tw.md"):
        build()
    assert current_version(data) == good.version
    assert load_index(data).version == good.version


def test_load_names_the_problem(setup):
    _, data, embedder, build = setup
    build()
    with pytest.raises(IndexLoadError, match="built with model 'test/hash-embedder'"):
        load_index(data, expected_model="intfloat/multilingual-e5-small")
    folder = builds_dir(data) / current_version(data)
    (folder / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexLoadError, match="vectors.faiss is corrupted"):
        load_index(data)
    (folder / "vectors.faiss").unlink()
    with pytest.raises(IndexLoadError, match="vectors.faiss is missing"):
        load_index(data)
    (folder / "manifest.json").unlink()
    with pytest.raises(IndexLoadError, match="manifest.json is missing"):
        load_index(data)


def test_no_index_says_how_to_build(tmp_path):
    with pytest.raises(IndexLoadError, match="restake-qa build"):
        load_index(tmp_path / "empty")


def test_rollback_restores_the_previous_build(setup):
    corpus, data, _, build = setup
    first = build()
    page = corpus / "restaking.zh-tw.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n## 新章節 {#new-section}\n\n新內容。\n", encoding="utf-8")
    second = build()
    assert current_version(data) == second.version
    assert rollback(data) == first.version
    assert load_index(data).version == first.version
    assert "new-section" not in {s.anchor for s in load_index(data).sections}


def test_a_second_build_refuses_while_one_holds_the_lock(setup):
    _, data, _, build = setup
    with build_lock(data):
        with pytest.raises(BuildLockedError, match="another build is running"):
            build()


def test_leftover_staging_is_cleaned_and_never_loaded(setup):
    _, data, _, build = setup
    first = build()
    stale = builds_dir(data) / ".staging-crashed-1"
    stale.mkdir()
    (stale / "chunks.jsonl").write_text("half", encoding="utf-8")
    assert load_index(data).version == first.version
    build(force=True)
    assert not stale.exists()


def test_corrupt_cache_entries_are_detected_and_re_embedded(setup):
    _, data, embedder, build = setup
    build()
    db = sqlite3.connect(data / "cache" / "embeddings.sqlite")
    with db:
        db.execute("UPDATE embeddings SET vector = zeroblob(256) WHERE rowid IN (SELECT rowid FROM embeddings LIMIT 3)")
    db.close()
    report = build(force=True)
    assert report.repaired == 3 and report.embedded == 3
    index = load_index(data)
    fresh = HashEmbedder().embed_passages([c.embedding_text for c in index.chunks])
    assert np.allclose(index.vectors.reconstruct_n(0, index.vectors.ntotal), fresh, atol=1e-6)


def test_chunks_store_row_i_is_faiss_id_i(setup):
    _, data, embedder, build = setup
    build()
    index = load_index(data)
    rows = [json.loads(line) for line in (index.path / "chunks.jsonl").read_text("utf-8").splitlines()]
    for i in (0, len(rows) // 2, len(rows) - 1):
        vec = embedder.embed_passages([index.chunks[i].embedding_text])
        _, ids = index.vectors.search(vec, 1)
        assert ids[0][0] == i and rows[i]["id"] == index.chunks[i].id
