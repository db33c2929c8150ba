"""The blind compare's JSON and token streams (session auth with the CSRF token, like the rest of
the playground's): make a pair, stream side A and side B, vote.

Nothing the browser gets before its vote says which variant a side is: the pair's answer is its
id; a side's stream carries the reply's text and the counts of tokens, not the variant, the
conversation, token probabilities or speed (a faster quantization would give itself away); an
error is told without the runtime's message (it may name files). The vote's answer reveals both
variants and the replies' full stats.
"""

from __future__ import annotations

from typing import Annotated

from asgiref.sync import sync_to_async
from ninja import Router, Schema
from pydantic import ConfigDict, Field, ValidationError

from quantdash.api_common import session_auth
from runtime import blind, client, services, sse
from runtime.errors import RuntimeRequestError
from catalog.models import BlindPair
from runtime.params import SamplingFields, sampling_params
from runtime.selectors import variant_for_chat

router = Router(auth=[session_auth])
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # a database id (larger ones can't be stored)
# What a side's start and done events may carry before the vote: the same for either variant of
# one model (its context window comes from the model's config).
START_FIELDS = ("prompt_tokens", "max_tokens", "n_ctx")
DONE_FIELDS = ("prompt_tokens", "completion_tokens", "finish_reason")
HIDDEN_ERROR = "this side's reply failed; what went wrong is shown with the names after the vote"


class BlindStart(Schema):
    model_config = ConfigDict(extra="forbid")

    model: RowId | None = Field(None, description="draw the pair from this model's variants")
    variants: list[RowId] = Field(default_factory=list, max_length=50,
                                  description="or from these (two or more, of one model)")
    content: str = Field(description="the prompt both sides answer")
    system: str = Field("", description="system prompt for both")
    params: SamplingFields = Field(default_factory=SamplingFields,
                                   description="sampling for both sides, as /v1 takes it")


class BlindPairOut(Schema):
    id: int
    sides: list[str]


class VoteIn(Schema):
    model_config = ConfigDict(extra="forbid")

    vote: str = Field(description="a (A is better), b (B is better), tie or both_bad")


def _pair_or_404(user, pair_id: int) -> BlindPair:
    pair = blind.blind_pairs_of(user).select_related("variant_a__model", "variant_b__model") \
        .filter(pk=pair_id).first()
    if pair is None:
        raise RuntimeRequestError("no such blind pair", status=404, param="pair")
    return pair


@router.post("/pairs/", url_name="playground-blind", response={201: BlindPairOut},
             summary="Draw a blind pair for a prompt; stream each side, then vote")
def pair_start(request, body: BlindStart):
    pair = blind.pair_create(user=request.auth, model_id=body.model, variant_ids=body.variants,
                             prompt=body.content, system=body.system,
                             settings=body.params.model_dump(exclude_none=True))
    return 201, {"id": pair.pk, "sides": list(blind.SIDES)}


@router.post("/pairs/{pair_id}/vote/", url_name="playground-blind-vote", response=dict,
             summary="Vote on a pair whose replies have ended; the answer names both variants",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": VoteIn.model_json_schema()}}}})
def pair_vote(request, pair_id: RowId):
    # The body is read only once the pair is found, so another's pair is a 404 whatever is sent.
    pair = _pair_or_404(request.auth, pair_id)
    try:
        vote = VoteIn.model_validate_json(request.body or b"{}").vote
    except ValidationError as error:
        raise RuntimeRequestError(f"send a JSON object {{\"vote\": ...}}: {error.errors()[0]['msg']}",
                                  param=".".join(map(str, error.errors()[0]["loc"])) or "vote") from None
    pair = blind.vote_cast(pair=pair, vote=vote)
    return {"vote": pair.vote, "pair": pair.pk, "model": pair.model_id,
            **{side: {"variant": variant.pk, "label": f"{variant.label} #{variant.pk}",
                      "stats": stats}
               for side, variant, stats in (("a", pair.variant_a, pair.stats_a),
                                            ("b", pair.variant_b, pair.stats_b))}}


@router.post("/pairs/{pair_id}/{side}/", url_name="playground-blind-side", response={200: dict},
             summary="Stream one side's reply as server-sent events (start, token, done, error)")
async def side_stream(request, pair_id: RowId, side: str):
    user = request.auth
    pair = await sync_to_async(_pair_or_404)(user, pair_id)
    if side not in blind.SIDES:  # checked after the pair, so another's pair is a 404 whatever the side
        raise RuntimeRequestError("side must be a or b", param="side")
    variant_id = pair.variant_a_id if side == "a" else pair.variant_b_id
    try:
        variant, files = await variant_for_chat(user=user, variant_id=variant_id)
    except RuntimeRequestError:  # its message names the variant
        raise RuntimeRequestError("this side's variant is no longer available", status=404,
                                  param="side") from None
    if not await sync_to_async(blind.side_claim)(pair=pair, side=side):
        raise RuntimeRequestError(f"side {side.upper()} has been sent already", status=409,
                                  param="side")
    history = [{"role": "system", "content": pair.system}] if pair.system else []
    fields = SamplingFields(**pair.settings)
    try:
        generation = await client.open_generation(payload=services.runtime_payload(
            variant=variant, files=files, request_id=services.new_request_id(user=user),
            params=sampling_params(fields),
            messages=[*history, {"role": "user", "content": pair.prompt}]))
    except BaseException as error:
        await sync_to_async(blind.side_release)(pair=pair, side=side)
        if isinstance(error, RuntimeRequestError) and error.status >= 500 \
                and error.code != "runtime_unavailable":
            raise RuntimeRequestError(HIDDEN_ERROR, status=error.status, code=error.code,
                                      param="side") from None
        raise
    return sse.response(_relay(generation, pair, side))


async def _relay(generation: client.Generation, pair: BlindPair, side: str):
    pieces: list[str] = []
    saved = False

    async def save(stats: dict) -> None:
        nonlocal saved
        saved = True
        await sync_to_async(blind.reply_save)(pair=pair, side=side, text="".join(pieces),
                                              stats=stats)

    try:
        yield sse.frame({"type": "start", "side": side, "request_id": generation.request_id,
                         **{k: generation.start[k] for k in START_FIELDS if k in generation.start}})
        async for event in generation.events():
            if event["type"] == "token":
                pieces.append(event["text"])
                yield sse.frame({"type": "token", "text": event["text"]})
            elif event["type"] == "done":
                stats = {**event["stats"], "finish_reason": event["finish_reason"]}
                await save(stats)
                yield sse.frame({"type": "done",
                                 "stats": {k: stats[k] for k in DONE_FIELDS if k in stats}})
            elif event["type"] == "error":
                await save({"finish_reason": "error", "error": event.get("message", "")})
                yield sse.frame({"type": "error", "message": HIDDEN_ERROR})
    finally:
        await generation.aclose()
        if not saved:  # the browser went away mid-reply: keep what it had seen
            await save({"finish_reason": "disconnected"})
