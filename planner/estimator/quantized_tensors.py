"""Which tensors each non-GGUF quantization method quantizes, and which it leaves in 16 bit.

Tensors are named as llama.cpp names them (architecture.py); a role is the name without
`blk.N.`. The GGUF rules are llama-quantize's own (gguf_quant.py). For the other methods:

- Embeddings (`token_embd`), `output` (lm_head), norms, biases, attention sinks and every 1-D
  tensor stay in the 16-bit compute dtype for every method below: bitsandbytes skips the output
  embedding and tied weights (transformers 5.23 `quantizers/base.py` get_keys_to_not_convert);
  GPTQModel and AutoAWQ quantize only the decoder layers' module lists; llm-compressor's FP8 /
  NVFP4 recipes `ignore=["lm_head"]`; DeepSeek-V3's FP8 checkpoint keeps embed_tokens and lm_head
  in BF16 (README_WEIGHTS.md); gpt-oss's quantization_config lists `model.embed_tokens` and
  `lm_head` in modules_to_not_convert.
- The MoE router (`ffn_gate_inp`) is never quantized: transformers 5 builds it as a router
  module holding a Parameter, not an `nn.Linear`, so bitsandbytes (which replaces only
  `type(module) is nn.Linear`, integrations/bitsandbytes.py replace_with_bnb_linear) passes it
  by; GPTQModel 7.7's definitions mark it `gate:!` / `router:!` (qwen3_moe.py, mixtral.py,
  llama4.py, deepseek_v3.py, glm4_moe.py) and leave gpt-oss's `mlp.router` out of the tree;
  llm-compressor's MoE examples ignore `re:.*mlp.gate$`; DeepSeek-V3 and gpt-oss checkpoints
  keep it BF16.
- The shared-expert gate (`ffn_gate_inp_shexp`, Qwen2-MoE / Qwen3-Next, a 1×hidden linear):
  GPTQModel marks it `shared_expert_gate:!` (qwen2_moe.py, qwen3_next.py) and llm-compressor's
  Qwen-MoE example ignores `re:.*mlp.shared_expert_gate$`; bitsandbytes quantizes it (it is an
  `nn.Linear`).
- Routed experts (`*_exps`): GPTQ, AWQ, FP8, NVFP4 and MXFP4 quantize them (GPTQModel's
  `experts` subtrees, llm-compressor `targets="Linear"` after its MoE linearisation, gpt-oss's
  MXFP4 blocks). bitsandbytes does not: transformers 5 fuses each layer's experts into 3-D
  Parameters (`experts.gate_up_proj`, `experts.down_proj`, checked on the meta device for
  Mixtral, Qwen3-MoE, gpt-oss, DeepSeek-V3, Llama 4, GLM-4.5, Qwen3-Next, Granite 4), which
  replace_with_bnb_linear does not touch; they load in the compute dtype.
- MXFP4 follows gpt-oss's recipe (modules_to_not_convert: `model.layers.*.self_attn`,
  `model.layers.*.mlp.router`, embed_tokens, lm_head): on a MoE model only the routed experts
  are MXFP4. A dense model has no experts; there every decoder linear is MXFP4 (the OCP MX
  format as llm-compressor / AMD Quark apply it, lm_head ignored).
- Mamba / gated-DeltaNet layers: the in/out projections are linears every method quantizes;
  the depthwise `ssm_conv1d` is not (llama-quant.cpp `tensor_allows_quantization`; GPTQModel
  `conv1d:!`), nor is Qwen3-Next's `in_proj_ba` for GPTQ/AWQ (`in_proj_ba:!`, qwen3_next.py).
"""

from __future__ import annotations

from functools import lru_cache

from .architecture import Architecture, layer_index

METHODS = ("bnb", "gptq", "awq", "exl2", "fp8", "fp8-block", "mxfp4", "nvfp4")

