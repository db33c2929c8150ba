"""The pieces the transformers engine plugs into `model.generate()` for one request.

transformers runs its own processors first (repetition penalty), then the ones passed in
`logits_processor=` in list order, then the sampling warpers (temperature, top-k, top-p, min-p):
see GenerationMixin._get_logits_processor in transformers/generation/utils.py. So the engine
passes [OpenAI penalties, logit_bias, LogprobRecorder, JsonConstraint]: logprobs are read after
penalties and bias, before the grammar mask and before temperature and truncation, as base.py
says; the mask then leaves only tokens that keep the reply valid JSON for that schema.

`TokenQueue` is the streamer `generate` feeds token ids to (after each sampling step, from the
generation thread); `IncrementalDecoder` turns those ids into text on the reading side.
Batch size is always 1.
"""

from __future__ import annotations

import queue
from collections import deque

import torch
from llguidance import LLMatcher, LLTokenizer
from llguidance.hf import from_tokenizer
from transformers import LogitsProcessor
from transformers.generation.streamers import BaseStreamer

from engines.base import EngineError

# Separators of JSON text under a schema: json.dumps' own, and no other whitespace, so a model
# can't pad a reply with blanks until max_tokens.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class PresenceFrequencyPenalty(LogitsProcessor):
    """OpenAI's penalties over the completion's tokens (the prompt's don't count):
    logit -= frequency_penalty * count + presence_penalty * (count > 0)."""

    def __init__(self, *, presence: float, frequency: float, prompt_len: int):
        self.presence, self.frequency, self.prompt_len = presence, frequency, prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[0, self.prompt_len:]
        if generated.numel():
            width = scores.shape[-1]
            counts = torch.bincount(generated, minlength=width)[:width].to(scores.dtype)
            scores[0] -= self.frequency * counts + self.presence * (counts > 0).to(scores.dtype)
        return scores


class LogitBias(LogitsProcessor):
    """Adds each (token id, bias) to that token's logit at every step."""

    def __init__(self, bias: tuple[tuple[int, float], ...]):
        self.ids = torch.tensor([t for t, _ in bias], dtype=torch.long)
        self.values = torch.tensor([b for _, b in bias], dtype=torch.float32)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        ids, values = self.ids.to(scores.device), self.values.to(scores.device, scores.dtype)
        scores[0].index_add_(0, ids, values)
        return scores


class LogprobRecorder(LogitsProcessor):
    """Keeps each step's log-softmax row until the streamer pairs it with the token sampled from
    it (a queue, not a single slot: on devices where transformers defers its stop check the
    streamer runs one step behind)."""

    def __init__(self, top: int):
        self.top = top
        self.rows: deque[torch.Tensor] = deque()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.rows.append(torch.log_softmax(scores[0].float(), dim=-1))
        return scores

    def take(self, token: int) -> tuple[float, list[int], list[float]]:
        """The sampled token's logprob and the `top` best (ids, logprobs) of its step."""
        return row_logprobs(self.rows.popleft(), token, self.top)


def row_logprobs(row: torch.Tensor, token: int, top: int) -> tuple[float, list[int], list[float]]:
    values, ids = row.topk(top) if top else (row[:0], row[:0].long())
    return float(row[token]), ids.tolist(), values.tolist()


class JsonConstraint(LogitsProcessor):
    """An llguidance matcher for the schema's grammar: it consumes the tokens chosen so far, then
    sets every token it doesn't allow next to -inf. `stopped` says when the grammar is complete
    (the matcher accepts nothing but EOS), which the engine uses as a stopping criterion."""

    def __init__(self, *, tokenizer: LLTokenizer, grammar: str, prompt_len: int):
        self.matcher = LLMatcher(tokenizer, grammar, log_level=0)
        self.prompt_len, self.consumed = prompt_len, 0

    def _catch_up(self, input_ids: torch.LongTensor) -> None:
        for token in input_ids[0, self.prompt_len + self.consumed:].tolist():
            self.matcher.consume_token(token)
            self.consumed += 1
        if self.matcher.is_error():
            raise EngineError(f"constrained decoding failed: {self.matcher.get_error()}")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._catch_up(input_ids)
        packed = torch.frombuffer(bytearray(self.matcher.compute_bitmask()), dtype=torch.uint8)
        # bit j of byte b allows token 8*b + j (llguidance's mask is little-endian u32 words)
        bits = (packed.unsqueeze(1) >> torch.arange(8, dtype=torch.uint8)) & 1
        allowed = torch.zeros(scores.shape[-1], dtype=torch.bool)
        n = min(allowed.numel(), bits.numel())
        allowed[:n] = bits.flatten()[:n].bool()
        scores[0].masked_fill_(~allowed.to(scores.device), float("-inf"))
        return scores

    def stopped(self, input_ids: torch.LongTensor) -> bool:
        self._catch_up(input_ids)
        return self.matcher.is_stopped()


