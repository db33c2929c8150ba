"""The two ways an evaluation runs a variant, behind one small interface (child process only):

- `tokenize(text) -> ids` (plain text: special-token names in it are not parsed) and `bos_id`
  (None when the tokenizer adds no BOS),
- `logits(ids) -> float32 array [len(ids), vocab]` for one chunk from an empty cache,
- `speed_runner(prompt_ids, gen_tokens)`: a context manager yielding the single-run primitive of
  the speed measurement, `run() -> (prefill_seconds, decode_seconds)`: one prefill of the prompt
  from an empty cache, then gen_tokens greedy single-token steps, all in one context loaded once
  (evaluate_speed.py repeats it to stable medians),
- `info` (engine, versions, threads, device) stored with every number.

llama.cpp's CPU threads synchronise through OpenMP barriers that spin (libgomp's default): with
other work on the node, a spinning thread holds the core the thread it waits for needs, and decode
on the 2-core node fell from ~148 to 1-9 tokens/s with 2 threads (1 thread kept ~40).
OMP_WAIT_POLICY=PASSIVE avoids the collapse but costs a quiet node most of its decode speed
(148 -> 32 tokens/s measured), so it is not set; `info["omp_env"]` records any OMP_/GOMP_
variables the process was started with.

GGUF runs through llama-cpp-python; HF safetensors, bitsandbytes and GPTQ folders through
transformers (GPTQ loaded by GPTQModel, as jobs/methods/gptq.py saves it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

HF_FORMATS = ("hf", "bnb-nf4", "bnb-int8", "gptq")


def _omp_env() -> dict:
    """OpenMP settings from the environment (llama.cpp's CPU threads wait per OMP_WAIT_POLICY /
    GOMP_SPINCOUNT); {} is libgomp's default (spin, then sleep)."""
    return {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


class LlamaCppEngine:
    """llama.cpp's own tokenizer and logits (Llama(logits_all=True) keeps every position's)."""

    def __init__(self, gguf: Path, *, context: int, threads: int):
        from llama_cpp import Llama

        self.path, self.threads, self.context = gguf, threads, context
        batch = min(context, 512)
        self.llm = Llama(model_path=str(gguf), n_ctx=context, n_batch=batch, n_ubatch=batch,
                         logits_all=True, n_threads=threads, n_threads_batch=threads,
                         n_gpu_layers=-1, verbose=False)
        self.vocab = self.llm.n_vocab()
        adds_bos = self.llm.tokenize(b"a", add_bos=True, special=False)
        plain = self.llm.tokenize(b"a", add_bos=False, special=False)
        self.bos_id = adds_bos[0] if len(adds_bos) > len(plain) else None
        self.info = {"engine": "llama.cpp", "llama-cpp-python": _version("llama-cpp-python"),
                     "threads": threads, "device": "cpu", "file": gguf.name,
                     "omp_env": _omp_env()}
        self.tokenizer_info = {"tokenizer": "llama.cpp (GGUF vocab)", "vocab": self.vocab,
                               "adds_bos": self.bos_id is not None}

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[:len(ids)], dtype=np.float32)

    @contextmanager
    def speed_runner(self, prompt: list[int], gen_tokens: int) -> Iterator[Callable[[], tuple[float, float]]]:
        """A context of its own (without logits_all, so prefill computes only the last row's
        logits) sized for the prompt and the generated tokens, kept for every run."""
        from llama_cpp import Llama

        llm = Llama(model_path=str(self.path), n_ctx=len(prompt) + gen_tokens + 8,
                    n_batch=min(len(prompt), 512), n_threads=self.threads,
                    n_threads_batch=self.threads, n_gpu_layers=-1, verbose=False)

        def run() -> tuple[float, float]:
            llm.reset()  # the next eval drops the whole KV cache
            start = time.perf_counter()
            llm.eval(prompt)
            prefill = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(gen_tokens):
                llm.eval([self._last_argmax(llm)])
            return prefill, time.perf_counter() - start

        try:
            yield run
        finally:
            llm.close()

    @staticmethod
    def _last_argmax(llm) -> int:
        """Greedy next token from the last evaluated position (without logits_all, llama-cpp-python
        keeps no scores: read llama_get_logits_ith(ctx, -1) directly)."""
        import llama_cpp

        row = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(row, shape=(llm.n_vocab(),))))

    def peak_device_bytes(self) -> int | None:
        return None


