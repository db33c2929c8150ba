"""What a job will need, from the planner's estimator: peak memory (for routing) and output bytes
(for the free-disk check). Used by the methods' estimate() in the web process."""

from planner.estimator import HARDWARE_PROFILES, Architecture, EstimatorError, Workload, estimate
from planner.estimator.gguf_quant import GGUF_FTYPES
from planner.model_definition import architecture_for_config

from jobs.methods.base import JobError

GiB = 1024**3
# llama_model_quantize reads one tensor at a time from an mmapped file and keeps it in F32 plus
# its quantized copy (src/llama-quant.cpp, llama_model_quantize_impl: read_data, f32_conv_buf,
# new_data): twice the largest tensor in F32 and a fixed margin for the process itself.
QUANTIZE_BASE_BYTES = GiB // 2


def architecture_of(variant) -> Architecture:
    try:
        return architecture_for_config(variant.model.config)
    except EstimatorError as exc:
        raise JobError.field("input", f"the model's config can't be planned: {exc}") from exc


def weights_bytes(arch: Architecture, schemes: list[str]) -> dict[str, int]:
    est = estimate(arch, HARDWARE_PROFILES["cpu-2core-24gb"], Workload(runtime="llama.cpp",
                                                                       context=512), schemes)
    return {row.scheme: int(row.weights_bytes) for row in est.rows}


def _gguf_output_bytes(arch: Architecture, params: dict, types: list[str]) -> dict[str, int]:
    """Bytes per file type from the planner; types it doesn't model (IQ1_S, Q2_K_S, TQ1_0 ...)
    and any job with per-tensor overrides get an upper bound for the free-disk check: the Q8_0
    size (no llama.cpp fallback or override below 8 bits exceeds it), F16 where an override is
    16-bit, twice that for F32."""
    overrides = [t.split("=")[1] for t in params.get("tensor_types", [])]
    overrides += [params[k] for k in ("output_tensor_type", "token_embedding_type") if params.get(k)]
    known = {t for t in types if t in GGUF_FTYPES or t in ("F16", "BF16")}
    sizes = weights_bytes(arch, sorted(known | {"Q8_0", "F16"}))
    bound = sizes["F16"] * (2 if "f32" in overrides else 1) if (
        {"f32", "f16", "bf16"} & set(overrides)) else sizes["Q8_0"]
    out = {}
    for t in types:
        if t == "F32":
            out[t] = 2 * sizes["F16"]
        elif t in known and not overrides:
            out[t] = sizes[t]
        else:
            out[t] = max(bound, sizes.get(t, 0))
    return out


def refuse_unconvertible(arch: Architecture, variant) -> None:
    """An HF input goes through llama.cpp's converter first: where the planner knows (measured) that
    this converter or llama.cpp can't make a loadable GGUF of the model, the job is refused at
    submit rather than failing after the conversion, or leaving a file nothing loads."""
    if variant.format == "hf" and arch.gguf_unsupported:
        raise JobError.field("input", f"no GGUF can be made of this model here: {arch.gguf_unsupported}")
    if variant.format == "hf" and arch.arch == "nemotron_h":
        # The planner's rows stand for such GGUF files made elsewhere; this converter can't make one.
        raise JobError.field("input", "no GGUF can be made of this model here: the converter reads config.json "
                             "through transformers 5.23, which gives every Nemotron-H num_experts_per_tok, so a "
                             "dense Nemotron-H is written as nemotron_h_moe without its MLP layers and llama.cpp "
                             "does not load it (measured: \"tensor 'blk.1.ssm_in.weight' not found\")")


def gguf_job_estimate(*, params: dict, variant) -> dict:
    arch = architecture_of(variant)
    refuse_unconvertible(arch, variant)
    types = list(params["types"])
    if variant.format == "hf":
        types = list(dict.fromkeys([params["intermediate"], *types]))
    sizes = _gguf_output_bytes(arch, params, types)
    largest = max(n for _, _, n in arch.tensors())
    peak = QUANTIZE_BASE_BYTES + 2 * 4 * largest
    if variant.format == "hf":
        # convert_hf_to_gguf.py loads tensors lazily but holds one shard's F32 copies at most.
        peak = max(peak, QUANTIZE_BASE_BYTES + 4 * arch.total_params // 4)
    output = sum(sizes.values())
    if params.get("imatrix_dataset_path"):
        made = imatrix_job_estimate(params={"context": params["imatrix_context"]}, variant=variant)
        peak = max(peak, made["peak_memory_bytes"])
        output += made["output_bytes"]
    return {"peak_memory_bytes": int(peak), "output_bytes": int(output),
            "output_bytes_by_type": sizes}


def imatrix_job_estimate(*, params: dict, variant) -> dict:
    """llama-imatrix holds the model (F16 for an HF input; the GGUF as it is otherwise) and a
    llama.cpp context of at least its 2048-token batch (tools/imatrix/imatrix.cpp main: n_ctx is
    raised to n_batch and split over n_seq parallel chunks); the planner's llama.cpp memory for
    that scheme and context. The matrix itself: per weight matrix, an F32 sum of squared
    activations per input column and a count (save_imatrix), a few hundred KiB to a few MiB."""
    arch = architecture_of(variant)
    refuse_unconvertible(arch, variant)
    scheme = "F16"
    if variant.format == "gguf" and variant.quant_type.upper() in GGUF_FTYPES:
        scheme = variant.quant_type.upper()
    context = max(int(params.get("context", 512)), 2048)
    est = estimate(arch, HARDWARE_PROFILES["cpu-2core-24gb"],
                   Workload(runtime="llama.cpp", context=context), [scheme])
    peak = int(est.rows[0].total_bytes)
    if variant.format == "hf":  # the conversion runs first, in the same child
        peak = max(peak, QUANTIZE_BASE_BYTES + 4 * arch.total_params // 4)
    columns = sum(shape[0] for name, shape, _ in arch.tensors()
                  if len(shape) >= 2 and name.endswith(".weight") and name != "token_embd.weight")
    return {"peak_memory_bytes": peak, "output_bytes": 8 * columns + 64 * 1024}
