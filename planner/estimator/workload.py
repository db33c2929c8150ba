"""What the user wants to run: runtime, context, batch, KV cache type, training mode."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import EstimatorError

RUNTIMES = ("llama.cpp", "transformers", "vllm")
KV_DTYPES = ("f16", "q8_0", "q4_0", "fp8")
MODES = ("inference", "full", "lora", "qlora")
LORA_TARGET_NAMES = ("q", "k", "v", "o", "gate", "up", "down")

# bytes per KV element. llama.cpp: ggml type size / block (q8_0 34/32, q4_0 18/32).
# transformers/vLLM: fp8 = 1 byte; q8_0/q4_0 approximate the quantized cache (int8/int4 + scales).
KV_BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "fp8": 1.0}
# The longest context (and prompt) a workload may ask for; searches over contexts stop here even
# where a model's max_position_embeddings is larger (Llama 4 Scout: 10,485,760).
MAX_CONTEXT = 10_000_000


@dataclass(frozen=True)
class Workload:
    runtime: str = "llama.cpp"
    context: int = 4096
    batch: int = 1                  # parallel sequences (llama.cpp n_seq_max, vLLM/transformers batch)
    kv_dtype: str = "f16"
    mode: str = "inference"
    lora_rank: int = 16
    lora_targets: tuple[str, ...] = ("q", "k", "v", "o")
    group_size: int = 128           # GPTQ/AWQ group size
    exl2_bpw: float = 4.0
    flash_attn: bool = False
    n_ubatch: int = 512             # llama.cpp physical batch (llama-cpp-python default 512)
    swa_full: bool = True           # llama.cpp full-size SWA cache (llama-kv-cache-iswa.cpp); llama-cpp-python
                                    # 0.3.36 keeps llama_context_default_params().swa_full = True
    prompt_tokens: int | None = None  # for prefill time; None = the whole context
    gpu_memory_utilization: float = 0.9  # vLLM
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise EstimatorError("runtime", f"must be one of {', '.join(RUNTIMES)}")
        if self.kv_dtype not in KV_DTYPES:
            raise EstimatorError("kv_dtype", f"must be one of {', '.join(KV_DTYPES)}")
        if self.runtime == "llama.cpp" and self.kv_dtype == "fp8":
            raise EstimatorError("kv_dtype", "llama.cpp has no fp8 KV cache; use q8_0")
        if self.mode not in MODES:
            raise EstimatorError("mode", f"must be one of {', '.join(MODES)}")
        _check_int("context", self.context, 1, MAX_CONTEXT)
        _check_int("batch", self.batch, 1, 4096)
        _check_int("lora_rank", self.lora_rank, 1, 65536)
        _check_int("group_size", self.group_size, 16, 1_000_000)
        _check_int("n_ubatch", self.n_ubatch, 1, 1_000_000)
        if self.prompt_tokens is not None:
            _check_int("prompt_tokens", self.prompt_tokens, 1, MAX_CONTEXT)
        if not isinstance(self.flash_attn, bool):
            raise EstimatorError("flash_attn", "must be true or false")
        if not isinstance(self.swa_full, bool):
            raise EstimatorError("swa_full", "must be true or false")
        bpw = self.exl2_bpw
        if isinstance(bpw, bool) or not isinstance(bpw, (int, float)) or not 2.0 <= bpw <= 8.0:
            raise EstimatorError("exl2_bpw", "must be a number from 2.0 to 8.0")
        util = self.gpu_memory_utilization
        if isinstance(util, bool) or not isinstance(util, (int, float)) or not 0.05 <= util <= 1.0:
            raise EstimatorError("gpu_memory_utilization", "must be between 0.05 and 1.0")
        targets = self.lora_targets
        if isinstance(targets, str) or not isinstance(targets, (tuple, list)) or not targets:
            raise EstimatorError("lora_targets", f"must be a non-empty list of {', '.join(LORA_TARGET_NAMES)}")
        for t in targets:
            if t not in LORA_TARGET_NAMES:
                raise EstimatorError("lora_targets", f"unknown target {t!r}; use {', '.join(LORA_TARGET_NAMES)}")
        if isinstance(targets, list):
            object.__setattr__(self, "lora_targets", tuple(targets))

    @property
    def prompt(self) -> int:
        return min(self.prompt_tokens or self.context, self.context)

    @property
    def kv_bytes_per_element(self) -> float:
        return KV_BYTES_PER_ELEMENT[self.kv_dtype]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        d["notes"] = list(self.notes)
        return d


def context_limit(max_position: int) -> tuple[int, str]:
    """The longest context a search over a model's positions may try — its max_position_embeddings,
    or MAX_CONTEXT where the model allows more — and, in that case, a sentence saying so."""
    if max_position <= MAX_CONTEXT:
        return max_position, ""
    return MAX_CONTEXT, (f"the model's {max_position:,} positions are beyond the longest context a workload may "
                         f"ask for ({MAX_CONTEXT:,} tokens): contexts are searched up to {MAX_CONTEXT:,}")


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EstimatorError(name, f"must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise EstimatorError(name, f"must be between {lo:,} and {hi:,}, got {value:,}")
