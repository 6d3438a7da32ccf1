"""Reading an OpenAI chat-completions request: the question, the history, the options.

:func:`parse_chat_request` turns the request body into a :class:`ChatRequest` or raises
:class:`ProtocolError` (the protocol's error object, see ``openai_api.py``) naming the parameter
that is wrong. The last user message is the question; the user and assistant messages before it
are the history (as ``POST /api/answer`` takes it: ``[{"question", "answer"}]``, the most recent
``max_history_turns`` turns); system and developer messages are ignored. Parameters that steer a
language model (``temperature``, ``max_tokens``, ``stop``, …) are accepted and ignored: answers
are quotations of the page. Parameters the service cannot honour (tools, images, several
choices, log-probabilities, JSON output) are refused with a 400 rather than silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .answer_markdown import history_answer
from .config import Settings

#: The one model the API serves.
MODEL_ID = "restake-qa"

# The characters POST /api/answer refuses too (tab, newline and carriage return are allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_IGNORED_ROLES = {"system", "developer"}


class ProtocolError(Exception):
    """A request the API answers with the protocol's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type
        self.retry_after = retry_after


def _bad(message: str, param: str | None, code: str = "invalid_value") -> ProtocolError:
    return ProtocolError(400, message, param=param, code=code)


@dataclass(frozen=True)
class ChatRequest:
    question: str
    history: list[dict[str, str]]
    stream: bool


def _unsupported(body: dict[str, Any]) -> None:
    """Refuse the parameters this service cannot honour (400, naming the parameter)."""
    why = "restake-qa answers with quotations of one page"
    if body.get("tools") or body.get("functions"):
        name = "tools" if body.get("tools") else "functions"
        raise _bad(f"`{name}` is not supported: {why} and calls no tools", name, "unsupported_parameter")
    for name in ("tool_choice", "function_call"):
        if body.get(name) not in (None, "none"):
            raise _bad(f"`{name}` is not supported: {why} and calls no tools", name, "unsupported_parameter")
    n = body.get("n")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise _bad("`n` must be a positive integer", "n", "invalid_type")
        if n > 1:
            raise _bad(f"`n` > 1 is not supported: {why}, so every choice would be the same", "n", "unsupported_value")
    if body.get("logprobs") not in (None, False) or body.get("top_logprobs") is not None:
        name = "logprobs" if body.get("logprobs") not in (None, False) else "top_logprobs"
        raise _bad(f"`{name}` is not supported: no language model writes the answer", name, "unsupported_parameter")
    response_format = body.get("response_format")
    if response_format is not None and not (
        isinstance(response_format, dict) and response_format.get("type") == "text"
    ):
        raise _bad(
            '`response_format` must be {"type": "text"}: answers are Markdown text',
            "response_format",
            "unsupported_value",
        )
    if body.get("audio") is not None or body.get("modalities") not in (None, ["text"]):
        name = "audio" if body.get("audio") is not None else "modalities"
        raise _bad(f"`{name}` is not supported: answers are text only", name, "unsupported_parameter")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("`stream` must be true or false", "stream", "invalid_type")


def _content_text(content: Any, param: str) -> str:
    """A message's text: a string, or the text parts of the array-of-parts form."""
    if content is None:
        return ""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            where = f"{param}[{j}]"
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _bad(f'`{where}` must be an object like {{"type": "text", "text": "…"}}', where, "invalid_type")
            if part["type"] != "text":
                raise _bad(
                    f"`{where}` is a {part['type']!r} part; only text parts are supported (the page is text)",
                    f"{where}.type",
                    "unsupported_content",
                )
            if not isinstance(part.get("text"), str):
                raise _bad(f"`{where}.text` must be a string", f"{where}.text", "invalid_type")
            texts.append(part["text"])
        text = "\n".join(texts)
    else:
        raise _bad(f"`{param}` must be a string or an array of text parts", param, "invalid_type")
    if _CONTROL.search(text):
        raise _bad(f"`{param}` contains control characters", param, "invalid_characters")
    return text


def _messages(body: dict[str, Any]) -> list[tuple[int, str, str]]:
    """``(index, role, text)`` of the user and assistant messages, checked."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _bad("`messages` must be an array of {role, content}", "messages", "invalid_type")
    if not messages:
        raise _bad("`messages` is empty: send the question as a user message", "messages", "missing_user_message")
    kept = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _bad(f"`{where}` must be an object like {{role, content}}", where, "invalid_type")
        role = message.get("role")
        if role in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            raise _bad(f"`{where}` is a tool call or result; tools are not supported", where, "unsupported_parameter")
        if role not in ("user", "assistant", *_IGNORED_ROLES):
            raise _bad(
                f"`{where}.role` must be one of user, assistant, system, developer; got {role!r}",
                f"{where}.role",
                "invalid_value",
            )
        text = _content_text(message.get("content"), f"{where}.content")
        if role not in _IGNORED_ROLES:
            kept.append((i, str(role), text))
    return kept


def parse_chat_request(body: Any, settings: Settings) -> ChatRequest:
    """The question, history and stream flag of a chat-completions request body."""
    if not isinstance(body, dict):
        raise _bad('the body must be a JSON object like {"model": "restake-qa", "messages": […]}', None, "invalid_body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad(f'`model` must be a string: "{MODEL_ID}"', "model", "invalid_type")
    if model != MODEL_ID:
        raise ProtocolError(
            404, f"the model {model!r} does not exist; use {MODEL_ID!r}", param="model", code="model_not_found"
        )
    _unsupported(body)
    messages = _messages(body)
    users = [m for m in messages if m[1] == "user"]
    if not users:
        raise _bad("`messages` needs a user message: the last one is the question", "messages", "missing_user_message")
    if messages[-1][1] != "user":
        where = f"messages[{messages[-1][0]}]"
        raise _bad("the conversation must end with the user's question (not an assistant message)", where)
    last, _, question = messages[-1]
    question = question.strip()
    param = f"messages[{last}].content"
    if not question:
        raise _bad("the last user message (the question) is empty", param, "missing_question")
    if len(question) > settings.max_question_chars:
        raise _bad(f"the question is over {settings.max_question_chars} characters", param, "question_too_long")
    history = _history(messages[:-1], settings)
    return ChatRequest(question=question, history=history, stream=bool(body.get("stream")))


def _history(messages: list[tuple[int, str, str]], settings: Settings) -> list[dict[str, str]]:
    """The earlier turns as ``{"question", "answer"}``: a user message opens a turn, the
    assistant's reply completes it; only the last ``max_history_turns`` are kept (a chat app
    sends the whole conversation; follow-ups look back one turn at a time)."""
    turns: list[dict[str, str]] = []
    for _, role, text in messages:
        if role == "user":
            turns.append({"question": text.strip(), "answer": ""})
        elif turns and not turns[-1]["answer"]:
            turns[-1]["answer"] = history_answer(text)
        else:  # an assistant message without a question before it
            turns.append({"question": "", "answer": history_answer(text)})
    turns = turns[-settings.max_history_turns :] if settings.max_history_turns > 0 else []
    for turn in turns:
        turn["question"] = turn["question"][: settings.max_question_chars]
        turn["answer"] = turn["answer"][: 20 * settings.max_question_chars]
    return turns
