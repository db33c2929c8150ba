"""GGUF variants through llama-cpp-python (a CPU build, or CUDA on a GPU node).

The chat template is the model's own, read from the GGUF metadata key `tokenizer.chat_template`
and rendered with llama-cpp-python's Jinja2ChatFormatter (the same path `create_chat_completion`
takes when no chat_format is given), with `tools=` when the template knows tools. We tokenize the
rendered prompt ourselves so the prompt length is known exactly before generation.

Generation runs our own loop over `Llama.generate` rather than `create_completion`, which refuses
logprobs without `logits_all` (the LM head for every prompt token). The sampler chain is
llama-cpp-python's; its first stage is `LogitShaper` (llamacpp_sampling.py: penalties, logit_bias,
the logprobs row), a JSON schema becomes a llama.cpp grammar stage. Prompt scoring decodes the
tokens with every position's logits requested for that batch only. Embeddings come from a second
context on the same file, opened on first use with mean pooling.

Multi-turn chat reuses the evaluated prefix (engines/prefix_cache.py): the context keeps
the KV cache of the latest prompt, the next request evaluates only the tokens after the prefix it
shares with it, and a conversation that another one interrupted gets its saved KV state back.
Replies and logprobs must not depend on whether the cache was hit, and llama.cpp on CPU computes
a batch of one token differently from a longer batch (up to 1.3 nats apart in log-probability
after a few tokens decoded one by one on the demo model), while how a prompt is cut into longer
batches makes no difference to the last bit. Hence:
- the reply's KV as generation left it (tokens decoded one at a time) is never reused: that flips
  greedy tokens on the demo model by the third turn ("Mona Lisa" becomes "Monalisa"). `settle()`
  re-evaluates the reply in prompt batches after it ends (the runtime's manager calls it while the
  model is idle, and stops it when a request comes), which is what a fresh context computes for
  those tokens when the next turn's prompt contains them; a reply not settled yet is re-evaluated
  inside the next turn's prompt batch instead;
- at least the last two prompt tokens are always evaluated, and no prompt batch holds a single
  token (`prompt_batches`), with or without the cache.
`reuse_prefixes = False` evaluates every prompt whole: the reference the tests compare against.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from engines.base import (
    MAX_TOP_LOGPROBS, ContextTooLong, Engine, EngineError, Piece, Prepared, SamplingParams,
    StopScanner, messages_with_tools, omp_env, package_version,
)
from engines.gpu import GpuUnavailable, require_gpu
from engines.llamacpp_sampling import LogitShaper, TokenTexts, json_schema_grammar, logprob_entry
from engines.prefix_cache import common_prefix

SETTLE_BATCH = 64  # tokens per batch when settle() re-evaluates a reply (it stops between batches)


def prompt_batches(tokens: list[int], n_batch: int) -> list[list[int]]:
    """`tokens` in batches of at most n_batch, none of one token unless that is all there is
    (llama.cpp computes a one-token batch differently from a longer one, see above)."""
    batches = [tokens[i:i + n_batch] for i in range(0, len(tokens), n_batch)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [batches[-2][:-1], batches[-2][-1:] + batches[-1]]
    return batches


class LlamaCppEngine(Engine):
    name = "llama.cpp"
    can_embed = True

    def load(self) -> None:
        ggufs = [f for f in self.files if f.name.endswith(".gguf")]
        if len(ggufs) != 1:
            raise EngineError(f"a GGUF variant needs exactly one .gguf file, found {len(ggufs)}",
                              code="model_load_failed")
        if not ggufs[0].is_file():
            raise EngineError(f"model file {ggufs[0].name} is missing", code="model_load_failed")
        self._path = ggufs[0]
        self._llm = self._open()
        self._embedder = None
        self._live: tuple[int, ...] = ()  # the tokens whose KV the context holds, batch-evaluated
        self._reply: list[int] = []  # the latest reply's tokens, for settle()
        self._texts = TokenTexts(self._llm._model)
        self._formatter = self._chat_formatter()
        self.vocab = self._llm.n_vocab()
        with_bos = self._llm.tokenize(b"a", add_bos=True, special=False)
        plain = self._llm.tokenize(b"a", add_bos=False, special=False)
        self.bos_id = with_bos[0] if len(with_bos) > len(plain) else None
        bos, eos = self._llm.token_bos(), self._llm.token_eos()
        self.special_ids = (bos if bos >= 0 else None), (eos if eos >= 0 else None)
        self.info = {"engine": "llama.cpp", "class": self.class_path(),
                     "llama-cpp-python": package_version("llama-cpp-python"),
                     "threads": self.threads, "device": self._placed, "file": self._path.name,
                     "omp_env": omp_env()}
        if self._gpu_placement is not None:  # what went on the GPU, and why
            self.info["gpu_placement"] = self._gpu_placement
        self.tokenizer_info = {"tokenizer": "llama.cpp (GGUF vocab)", "vocab": self.vocab,
                               "adds_bos": self.bos_id is not None}

    @staticmethod
    def _device() -> str:
        import llama_cpp

        return "gpu" if llama_cpp.llama_supports_gpu_offload() else "cpu"

    def _gpu_options(self) -> dict:
        """llama.cpp's placement options for the engine's device. On a cuda node, after checking
        this llama.cpp was built with GPU offload and the GPU is there (a CUDA build that finds no
        device quietly keeps every layer in RAM): the caller's placement (the planner's fit:
        n_gpu_layers, and tensor_split / flash_attn where it sets them), or every layer (-1)
        when it passed none. No layer on "cpu"; without a device, every layer when llama.cpp was
        built with a GPU (a CPU build keeps them in RAM)."""
        import llama_cpp

        self._gpu_placement = None
        if self.device == "cpu":
            self._placed = "cpu"
            return {"n_gpu_layers": 0}
        if self.device == "cuda":
            if not llama_cpp.llama_supports_gpu_offload():
                raise EngineError(
                    f"node {self.node} declares WORKER_DEVICE=cuda but llama-cpp-python "
                    f"{package_version('llama-cpp-python')} here is built without GPU offload "
                    "(rebuild it with CMAKE_ARGS=-DGGML_CUDA=on)", code="gpu_unavailable", status=503)
            try:
                require_gpu(node=self.node)
            except GpuUnavailable as exc:
                raise EngineError(str(exc), code="gpu_unavailable", status=503) from exc
            self._placed = "cuda"
            if self.placement is None:
                self._gpu_placement = {"n_gpu_layers": -1, "layers_on_gpu": "all",
                                       "why": "every layer on the GPU (-1): the caller planned no placement"}
                return {"n_gpu_layers": -1}
            self._gpu_placement = self.placement["info"]
            return dict(self.placement["options"])
        self._placed = self._device()
        return {"n_gpu_layers": -1}

    def _open(self, **options):
        """llama-cpp-python's Llama on the variant's file: the context and threads asked for,
        the layers on the device asked for (_gpu_options), its other defaults kept (KV f16,
        n_batch = n_ubatch = 512)."""
        from llama_cpp import Llama

        options = {"n_ctx": self.n_ctx, **self._gpu_options(), **options}
        try:
            return Llama(str(self._path), n_threads=self.threads, n_threads_batch=self.threads,
                         verbose=False, **options)
        except Exception as exc:  # llama.cpp reports a bad file as ValueError/RuntimeError
            raise EngineError(f"llama.cpp could not load {self._path.name}: {exc}",
                              code="model_load_failed") from exc

    def _chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        model = self._llm._model
        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        return Jinja2ChatFormatter(
            template,
            eos_token=model.token_get_text(eos) if eos >= 0 else "",
            bos_token=model.token_get_text(bos) if bos >= 0 else "",
        )

    def set_threads(self, threads: int) -> None:
        import llama_cpp

        for llm in (self._llm, self._embedder):
            if llm is not None:
                llama_cpp.llama_set_n_threads(llm.ctx, threads, threads)
        self.threads = threads

    def unload(self) -> None:
        self.prefix_cache.clear()
        self._live, self._reply = (), []
        for name in ("_llm", "_embedder"):
            llm = getattr(self, name, None)
            if llm is not None:
                llm.close()
                setattr(self, name, None)

    def memory_bytes(self) -> int:
        """Weights + KV cache, counted again for the embedding context once it is open (its
        weights may share pages with the first through mmap: over-counting is the safe side)."""
        import llama_cpp

        return self.prefix_cache.bytes() + sum(
            int(llama_cpp.llama_model_size(llm._model.model) + llama_cpp.llama_state_get_size(llm._ctx.ctx))
            for llm in (self._llm, self._embedder) if llm is not None)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def detokenize(self, tokens: list[int]) -> str:
        return self._llm.detokenize(list(tokens), special=False).decode("utf-8", errors="replace")

    def prepare(self, *, messages: list[dict] | None, prompt: str | None,
                params: SamplingParams, prompt_tokens: list[int] | None = None,
                tools: list[dict] | None = None) -> Prepared:
        self._check_params(params)
        stop = list(params.stop)
        if prompt_tokens is not None:
            tokens = self._checked_tokens(prompt_tokens, param="prompt")
        elif messages is not None:
            text, extra_stop = self._render(messages, tools)
            stop += extra_stop
            tokens = self._llm.tokenize(text.encode(), add_bos=False, special=True)
        else:
            tokens = self._llm.tokenize((prompt or "").encode(), add_bos=True, special=False)
        return Prepared(tokens=tokens, stop=tuple(dict.fromkeys(stop)), max_tokens=params.max_tokens)

    def _render(self, messages: list[dict], tools: list[dict] | None) -> tuple[str, list[str]]:
        """The chat prompt and the template's stop strings. A template that never mentions tools
        gets them (and any tool calls/results in the history) written into plain messages."""
        if self._formatter is None:
            raise EngineError("this GGUF has no chat template; use a plain completion",
                              code="no_chat_template", status=400, param="messages")
        has_tool_turns = any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)
        if "tools" not in self._formatter.template and (tools or has_tool_turns):
            messages, tools = messages_with_tools(messages, tools), None
        try:
            rendered = self._formatter(messages=messages, tools=tools or None)
        except Exception as exc:  # raise_exception() in the template, or a jinja2 error
            raise EngineError(f"the model's chat template refused these messages: {exc}",
                              code="invalid_messages", status=400, param="messages") from exc
        extra = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop]
        return rendered.prompt, [s for s in extra if s]

    def _check_params(self, params: SamplingParams) -> None:
        n_vocab = self._llm.n_vocab()
        if any(not 0 <= token < n_vocab for token, _ in params.logit_bias):
            raise EngineError(f"logit_bias: token ids must be in [0, {n_vocab})",
                              code="invalid_logit_bias", status=400, param="logit_bias")
        if params.logprobs is not None and not 0 <= params.logprobs <= MAX_TOP_LOGPROBS:
            raise EngineError(f"logprobs: at most {MAX_TOP_LOGPROBS} alternatives",
                              code="invalid_logprobs", status=400, param="logprobs")
        if params.json_schema is not None:
            json_schema_grammar(params.json_schema, self._llm._model.vocab)

    def _checked_tokens(self, tokens: list, *, param: str) -> list[int]:
        n_vocab = self._llm.n_vocab()
        if not all(type(t) is int and 0 <= t < n_vocab for t in tokens):
            raise EngineError(f"{param}: token ids must be integers in [0, {n_vocab})",
                              code="invalid_tokens", status=400, param=param)
        return list(tokens)

    def stream(self, *, prepared: Prepared, params: SamplingParams,
               cancelled: Callable[[], bool]) -> Iterator[Piece]:
        """One Piece per sampled token (EOS only when logprobs are asked: its text is ""), its
        logprob dict attached even while its text is held back (an incomplete UTF-8 character,
        a possible stop-string prefix); the token that completes a stop string is the last one. completion_tokens counts every
        sampled token, EOS and the stop-completing one included."""
        import llama_cpp
        from llama_cpp import LlamaGrammar, LogitsProcessorList

        llm = self._llm
        shaper = LogitShaper(params, n_prompt=len(prepared.tokens), window=llm.last_n_tokens_size)
        grammar = (LlamaGrammar.from_string(json_schema_grammar(params.json_schema, llm._model.vocab))
                   if params.json_schema is not None else None)
        llm.set_seed(params.seed if params.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED)
        keep = prepared.cached_tokens = self._reuse_prefix(prepared.tokens)
        self._reply = []
        *chunks, last = prompt_batches(prepared.tokens[keep:], llm.n_batch)
        for chunk in chunks:
            llm.eval(chunk)
        tokens = llm.generate(
            last, top_k=params.top_k, top_p=params.top_p, min_p=params.min_p,
            temp=params.temperature, repeat_penalty=1.0, frequency_penalty=0.0,
            presence_penalty=0.0, reset=False, grammar=grammar,
            logits_processor=LogitsProcessorList([shaper]) if shaper.needed else None,
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = StopScanner(prepared.stop)
        prepared.completion_tokens, prepared.finish_reason = 0, "length"
        try:
            while prepared.completion_tokens < prepared.max_tokens:
                if cancelled():
                    prepared.finish_reason = None
                    return
                token = next(tokens)
                if not prepared.completion_tokens:  # the whole prompt is in the KV cache now
                    self._live = tuple(prepared.tokens)
                self._reply.append(token)
                prepared.completion_tokens += 1
                logprobs = ([logprob_entry(shaper.row, token, params.logprobs, self._texts)]
                            if params.logprobs is not None else [])
                if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                    prepared.finish_reason = "stop"
                    if logprobs:  # like OpenAI's echo + logprobs: the end token is listed too
                        yield Piece("", logprobs)
                    break
                text = scanner.feed(decoder.decode(llm._model.detokenize([token], special=False)))
                yield Piece(text, logprobs)
                if scanner.stopped:
                    prepared.finish_reason = "stop"
                    return
            # A reply cut by max_tokens drops the bytes of a character its last token left
            # incomplete (that token still counts in usage); one the model ended itself keeps
            # them, shown as U+FFFD as its whole output would be.
            pending = decoder.decode(b"", final=True) if prepared.finish_reason == "stop" else ""
            tail = scanner.feed(pending) + scanner.flush()
            if tail:
                yield Piece(tail)
        finally:
            tokens.close()  # stops llama.cpp's loop; the next token is never decoded

    def settle_pending(self) -> bool:
        return self.reuse_prefixes and len(self._reply) >= 2 and bool(self._live)

    def settle(self, interrupted: Callable[[], bool] = lambda: False) -> int:
        """Re-evaluates the latest reply in prompt batches after the prompt it answered, so the
        next turn, which starts with that reply, finds it cached as a fresh prompt batch would have
        computed it; stops between batches once `interrupted()`. Returns the tokens evaluated."""
        llm, reply, live = self._llm, self._reply, self._live
        self._reply = []
        if not (self.reuse_prefixes and live and len(reply) >= 2 and self._holds(live)):
            return 0
        llm._ctx.kv_cache_seq_rm(-1, len(live), -1)  # the reply as generation decoded it
        llm.n_tokens = len(live)
        done = 0
        for batch in prompt_batches(reply, SETTLE_BATCH):
            if interrupted():
                break
            llm.eval(batch)
            done += len(batch)
            self._live = live + tuple(reply[:done])
        return done

    def _holds(self, live: tuple[int, ...]) -> bool:
        """Whether the context still holds `live` (a test or score() may have used it since)."""
        llm = self._llm
        return (llm.n_tokens >= len(live)
                and common_prefix(llm.input_ids[:len(live)].tolist(), live) == len(live))

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Leaves in the context the longest batch-evaluated prefix of `tokens` it can have (the
        live prompt's, or a saved one's), at most all but the last two tokens (sampling needs the
        last one's logits, and a batch of one token is not computed like a longer one); returns
        its length. The live prompt is saved first when it would be cut."""
        llm = self._llm
        live = self._live
        if not (self.reuse_prefixes and live and self._holds(live)):
            live = ()  # something else ran in this context (a test, score()): trust nothing
        shared = common_prefix(live, tokens)
        self._live = ()
        if self.reuse_prefixes and self.prefix_cache.max_bytes > 0:
            found = self.prefix_cache.take(tokens, longer_than=shared)
            if shared < len(live):
                self._save_live(live)
            if found is not None:
                saved, shared = found
                if shared < len(saved.tokens):  # another conversation's: it keeps its state
                    self.prefix_cache.put(saved.tokens, saved.state, saved.nbytes)
                shared = min(shared, len(self._restore(saved.tokens, saved.state)))
        keep = max(0, min(shared, len(tokens) - 2))
        if not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            keep = 0
            llm._ctx.kv_cache_clear()
        llm.n_tokens = keep
        self._live = tuple(tokens[:keep])
        return keep

    def _save_live(self, live: tuple[int, ...]) -> None:
        import ctypes

        import llama_cpp

        ctx = self._llm._ctx
        ctx.kv_cache_seq_rm(0, len(live), -1)  # the prompt only, not the reply decoded after it
        size = llama_cpp.llama_state_seq_get_size(ctx.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx.ctx, buffer, size, 0)
        if written:
            self.prefix_cache.put(live, bytes(buffer)[:written], written)

    def _restore(self, tokens: tuple[int, ...], state: bytes) -> tuple[int, ...]:
        import ctypes

        import llama_cpp

        llm = self._llm
        llm._ctx.kv_cache_clear()
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(state), 0) != len(state):
            llm._ctx.kv_cache_clear()
            llm.n_tokens = 0
            return ()
        llm.input_ids[:len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        return tokens

    def score(self, *, tokens: list[int], top: int) -> list[dict | None]:
        """Row i of the logits (from an empty cache) scores token i + 1."""
        tokens = self._checked_tokens(tokens, param="prompt")
        if len(tokens) > self.n_ctx:
            raise ContextTooLong(prompt_tokens=len(tokens), n_ctx=self.n_ctx)
        entries: list[dict | None] = [None]
        for start, rows in self._logit_batches(tokens[:-1]):
            for i, row in enumerate(rows):
                entries.append(logprob_entry(row.astype(np.float64), tokens[start + i + 1],
                                             top, self._texts))
        return entries[:len(tokens)]

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def logits(self, tokens: list[int]) -> np.ndarray:
        if len(tokens) > self.n_ctx:
            raise ContextTooLong(prompt_tokens=len(tokens), n_ctx=self.n_ctx)
        out = np.empty((len(tokens), self.vocab), dtype=np.float32)
        for start, rows in self._logit_batches(tokens):
            out[start:start + len(rows)] = rows
        return out

    def _logit_batches(self, tokens: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Decodes `tokens` from an empty cache in n_batch batches, asking llama.cpp for every
        position's logits (what a logits_all context does, for this call only); yields each
        batch's first position and its rows (a view valid until the next batch)."""
        import llama_cpp

        llm = self._llm
        self._live = ()
        llm.reset()
        try:
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            for start in range(0, len(tokens), llm.n_batch):
                batch = tokens[start:start + llm.n_batch]
                llm._batch.set_batch(batch=batch, n_past=start, logits_all=True)
                llm._ctx.decode(llm._batch)
                yield start, np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx),
                                                   shape=(len(batch), self.vocab))
        finally:
            llm.reset()

    @contextmanager
    def speed_runner(self, prompt: list[int], gen_tokens: int):
        """On a context of its own, sized for the prompt and the generated tokens and opened the
        way load() opens the served one (the served context may be shorter than the run): its
        prefill asks for the last row's logits only, as generation does."""
        llm = self._open(n_ctx=len(prompt) + gen_tokens + 8, n_batch=min(len(prompt), 512))

        def next_token() -> int:
            import llama_cpp

            row = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            return int(np.argmax(np.ctypeslib.as_array(row, shape=(self.vocab,))))

        def run() -> tuple[float, float]:
            llm.reset()  # the next eval drops the whole KV cache
            start = time.perf_counter()
            llm.eval(prompt)
            prefill = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(gen_tokens):
                llm.eval([next_token()])
            return prefill, time.perf_counter() - start

        try:
            yield run
        finally:
            llm.close()

    def embed(self, inputs: list[str] | list[list[int]]) -> tuple[list[list[float]], int]:
        """Mean-pooled, L2-normalized vectors; a string gets BOS like a prompt, a token list is
        taken as it is. Every input is checked before any is computed."""
        import llama_cpp

        batch = [self._llm.tokenize(item.encode(), add_bos=True, special=False)
                 if isinstance(item, str) else self._checked_tokens(item, param="input")
                 for item in inputs]
        for tokens in batch:
            if not tokens or len(tokens) > self.n_ctx:
                raise EngineError(f"input: each input must be 1 to {self.n_ctx} tokens (the "
                                  f"model's context window), one is {len(tokens)}",
                                  code="context_length_exceeded", status=400, param="input")
        if self._embedder is None:
            self._embedder = self._open(embedding=True, n_batch=self.n_ctx, n_ubatch=self.n_ctx,
                                        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        embedder, vectors = self._embedder, []
        for tokens in batch:
            embedder._ctx.kv_cache_clear()
            embedder._batch.reset()
            embedder._batch.add_sequence(tokens, 0, True)
            embedder._ctx.decode(embedder._batch)
            pooled = llama_cpp.llama_get_embeddings_seq(embedder.ctx, 0)
            vector = np.ctypeslib.as_array(pooled, shape=(embedder.n_embd(),)).astype(np.float64)
            vectors.append((vector / (np.linalg.norm(vector) or 1.0)).tolist())
        embedder._ctx.kv_cache_clear()
        return vectors, sum(len(tokens) for tokens in batch)
