"""Nemotron-H with MoE layers (nemotron_h with "E" / "moe" blocks, planner/estimator/nemotron_h_moe.py)
pinned to transformers and to llama.cpp.

Totals and per-layer counts: transformers 5.23 NemotronHForCausalLM built on the meta device
(parameters and persistent buffers: the router's e_score_correction_bias counts), 2026-12-07; the
class default's layers are also worked by hand in the comments. File bytes, KV cache and recurrent
state: `python bench/llama_cpp_ground_truth.py --only nemotron_h-moe nemotron_h-moe-latent
nemotron_h-moe-mlp` (2026-12-07, llama-cpp-python 0.3.36, n_ctx 4096, one sequence).
"""

import pytest

from planner.estimator import Architecture, EstimatorError
from planner.estimator.gguf_quant import gguf_file_tensor_bytes
from planner.estimator.memory import kv_cache_bytes, recurrent_bytes
from planner.estimator.workload import Workload
from planner.model_definition import undeclared_tensors

# NemotronHConfig() as config.to_dict() spells it: the fields the count reads (its layers_block_type
# is Mamba-2, MoE, attention, MLP)
DEFAULT = {"model_type": "nemotron_h", "vocab_size": 131072, "hidden_size": 4096, "intermediate_size": 21504,
           "layers_block_type": ["linear_attention", "moe", "full_attention", "mlp"], "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 128, "mamba_num_heads": 128, "mamba_head_dim": 64,
           "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4, "n_routed_experts": 8, "num_experts_per_tok": 2,
           "moe_intermediate_size": 7688, "moe_shared_expert_intermediate_size": 7688, "n_shared_experts": 1,
           "moe_latent_size": None, "tie_word_embeddings": False}
# Nemotron 3 Nano's block kinds at small widths: Mamba-2 / MoE / attention only
SMALL = {"model_type": "nemotron_h", "vocab_size": 3000, "hidden_size": 512, "num_attention_heads": 8,
         "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 1024,
         "layers_block_type": ["linear_attention", "moe", "full_attention", "moe", "linear_attention", "moe"],
         "mamba_num_heads": 16, "mamba_head_dim": 64, "ssm_state_size": 64, "n_groups": 4, "conv_kernel": 4,
         "n_routed_experts": 12, "num_experts_per_tok": 3, "moe_intermediate_size": 320,
         "moe_shared_expert_intermediate_size": 640}


def test_class_default_total_and_layers_equal_transformers():
    arch = Architecture.from_config(DEFAULT)
    assert arch.arch == "nemotron_h_moe"
    assert arch.total_params == 1_968_355_720
    # Mamba-2: in_proj 4096 × 18,560, conv 10,240 × 4 + bias, dt/A/D 3 × 128, norm 8,192, out 8,192 × 4096, block norm;
    # MoE: router 8 × 4096 + its 8 correction biases, 8 experts × 2 × 7,688 × 4096, shared 2 × 7,688 × 4096, block norm;
    # attention: q/o 4096², k/v 1,024 × 4096; MLP: 2 × 21,504 × 4096 (relu², no gate)
    assert arch.layer_params == [109_640_064, 566_857_736, 41_947_136, 176_164_864]
    # 6 of the 8 experts idle per token: 1,968,355,720 − 6/8 × 503,840,768
    assert arch.active_params == 1_590_475_144


def test_class_default_has_no_gguf_rows_and_says_why():
    # its MLP layer beside an MoE layer: the converted file does not load (bench variant nemotron_h-moe-mlp)
    reason = Architecture.from_config(DEFAULT).gguf_unsupported
    assert "'blk.3.ssm_in.weight' not found" in reason and "MLP" in reason


def test_hybrid_override_pattern_spells_the_same_layers():
    a = Architecture.from_config({**{k: v for k, v in DEFAULT.items() if k != "layers_block_type"},
                                  "hybrid_override_pattern": "ME*-"})
    assert a.total_params == 1_968_355_720


def test_small_moe_layout_equals_transformers():
    arch = Architecture.from_config(SMALL)
    assert arch.total_params == 21_215_876
    assert arch.layer_params == [1_852_464, 4_594_188, 655_872, 4_594_188, 1_852_464, 4_594_188]
    assert arch.gguf_unsupported == ""
    names = {n: s for n, s, _ in arch.tensors() if n.startswith("blk.1.")}
    assert names == {"blk.1.attn_norm.weight": (512,), "blk.1.ffn_gate_inp.weight": (512, 12),
                     "blk.1.exp_probs_b.bias": (12,), "blk.1.ffn_up_exps.weight": (512, 320, 12),
                     "blk.1.ffn_down_exps.weight": (320, 512, 12), "blk.1.ffn_up_shexp.weight": (512, 640),
                     "blk.1.ffn_down_shexp.weight": (640, 512)}


