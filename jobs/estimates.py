"""What a job will need, from the planner's estimator: peak memory (for routing) and output bytes
(for the free-disk check). Used by the methods' estimate() in the web process."""

from planner.estimator import HARDWARE_PROFILES, Architecture, EstimatorError, Workload, estimate

from jobs.methods.base import JobError

GiB = 1024**3
# llama_model_quantize reads one tensor at a time from an mmapped file and keeps it in F32 plus
# its quantized copy (src/llama-quant.cpp, llama_model_quantize_impl: read_data, f32_conv_buf,
# new_data): twice the largest tensor in F32 and a fixed margin for the process itself.
QUANTIZE_BASE_BYTES = GiB // 2


def architecture_of(variant) -> Architecture:
    try:
        return Architecture.from_config(variant.model.config)
    except EstimatorError as exc:
        raise JobError.field("input", f"the model's config can't be planned: {exc}") from exc


def weights_bytes(arch: Architecture, schemes: list[str]) -> dict[str, int]:
    est = estimate(arch, HARDWARE_PROFILES["cpu-2core-24gb"], Workload(runtime="llama.cpp",
                                                                       context=512), schemes)
    return {row["scheme"]: int(row["weights_bytes"]) for row in est.rows}


def gguf_job_estimate(*, params: dict, variant) -> dict:
    arch = architecture_of(variant)
    types = list(params["types"])
    if variant.format == "hf":
        types = list(dict.fromkeys([params["intermediate"], *types]))
    sizes = weights_bytes(arch, types)
    largest = max(n for _, _, n in arch.tensors())
    peak = QUANTIZE_BASE_BYTES + 2 * 4 * largest
    if variant.format == "hf":
        # convert_hf_to_gguf.py loads tensors lazily but holds one shard's F32 copies at most.
        peak = max(peak, QUANTIZE_BASE_BYTES + 4 * arch.total_params // 4)
    return {"peak_memory_bytes": int(peak), "output_bytes": int(sum(sizes.values())),
            "output_bytes_by_type": sizes}
