"""Fine-tuning memory: ZeRO's 16 bytes/param for mixed-precision Adam, LoRA params, activations."""

from planner.estimator import HARDWARE_PROFILES, Workload, estimate
from planner.estimator.memory import activation_bytes, lora_params
from planner.presets import preset_architecture

LLAMA2_7B = preset_architecture("llama-2-7b")
P = 6_738_415_616


def test_lora_params_match_peft_for_llama2_7b():
    # peft print_trainable_parameters for r=8 on q_proj,v_proj: "trainable params: 4,194,304"
    assert lora_params(LLAMA2_7B, 8, ("q", "v")) == 4_194_304
    assert lora_params(LLAMA2_7B, 16, ("q", "k", "v", "o")) == 16 * 8192 * 4 * 32


def test_korthikanti_activations():
    wl = Workload(runtime="transformers", mode="full", context=512)
    per_layer = 34 * 512 * 4096 + 5 * 32 * 512 * 512
    assert activation_bytes(LLAMA2_7B, wl)[0] == 32 * per_layer + 512 * 32000 * 8
    with_fa = activation_bytes(LLAMA2_7B, Workload(mode="full", context=512, flash_attn=True, runtime="transformers"))[0]
    assert with_fa == 32 * 34 * 512 * 4096 + 512 * 32000 * 8


def test_full_finetune_is_16_bytes_per_param_plus_activations():
    wl = Workload(runtime="transformers", mode="full", context=512)
    row = estimate(LLAMA2_7B, HARDWARE_PROFILES["h100-80gb"], wl, ["BF16", "FP32", "NF4"]).rows
    bf16, fp32, nf4 = row
    act = activation_bytes(LLAMA2_7B, wl)[0]
    assert bf16.weights_bytes + bf16.training_bytes == 16 * P + act
    assert fp32.weights_bytes + fp32.training_bytes == 16 * P + act  # 4 + 4 + 8, no master copy
    assert bf16.kv_cache_bytes == 0 and bf16.compute_bytes == 0
    assert bf16.supported and not nf4.supported
    assert bf16.fits is False  # 107.8 GB of state does not fit in 80 GiB


def test_qlora_uses_4bit_base_and_16_bytes_per_adapter_param():
    wl = Workload(runtime="transformers", mode="qlora", context=512, lora_rank=8, lora_targets=("q", "v"))
    rows = {r.scheme: r for r in estimate(LLAMA2_7B, HARDWARE_PROFILES["rtx-4090"], wl, ["NF4-DQ", "FP16"]).rows}
    act = activation_bytes(LLAMA2_7B, wl)[0]
    assert rows["NF4-DQ"].training_bytes == 4_194_304 * 16 + act
    assert rows["NF4-DQ"].supported and rows["NF4-DQ"].fits
    assert not rows["FP16"].supported


def test_inference_has_no_training_bytes():
    row = estimate(LLAMA2_7B, HARDWARE_PROFILES["rtx-4090"], Workload(), ["Q4_K_M"]).rows[0]
    assert row.training_bytes == 0


def test_lora_is_not_offered_on_microscaling_bases():
    """peft wraps nn.Linear (and bnb / GPTQ layers); FP8 block, MXFP4 and NVFP4 checkpoints are
    dequantized to BF16 for training, so the planner refuses them as LoRA bases."""
    wl = Workload(runtime="transformers", mode="lora", context=512, lora_rank=8, lora_targets=("q", "v"))
    rows = {r.scheme: r for r in estimate(LLAMA2_7B, HARDWARE_PROFILES["h100-80gb"], wl,
                                             ["BF16", "FP8-128x128", "MXFP4", "NVFP4"]).rows}
    assert rows["BF16"].supported
    for name in ("FP8-128x128", "MXFP4", "NVFP4"):
        assert not rows[name].supported and "train on BF16" in rows[name].note, name
