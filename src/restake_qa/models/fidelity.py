"""Texts an exported or quantised model must reproduce the reference model on.

They cover what the product meets and what breaks tokenisers and kernels: Traditional and
Simplified Chinese, English, mixed scripts, numbers, emoji (with joiners and skin tones),
full-width forms, combining marks, whitespace and control characters, the tokenizer's own
special strings, the empty string, a single character, and a text truncated at 512 tokens;
then random mixtures of the page's characters. ``tests/test_onnx.py`` and the int8 variant's
verification (:mod:`.onnx_int8`) use the same list.
"""

from __future__ import annotations

import random

_FIXED = (
    "再質押（restaking）讓以太坊質押者可以重複利用已質押的 ETH，為其他服務提供安全性。",
    "再质押让以太坊质押者可以重复利用已质押的ETH，为其他服务提供安全性。",
    "Restaking lets Ethereum stakers reuse their staked ETH to secure other services.",
    "EigenLayer 是什麼？它和 Lido 的 stETH 有何不同？",
    "質押 32 ETH 需要多少時間？ How long does it take?",
    "🚀🔥 再質押 to the moon 🌕✨ 👨‍👩‍👧‍👦 👍🏽",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ：１２３４５！？（全形）",
    "e\u0301 cafe\u0301 ｅ\u0301 Å",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nmixed",
    "",
    "?",
    "<s> literal </s> specials <mask>",
    "罰沒（slashing）風險：若 AVS 的規則被違反，質押的 ETH 可能被罰沒。",
    "長" * 700,  # truncated at 512 tokens
)


def fidelity_texts() -> list[str]:
    """The fixed texts, then 16 random mixtures of the page's characters (seeded)."""
    rng = random.Random(8)
    alphabet = "再質押以太坊的風險收益節點驗證者流動性代幣ABCxyz0123 ，。？！"
    mixed = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(16)]
    return [*_FIXED, *mixed]
