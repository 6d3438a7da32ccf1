"""restake-qa: answers with cited sections over ethereum.org's zh-TW restaking page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Any = None, **shared: Any) -> Flask:
    """The Flask application (JSON API and chat page); see :func:`restake_qa.web.create_app`."""
    from .web import create_app as _create_app

    return _create_app(config, **shared)


__all__ = ["__version__", "create_app"]
