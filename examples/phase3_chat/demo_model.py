"""A STAND-IN for a language model, so that ``make example`` runs offline.

Used only when OPENAI_API_KEY is unset. It understands a few fixed phrasings
("add buy milk", "list", "list pending", "complete 1", "delete 1", "rename 1 to ..."),
answers them by calling the same tools a real model would, and then reports the tool's
result. It is no model at all: everything else gets a hint. With OPENAI_API_KEY set the
service uses the SDK's default OpenAI model instead.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from agents import Model, ModelResponse, ModelSettings, Tool, Usage
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from agents.models.interface import ModelTracing
from agents.testing import assistant_message, function_call
from openai.types.responses.response_prompt_param import ResponsePromptParam

HINT = (
    "I am the offline demo stand-in, not a language model (set OPENAI_API_KEY for a real"
    ' one). Try: "add buy milk", "list", "list pending", "complete 1", "delete 1",'
    ' "rename 1 to buy oat milk".'
)

_COMMANDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:add|create|remember)\s+(?P<title>.+)$", re.I), "add_task"),
    (re.compile(r"^(?:list|show)\b(?:.*\b(?P<status>pending|completed)\b)?", re.I), "list_tasks"),
    (re.compile(r"^(?:complete|done|finish)\s+#?(?P<task_id>\d+)$", re.I), "complete_task"),
    (re.compile(r"^(?:delete|remove|cancel)\s+#?(?P<task_id>\d+)$", re.I), "delete_task"),
    (
        re.compile(r"^(?:rename|update|change)\s+#?(?P<task_id>\d+)\s+to\s+(?P<title>.+)$", re.I),
        "update_task",
    ),
]


class DemoModel(Model):
    """The offline stand-in (module docstring). One call per model turn: a tool call for
    a command it knows, then, once the tool's output is in, a sentence about it."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        items: list[Any] = [{"role": "user", "content": input}] if isinstance(input, str) else input
        return ModelResponse(output=[_reply(items)], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the demo stand-in does not stream")


def _reply(items: list[Any]) -> TResponseOutputItem:
    last = _plain(items[-1]) if items else {}
    if last.get("type") == "function_call_output":
        return _say(_report(items, last))
    command = _text(last.get("content")).strip() if last.get("role") == "user" else ""
    for pattern, tool in _COMMANDS:
        match = pattern.match(command)
        if match:
            args: dict[str, Any] = match.groupdict()
            if args.get("task_id") is not None:
                args["task_id"] = int(args["task_id"])
            if tool == "list_tasks":
                args["status"] = (args["status"] or "all").lower()
            if tool in ("add_task", "update_task"):
                args["description"] = None  # strict tool schemas want every argument
            return function_call(tool, args, call_id=f"call_{uuid.uuid4().hex[:24]}")
    return _say(HINT)


def _report(items: list[Any], output: Mapping[str, Any]) -> str:
    """A sentence about the tool output that ends ``items``."""
    calls = [_plain(i) for i in items if _plain(i).get("type") == "function_call"]
    name = next((c["name"] for c in calls if c.get("call_id") == output.get("call_id")), "")
    try:
        result = json.loads(_text(output.get("output")))
    except ValueError:
        result = None
    if isinstance(result, dict) and "error" in result:
        return f"Sorry, that did not work: {result['error']}."
    if name == "list_tasks" and isinstance(result, list):
        if not result:
            return "You have no tasks here."
        lines = [f"{'[x]' if t['completed'] else '[ ]'} {t['id']}: {t['title']}" for t in result]
        return "Your tasks:\n" + "\n".join(lines)
    if isinstance(result, dict) and "status" in result:
        return f"Done: task {result['task_id']} ({result['title']!r}) {result['status']}."
    return "Done."


def _say(text: str) -> TResponseOutputItem:
    return assistant_message(text, item_id=f"msg_{uuid.uuid4().hex[:24]}")


def _plain(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    dump = getattr(item, "model_dump", None)
    return dump() if callable(dump) else {}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""
