"""The parts of llama.cpp sampling that must be visible from Python: logit_bias, the repetition
penalties, the logprobs the model gave each token, and JSON-schema grammars.

llama-cpp-python's sampler chain runs penalties in C, where their effect can't be read back, so
`LogitShaper` replaces them: it is the chain's first stage (a logits processor), and llama.cpp's
own penalties sampler is switched off (repeat 1, frequency 0, presence 0). It applies exactly
llama.cpp's `llama_sampler_penalties_apply` (src/llama-sampling.cpp) over the same window, the
last `last_n_tokens_size` (64) tokens of the completion, then adds logit_bias, and keeps that row.
The logprobs reported are the log-softmax (float64) of that row: after penalties and logit_bias,
before the grammar, temperature and top-k/top-p/min-p truncation, whatever token was then sampled.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from engines.base import EngineError, SamplingParams


class LogitShaper:
    """A llama-cpp-python logits processor for one generation: `(input_ids, logits) -> logits`,
    called once per sampled token with the full vocabulary in token-id order."""

    def __init__(self, params: SamplingParams, *, n_prompt: int, window: int):
        self.n_prompt, self.window = n_prompt, window
        self.repeat, self.frequency, self.presence = (
            params.repeat_penalty, params.frequency_penalty, params.presence_penalty)
        bias = dict(params.logit_bias)  # a token named twice keeps its last bias, as in OpenAI's map
        self.bias_ids = np.array(list(bias), dtype=np.intc)
        self.bias_values = np.array(list(bias.values()), dtype=np.float32)
        self.keep_row = params.logprobs is not None
        self.row: np.ndarray | None = None  # the shaped logits of the latest step (when kept)

    @property
    def needed(self) -> bool:
        return bool(self.penalized or len(self.bias_ids) or self.keep_row)

    @property
    def penalized(self) -> bool:
        return self.repeat != 1.0 or self.frequency != 0.0 or self.presence != 0.0

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        recent = input_ids[self.n_prompt:][-self.window:]
        if self.penalized and len(recent):
            ids, counts = np.unique(recent, return_counts=True)
            values = logits[ids]
            values = np.where(values <= 0, values * self.repeat, values / self.repeat)
            logits[ids] = values - (counts * self.frequency + self.presence)
        if len(self.bias_ids):
            logits[self.bias_ids] += self.bias_values
        if self.keep_row:
            self.row = np.array(logits, dtype=np.float64)
        return logits


class TokenTexts:
    """Each token's text and UTF-8 bytes as the reply shows them (special tokens render as ""),
    cached: the same ids come back in every top-N list."""

    def __init__(self, model):
        self._model = model
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def __call__(self, token: int) -> tuple[str, list[int]]:
        if token not in self._cache:
            raw = self._model.detokenize([token], special=False)
            self._cache[token] = (raw.decode("utf-8", errors="replace"), list(raw))
        return self._cache[token]


def logprob_entry(row: np.ndarray, token: int, top: int, texts: TokenTexts) -> dict:
    """base.py's dict for `token` under the distribution log-softmax(row), with `top` best."""
    peak = row.max()
    logprobs = row - (peak + np.log(np.exp(row - peak).sum()))
    best = np.argpartition(-logprobs, top - 1)[:top] if top else np.array([], dtype=int)
    best = best[np.argsort(-logprobs[best], kind="stable")]

    def item(t: int) -> dict:
        text, raw = texts(int(t))
        return {"token": text, "logprob": float(logprobs[t]), "bytes": raw}

    return {**item(token), "top_logprobs": [item(t) for t in best]}


def json_schema_grammar(schema: str, vocab) -> str:
    """The GBNF text that makes a reply match `schema` (JSON text); EngineError 400 naming
    response_format when it isn't a schema llama.cpp's converter and grammar parser accept."""
    import llama_cpp

    grammar = _gbnf(schema)
    if grammar is None:
        raise EngineError("response_format: the JSON schema is invalid or uses features llama.cpp "
                          "grammars don't support", code="invalid_json_schema", status=400,
                          param="response_format")
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if not sampler:  # NULL: the grammar didn't parse; never hand that to a sampler chain
        raise EngineError("response_format: llama.cpp could not compile the JSON schema into a "
                          "grammar", code="invalid_json_schema", status=400, param="response_format")
    llama_cpp.llama_sampler_free(sampler)
    return grammar


@lru_cache(maxsize=64)
def _gbnf(schema: str) -> str | None:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        if not isinstance(json.loads(schema), dict):
            return None
        return json_schema_to_gbnf(schema)
    except Exception:  # the converter asserts / raises KeyError etc. on schemas it can't handle
        return None
