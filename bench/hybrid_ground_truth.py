"""Ground truth for the planner's hybrid / recurrent models (Qwen3-Next, Jamba, Falcon-H1,
Nemotron-H, Granite 4, LFM2): tiny random-weight models run through the real tools.

    python bench/hybrid_ground_truth.py [--workdir DIR] [--only NAME ...] [--dims]

For each tiny config: transformers builds it (parameter count), convert_hf_to_gguf.py (vendored
with llama-cpp-python) writes an F16 GGUF, llama_model_quantize makes a Q4_K_M from it, and
llama-cpp-python loads each at n_ctx 4096 in a subprocess (verbose log: "model buffer size",
"llama_kv_cache: size = … K (f16) …, V (f16) …", "llama_memory_recurrent: size = … R (f32) …,
S (f32) …"). Printed beside the estimator's numbers with ok/FAIL against the targets: parameters
and tensor names/shapes exact, GGUF tensor bytes within 0.1 %, buffers within 1 %.

What the real files need and transformers 5.x does not write: config.json is rewritten with the
field spellings of the published files (Granite 4 layer_types "mamba"/"attention"; Nemotron-H
hybrid_override_pattern without MoE keys). The vocabulary is the demo model's (SmolLM2, a GPT-2
BPE), which JambaModel.set_vocab does not accept, so Jamba is converted with set_vocab swapped
for the GPT-2 reader (the tokenizer changes no tensor). Nemotron-H is converted from its raw
config.json: the converter reads hparams through transformers' AutoConfig, and transformers 5.x
turns hybrid_override_pattern into a layers_block_type list and adds num_experts_per_tok, which
sends a dense Nemotron-H down the converter's MoE path (nemotron_h_moe, its MLP layers dropped:
"tensor 'blk.1.ssm_in.weight' not found" on load). Qwen3-Next is converted with --no-mtp: a
tiny transformers model has no mtp.* tensors (the real checkpoint has one MTP layer, which the
converter would keep; bench/mtp_ground_truth.py checks that case), so the estimator reads its config
with mtp_num_hidden_layers 0. Takes a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.moe_mla_ground_truth import CONVERTER, MiB, N_CTX, save_tiny  # noqa: E402
from planner.estimator import Architecture, Workload  # noqa: E402
from planner.estimator.gguf_quant import gguf_weights_bytes  # noqa: E402
from planner.estimator.memory import attention_kv_bytes, recurrent_bytes  # noqa: E402

Q4_K_M = 15  # llama_ftype LLAMA_FTYPE_MOSTLY_Q4_K_M

_MAMBA2 = dict(mamba_n_heads=8, mamba_d_head=64, mamba_d_state=32, mamba_d_conv=4, mamba_expand=2)
TINY = {
    "qwen3-next": ("Qwen3NextConfig", "Qwen3NextForCausalLM", dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
        intermediate_size=512, linear_conv_kernel_dim=4, linear_key_head_dim=32, linear_value_head_dim=32,
        linear_num_key_heads=2, linear_num_value_heads=4, num_experts=8, num_experts_per_tok=2,
        moe_intermediate_size=64, shared_expert_intermediate_size=64, full_attention_interval=4)),
    "jamba": ("JambaConfig", "JambaForCausalLM", dict(
        hidden_size=256, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2, intermediate_size=512,
        num_experts=4, num_experts_per_tok=2, expert_layer_period=2, expert_layer_offset=1, attn_layer_period=4,
        attn_layer_offset=2, mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_dt_rank=16)),
    "falcon-h1": ("FalconH1Config", "FalconH1ForCausalLM", dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
        intermediate_size=512, mamba_d_ssm=512, mamba_n_groups=1, **_MAMBA2)),
    "nemotron-h": ("NemotronHConfig", "NemotronHForCausalLM", dict(
        hidden_size=256, num_hidden_layers=6, layers_block_type=["mamba", "mlp", "mamba", "attention", "mlp", "mamba"],
        num_attention_heads=4, num_key_value_heads=2, head_dim=64, intermediate_size=512, ssm_state_size=32,
        mamba_num_heads=8, mamba_head_dim=64, n_groups=2, conv_kernel=4, expand=2)),
    "granite-4": ("GraniteMoeHybridConfig", "GraniteMoeHybridForCausalLM", dict(
        hidden_size=256, num_hidden_layers=4, layer_types=["mamba", "mamba", "attention", "mamba"],
        num_attention_heads=4, num_key_value_heads=2, intermediate_size=512, num_local_experts=4,
        num_experts_per_tok=2, shared_intermediate_size=256, mamba_n_groups=1, **_MAMBA2)),
    "lfm2": ("Lfm2Config", "Lfm2ForCausalLM", dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, intermediate_size=768,
        conv_L_cache=3, layer_types=["conv", "full_attention", "conv", "full_attention"])),
}
# The recurrent and attention widths of real models (tests/planner/hybrid_configs.py) in 2-4 layers
# with a tiny FFN and tied embeddings: llama.cpp's R/S/KV lines for the real state sizes (--dims).
_FFN = dict(intermediate_size=256, tie_word_embeddings=True)
DIMS = {
    "qwen3-next-80b-dims": ("qwen3-next", dict(
        hidden_size=2048, num_hidden_layers=4, num_attention_heads=16, num_key_value_heads=2, head_dim=256,
        linear_conv_kernel_dim=4, linear_key_head_dim=128, linear_value_head_dim=128, linear_num_key_heads=16,
        linear_num_value_heads=32, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64,
        shared_expert_intermediate_size=64, full_attention_interval=4, **_FFN)),
    "jamba-v0.1-dims": ("jamba", dict(
        hidden_size=4096, num_hidden_layers=2, num_attention_heads=32, num_key_value_heads=8, num_experts=4,
        num_experts_per_tok=2, expert_layer_period=2, expert_layer_offset=1, attn_layer_period=2, attn_layer_offset=1,
        mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_dt_rank=256, **_FFN)),
    "falcon-h1-7b-dims": ("falcon-h1", dict(
        hidden_size=3072, num_hidden_layers=2, num_attention_heads=12, num_key_value_heads=2, head_dim=128,
        mamba_d_ssm=3072, mamba_n_heads=24, mamba_d_head=128, mamba_n_groups=1, mamba_d_state=256, mamba_d_conv=4,
        **_FFN)),
    "nemotron-h-8b-dims": ("nemotron-h", dict(
        hidden_size=4096, num_hidden_layers=3, layers_block_type=["mamba", "attention", "mlp"], num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, ssm_state_size=128, mamba_num_heads=128, mamba_head_dim=64, n_groups=8,
        conv_kernel=4, expand=2, **_FFN)),
    "granite-4-h-tiny-dims": ("granite-4", dict(
        hidden_size=1536, num_hidden_layers=2, layer_types=["mamba", "attention"], num_attention_heads=12,
        num_key_value_heads=4, num_local_experts=4, num_experts_per_tok=2, shared_intermediate_size=256,
        mamba_n_heads=48, mamba_d_head=64, mamba_d_state=128, mamba_n_groups=1, mamba_d_conv=4, mamba_expand=2,
        **_FFN)),
    "lfm2-1.2b-dims": ("lfm2", dict(
        hidden_size=2048, num_hidden_layers=2, num_attention_heads=32, num_key_value_heads=8, conv_L_cache=3,
        layer_types=["conv", "full_attention"], **dict(_FFN, intermediate_size=384))),
}
# config.json fields as the published files spell them (see the module docstring)
PUBLISHED_SPELLING = {
    "granite-4": lambda c: {**c, "layer_types": ["mamba" if t == "linear_attention" else "attention"
                                                 for t in c["layer_types"]]},
    "nemotron-h": lambda c: {**{k: v for k, v in c.items() if k not in (
        "layers_block_type", "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
        "moe_shared_expert_intermediate_size", "mtp_layers_block_type", "num_nextn_predict_layers", "n_group",
        "topk_group", "routed_scaling_factor", "norm_topk_prob", "moe_latent_size", "moe_shared_expert_overlap")},
        "num_hidden_layers": len(c["layers_block_type"]),
        "hybrid_override_pattern": "".join({"linear_attention": "M", "full_attention": "*", "mlp": "-"}[t]
                                           for t in c["layers_block_type"])},
}
CONVERT = """
import json, runpy, sys
sys.path.insert(0, sys.argv[1])
name, sys.argv = sys.argv[2], [sys.argv[1] + "/convert_hf_to_gguf.py"] + sys.argv[3:]
if name == "jamba":
    from conversion import jamba
    jamba.JambaModel.set_vocab = lambda self: self._set_vocab_gpt2()
