"""HRM-Text (hrm_text, planner/estimator/hrm_text.py) pinned to transformers and llama.cpp.

Totals and per-layer counts: transformers 5.23 HrmTextForCausalLM built on the meta device from
HrmTextConfig() (1,447,822,848 parameters, 30,670,848 in each block of each stack), 2026-12-07. Tensor
list, file bytes and cache: the tiny model of `python bench/llama_cpp_ground_truth.py --only hrm_text
hrm_text-bias` (2026-12-07), converted by the vendored convert_hf_to_gguf.py (gguf.GGUFReader names,
shapes, types and byte sums), quantized with llama_model_quantize and loaded by llama-cpp-python 0.3.36
at n_ctx 4096, whose log said "n_layer = 16" and "llama_kv_cache: size = 64.00 MiB (4096 cells,
16 layers, 1/1 seqs), K (f16): 32.00 MiB, V (f16): 32.00 MiB" for 2 × 2 blocks of weights.
"""

import re

import pytest
import torch

from planner.estimator import Architecture, EstimatorError
from planner.estimator.gguf_quant import gguf_file_plan, gguf_file_tensor_bytes
from planner.estimator.memory import kv_cache_bytes
from planner.estimator.speed import matmul_params, weights_read_per_token
from planner.estimator.workload import Workload
from planner.model_definition import model_definition
from tests.planner.architecture_sweep import randomized_config

MiB = 2**20
# HrmTextConfig() as config.to_dict() spells it: num_hidden_layers is the cache-slot count its
# __post_init__ wrote (16 per stack × 2 H_cycles × (3 L_cycles + 1)), num_layers_per_stack the blocks
DEFAULT = {"model_type": "hrm_text", "vocab_size": 151808, "hidden_size": 1536, "intermediate_size": 4096,
           "num_hidden_layers": 128, "num_layers_per_stack": 16, "num_attention_heads": 12, "head_dim": 128,
           "H_cycles": 2, "L_cycles": 3, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
           "embedding_scale": 50.0, "max_position_embeddings": 2048}
# the bench's tiny instance (its saved config.json)
TINY = {**DEFAULT, "vocab_size": 49152, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 16,
        "num_layers_per_stack": 2, "num_attention_heads": 4, "head_dim": 64, "max_position_embeddings": 4096}


def test_default_total_and_blocks_equal_transformers():
    arch = Architecture.from_config(DEFAULT)
    assert arch.total_params == 1_447_822_848
    # 32 blocks of weights (L stack blk.0-15, H stack blk.16-31), 128 applications per token
    assert arch.n_layers == 128 and arch.kv_layers == 128
    assert arch.layer_params[:32] == [30_670_848] * 32 and set(arch.layer_params[32:]) == {0}
    names = {n: s for n, s, _ in arch.tensors()}
    assert names["hrm.z_l_init"] == (1536,) and "output_norm.weight" not in names   # no norm has a weight


def test_a_config_with_the_per_stack_count_only_reads_as_transformers_does():
    # a training-style config.json: num_hidden_layers is the per-stack count (HrmTextConfig.__post_init__)
    cfg = {k: v for k, v in DEFAULT.items() if k != "num_layers_per_stack"} | {"num_hidden_layers": 16}
    arch = Architecture.from_config(cfg)
    assert arch.total_params == 1_447_822_848 and arch.n_layers == 128


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomized_blocks_equal_transformers_per_stack_layer(seed):
    """Each block's count against transformers' own L_module / H_module layer (the sweep's per-layer
    check cannot pair them: both stacks number their layers from 0)."""
    cfg = randomized_config(dict(DEFAULT), seed) | {"num_layers_per_stack": 1 + seed, "H_cycles": seed,
                                                     "L_cycles": 4 - seed, "attention_bias": seed == 2,
                                                     "mlp_bias": seed == 3}
    definition = model_definition(cfg)
    arch = Architecture.from_config(definition.config)
    lps = 1 + seed
    per: dict[int, int] = {}
    for name, shape in definition.tensors:
        m = re.search(r"\b([LH])_module\.layers\.(\d+)\.", name)
        if m:
            block = int(m.group(2)) + (lps if m.group(1) == "H" else 0)
            per[block] = per.get(block, 0) + torch.Size(shape).numel()
    assert arch.total_params == definition.total_params
    assert sorted(per) == list(range(2 * lps)) and [arch.layer_params[i] for i in range(2 * lps)] == \
        [per[i] for i in range(2 * lps)]
    assert arch.n_layers == lps * seed * (4 - seed + 1)


