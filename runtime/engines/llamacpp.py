"""GGUF variants through llama-cpp-python (CPU build).

The chat template is the model's own, read from the GGUF metadata key `tokenizer.chat_template`
and rendered with llama-cpp-python's Jinja2ChatFormatter (the same path `create_chat_completion`
takes when no chat_format is given). We tokenize the rendered prompt ourselves so the prompt
length is known exactly before generation, then stream `create_completion` over those tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from runtime.engines.base import Engine, EngineError, Prepared, SamplingParams


class LlamaCppEngine(Engine):
    name = "llama.cpp"

    def load(self) -> None:
        ggufs = [f for f in self.files if f.name.endswith(".gguf")]
        if len(ggufs) != 1:
            raise EngineError(f"a GGUF variant needs exactly one .gguf file, found {len(ggufs)}",
                              code="model_load_failed")
        if not ggufs[0].is_file():
            raise EngineError(f"model file {ggufs[0].name} is missing", code="model_load_failed")
        from llama_cpp import Llama

        try:
            self._llm = Llama(str(ggufs[0]), n_ctx=self.n_ctx, n_threads=self.threads,
                              n_threads_batch=self.threads, verbose=False)
        except Exception as exc:  # llama.cpp reports a bad file as ValueError/RuntimeError
            raise EngineError(f"llama.cpp could not load {ggufs[0].name}: {exc}",
                              code="model_load_failed") from exc
        self._formatter = self._chat_formatter()

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

    def unload(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None

    def memory_bytes(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_model_size(self._llm._model.model)
                   + llama_cpp.llama_state_get_size(self._llm._ctx.ctx))

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def prepare(self, *, messages: list[dict] | None, prompt: str | None,
                params: SamplingParams) -> Prepared:
        stop = list(params.stop)
        if messages is not None:
            if self._formatter is None:
                raise EngineError("this GGUF has no chat template; use a plain completion",
                                  code="no_chat_template", status=400)
            rendered = self._formatter(messages=messages)
            text, special, add_bos = rendered.prompt, True, False
            extra = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop]
            stop += [s for s in extra if s]
        else:
            text, special, add_bos = prompt or "", False, True
        tokens = self._llm.tokenize(text.encode(), add_bos=add_bos, special=special)
        return Prepared(tokens=tokens, stop=tuple(dict.fromkeys(stop)), max_tokens=params.max_tokens)

    def stream(self, *, prepared: Prepared, params: SamplingParams,
               cancelled: Callable[[], bool]) -> Iterator[str]:
        # Evaluate the whole prompt every time instead of reusing the cached prefix: a prompt
        # evaluated in one batch and one evaluated token by token give slightly different logits,
        # and the same seed at temperature 0 must give the same reply (side-by-side, benchmarks).
        self._llm.reset()
        chunks = self._llm.create_completion(
            prepared.tokens, max_tokens=prepared.max_tokens, temperature=params.temperature,
            top_p=params.top_p, top_k=params.top_k, min_p=params.min_p,
            repeat_penalty=params.repeat_penalty, seed=params.seed, stop=list(prepared.stop),
            stream=True,
        )
        try:
            for chunk in chunks:
                if cancelled():
                    return
                text = chunk["choices"][0]["text"]
                if text:
                    yield text
        finally:
            chunks.close()  # stops llama.cpp's loop; the next token is never decoded
