"""The sampling parameters /v1 (chat and completions) and the playground share: one schema with
their types and bounds, so every route checks a value the same way (ninja answers a bad one with a
400 naming the parameter), and one conversion into the engines' SamplingParams."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

from engines.base import SamplingParams

MAX_STOP_STRINGS = 4
MAX_LOGIT_BIAS = 300  # entries, as OpenAI allows
NUMBERS = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty",
           "frequency_penalty", "seed")


class SamplingFields(Schema):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 400 naming it

    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=1000, description="llama.cpp's")
    min_p: float | None = Field(None, ge=0.0, le=1.0, description="llama.cpp's")
    repeat_penalty: float | None = Field(None, ge=0.5, le=2.0, description="llama.cpp's")
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="/v1 with n > 1: choice j uses seed + j")
    stop: str | list[str] | None = Field(None, description=f"a string or at most {MAX_STOP_STRINGS} strings")
    logit_bias: dict[str, float] | None = Field(
        None, description=f'{{"<token id>": -100..100}}, at most {MAX_LOGIT_BIAS}')

    @field_validator(*NUMBERS, mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # pydantic's lax mode reads true as 1; a boolean here is a client's mistake
        if isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        return value

    # stop and logit_bias are checked before their types, so an error names the parameter itself
    # (not stop.0 or logit_bias.<id>)
    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise ValueError("must be a string or a list of non-empty strings")
        if len(value) > MAX_STOP_STRINGS:
            raise ValueError(f"takes at most {MAX_STOP_STRINGS} strings")
        return value

    @field_validator("logit_bias", mode="before")
    @classmethod
    def _logit_bias(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, dict):
            raise ValueError('must be an object {"<token id>": bias}')
        if len(value) > MAX_LOGIT_BIAS:
            raise ValueError(f"takes at most {MAX_LOGIT_BIAS} tokens")
        for key, bias in value.items():
            if not str(key).isdigit():
                raise ValueError(f"keys must be token ids (integers), got {key!r}")
            if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
                raise ValueError(f"biases must be numbers from -100 to 100, got {bias!r}")
        return value


def sampling_params(fields: SamplingFields, *, max_tokens: int | None = None,
                    max_tokens_default: int = 256) -> SamplingParams:
    """The engines' SamplingParams from checked fields; what is left out keeps SamplingParams'
    defaults. `max_tokens` overrides the field (chat's max_completion_tokens)."""
    values: dict[str, Any] = {name: getattr(fields, name) for name in NUMBERS}
    if max_tokens is not None:
        values["max_tokens"] = max_tokens
    if values["max_tokens"] is None:
        values["max_tokens"] = max_tokens_default
    stop = fields.stop
    if isinstance(stop, str):  # one stop sequence, as OpenAI reads a string (newlines and all)
        stop = [stop] if stop else []
    if stop is not None:
        values["stop"] = tuple(stop)
    if fields.logit_bias:
        values["logit_bias"] = tuple((int(token), float(bias)) for token, bias in fields.logit_bias.items())
    return SamplingParams(**{k: v for k, v in values.items() if v is not None})