def test_default_kv_is_one_cache_per_application():
    kv, _ = kv_cache_bytes(Architecture.from_config(DEFAULT), Workload(context=4096, runtime="transformers"))
    # 128 cache slots × K and V × 12 heads × 128 head_dim × 4,096 tokens × 2 B — worked by hand: 3 GiB
    assert kv == 3 * 2**30


def test_transformers_cache_measured_on_a_tiny_model():
    """The real HrmTextForCausalLM (random weights, fp16, CPU) after a 37-token forward with the cache on."""
    from transformers import HrmTextConfig, HrmTextForCausalLM

    torch.manual_seed(0)
    model = HrmTextForCausalLM(HrmTextConfig.from_dict(TINY)).to(torch.float16).eval()
    with torch.no_grad():
        cache = model(input_ids=torch.randint(0, 1000, (1, 37)), use_cache=True).past_key_values
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert len(cache.layers) == 16 and held == 606_208   # measured 2026-12-07
    kv, _ = kv_cache_bytes(Architecture.from_config(TINY), Workload(context=37, runtime="transformers"))
    assert kv == held


def test_tiny_file_bytes_and_kv_equal_llama_cpp():
    arch = Architecture.from_config(TINY)
    assert arch.gguf_unsupported == ""
    names = {n: s for n, s, _ in arch.gguf_tensors()}
    assert len(names) == 35 and names["blk.3.attn_gate.weight"] == (256, 256) and "blk.4.attn_q.weight" not in names
    assert gguf_file_tensor_bytes(arch, "F16") == 56_099_840
    assert gguf_file_tensor_bytes(arch, "Q4_K_M") == 19_124_224
    # llama-quantize counts the 16 slots (n_layer) for ffn_down, the 4 attn_v tensors for attn_v: measured types
    types = {n: t for n, t, _ in gguf_file_plan(arch, "Q4_K_M")}
    assert [types[f"blk.{i}.ffn_down.weight"] for i in range(4)] == ["Q6_K", "Q6_K", "Q4_K", "Q4_K"]
    assert [types[f"blk.{i}.attn_v.weight"] for i in range(4)] == ["Q4_K", "Q4_K", "Q6_K", "Q6_K"]
    assert types["hrm.z_l_init"] == "F32" and types["output.weight"] == "Q6_K"
    kv, _ = kv_cache_bytes(arch, Workload(context=4096, runtime="llama.cpp"))
    assert kv == 64 * MiB


def test_gguf_rows_refused_with_biases():
    # measured: the converted hrm_text-bias file holds 67 tensors, llama.cpp 0.3.36 creates 47
    # ("done_getting_tensors: wrong number of tensors; expected 67, got 47")
    for bias in ("attention_bias", "mlp_bias"):
        assert "wrong number of tensors" in Architecture.from_config({**TINY, bias: True}).gguf_unsupported


def test_a_cache_too_short_for_the_applications_is_noted():
    # transformers builds num_hidden_layers cache slots; a forward with the cache then raises IndexError at slot 5
    arch = Architecture.from_config({**TINY, "num_hidden_layers": 5})
    assert arch.n_layers == 16 and any("below the 16 cache slots" in n for n in arch.notes)


def test_speed_counts_each_application_of_a_block():
    # decode re-reads a block's weights, and prefill multiplies by them, at every application: the L stack's
    # 16 blocks of 30,670,848 run 2 × 3 times, the H stack's 2 times; the output matrix and z_L_init once
    # (the untied embedding is a lookup) — worked by hand from the model's forward
    arch = Architecture.from_config(DEFAULT)
    block = 30_670_848
    read, how = weights_read_per_token(arch, "F16", 0)
    assert read == (16 * block * 6 + 16 * block * 2 + 151808 * 1536) * 2 + 1536 * 4 and "× 6" in how   # z_L_init F32
    assert matmul_params(arch) == 16 * block * 6 + 16 * block * 2 + 1536


def test_bad_fields_are_refused_naming_them():
    with pytest.raises(EstimatorError, match="H_cycles"):
        Architecture.from_config({**DEFAULT, "H_cycles": 0})
    with pytest.raises(EstimatorError, match="L_cycles"):
        Architecture.from_config({**DEFAULT, "L_cycles": "3"})
    with pytest.raises(EstimatorError, match="num_layers_per_stack"):
        Architecture.from_config({**DEFAULT, "num_layers_per_stack": -1})
    with pytest.raises(EstimatorError, match="H_cycles"):
        Architecture.from_config({**DEFAULT, "H_cycles": 10_000})
    with pytest.raises(EstimatorError, match="num_attention_heads"):
        Architecture.from_config({**DEFAULT, "num_attention_heads": 7})
