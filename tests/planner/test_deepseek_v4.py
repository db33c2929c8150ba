"""DeepSeek-V4 (deepseek_v4, planner/estimator/deepseek_v4.py) pinned to transformers and llama.cpp.

Parameter counts: transformers 5.23 DeepseekV4ForCausalLM built on the meta device (parameters and the
persistent routing buffers e_score_correction_bias and tid2eid), 2026-12-07. transformers' cache: the real
tiny model run on the CPU here. llama.cpp: a tiny model (TINY) saved by transformers, put in the published
layout (bench/llama_cpp_ground_truth.py _deepseek_v4_published_layout), converted by the convert_hf_to_gguf.py
of llama-cpp-python 0.3.36 and loaded by it at n_gpu_layers 0, 2026-12-07: the numbers are its log's.
"""

import pytest

from planner.estimator import HARDWARE_PROFILES, Architecture, EstimatorError, estimate
from planner.estimator.memory import kv_cache_bytes, recurrent_bytes
from planner.estimator.workload import Workload

CSA, HCA, SLIDING = "compressed_sparse_attention", "heavily_compressed_attention", "sliding_attention"
# DeepseekV4Config() as config.to_dict() spells the fields the count reads (layer_types left to the default)
DEFAULT = {"model_type": "deepseek_v4", "vocab_size": 129280, "hidden_size": 4096, "moe_intermediate_size": 2048,
           "num_hidden_layers": 43, "num_attention_heads": 64, "num_key_value_heads": 1, "head_dim": 512,
           "q_lora_rank": 1024, "num_experts_per_tok": 6, "n_routed_experts": 256, "n_shared_experts": 1,
           "compress_rates": {CSA: 4, HCA: 128}, "hc_mult": 4, "sliding_window": 128, "o_groups": 8,
           "o_lora_rank": 1024, "index_n_heads": 64, "index_head_dim": 128, "tie_word_embeddings": False,
           "mlp_layer_types": ["hash_moe"] * 3 + ["moe"] * 40, "partial_rotary_factor": 0.125}
# the tiny model converted and loaded by llama.cpp (the demo tokenizer's 49,152 tokens)
TINY = {**DEFAULT, "vocab_size": 49152, "hidden_size": 256, "moe_intermediate_size": 64, "num_hidden_layers": 4,
        "num_attention_heads": 4, "q_lora_rank": 96, "num_experts_per_tok": 2, "n_routed_experts": 8,
        "o_groups": 2, "o_lora_rank": 64, "index_n_heads": 4, "layer_types": [HCA, HCA, CSA, CSA],
        "mlp_layer_types": ["hash_moe"] * 3 + ["moe"]}


def test_default_total_and_layers_equal_transformers():
    arch = Architecture.from_config(DEFAULT)
    assert arch.total_params == 284_328_206_295
    # layers 0-2 HCA with hash routing, 3 CSA (compressor of two series + lightning indexer), 4 HCA;
    # layer 0 - layer 4 = the tid2eid table (129,280 × 6) less the router bias (256) = 775,424
    assert arch.layer_params[:5] == [6_581_452_406] * 3 + [6_595_558_902, 6_580_676_982]


def test_published_spelling_reads_as_transformers_does():
    # config.json as DeepSeek publishes it: per-layer compress_ratios (one more than the layers: transformers
    # keeps the first num_hidden_layers), num_hash_layers, a scalar CSA rate, qk_rope_head_dim
    cfg = {"model_type": "deepseek_v4", "num_hidden_layers": 4, "hidden_size": 256, "vocab_size": 1000,
           "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 64, "head_dim": 64,
           "num_attention_heads": 4, "q_lora_rank": 96, "o_lora_rank": 32, "index_n_heads": 4, "index_head_dim": 32,
           "compress_ratios": [0, 4, 128, 4, 0], "num_hash_layers": 2, "compress_rate_csa": 8, "qk_rope_head_dim": 16}
    arch = Architecture.from_config(cfg)
    assert arch.total_params == 3_322_141
    assert arch.deepseek_v4.layer_types == (SLIDING, CSA, HCA, CSA)
    assert arch.deepseek_v4.hash_layers == (0, 1) and arch.deepseek_v4.csa_rate == 8


@pytest.mark.parametrize("change, field", [
    ({"layer_types": [CSA, HCA]}, "layer_types"),
    ({"layer_types": None, "compress_ratios": [4, 4, 3, 128]}, "compress_ratios"),
    ({"mlp_layer_types": ["moe", "dense", "moe", "moe"]}, "mlp_layer_types"),
    ({"o_groups": 3}, "o_groups"),
    ({"num_experts_per_tok": 9}, "num_experts_per_tok"),
])
def test_bad_layouts_are_refused_naming_the_field(change, field):
    with pytest.raises(EstimatorError) as err:
        Architecture.from_config({**TINY, **change})
    assert err.value.field == field


