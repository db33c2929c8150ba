"""Dense decoders whose block is not llama's (planner/estimator/dense.py): parameter counts, GGUF
tensors and llama.cpp's KV cache equal what the real tools produce.

Pinned numbers, measured outside the estimator:
- totals: transformers 5.23.0 building each config class's defaults on the meta device
  (planner.model_definition: parameters plus persistent buffers); the configs below give only the
  shape fields, so the other defaults are read the way the config class fills them in;
- tensors and KV: the tiny random-weight models of bench/dense_ground_truth.py (hidden 256, 4 layers,
  4 heads, 2 KV heads, MLP 512, the demo's 49,152-token vocabulary, untied) converted to F16 by
  llama-cpp-python 0.3.36's convert_hf_to_gguf.py (names and ggml shapes of block 0, read with
  gguf.GGUFReader) and loaded by llama-cpp-python at n_ctx 4096 ("llama_kv_cache: size = … MiB").
"""

import pytest

from planner.estimator import Architecture, EstimatorError, Workload
from planner.estimator.memory import kv_cache_bytes

MiB = 2**20


def _shape(model_type: str, hidden: int, layers: int, heads: int, inter: int, vocab: int, **more) -> dict:
    return {"model_type": model_type, "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "intermediate_size": inter, "vocab_size": vocab, **more}


# (config with the class's shape defaults, transformers 5.23.0 meta-device total of the class defaults)
DEFAULTS = {
    "olmo": (_shape("olmo", 4096, 32, 32, 11008, 50304), 6_888_095_744),
    "olmo2": (_shape("olmo2", 4096, 32, 32, 11008, 50304), 6_888_624_128),
    "olmo3": (_shape("olmo3", 4096, 32, 32, 11008, 50304), 6_888_624_128),
    "starcoder2": (_shape("starcoder2", 3072, 30, 24, 12288, 49152), 3_030_371_328),
    "gpt_neox": (_shape("gpt_neox", 6144, 44, 64, 24576, 50432), 20_554_567_680),
    "phi": (_shape("phi", 2048, 24, 32, 8192, 51200), 1_418_270_720),
    "stablelm": (_shape("stablelm", 2560, 32, 32, 6912, 50304), 2_795_443_200),
    "glm4": (_shape("glm4", 4096, 40, 32, 13696, 151552), 9_400_279_040),
    "glm": (_shape("glm", 4096, 40, 32, 13696, 151552), 9_399_951_360),
    "cohere": (_shape("cohere", 8192, 40, 64, 22528, 256000), 34_980_831_232),
    "cohere2": (_shape("cohere2", 8192, 40, 64, 22528, 256000), 34_980_831_232),
    "seed_oss": (_shape("seed_oss", 4096, 64, 80, 27648, 155136), 28_921_040_896),
    "arcee": (_shape("arcee", 2560, 32, 32, 18432, 32000, head_dim=80), 4_022_766_080),
    "apertus": (_shape("apertus", 4096, 32, 32, 14336, 131072), 6_979_596_416),
}


@pytest.mark.parametrize("model_type", sorted(DEFAULTS))
def test_default_config_total_equals_transformers(model_type):
    cfg, total = DEFAULTS[model_type]
    assert Architecture.from_config(cfg).total_params == total


def _tiny(model_type: str, **more) -> dict:
    return {**_shape(model_type, 256, 4, 4, 512, 49152, num_key_value_heads=2, tie_word_embeddings=False,
                     max_position_embeddings=4096), **more}


# block 0 of the converted tiny model: GGUF name (without "blk.0.") -> ggml shape
TINY_BLOCK_0 = {
    "olmo": (_tiny("olmo"), {
        "attn_k.weight": (256, 128), "attn_output.weight": (256, 256), "attn_q.weight": (256, 256),
        "attn_v.weight": (256, 128), "ffn_down.weight": (512, 256), "ffn_gate.weight": (256, 512),
        "ffn_up.weight": (256, 512)}),
    "olmo2": (_tiny("olmo2"), {
        "attn_k.weight": (256, 128), "attn_k_norm.weight": (128,), "attn_output.weight": (256, 256),
        "attn_q.weight": (256, 256), "attn_q_norm.weight": (256,), "attn_v.weight": (256, 128),
        "ffn_down.weight": (512, 256), "ffn_gate.weight": (256, 512), "ffn_up.weight": (256, 512),
        "post_attention_norm.weight": (256,), "post_ffw_norm.weight": (256,)}),
    "starcoder2": (_tiny("starcoder2"), {
        "attn_k.bias": (128,), "attn_k.weight": (256, 128), "attn_norm.bias": (256,), "attn_norm.weight": (256,),
        "attn_output.bias": (256,), "attn_output.weight": (256, 256), "attn_q.bias": (256,),
        "attn_q.weight": (256, 256), "attn_v.bias": (128,), "attn_v.weight": (256, 128), "ffn_down.bias": (256,),
        "ffn_down.weight": (512, 256), "ffn_norm.bias": (256,), "ffn_norm.weight": (256,), "ffn_up.bias": (512,),
        "ffn_up.weight": (256, 512)}),
    "phi": (_tiny("phi", num_key_value_heads=4, intermediate_size=1024), {
        "attn_k.bias": (256,), "attn_k.weight": (256, 256), "attn_norm.bias": (256,), "attn_norm.weight": (256,),
        "attn_output.bias": (256,), "attn_output.weight": (256, 256), "attn_q.bias": (256,),
        "attn_q.weight": (256, 256), "attn_v.bias": (256,), "attn_v.weight": (256, 256), "ffn_down.bias": (256,),
        "ffn_down.weight": (1024, 256), "ffn_up.bias": (1024,), "ffn_up.weight": (256, 1024)}),
    "stablelm": (_tiny("stablelm"), {
        "attn_k.weight": (256, 128), "attn_norm.bias": (256,), "attn_norm.weight": (256,),
        "attn_output.weight": (256, 256), "attn_q.weight": (256, 256), "attn_v.weight": (256, 128),
        "ffn_down.weight": (512, 256), "ffn_gate.weight": (256, 512), "ffn_norm.bias": (256,),
        "ffn_norm.weight": (256,), "ffn_up.weight": (256, 512)}),
    "stablelm-parallel": (_tiny("stablelm", use_parallel_residual=True), {   # one LayerNorm, no ffn_norm
        "attn_k.weight": (256, 128), "attn_norm.bias": (256,), "attn_norm.weight": (256,),
        "attn_output.weight": (256, 256), "attn_q.weight": (256, 256), "attn_v.weight": (256, 128),
        "ffn_down.weight": (512, 256), "ffn_gate.weight": (256, 512), "ffn_up.weight": (256, 512)}),
    "glm4": (_tiny("glm4"), {   # head_dim 128 (class default); fused gate_up_proj written as one ffn_up
        "attn_k.bias": (256,), "attn_k.weight": (256, 256), "attn_norm.weight": (256,),
        "attn_output.weight": (512, 256), "attn_q.bias": (512,), "attn_q.weight": (256, 512), "attn_v.bias": (256,),
        "attn_v.weight": (256, 256), "ffn_down.weight": (512, 256), "ffn_norm.weight": (256,),
        "ffn_up.weight": (256, 1024), "post_attention_norm.weight": (256,), "post_ffw_norm.weight": (256,)}),
    "seed_oss": (_tiny("seed_oss"), {
        "attn_k.bias": (256,), "attn_k.weight": (256, 256), "attn_norm.weight": (256,),
        "attn_output.weight": (512, 256), "attn_q.bias": (512,), "attn_q.weight": (256, 512), "attn_v.bias": (256,),
        "attn_v.weight": (256, 256), "ffn_down.weight": (512, 256), "ffn_gate.weight": (256, 512),
        "ffn_up.weight": (256, 512), "post_attention_norm.weight": (256,)}),
    "arcee": (_tiny("arcee"), {
        "attn_k.weight": (256, 128), "attn_norm.weight": (256,), "attn_output.weight": (256, 256),
        "attn_q.weight": (256, 256), "attn_v.weight": (256, 128), "ffn_down.weight": (512, 256),
        "ffn_norm.weight": (256,), "ffn_up.weight": (256, 512)}),
    "apertus": (_tiny("apertus"), {
        "attn_k.weight": (256, 128), "attn_k_norm.weight": (64,), "attn_norm.weight": (256,),
        "attn_output.weight": (256, 256), "attn_q.weight": (256, 256), "attn_q_norm.weight": (64,),
        "attn_v.weight": (256, 128), "ffn_down.weight": (512, 256), "ffn_norm.weight": (256,),
        "ffn_up.weight": (256, 512)}),
}
# the converted files' tensor count and transformers' total (parameters + persistent buffers)
TINY_FILE = {"olmo": (30, 27_525_120), "olmo2": (47, 27_528_960), "starcoder2": (68, 27_011_584),
             "phi": (61, 28_372_480), "stablelm": (48, 27_529_728), "stablelm-parallel": (40, 27_527_680),
             "glm4": (55, 28_320_000), "seed_oss": (51, 28_317_952),
             "arcee": (35, 27_003_136), "apertus": (44, 27_003_664)}


@pytest.mark.parametrize("name", sorted(TINY_BLOCK_0))
def test_tiny_model_block_0_equals_the_converted_gguf(name):
    cfg, block = TINY_BLOCK_0[name]
    arch = Architecture.from_config(cfg)
    mine = {n[len("blk.0."):]: shape for n, shape, _ in arch.tensors() if n.startswith("blk.0.")}
    assert mine == block
    assert (len(arch.tensors()), arch.total_params) == TINY_FILE[name]


def test_apertus_xielu_scalars_are_in_the_checkpoint_not_the_gguf():
    """transformers: alpha_p, alpha_n (parameters) and beta, eps (buffers) per layer; the converter
    writes them as metadata and adds rope_freqs (llama3 rope): 27,003,680 elements in the file."""
    arch = Architecture.from_config(_tiny("apertus"))
    assert sum(n for _, _, n in arch.tensors()) == 27_003_680
    assert arch.total_params == 27_003_664


# llama-cpp-python 0.3.36 at n_ctx 4096 (swa_full on, its default): "llama_kv_cache: size = … MiB"
LLAMA_CPP_KV_MIB = {
    "olmo2": (_tiny("olmo2"), 8.00),
    "olmo3": (_tiny("olmo3", sliding_window=512), 2.00 + 6.00),   # iSWA: 1 full layer + 3 SWA layers
    "starcoder2": (_tiny("starcoder2"), 8.00),
    "phi": (_tiny("phi", num_key_value_heads=4, intermediate_size=1024), 16.00),
    "seed_oss": (_tiny("seed_oss"), 16.00),   # head_dim 128 (the class default)
    "glm4": (_tiny("glm4"), 16.00),
    "gpt_neox": (_tiny("gpt_neox", num_key_value_heads=None), 16.00),   # no GQA: 4 KV heads of 64
    "cohere2": (_tiny("cohere2", tie_word_embeddings=True, sliding_window=512), 2.00 + 6.00),   # iSWA, 1 + 3 layers
    "apertus": (_tiny("apertus"), 8.00),
}


@pytest.mark.parametrize("name", sorted(LLAMA_CPP_KV_MIB))
def test_kv_cache_equals_llama_cpp(name):
    cfg, mib = LLAMA_CPP_KV_MIB[name]
    assert kv_cache_bytes(Architecture.from_config(cfg), Workload(context=4096))[0] == mib * MiB


def test_olmo3_sliding_layers_follow_layer_types():
    arch = Architecture.from_config(_tiny("olmo3", sliding_window=512))
    assert (arch.arch, arch.sliding_window, arch.swa_layers, arch.swa_in_llama_cpp) == ("olmo2", 512, (0, 1, 2), True)


@pytest.mark.parametrize("cfg,why", [
    (_tiny("phi", qk_layernorm=True), "QK-norm"),
    (_tiny("phi"), "head_count_kv"),
    (_tiny("cohere"), "ties the output"),
    (_tiny("olmo", attention_bias=True), "attention biases"),
    (_tiny("stablelm", qk_layernorm=True), "Unprocessed norms"),
    (_tiny("glm"), "hidden_size / heads"),   # head_dim 128 (class default) × 4 heads != 256
    (_tiny("seed_oss", mlp_bias=True), "MLP biases"),
    (_tiny("arcee", attention_bias=True), "biases"),
    (_tiny("cohere", tie_word_embeddings=True, use_qk_norm=True), "64-layer"),
    (_tiny("cohere2", tie_word_embeddings=True, attention_bias=True), "attention bias"),
])
def test_configs_llama_cpp_cannot_run_are_marked(cfg, why):
    assert why in Architecture.from_config(cfg).gguf_unsupported


@pytest.mark.parametrize("model_type", sorted(DEFAULTS))
def test_class_defaults_are_planned_for_llama_cpp_where_it_runs_them(model_type):
    cfg = DEFAULTS[model_type][0]
    assert Architecture.from_config(cfg).gguf_unsupported == ""


def test_gguf_metadata_of_a_dense_architecture_is_refused():
    with pytest.raises(EstimatorError, match="config.json only"):
        Architecture.from_gguf_metadata({"general.architecture": "olmo2", "olmo2.block_count": 2})
