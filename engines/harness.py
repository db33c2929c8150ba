"""A loaded engine as an lm-evaluation-harness model, so lm-eval's own tasks, prompts and metrics
score a variant through the same load chat serves it with.

Requests are tokenized the way lm-eval's `--model hf` (HFLM) tokenizes them, so a task scored here
and by the `lm_eval` CLI on the same weights sees the same token ids:
- loglikelihood: TemplateLM's split (trailing spaces of the context move to the continuation; the
  whole text is encoded once and the continuation is the tail beyond the context's own encoding;
  an empty context is the prefix token), a text encoded with the model's BOS when its tokenizer
  adds one; the input is the last n_ctx + 1 tokens less the final one, and the score is the sum of
  the continuation tokens' log-softmax over `engine.logits` (float64), greedy when every
  continuation token is its row's argmax;
- loglikelihood_rolling: lm-eval's disjoint rolling windows of n_ctx tokens after the prefix token;
- generate_until: greedy (temperature 0, no penalties) through the engine's `stream`, stopped at
  the request's `until` strings or the model's end token, the prompt left-truncated to leave room
  for max_gen_toks as HFLM does.

Choices of a multiple-choice question share their context; where two requests give the same input
ids (single-token continuations after one context), the logits are computed once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import normalize_gen_kwargs
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from engines.base import Engine, SamplingParams

# Greedy decoding exactly: no repetition/presence penalties (SamplingParams defaults to 1.1).
GREEDY = dict(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
              presence_penalty=0.0, frequency_penalty=0.0)


class EngineLM(TemplateLM):
    """lm-eval's LM over one loaded Engine. `progress(done, total, request_type)` is called as
    requests finish (every `every` requests and at the end)."""

    def __init__(self, engine: Engine, *, max_gen_toks: int = 256,
                 progress: Callable[[int, int, str], None] | None = None, every: int = 8):
        super().__init__()
        self.engine = engine
        self.max_gen_toks = max_gen_toks
        self.progress = progress or (lambda done, total, kind: None)
        self.every = max(1, every)
        self.bos_id, self.eos_id = engine.special_ids

    # ---- tokens ----
    @property
    def eot_token_id(self) -> int:
        return self.eos_id

    @property
    def prefix_token_id(self) -> int:
        return self.bos_id if self.bos_id is not None else self.eos_id

    @property
    def max_length(self) -> int:
        return self.engine.n_ctx

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        """As HFLM with its tokenizer's defaults: the BOS first when the tokenizer adds one
        (engine.bos_id), unless asked not to or the text already starts with it."""
        ids = self.engine.tokenize(string)
        if add_special_tokens is False or self.engine.bos_id is None or ids[:1] == [self.engine.bos_id]:
            return ids
        return [self.engine.bos_id] + ids

    # ---- loglikelihood ----
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        """(sum of the continuation's log-probabilities, whether greedy decoding gives it) per
        request, in the requests' order. Requests are run sorted by their input ids so that
        equal inputs are adjacent and computed once."""
        inputs = []
        for _, context_enc, continuation_enc in requests:
            if not continuation_enc or len(continuation_enc) > self.max_length:
                raise ValueError(f"a loglikelihood continuation of {len(continuation_enc)} tokens: it "
                                 f"must be 1 to {self.max_length} (the context the model was opened with)")
            whole = (context_enc + continuation_enc)[-(self.max_length + 1):]
            inputs.append((tuple(whole[:-1]), continuation_enc))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        last_ids, logits = None, None
        for done, i in enumerate(sorted(range(len(inputs)), key=lambda j: inputs[j][0]), start=1):
            ids, continuation = inputs[i]
            if ids != last_ids:
                logits, last_ids = self.engine.logits(list(ids)), ids
            # Only the continuation's rows: the softmax over a whole prompt's rows costs more
            # than the forward pass of a small model.
            results[i] = continuation_score(log_softmax(logits[-len(continuation):]), continuation)
            if done % self.every == 0 or done == len(inputs):
                self.progress(done, len(inputs), "loglikelihood")
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Each text's whole log-likelihood over lm-eval's disjoint windows of n_ctx tokens
        (conditioned on the prefix token at the start)."""
        out = []
        for done, request in enumerate(requests, start=1):
            (string,) = request.args
            windows = [make_disjoint_window(w) for w in get_rolling_token_windows(
                token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length, context_len=1)]
            scored = self._loglikelihood_tokens([(None, context, target) for context, target in windows])
            out.append(sum(score for score, _ in scored))
            if done % self.every == 0 or done == len(requests):
                self.progress(done, len(requests), "loglikelihood_rolling")
        return out

    # ---- generation ----
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out = []
        for done, request in enumerate(requests, start=1):
            context, gen_kwargs = request.args
            out.append(self.greedy(context, gen_kwargs))
            if done % self.every == 0 or done == len(requests):
                self.progress(done, len(requests), "generate_until")
        return out

    def greedy(self, context: str, gen_kwargs: dict) -> str:
        kwargs = normalize_gen_kwargs(dict(gen_kwargs or {}), self.max_gen_toks)
        if kwargs.get("do_sample"):
            raise NotImplementedError("generate_until with do_sample=True: this harness decodes "
                                      "greedily only (the task's generation_kwargs ask for sampling)")
        until = kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        max_gen = int(kwargs["max_gen_toks"])
        room = self.max_length - max_gen
        if room < 1:
            raise ValueError(f"max_gen_toks {max_gen} leaves no room for a prompt in the model's "
                             f"context of {self.max_length} tokens")
        tokens = self.tok_encode(context)[-room:]
        params = SamplingParams(**GREEDY, max_tokens=max_gen, stop=tuple(until))
        prepared = self.engine.prepare(messages=None, prompt=None, params=params, prompt_tokens=tokens)
        prepared.max_tokens = max_gen
        text = "".join(piece.text for piece in self.engine.stream(
            prepared=prepared, params=params, cancelled=lambda: False))
        # The engine cuts at the stop strings already; a stop string the tokens only complete
        # across a held-back tail is cut here too, as lm-eval does after decoding.
        for stop in until:
            if stop:
                text = text.split(stop)[0]
        return text


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    rows = logits.astype(np.float64)
    rows -= rows.max(axis=-1, keepdims=True)
    return rows - np.log(np.exp(rows).sum(axis=-1, keepdims=True))


def continuation_score(rows: np.ndarray, continuation: list[int]) -> tuple[float, bool]:
    """Row i of `rows` (log-probabilities) scores continuation token i."""
    picked = rows[np.arange(len(continuation)), continuation]
    return float(picked.sum()), bool((rows.argmax(axis=-1) == np.asarray(continuation)).all())
