"""HF safetensors, bitsandbytes and GPTQ/AWQ variants through transformers.

`generate` runs in a thread and streams token ids into a queue (hf_processors.TokenQueue); the
reading side decodes them incrementally, cuts stop strings with base.StopScanner and yields one
Piece per token. A stopping criterion checks the cancel flag (and the reader's "stop now") before
each new token. Penalties, logit_bias, logprobs and JSON-schema constraints are logits
processors (hf_processors.py says where transformers places them). Remote code is never trusted:
a model whose architecture needs it fails to load with a clear message. Quantized formats load
through the quantization_config saved in the variant's config.json (bitsandbytes, GPTQ and AWQ
all write one).

Multi-turn chat reuses the evaluated prefix: each generation runs on a DynamicCache, cropped
afterwards to its prompt and kept in the engine's prefix cache (engines/prefix_cache.py)
under the prompt's tokens; the next request takes the kept cache sharing the longest prefix with
its prompt (taken out, so concurrent generations never share one) and `generate` evaluates only
the rest. As in the llama.cpp engine, the reply's keys and values as generation left them (one
token per forward pass) are dropped; here they are not re-evaluated in the background, the next
turn's prompt pass evaluates them. PyTorch on CPU gives logits about 4e-5 apart for a prompt
evaluated in one pass or in two (matrix products of other shapes): far below the batch-vs-single
gap, and the tests hold replies to the same greedy tokens as without the cache.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.base import (
    MAX_TOP_LOGPROBS, ContextTooLong, Engine, EngineError, Piece, Prepared, SamplingParams, StopScanner,
    messages_with_tools, package_version,
)
from engines.gpu import GpuUnavailable, require_gpu

SCORE_CHUNK = 512  # tokens per forward pass when scoring: bounds the logits held at once


def _read_config(directory: Path) -> dict:
    try:
        return json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def crop_to(cache, length: int) -> None:
    """Cuts a DynamicCache to its first `length` tokens (transformers 5 takes the count to drop,
    as a negative number)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class TransformersEngine(Engine):
    name = "transformers"
    parallel = True  # generate() is reentrant across threads on one model

    def load(self) -> None:
        directories = {f.parent for f in self.files}
        if len(directories) != 1:
            raise EngineError("an HF variant's files must share one folder", code="model_load_failed")
        directory = directories.pop()
        if not (directory / "config.json").is_file():
            raise EngineError("the variant has no config.json", code="model_load_failed")
        gpu = self._on_gpu()  # before transformers loads: a cuda node without a GPU fails at once
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        config = _read_config(directory)
        # Float checkpoints compute in float32 on a CPU (its half-precision matmuls are slow, and
        # upcasting is exact); quantized ones keep the compute dtype they were saved with.
        quantized = "quantization_config" in config
        try:
            torch.set_num_threads(self.threads)
            if gpu:
                torch.cuda.reset_peak_memory_stats()
            self._tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
            self._model = AutoModelForCausalLM.from_pretrained(
                directory, trust_remote_code=False,
                dtype=torch.float32 if not (gpu or quantized) else "auto",
                # A cuda node puts the whole model on GPU 0: "auto" would quietly spill layers
                # to the CPU when it doesn't fit, where it should fail for want of GPU memory.
                device_map=({"": 0} if self.device == "cuda" else "auto") if gpu else None,
            )
            self._model.eval()
        except Exception as exc:
            raise EngineError(f"transformers could not load the variant: {exc}",
                              code="model_load_failed") from exc
        self._vocab = self.vocab = self._model.config.get_text_config().vocab_size  # logits' width
        self._describe(config, gpu=gpu)
        eos = self._model.generation_config.eos_token_id
        self._eos = {self._tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        self._bytes_tokenizer = None  # built on first need (logprobs, json_schema)
        self._bytes_lock = threading.Lock()

    def _on_gpu(self) -> bool:
        """Whether the model goes on the GPU: always on a cuda node (EngineError naming the node
        when it has none), never on "cpu", and when torch sees one without a device."""
        import torch

        if self.device == "cuda":
            try:
                require_gpu(node=self.node)
            except GpuUnavailable as exc:
                raise EngineError(str(exc), code="gpu_unavailable", status=503) from exc
            return True
        return self.device is None and torch.cuda.is_available()

    def _describe(self, config: dict, *, gpu: bool) -> None:
        import torch

        method = (config.get("quantization_config") or {}).get("quant_method")
        loader = {"bitsandbytes": "bitsandbytes", "gptq": "gptqmodel"}.get(method)
        with_special = self._tokenizer("a")["input_ids"]
        plain = self._tokenizer("a", add_special_tokens=False)["input_ids"]
        bos = self._tokenizer.bos_token_id
        self.bos_id = bos if len(with_special) > len(plain) and with_special[0] == bos else None
        self.special_ids = (bos, self._tokenizer.eos_token_id)
        # The linear layers' classes name the kernels that run the quantized matmuls (GPTQModel
        # picks one per machine, bitsandbytes has its own): part of what a speed was measured on.
        linear = sorted({type(m).__name__ for m in self._model.modules() if "Linear" in type(m).__name__})
        self.info = {"engine": "transformers", "class": self.class_path(),
                     "transformers": package_version("transformers"),
                     "torch": torch.__version__.split("+")[0],
                     **({loader: package_version(loader)} if loader else {}),
                     "threads": self.threads, "device": "cuda" if gpu else "cpu",
                     "dtype": str(next(self._model.parameters()).dtype), "linear": linear}
        if gpu:
            self.info["gpu"] = torch.cuda.get_device_name()
        self.tokenizer_info = {"tokenizer": f"transformers {type(self._tokenizer).__name__}",
                               "vocab": self.vocab, "adds_bos": self.bos_id is not None}

    def set_threads(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)   # the process's intra-op pool: every model it holds
        self.threads = threads

    def unload(self) -> None:
        self.prefix_cache.clear()
        self._model = self._tokenizer = self._bytes_tokenizer = None
        import gc

        gc.collect()

    def memory_bytes(self) -> int:
        """Weights, and the prompts kept for conversations."""
        return (int(self._model.get_memory_footprint()) + self.prefix_cache.bytes()
                if self._model is not None else 0)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def detokenize(self, tokens: list[int]) -> str:
        """The tokens' text as a reply would show it: special tokens (BOS, template markers) left out."""
        return self._tokenizer.decode(tokens, skip_special_tokens=True,
                                      clean_up_tokenization_spaces=False)

    def _byte_tokenizer(self, param: str):
        from engines.hf_processors import byte_tokenizer

        with self._bytes_lock:
            if self._bytes_tokenizer is None:
                self._bytes_tokenizer = byte_tokenizer(self._tokenizer, n_vocab=self._vocab,
                                                       eos=sorted(self._eos), param=param)
            return self._bytes_tokenizer

    def prepare(self, *, messages: list[dict] | None, prompt: str | None,
                params: SamplingParams, prompt_tokens: list[int] | None = None,
                tools: list[dict] | None = None) -> Prepared:
        self._check_params(params)
        if prompt_tokens is not None:
            tokens = self._checked_tokens(prompt_tokens)
        elif messages is not None:
            tokens = self._chat_tokens(messages, tools)
        else:
            tokens = self._tokenizer(prompt or "")["input_ids"]
        return Prepared(tokens=list(tokens), stop=params.stop, max_tokens=params.max_tokens)

    def _check_params(self, params: SamplingParams) -> None:
        """400s naming the parameter for what only the model can judge (vocabulary, schema)."""
        for token, _ in params.logit_bias:
            if not 0 <= token < self._vocab:
                raise EngineError(f"logit_bias: token {token} is outside the vocabulary "
                                  f"(0..{self._vocab - 1})", status=400, code="invalid_logit_bias",
                                  param="logit_bias")
        if params.logprobs is not None:
            if not 0 <= params.logprobs <= MAX_TOP_LOGPROBS:
                raise EngineError(f"logprobs: at most {MAX_TOP_LOGPROBS} alternatives",
                                  status=400, code="invalid_logprobs", param="logprobs")
            self._byte_tokenizer("logprobs")
        if params.json_schema is not None:
            from engines.hf_processors import json_grammar

            json_grammar(params.json_schema, self._byte_tokenizer("response_format"))

    def _checked_tokens(self, tokens: list[int]) -> list[int]:
        limit = min(self._vocab, len(self._tokenizer))
        if not tokens:
            raise EngineError("prompt: the token list is empty", status=400, code="invalid_prompt",
                              param="prompt")
        bad = next((t for t in tokens if type(t) is not int or not 0 <= t < limit), None)
        if bad is not None:
            raise EngineError(f"prompt: token {bad!r} is not a token id of this model (0..{limit - 1})",
                              status=400, code="invalid_prompt", param="prompt")
        return list(tokens)

    def _chat_tokens(self, messages: list[dict], tools: list[dict] | None) -> list[int]:
        """The model's own chat template; one without tool support (its source never mentions
        "tools") gets the tools, tool calls and tool results written into plain messages."""
        template = self._tokenizer.chat_template
        if not template:
            raise EngineError("this model's tokenizer has no chat template; use a plain "
                              "completion", code="no_chat_template", status=400)
        extra = {}
        if "tools" in str(template):
            extra = {"tools": tools} if tools else {}
        elif tools or any(m.get("role") == "tool" or m.get("tool_calls") for m in messages):
            messages = messages_with_tools(messages, tools)
        ids = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=True, return_dict=False, **extra)
        return list(ids["input_ids"] if isinstance(ids, dict) else ids)

    def stream(self, *, prepared: Prepared, params: SamplingParams,
               cancelled: Callable[[], bool]) -> Iterator[Piece]:
        from engines.hf_processors import IncrementalDecoder, logprob_entry

        prepared.finish_reason, prepared.completion_tokens = "length", 0
        if prepared.max_tokens < 1:
            return
        halt = threading.Event()
        steps, constraint = self._generation(prepared, params, lambda: halt.is_set() or cancelled())
        decoder, scanner = IncrementalDecoder(self._tokenizer), StopScanner(prepared.stop)
        byte_tokenizer = self._byte_tokenizer("logprobs") if params.logprobs is not None else None
        try:
            for token, logprobs in steps:
                if cancelled():
                    return
                prepared.completion_tokens += 1
                entries = [logprob_entry(byte_tokenizer, token, *logprobs)] if byte_tokenizer else []
                if token in self._eos:
                    prepared.finish_reason = "stop"
                    held = scanner.feed(decoder.flush()) + scanner.flush()  # text held back for UTF-8
                    if entries or held:  # like OpenAI's echo + logprobs: the end token is listed too
                        yield Piece(held, entries)
                    return
                text = scanner.feed(decoder.add(token))
                yield Piece(text, entries)
                if scanner.stopped:
                    prepared.finish_reason = "stop"
                    return
            tail = scanner.feed(decoder.flush())
            tail += scanner.flush()
            if tail:
                yield Piece(tail)
            if scanner.stopped or (constraint is not None and constraint.matcher.is_stopped()):
                prepared.finish_reason = "stop"
        finally:
            halt.set()
            steps.close()

    def _generation(self, prepared: Prepared, params: SamplingParams, halted: Callable[[], bool]):
        """Starts `generate` in a thread; returns the iterator of its (token, logprob data)
        steps (closing it waits for the thread) and the JSON constraint if any."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        from engines import hf_processors as hp

        prompt_len = len(prepared.tokens)
        processors, constraint, recorder = [], None, None
        if params.presence_penalty or params.frequency_penalty:
            processors.append(hp.PresenceFrequencyPenalty(
                presence=params.presence_penalty, frequency=params.frequency_penalty,
                prompt_len=prompt_len))
        if params.logit_bias:
            processors.append(hp.LogitBias(params.logit_bias))
        if params.logprobs is not None:
            recorder = hp.LogprobRecorder(params.logprobs)
            processors.append(recorder)
        if params.json_schema is not None:
            byte_tokenizer = self._byte_tokenizer("response_format")
            constraint = hp.JsonConstraint(
                tokenizer=byte_tokenizer, grammar=hp.json_grammar(params.json_schema, byte_tokenizer),
                prompt_len=prompt_len)
            processors.append(constraint)

        class Halt(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return halted() or (constraint is not None and constraint.stopped(input_ids))

        streamer = hp.TokenQueue(recorder)
        cache, prepared.cached_tokens = self._cached_prefix(prepared.tokens)
        input_ids = torch.tensor([prepared.tokens], device=self._model.device)
        sampling = params.temperature > 0
        kwargs = dict(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
            max_new_tokens=prepared.max_tokens, do_sample=sampling,
            repetition_penalty=params.repeat_penalty, streamer=streamer,
            logits_processor=LogitsProcessorList(processors),
            stopping_criteria=StoppingCriteriaList([Halt()]),
        )
        if cache is not None:
            kwargs["past_key_values"] = cache
        if sampling:
            kwargs.update(temperature=params.temperature, top_p=params.top_p,
                          top_k=params.top_k, min_p=params.min_p or None)
        if params.seed is not None:
            torch.manual_seed(params.seed)

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**kwargs)
                self._keep_prefix(prepared.tokens, cache)
            except BaseException as exc:  # handed to the reader below
                streamer.items.put(exc)
            streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def steps():
            try:
                while (item := streamer.items.get()) is not None:
                    if isinstance(item, BaseException):
                        if isinstance(item, EngineError):
                            raise item
                        raise EngineError(f"generation failed: {item}") from item
                    yield item
            finally:
                thread.join()

        return steps(), constraint

    def _cached_prefix(self, tokens: list[int]):
        """A DynamicCache holding the longest kept prefix of `tokens` (all but the last token at
        most) and its length; (None, 0) where caching is off or the model's cache can't be cut."""
        from transformers import DynamicCache

        if not self.reuse_prefixes or self.prefix_cache.max_bytes <= 0:
            return None, 0
        found = self.prefix_cache.take(tokens)
        if found is not None:
            saved, shared = found
            keep, cache = min(shared, len(tokens) - 1), saved.state
            if keep < len(saved.tokens):  # another conversation's: it keeps its own, we cut a copy
                self.prefix_cache.put(saved.tokens, saved.state, saved.nbytes)
                cache = copy.deepcopy(saved.state) if keep > 0 else None
            if keep > 0:
                crop_to(cache, keep)
                return cache, keep
        try:
            cache = DynamicCache(config=self._model.config)
        except Exception:  # an architecture whose cache isn't a DynamicCache: no reuse
            return None, 0
        return (cache, 0) if cache.is_croppable else (None, 0)

    def _keep_prefix(self, tokens: list[int], cache) -> None:
        """Keeps `cache` cut to the prompt (compacted: a cut leaves views of the longer tensors)."""
        if cache is None or cache.get_seq_length() < len(tokens):
            return
        try:
            crop_to(cache, len(tokens))
            nbytes = 0
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys.clone(), layer.values.clone()
                nbytes += sum(t.numel() * t.element_size() for t in (layer.keys, layer.values))
        except Exception:  # a cache layout we don't know: the reply stands, nothing is kept
            return
        self.prefix_cache.put(tokens, cache, nbytes)

    def score(self, *, tokens: list[int], top: int) -> list[dict | None]:
        """One pass over the tokens (in chunks sharing a KV cache): row i of the log-softmaxed
        logits is the distribution of token i + 1."""
        import torch

        from engines.hf_processors import logprob_entry, row_logprobs

        tokens = self._checked_tokens(tokens)
        if len(tokens) > self.n_ctx:
            raise ContextTooLong(prompt_tokens=len(tokens), n_ctx=self.n_ctx)
        byte_tokenizer = self._byte_tokenizer("logprobs")
        out: list[dict | None] = [None]
        cache = None
        with torch.inference_mode():
            for start in range(0, len(tokens) - 1, SCORE_CHUNK):
                chunk = tokens[start:start + SCORE_CHUNK]
                result = self._model(input_ids=torch.tensor([chunk], device=self._model.device),
                                     past_key_values=cache, use_cache=True)
                cache = result.past_key_values
                rows = torch.log_softmax(result.logits[0].float(), dim=-1)
                for i, token in enumerate(tokens[start + 1:start + 1 + len(chunk)]):
                    out.append(logprob_entry(byte_tokenizer, token, *row_logprobs(rows[i], token, top)))
        return out

    def tokenize(self, text: str) -> list[int]:
        return self._tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def logits(self, tokens: list[int]):
        """In passes of SCORE_CHUNK tokens sharing a KV cache, as score() runs them."""
        import numpy as np
        import torch

        if len(tokens) > self.n_ctx:
            raise ContextTooLong(prompt_tokens=len(tokens), n_ctx=self.n_ctx)
        out = np.empty((len(tokens), self.vocab), dtype=np.float32)
        cache = None
        with torch.inference_mode():
            for start in range(0, len(tokens), SCORE_CHUNK):
                chunk = tokens[start:start + SCORE_CHUNK]
                result = self._model(input_ids=torch.tensor([chunk], device=self._model.device),
                                     past_key_values=cache, use_cache=True)
                cache = result.past_key_values
                out[start:start + len(chunk)] = result.logits[0].float().cpu().numpy()
        return out

    @contextmanager
    def speed_runner(self, prompt: list[int], gen_tokens: int):
        """Forward passes as generate() makes them (prompt in one, then one token per pass with
        the KV cache), timed without generate()'s sampling and streaming around them."""
        import torch

        gpu = self._model.device.type == "cuda"
        sync = torch.cuda.synchronize if gpu else (lambda: None)
        prompt_ids = torch.tensor([prompt], device=self._model.device)

        def run() -> tuple[float, float]:
            with torch.inference_mode():
                sync()
                start = time.perf_counter()
                out = self._model(input_ids=prompt_ids, use_cache=True)
                sync()
                prefill = time.perf_counter() - start
                past, token = out.past_key_values, int(out.logits[0, -1].argmax())
                start = time.perf_counter()
                for _ in range(gen_tokens):
                    out = self._model(input_ids=torch.tensor([[token]], device=self._model.device),
                                      past_key_values=past, use_cache=True)
                    past, token = out.past_key_values, int(out.logits[0, -1].argmax())
                sync()
                return prefill, time.perf_counter() - start

        yield run

    def peak_device_bytes(self) -> int | None:
        import torch

        if self._model is None or self._model.device.type != "cuda":
            return None
        return int(torch.cuda.max_memory_allocated())