if name == "nemotron-h":
    from conversion import base
    def raw_config(dir_model, is_mistral_format):
        return json.loads((dir_model / "config.json").read_text())
    base.ModelBase.load_hparams = staticmethod(raw_config)
runpy.run_path(sys.argv[0], run_name="__main__")
"""
# Loaded without llama.cpp's extra buffer types (use_extra_bufts=False): the CPU_REPACK copies of
# repacked weights are modelled elsewhere (estimate.py), so the model buffer here is the GGUF's tensors.
LOAD = """
import sys, llama_cpp
llama_cpp.llama_backend_init()
mp = llama_cpp.llama_model_default_params(); mp.n_gpu_layers = 0; mp.use_extra_bufts = False
model = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), mp)
cp = llama_cpp.llama_context_default_params()
cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = int(sys.argv[2]), 512, 512, int(sys.argv[3])
assert llama_cpp.llama_init_from_model(model, cp)
"""
QUANTIZE = """
import sys, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype, params.nthread = int(sys.argv[3]), 2
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), params))
"""


def build(name: str, work: Path, kind: str | None = None, fields: dict | None = None) -> tuple[Path, int]:
    config_class, architecture, tiny_fields = TINY[kind or name]
    folder = work / name
    model = save_tiny(config_class, architecture, tiny_fields if fields is None else fields, folder)
    if (kind or name) in PUBLISHED_SPELLING:
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(PUBLISHED_SPELLING[kind or name](cfg), indent=2))
    return folder, sum(p.numel() for p in model.parameters())  # a tied head counted once


def convert(name: str, folder: Path, out: Path) -> None:
    extra = ["--no-mtp"] if name.startswith("qwen3-next") else []
    done = subprocess.run([sys.executable, "-c", CONVERT, str(CONVERTER.parent), name, str(folder), "--outtype", "f16",
                           "--outfile", str(out), *extra], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"convert_hf_to_gguf.py failed for {name}:\n{done.stderr[-3000:]}")


def quantize(src: Path, out: Path) -> None:
    done = subprocess.run([sys.executable, "-c", QUANTIZE, str(src), str(out), str(Q4_K_M)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"llama_model_quantize failed for {src}:\n{done.stderr[-2000:]}")


def load_log(path: Path, n_seq: int = 1) -> dict[str, float]:
    """MiB figures from llama.cpp's load log: model buffer, attention KV, recurrent R and S."""
    out = subprocess.run([sys.executable, "-c", LOAD, str(path), str(N_CTX), str(n_seq)], capture_output=True, text=True)
    log = out.stderr + out.stdout
    found: dict[str, float] = {"model": 0.0, "kv": 0.0, "r": 0.0, "s": 0.0}
    model = re.findall(r"CPU(?:_Mapped)? model buffer size = +([\d.]+) MiB", log)
    if not model:
        raise RuntimeError(f"no model buffer in the llama.cpp log of {path}:\n{log[-2000:]}")
    found["model"] = sum(float(m) for m in model)
    for size in re.findall(r"llama_kv_cache: size = +([\d.]+) MiB", log):
        found["kv"] += float(size)
    for r, s in re.findall(r"llama_memory_recurrent: size = .*?R \(f32\): +([\d.]+) MiB, S \(f32\): +([\d.]+) MiB", log):
        found["r"] += float(r)
        found["s"] += float(s)
    return found