def _real_transformers_cache_bytes(cfg: dict, batch: int, prefill: int, steps: int) -> int:
    """Bytes of every tensor the real DeepseekV4 cache holds after prefill + steps decoded tokens."""
    import torch
    import transformers

    fields = {k: v for k, v in cfg.items() if k != "model_type"}
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(transformers.DeepseekV4Config(**fields))
    model = model.to(torch.bfloat16).eval()
    with torch.no_grad():
        cache = model(input_ids=torch.randint(0, cfg["vocab_size"], (batch, prefill)), use_cache=True).past_key_values
        for _ in range(steps):
            cache = model(input_ids=torch.randint(0, cfg["vocab_size"], (batch, 1)), past_key_values=cache,
                          use_cache=True).past_key_values
    seen, total = set(), 0
    for layer in cache.layers:
        tensors = [layer.keys, layer.values]
        for part in ("buffer_kv", "buffer_gate", "compressed_kv", "overlap_kv", "overlap_gate"):
            tensors += list(getattr(layer, part, {}).values())
        for t in tensors:
            if t is not None and id(t) not in seen:   # K is V on the compressed layers: one tensor
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total


# every layer kind, rates that leave partial windows buffered, a window shorter than the context
SMALL = {"model_type": "deepseek_v4", "num_hidden_layers": 4, "hidden_size": 128, "vocab_size": 500,
         "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "head_dim": 64,
         "num_attention_heads": 4, "q_lora_rank": 48, "o_groups": 2, "o_lora_rank": 32, "index_n_heads": 2,
         "index_head_dim": 32, "sliding_window": 16, "index_topk": 4, "hc_mult": 2,
         "compress_rates": {CSA: 4, HCA: 8}, "layer_types": [SLIDING, HCA, CSA, CSA]}


@pytest.mark.parametrize("prefill, steps, measured", [(37, 0, 38_912), (30, 7, 38_912), (3, 0, 14_592)])
def test_transformers_cache_is_what_the_real_model_keeps(prefill, steps, measured):
    arch = Architecture.from_config(SMALL)
    kv, _ = kv_cache_bytes(arch, Workload(runtime="transformers", context=prefill + steps, batch=2))
    assert kv == measured == _real_transformers_cache_bytes(SMALL, 2, prefill, steps)
    assert recurrent_bytes(arch, Workload(runtime="transformers", context=37, batch=2))[0] == 0


def test_llama_cpp_caches_and_compressor_state_as_logged():
    arch = Architecture.from_config(TINY)
    # n_ctx 4096, swa_full: K (f16) 16.00 (raw, 4 layers × 4096 cells) + 2.00 (CSA, 1024 cells) + 0.50 (HCA,
    # "size = 32 cells" held in 256) + 0.50 MiB (indexer, 1024 cells) = 19 MiB
    assert kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=4096))[0] == 19 * 2**20
    # n_ctx 1000 without swa_full: 3.00 (768 window cells) + 0.50 + 0.50 + 0.12 MiB (0.125)
    assert kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=1000, swa_full=False))[0] == 4_325_376
    # llama_dsv4_comp_state: csa "8 x 1024" 0.12 MiB, hca "128 x 512" 1.00 MiB, lid "8 x 256" 0.03 MiB
    assert recurrent_bytes(arch, Workload(runtime="llama.cpp", context=4096))[0] == 1_212_416


@pytest.mark.parametrize("change, workload, field", [
    ({}, {"runtime": "llama.cpp", "batch": 2}, "batch"),
    ({}, {"runtime": "vllm"}, "runtime"),
    ({"head_dim": 64}, {"runtime": "llama.cpp"}, "runtime"),          # failed a graph assert at load
    ({"o_groups": 8}, {"runtime": "llama.cpp"}, "runtime"),           # GGML_ASSERT(n_head % n_groups == 0)
    ({"compress_rates": {CSA: 8, HCA: 128}}, {"runtime": "llama.cpp"}, "runtime"),   # loader: 0, 4, 128 only
])
def test_caches_not_measured_are_refused(change, workload, field):
    arch = Architecture.from_config({**TINY, **change})
    with pytest.raises(EstimatorError) as err:
        kv_cache_bytes(arch, Workload(context=4096, **workload))
    assert err.value.field == field


def test_gguf_tensors_are_the_converted_files_and_rows_are_refused():
    arch = Architecture.from_config(TINY)
    tensors = {name: shape for name, shape, _ in arch.tensors()}
    # the converted tiny file: 130 tensors; these shapes as gguf.GGUFReader reports them
    assert len(tensors) == 130 and arch.total_params == 31_587_445
    assert tensors["blk.0.ffn_gate_tid2eid.weight"] == (2, 49152)
    assert tensors["blk.0.attn_output_a.weight"] == (1024, 128)
    assert tensors["blk.1.attn_compressor_ape.weight"] == (512, 128)
    assert tensors["blk.2.indexer_compressor_ape.weight"] == (256, 4)
    assert tensors["blk.3.hc_ffn_fn.weight"] == (1024, 24) and tensors["output_hc_fn.weight"] == (1024, 4)
    assert tensors["blk.3.ffn_gate_exps.weight"] == (256, 64, 8)
    # the file holds the experts as MXFP4 and the matrices as BF16 (file type MXFP4_MOE) whatever is asked,
    # and llama_model_quantize refuses it: "requantizing from type mxfp4 is disabled"
    assert "MXFP4" in arch.gguf_unsupported and "requantizing from type mxfp4" in arch.gguf_unsupported
    result = estimate(arch, HARDWARE_PROFILES["cpu-2core-24gb"], Workload(runtime="llama.cpp", context=4096),
                      schemes=["F16", "Q4_K_M"])
    assert result.rows and all(not row.supported and "MXFP4" in row.note for row in result.rows)