class TransformersEngine:
    """transformers forward passes (float32 on CPU for float checkpoints: CPU fp16 matmuls are
    slow and upcasting is exact; bitsandbytes/GPTQ keep the compute dtype they were saved with)."""

    def __init__(self, folder: Path, fmt: str, *, threads: int):
        import torch
        from transformers import AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        if fmt == "gptq":
            from gptqmodel import GPTQModel

            self.model = GPTQModel.load(str(folder), device=self.device).model
            loader = {"gptqmodel": _version("gptqmodel")}
        else:
            from transformers import AutoModelForCausalLM

            dtype = {"dtype": torch.float32} if fmt == "hf" and self.device == "cpu" else {}
            self.model = AutoModelForCausalLM.from_pretrained(
                str(folder), device_map=self.device, trust_remote_code=False, **dtype)
            loader = {"bitsandbytes": _version("bitsandbytes")} if fmt.startswith("bnb") else {}
        self.model.eval()
        self.vocab = int(self.model.config.vocab_size)
        with_special = self.tokenizer("a")["input_ids"]
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        self.bos_id = bos if len(with_special) > len(plain) and with_special[0] == bos else None
        self.info = {"engine": "transformers", "transformers": _version("transformers"),
                     "torch": torch.__version__.split("+")[0], **loader, "threads": threads,
                     "device": self.device, "dtype": str(next(self.model.parameters()).dtype)}
        if self.device == "cuda":
            self.info["gpu"] = torch.cuda.get_device_name()
        self.tokenizer_info = {"tokenizer": f"transformers {type(self.tokenizer).__name__}",
                               "vocab": self.vocab, "adds_bos": self.bos_id is not None}

    def tokenize(self, text: str) -> list[int]:
        """The text as plain text, like LlamaCppEngine.tokenize (special=False): a "<|im_end|>"
        written in the dataset is its characters' tokens, not the control token."""
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def logits(self, ids: list[int]) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.model(input_ids=self.torch.tensor([ids], device=self.device), use_cache=False)
        return out.logits[0].float().cpu().numpy()

    @contextmanager
    def speed_runner(self, prompt: list[int], gen_tokens: int) -> Iterator[Callable[[], tuple[float, float]]]:
        torch = self.torch
        sync = torch.cuda.synchronize if self.device == "cuda" else (lambda: None)
        prompt_ids = torch.tensor([prompt], device=self.device)

        def run() -> tuple[float, float]:
            with torch.inference_mode():
                sync()
                start = time.perf_counter()
                out = self.model(input_ids=prompt_ids, use_cache=True)
                sync()
                prefill = time.perf_counter() - start
                past, token = out.past_key_values, int(out.logits[0, -1].argmax())
                start = time.perf_counter()
                for _ in range(gen_tokens):
                    out = self.model(input_ids=torch.tensor([[token]], device=self.device),
                                     past_key_values=past, use_cache=True)
                    past, token = out.past_key_values, int(out.logits[0, -1].argmax())
                sync()
                return prefill, time.perf_counter() - start

        yield run

    def peak_device_bytes(self) -> int | None:
        if self.device != "cuda":
            return None
        return int(self.torch.cuda.max_memory_allocated())


def open_engine(fmt: str, folder: Path, files: list[str], *, context: int, threads: int):
    """The engine for a variant's format; `files` are its absolute file paths."""
    if fmt == "gguf":
        ggufs = [Path(f) for f in files if f.endswith(".gguf")]
        if len(ggufs) != 1:
            raise RuntimeError(f"expected one .gguf file, found {len(ggufs)}")
        return LlamaCppEngine(ggufs[0], context=context, threads=threads)
    if fmt in HF_FORMATS:
        return TransformersEngine(folder, fmt, threads=threads)
    raise RuntimeError(f"no evaluation engine for format {fmt!r}")
