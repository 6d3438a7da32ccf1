"""The model folder in the cache: where an entry lives, and the marker that says it is complete.

A converted model is a standard sentence-transformers folder plus ``restake_qa_model.json``,
written last; a folder without it (an interrupted conversion) is never loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MARKER_FILE = "restake_qa_model.json"
FORMAT_VERSION = 1
PROMPTS = {"query": "query: ", "passage": "passage: "}
MAX_SEQ_LENGTH = 512


def cache_entry(cache_dir: Path, model_id: str) -> Path:
    return cache_dir / model_id.replace("/", "__")


def read_marker(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(directory: Path) -> bool:
    """A converted/cached model directory counts only with its marker (written last)."""
    marker = read_marker(directory)
    return marker is not None and marker.get("format") == FORMAT_VERSION and (directory / "modules.json").is_file()