def test_latent_projection_shrinks_the_experts():
    arch = Architecture.from_config({**SMALL, "moe_latent_size": 192})
    assert arch.total_params == 14_432_900
    assert arch.layer_params[1] == 2_333_196   # experts at 192 wide + fc1/fc2_latent_proj 2 × 512 × 192
    names = {n: s for n, s, _ in arch.tensors() if n.startswith("blk.1.")}
    assert names["blk.1.ffn_up_exps.weight"] == (192, 320, 12)
    assert names["blk.1.ffn_latent_down.weight"] == (512, 192) and names["blk.1.ffn_latent_up.weight"] == (192, 512)


# the tiny models of the bench, their config.json as transformers saved them (the fields the count reads)
TINY = {"model_type": "nemotron_h", "vocab_size": 49152, "hidden_size": 256, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 512, "max_position_embeddings": 4096,
        "layers_block_type": ["linear_attention", "moe", "full_attention", "moe"], "mamba_num_heads": 8,
        "mamba_head_dim": 64, "ssm_state_size": 32, "n_groups": 2, "conv_kernel": 4, "n_routed_experts": 8,
        "num_experts_per_tok": 2, "moe_intermediate_size": 64, "moe_shared_expert_intermediate_size": 128,
        "n_group": 1, "tie_word_embeddings": False}


@pytest.mark.parametrize("latent, params, n_tensors, f16, q4_k_m", [
    (None, 26_454_952, 31, 52_928_160, 18_299_680),
    (128, 26_323_880, 35, 52_666_016, 18_209_568),
])
def test_tiny_model_equals_the_converted_files(latent, params, n_tensors, f16, q4_k_m):
    # transformers' count of the tiny model; gguf.GGUFReader on the converted F16 and the llama_model_quantize
    # Q4_K_M file: tensor count and the sum of tensor bytes
    arch = Architecture.from_config({**TINY, "moe_latent_size": latent})
    assert arch.total_params == params and len(arch.tensors()) == n_tensors
    assert gguf_file_tensor_bytes(arch, "F16") == f16
    assert gguf_file_tensor_bytes(arch, "Q4_K_M") == q4_k_m


def test_tiny_model_kv_cache_and_state_equal_llama_cpp():
    # llama.cpp's load log: "llama_kv_cache: size = 2.00 MiB" (the one attention layer) and
    # "llama_memory_recurrent: size = 0.07 MiB" (the one Mamba-2 layer: R 3 × 640 + S 32 × 512, F32)
    arch = Architecture.from_config(TINY)
    wl = Workload(runtime="llama.cpp", context=4096)
    assert kv_cache_bytes(arch, wl)[0] == 2 * 2 * 64 * 4096 * 2
    state = recurrent_bytes(arch, wl)[0]
    assert state == (3 * 640 + 32 * 512) * 4 and round(state / 2**20, 2) == 0.07


@pytest.mark.parametrize("field, value, message", [
    ("mlp_bias", True, "biases"),
    ("use_bias", True, "biases"),
    ("num_experts_per_tok", 13, "number of experts"),
    ("layers_block_type", ["linear_attention", "moe", "retention", "moe", "linear_attention", "moe"], "retention"),
])
def test_unmodelled_or_invalid_fields_are_refused_by_name(field, value, message):
    with pytest.raises(EstimatorError, match=message) as exc:
        Architecture.from_config({**SMALL, field: value})
    assert exc.value.field == field


@pytest.mark.parametrize("latent", [None, 192])
def test_gguf_tensor_names_are_the_ones_llama_cpp_declares_for_nemotron_h_moe(latent):
    # the sweep's own check skips the class default (no GGUF rows): this layout has them
    assert undeclared_tensors(Architecture.from_config({**SMALL, "moe_latent_size": latent})) == []


def test_the_converted_file_header_gives_the_same_plan():
    # the nemotron_h_moe keys of the bench's converted tiny F16 file (latent variant), as formats.gguf_header reads
    # them: feed_forward_length is the expert width on the MoE layers, 0 on the others
    p = "nemotron_h_moe."
    meta = {"general.architecture": "nemotron_h_moe", p + "block_count": 4, p + "context_length": 1048576,
            p + "embedding_length": 256, p + "feed_forward_length": [0, 64, 0, 64], p + "attention.head_count": 4,
            p + "attention.head_count_kv": [0, 0, 2, 0], p + "attention.key_length": 64, p + "expert_count": 8,
            p + "expert_used_count": 2, p + "vocab_size": 49152, p + "ssm.conv_kernel": 4, p + "ssm.state_size": 32,
            p + "ssm.group_count": 2, p + "ssm.inner_size": 512, p + "ssm.time_step_rank": 8,
            p + "expert_feed_forward_length": 64, p + "expert_shared_feed_forward_length": 128,
            p + "moe_latent_size": 128, "tensor_names": ["token_embd.weight", "output.weight"]}
    from_file = Architecture.from_gguf_metadata(meta)
    assert from_file.tensors() == Architecture.from_config({**TINY, "moe_latent_size": 128}).tensors()
    assert from_file.total_params == 26_323_880 and gguf_file_tensor_bytes(from_file, "Q4_K_M") == 18_209_568
