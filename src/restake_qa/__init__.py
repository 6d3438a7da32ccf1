"""restake-qa: answers with cited sections over ethereum.org's zh-TW restaking page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The Flask application (JSON API and chat page); see :mod:`restake_qa.web`."""
    from .web import create_app as _create_app

    return _create_app(config)


__all__ = ["__version__", "create_app"]
