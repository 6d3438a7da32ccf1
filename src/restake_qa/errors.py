"""The errors restake-qa shows to people.

Every error the library raises on purpose derives from :class:`RestakeQAError`; its message is
one line that says what went wrong and what to do next (``no index in .restake-qa; run
`restake-qa build` …``). The CLI prints the message (``cli.py``, one place), the API returns it
in its JSON error shape with the class's ``status`` and ``code`` (``web.py``, one place).
Anything else that escapes is a bug and is reported as such.
"""

from __future__ import annotations


class RestakeQAError(Exception):
    """Base class: the message says what to do next."""

    #: HTTP status and error code when the error reaches the API.
    status = 500
    code = "error"


class ConfigError(RestakeQAError, ValueError):
    """A setting has a value of the wrong type or an unknown name."""

    code = "bad_setting"


class CorpusError(RestakeQAError, ValueError):
    """A corpus file cannot be read; the message names the file and what to fix."""

    status = 422
    code = "bad_corpus"


class ModelNotFoundError(RestakeQAError, RuntimeError):
    """No embedding model could be found; the message lists every step tried and what to do."""

    status = 503
    code = "model_unavailable"


class ModelBackendError(ModelNotFoundError):
    """The model exists but cannot be run with the configured backend; the message says why."""


class IndexLoadError(RestakeQAError, RuntimeError):
    """The index folder is missing, incomplete or does not match; the message says the fix."""

    status = 503
    code = "index_unavailable"


class BuildLockedError(RestakeQAError, RuntimeError):
    """Another build holds the lock."""

    status = 409
    code = "build_locked"


class BuildError(RestakeQAError, RuntimeError):
    """A build could not be written (disk full, read-only folder, …); nothing was published."""

    status = 500
    code = "build_failed"


class UploadError(RestakeQAError, ValueError):
    """A page upload the console refuses (bad name, type, size or content, or a conflict); the
    message says what to send instead. Nothing was written."""

    status = 400
    code = "bad_upload"

    def __init__(self, message: str, status: int = 400, code: str = "bad_upload") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class BuildCancelledError(RestakeQAError, RuntimeError):
    """A build was asked to stop (``DELETE /api/reindex/<id>``); nothing was published."""

    status = 409
    code = "build_cancelled"
