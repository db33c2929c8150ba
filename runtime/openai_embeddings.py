"""POST /v1/embeddings: one vector per input, from the runtime's /embed (llama.cpp's mean
pooling, L2-normalized; GGUF variants only: another format is the runtime's 400
model_cannot_embed, passed on). encoding_format "base64" is the little-endian float32 bytes of
each vector, as OpenAI sends them."""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from runtime import client, services
from runtime.errors import RuntimeRequestError
from runtime.openai_inputs import inputs
from runtime.selectors import variant_for_chat


class EmbeddingRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    model: str | int = Field(description="a variant id from GET /v1/models")
    input: Any = Field(description="a string, a list of strings, token ids, or a list of token-id lists")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, description="not supported: the model's own size only")
    user: str | None = Field(None, description="accepted; not used")


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def create(*, user, body: EmbeddingRequest) -> dict:
    if body.dimensions is not None:
        raise RuntimeRequestError("dimensions is not supported: vectors have the model's own size",
                                  param="dimensions", code="unsupported_parameter")
    items = inputs(body.input, param="input")
    if len({isinstance(i, str) for i in items}) > 1:
        raise RuntimeRequestError("input must be all strings or all token-id lists", param="input")
    if any(i == "" for i in items):
        raise RuntimeRequestError("input must not contain empty strings", param="input")
    variant, files = await variant_for_chat(user=user, variant_id=str(body.model))
    result = await client.embed(payload=services.embed_payload(variant=variant, files=files,
                                                               inputs=items))
    data = [{"object": "embedding", "index": i, "embedding": _encoded(v, body.encoding_format)}
            for i, v in enumerate(result["data"])]
    tokens = result["prompt_tokens"]
    return {"object": "list", "data": data, "model": str(variant.pk),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
