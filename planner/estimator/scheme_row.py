"""SchemeRow: what estimate() says about one quantization scheme.

The one definition of a row: the page, the CLI, jobs and the API read these attributes, and the
API's JSON schema is generated from these fields (planner/schemas.py), so the documented output
can't drift from what the estimator returns. A field's `metadata["description"]` becomes its
description in the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _doc(text: str) -> Any:
    return field(metadata={"description": text})


@dataclass(frozen=True)
class SchemeRow:
    """One scheme's row: its bytes, fit, largest context, offload, speed, and the formula of each."""

    scheme: str = _doc("GPTQ/AWQ/EXL2 names follow group_size/exl2_bpw")
    family: str = _doc("float, fp4, bnb, gguf, gptq, awq or exl2")
    description: str = _doc("the scheme in words")
    bits_per_weight: float = _doc("weight bytes × 8 / parameters, over the whole model (16-bit tensors included)")
    bits_per_quantized_weight: float = _doc("the format's own bits per quantized weight (scales included)")
    weights_bytes: int = _doc("the weights as loaded")
    repack_bytes: int = _doc("llama.cpp's CPU_REPACK buffer (llama.cpp on a CPU only)")
    gguf_file_tensor_bytes: int | None = _doc("GGUF: the tensor data of the .gguf file; null for other formats")
    kv_cache_bytes: int = _doc("the KV cache alone (a hybrid's attention layers)")
    recurrent_state_bytes: int = _doc("a hybrid's recurrent state, all sequences (fixed, whatever the context); "
                                      "0 for other models")
    compute_bytes: int = _doc("the compute buffer")
    compute_resident_bytes: int = _doc("the compute bytes counted in the total (touched ones, on a CPU)")
    overhead_bytes: int = _doc("runtime/CUDA context and process overhead")
    training_bytes: int = _doc("fine-tuning: gradients, optimizer state, activations; 0 for inference")
    total_bytes: int = _doc("everything the estimate counts")
    rule_of_thumb_bytes: int = _doc("parameters × nominal bytes per parameter")
    rule_of_thumb_note: str = _doc("the rule of thumb beside the estimate, in words")
    capacity_bytes: int = _doc("the bytes the plan may fill (usable memory × margin)")
    fits: bool = _doc("total_bytes ≤ capacity_bytes")
    headroom_bytes: int = _doc("capacity_bytes − total_bytes (negative: it doesn't fit)")
    max_context: int = _doc("the largest context whose total fits")
    gpu_layers: int | None = _doc("llama.cpp: layers on the device (-ngl); null for other runtimes")
    n_layers: int | None = _doc("llama.cpp: the model's repeating layers; null for other runtimes")
    runs_with_offload: bool = _doc("fits, or llama.cpp runs it with layers offloaded to system RAM")
    kv_pool_bytes: int | None = _doc("vLLM: the KV blocks it preallocates; null for other runtimes")
    decode_tokens_per_s: float | None = _doc("decode speed, from a llama-bench figure measured on a node of ours or "
                                             "published for the card; null when there is none (decode_withheld)")
    decode_withheld: str = _doc("why decode_tokens_per_s is null; empty when it is shown")
    prefill_seconds: float | None = _doc("prefill time of the prompt, on the same footing; null when withheld "
                                         "(prefill_withheld)")
    prefill_withheld: str = _doc("why prefill_seconds is null; empty when it is shown")
    engines: list[str] = _doc("engines that load this format")
    high_precision_tensors: list[str] = _doc("tensors kept above the nominal precision")
    supported: bool = _doc("the workload's runtime (or training mode) can load this format")
    note: str = _doc("why not, when it isn't supported")
    applies: bool = _doc("the scheme changes something for this model (false: e.g. MXFP4_MOE on a dense model, "
                         "which has no expert tensors for it to quantize)")
    applies_note: str = _doc("why it does nothing for this model, when applies is false")
    formulas: dict[str, str] = _doc("key -> formula with numbers")