ROUTER = "ffn_gate_inp.weight"
SHARED_GATE = "ffn_gate_inp_shexp.weight"
NEVER = ("_norm.weight", "ssm_conv1d", "shortconv.conv.weight")  # 2-D, never a linear
NOT_FOR_GPTQ = ("ssm_ba.weight",)                 # Qwen3-Next in_proj_ba (`in_proj_ba:!`)

def role(name: str) -> str:
    """`blk.3.ffn_up_exps.weight` -> `ffn_up_exps.weight`; non-layer tensors keep their name."""
    return name.split(".", 2)[2] if layer_index(name) is not None else name


def is_expert(name: str) -> bool:
    return "_exps." in name


def is_linear(name: str, shape: tuple[int, ...]) -> bool:
    """A decoder-layer weight matrix (2-D, or 3-D for stacked experts / MLA's split kv_b)."""
    return (len(shape) >= 2 and layer_index(name) is not None and name.endswith(".weight")
            and not any(k in name for k in NEVER))


def quantizes(method: str, arch: Architecture, name: str, shape: tuple[int, ...]) -> bool:
    """Whether `method` stores tensor `name` quantized (see the module docstring for sources)."""
    if not is_linear(name, shape) or name.endswith(ROUTER):
        return False
    if method == "bnb":
        return not is_expert(name)
    if name.endswith(SHARED_GATE):
        return False
    if method in ("gptq", "awq", "exl2") and name.endswith(NOT_FOR_GPTQ):
        return False
    if method == "mxfp4" and arch.is_moe:
        return is_expert(name)
    return True


@lru_cache(maxsize=256)
def quantized_matrices(arch: Architecture, method: str) -> tuple[tuple[str, int, int, int], ...]:
    """[(role, in_features, out_features, n_matrices)] of the tensors `method` quantizes, in the
    checkpoint's (Hugging Face) layout: MLA's attn_k_b + attn_v_b are one kv_b_proj of
    kv_lora_rank inputs and n_head × (qk_nope + v_head) outputs, so per-row and per-block
    scales count as they do in the safetensors."""
    out = []
    for name, shape, _ in arch.tensors():
        if not quantizes(method, arch, name, shape):
            continue
        r = role(name)
        if r == "attn_v_b.weight":
            continue  # folded into attn_k_b below
        if r == "attn_k_b.weight":
            nope, kvr, heads = shape
            out.append(("attn_kv_b.weight", kvr, heads * (nope + arch.v_head_dim), 1))
            continue
        out.append((r, shape[0], shape[1], shape[2] if len(shape) > 2 else 1))
    return tuple(out)


def quantized_params(arch: Architecture, method: str) -> int:
    return sum(i * o * n for _, i, o, n in quantized_matrices(arch, method))


@lru_cache(maxsize=256)
def kept_roles(arch: Architecture, method: str) -> tuple[str, ...]:
    """Decoder-layer weight roles the method keeps in 16 bit on this architecture (sorted, cached)."""
    kept = set()
    for name, shape, _ in arch.tensors():
        if len(shape) >= 2 and layer_index(name) is not None and name.endswith(".weight") \
                and not quantizes(method, arch, name, shape) and not any(k in name for k in NEVER):
            kept.add(role(name).removesuffix(".weight"))
    return tuple(sorted(kept))


_LABELS = {"ffn_gate_inp": "router", "ffn_gate_inp_shexp": "shared-expert gate", "ssm_ba": "DeltaNet beta/alpha"}


@lru_cache(maxsize=256)
def kept_labels(arch: Architecture, method: str) -> tuple[str, ...]:
    """kept_roles in words: attention, routed experts, router, shared-expert gate, ..."""
    labels: list[str] = []
    for r in kept_roles(arch, method):
        label = ("routed experts" if r.endswith("_exps") else "attention" if r.startswith("attn_")
                 else _LABELS.get(r, r))
        if label not in labels:
            labels.append(label)
    return tuple(labels)

