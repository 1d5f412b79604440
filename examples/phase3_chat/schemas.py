"""The chat endpoint's request and response bodies (the Phase III spec's shapes).

The conversation endpoints answer with chatstore's own records
(:class:`chatstore.models.ConversationPage`, :class:`chatstore.models.Message`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatstore import _core
from chatstore.errors import InvalidInput


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: int | None = Field(
        default=None, description="The conversation to continue; null starts a new one."
    )
    message: str = Field(description="What the user says.")

    @field_validator("message")
    @classmethod
    def _storable(cls, message: str) -> str:
        # chatstore's own rule for a message (not blank as a person sees it, at most
        # 32,000 characters, no NUL), checked before anything is created or run: a
        # refused message leaves no conversation, no item and no message behind.
        try:
            return _core.content(message)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from exc


class ToolCall(BaseModel):
    name: str
    arguments: Any = Field(description="The arguments the model gave, as JSON.")
    result: Any = Field(default=None, description="What the tool returned, as JSON.")


class ChatResponse(BaseModel):
    conversation_id: int
    response: str
    tool_calls: list[ToolCall] = Field(description="The tools called in this turn, in order.")