def byte_tokenizer(tokenizer, *, n_vocab: int, eos: list[int], param: str) -> LLTokenizer:
    """llguidance's view of the vocabulary, each token's exact bytes (about half a second to
    build, so the engine keeps one). `eos`: every token that ends generation, so a grammar that
    is complete allows any of them; `param` names the request parameter that needed it."""
    try:
        return from_tokenizer(tokenizer, n_vocab=max(n_vocab, len(tokenizer)), eos_token=eos)
    except ValueError as exc:  # only tokenizers backed by HF `tokenizers` can be read
        raise EngineError(f"{param}: this model's tokenizer can't be read by llguidance ({exc})",
                          status=400, code="unsupported_tokenizer", param=param) from exc


def json_grammar(schema: str, tokenizer: LLTokenizer) -> str:
    """The llguidance grammar of a JSON Schema (text), or EngineError 400 naming
    response_format when the schema isn't one llguidance can enforce."""
    try:
        grammar = LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS)
    except ValueError as exc:
        raise EngineError(f"response_format: the JSON schema is not a JSON object: {exc}",
                          status=400, code="invalid_json_schema", param="response_format") from exc
    problem = LLMatcher.validate_grammar(grammar, tokenizer)
    if problem:
        raise EngineError(f"response_format: the JSON schema can't be enforced: {problem}",
                          status=400, code="invalid_json_schema", param="response_format")
    return grammar


def logprob_entry(tokenizer: LLTokenizer, token: int, logprob: float, top_ids: list[int],
                  top_values: list[float]) -> dict:
    """base.py's logprob dict, with each token's exact bytes from llguidance's tokenizer (a
    byte-level BPE token can hold part of a UTF-8 character; its `token` text then shows U+FFFD).
    Special tokens show as "", as they do in the reply (and in the llama.cpp engine)."""

    def one(t: int, lp: float) -> dict:
        raw = b"" if tokenizer.is_special_token(t) else tokenizer.decode_bytes([t])
        return {"token": raw.decode("utf-8", errors="replace"), "logprob": lp, "bytes": list(raw)}

    return {**one(token, logprob), "top_logprobs": [one(t, v) for t, v in zip(top_ids, top_values)]}


class TokenQueue(BaseStreamer):
    """What `generate` streams to: skips the prompt, then queues (token, logprob data or None)
    per step; `None` marks the end. Runs in the generation thread."""

    def __init__(self, recorder: LogprobRecorder | None):
        self.recorder = recorder
        self.items: queue.Queue = queue.Queue()
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        token = int(value.reshape(-1)[0])
        self.items.put((token, self.recorder.take(token) if self.recorder else None))

    def end(self) -> None:
        self.items.put(None)


class IncrementalDecoder:
    """Text of a growing token list, released only as complete UTF-8: decodes a short window of
    recent ids with and without the newest ones and returns the difference (the scheme of
    text-generation-inference's `decode_token`), so each step costs a few tokens' decoding."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = self.read = 0  # window start; end of the ids already turned into text

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def add(self, token: int) -> str:
        self.ids.append(token)
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """What's still held back at the end, less the character the last tokens left incomplete
        (its bytes decode to U+FFFD; the reply was cut before the rest of them came)."""
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        self.prefix = self.read = len(self.ids)
        return after[len(before):].rstrip("\ufffd")
