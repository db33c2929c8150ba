"""HF safetensors, bitsandbytes and GPTQ/AWQ variants through transformers.

`generate` runs in a thread and feeds a TextIteratorStreamer; a StoppingCriteria checks the cancel
flag before each new token. Remote code is never trusted: a model whose architecture needs it
fails to load with a clear message. Quantized formats load through the quantization_config saved
in the variant's config.json (bitsandbytes, GPTQ and AWQ all write one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from runtime.engines.base import Engine, EngineError, Prepared, SamplingParams


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
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            torch.set_num_threads(self.threads)
            self._tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
            self._model = AutoModelForCausalLM.from_pretrained(
                directory, trust_remote_code=False, dtype="auto",
                device_map="auto" if torch.cuda.is_available() else None,
            )
            self._model.eval()
        except Exception as exc:
            raise EngineError(f"transformers could not load the variant: {exc}",
                              code="model_load_failed") from exc

    def unload(self) -> None:
        self._model = self._tokenizer = None
        import gc

        gc.collect()

    def memory_bytes(self) -> int:
        return int(self._model.get_memory_footprint()) if self._model is not None else 0

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def prepare(self, *, messages: list[dict] | None, prompt: str | None,
                params: SamplingParams) -> Prepared:
        if messages is not None:
            if not self._tokenizer.chat_template:
                raise EngineError("this model's tokenizer has no chat template; use a plain "
                                  "completion", code="no_chat_template", status=400)
            ids = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                      tokenize=True, return_dict=False)
            tokens = list(ids["input_ids"] if isinstance(ids, dict) else ids)
        else:
            tokens = self._tokenizer(prompt or "")["input_ids"]
        return Prepared(tokens=list(tokens), stop=params.stop, max_tokens=params.max_tokens)

    def stream(self, *, prepared: Prepared, params: SamplingParams,
               cancelled: Callable[[], bool]) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return cancelled()

        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True,
                                        skip_special_tokens=True, timeout=600)
        input_ids = torch.tensor([prepared.tokens], device=self._model.device)
        sampling = params.temperature > 0
        kwargs = dict(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
            max_new_tokens=prepared.max_tokens, do_sample=sampling,
            repetition_penalty=params.repeat_penalty, streamer=streamer,
            stopping_criteria=StoppingCriteriaList([Cancelled()]),
            stop_strings=list(prepared.stop) or None, tokenizer=self._tokenizer,
        )
        if sampling:
            kwargs.update(temperature=params.temperature, top_p=params.top_p,
                          top_k=params.top_k, min_p=params.min_p or None)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**kwargs)
            except BaseException as exc:  # reported to the caller below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        for text in streamer:
            if text:
                yield text
        thread.join()
        if errors:
            raise EngineError(f"generation failed: {errors[0]}")
