"""Request and response models of the public API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.outcomes import Outcome
from core.settings import get_settings
from guards.input import sanitize


class AskRequest(BaseModel):
    """A shopper's question."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"}]},
    )

    question: str = Field(..., description="The question, in Dutch or English (at most MAX_QUESTION_CHARS characters).")

    @field_validator("question")
    @classmethod
    def _clean(cls, value: str) -> str:
        cleaned = sanitize(value)
        if not cleaned:
            raise ValueError("the question is empty")
        limit = get_settings().max_question_chars
        if len(cleaned) > limit:
            raise ValueError(f"the question is longer than {limit} characters")
        return cleaned


class SourceOut(BaseModel):
    """A cited catalogue document."""

    id: str
    title: str


class AskResponse(BaseModel):
    """The assistant's answer with its sources."""

    answer: str = ""
    sources: list[SourceOut] = Field(default_factory=list)
    refused: bool = False
    language: str = "nl"
    mode: Outcome = Field(
        default="abstained",
        description="How the answer was made (generated, extractive, abstained, refused, or a scope route): README.",
    )
    cut: bool = Field(default=False, description="The claim check ended the model's text early (a sentence failed).")


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    error: str
    detail: object | None = None


class ChatRequest(AskRequest):
    """One message of a conversation (``POST /api/chat/stream``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "En in het zwart?", "thread": "th_…"}]},
    )

    thread: str | None = Field(
        default=None,
        max_length=128,
        description="The handle of an earlier `thread` event to continue that conversation; omit to start one.",
    )


class FeedbackRequest(BaseModel):
    """A shopper's rating of one answer (``POST /api/feedback``)."""

    model_config = ConfigDict(extra="forbid")

    thread: str = Field(..., max_length=128, description="The conversation's handle.")
    message_id: str = Field(..., pattern=r"^[0-9a-f]{32}$", description="`message_id` of the answer's `final` event.")
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=1000, description="Optional; stored redacted.")

    @field_validator("comment")
    @classmethod
    def _clean_comment(cls, value: str | None) -> str | None:
        return sanitize(value) or None if value is not None else None