def row(name: str, what: str, est: float, meas: float, tol: float, unit: str = "") -> bool:
    ok = abs(est - meas) <= tol * max(abs(meas), 1e-9) or abs(est - meas) < 0.006 and unit == "MiB"
    print(f"{name:11} {what:28} {est:>16,.2f} {meas:>16,.2f} {unit:4} {'ok' if ok else 'FAIL'}")
    return ok


def main() -> None:
    from gguf import GGUFReader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=sorted(TINY), default=None)
    parser.add_argument("--dims", action="store_true", help="also the real models' state widths (DIMS)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hybrid-"))
    failures = 0
    print(f"{'model':11} {'what':28} {'estimate':>16} {'measured':>16}")
    for name in args.only or TINY:
        folder, hf_total = build(name, work)
        f16 = work / f"{name}-f16.gguf"
        convert(name, folder, f16)
        q4 = work / f"{name}-q4_k_m.gguf"
        quantize(f16, q4)
        cfg = json.loads((folder / "config.json").read_text())
        if name.startswith("qwen3-next"):
            cfg["mtp_num_hidden_layers"] = 0   # converted with --no-mtp
        arch = Architecture.from_config(cfg)
        h = arch.hybrid
        checks = [row(name, "params (transformers)", arch.total_params, hf_total, 0)]
        reader = GGUFReader(f16)
        real = {(t.name, tuple(int(d) for d in t.shape)) for t in reader.tensors}
        same = real == {(n, s) for n, s, _ in arch.tensors()}
        print(f"{name:11} {'tensor names/shapes':28} {'':>16} {len(real):>16,} {'':4} {'ok' if same else 'FAIL'}")
        checks.append(same)
        for ftype, path in (("F16", f16), ("Q4_K_M", q4)):
            file_bytes = sum(int(t.n_bytes) for t in GGUFReader(path).tensors)
            checks.append(row(name, f"GGUF tensor bytes {ftype}", gguf_weights_bytes(arch, ftype), file_bytes, 0.001))
            log = load_log(path)
            checks.append(row(name, f"model buffer {ftype}", gguf_weights_bytes(arch, ftype) / MiB, log["model"], 0.01,
                              "MiB"))
        wl = Workload(context=N_CTX)
        checks.append(row(name, f"KV @ {N_CTX} ({arch.kv_layers} attn layers)", attention_kv_bytes(arch, wl)[0] / MiB,
                          log["kv"], 0.01, "MiB"))
        n_rec = len(h.recurrent_layers)
        checks.append(row(name, f"R (f32) ({n_rec} recurrent)", n_rec * h.n_embd_r(arch.hidden_size) * 4 / MiB,
                          log["r"], 0.01, "MiB"))
        checks.append(row(name, "S (f32)", n_rec * h.n_embd_s() * 4 / MiB, log["s"], 0.01, "MiB"))
        two = load_log(q4, n_seq=2)  # two sequences: a state each, KV per sequence stream
        wl2 = Workload(context=N_CTX // 2, batch=2)
        checks.append(row(name, f"KV n_seq 2 (n_ctx {N_CTX})", attention_kv_bytes(arch, wl2)[0] / MiB, two["kv"], 0.01,
                          "MiB"))
        checks.append(row(name, "R + S n_seq 2", recurrent_bytes(arch, wl2)[0] / MiB, two["r"] + two["s"], 0.01, "MiB"))
        failures += checks.count(False)
    for name in DIMS if args.dims else ():
        kind, fields = DIMS[name]
        folder, hf_total = build(name, work, kind, fields)
        f16 = work / f"{name}-f16.gguf"
        convert(kind, folder, f16)
        cfg = json.loads((folder / "config.json").read_text())
        arch = Architecture.from_config({**cfg, "mtp_num_hidden_layers": 0} if kind == "qwen3-next" else cfg)
        h, log = arch.hybrid, load_log(f16)
        n_rec = len(h.recurrent_layers)
        checks = [row(name, "params (transformers)", arch.total_params, hf_total, 0),
                  row(name, f"KV @ {N_CTX}", attention_kv_bytes(arch, Workload(context=N_CTX))[0] / MiB, log["kv"],
                      0.01, "MiB"),
                  row(name, f"R (f32) ({n_rec} recurrent)", n_rec * h.n_embd_r(arch.hidden_size) * 4 / MiB, log["r"],
                      0.01, "MiB"),
                  row(name, "S (f32)", n_rec * h.n_embd_s() * 4 / MiB, log["s"], 0.01, "MiB")]
        failures += checks.count(False)
    print(f"{failures} FAIL" if failures else "all ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
