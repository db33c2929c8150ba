"""Ground truth for the planner's MoE decoders with their own layouts (ERNIE 4.5 MoE, GLM-4.5,
GLM-5 and DeepSeek-V3.2 with the DSA lightning indexer): tiny random-weight models run through
the real tools.

    python bench/moe_decoders_ground_truth.py [--workdir DIR] [--only NAME ...] [--show]

For each tiny config: transformers builds it (parameters and persistent buffers, what the
checkpoint stores), convert_hf_to_gguf.py (vendored with llama-cpp-python) writes an F16 GGUF
(tensor names and ggml shapes), and llama-cpp-python loads it at n_ctx 4096 in a subprocess (the
"llama_kv_cache: size = … K (f16): …, V (f16): …" log line). Printed beside the estimator's
numbers with ok/FAIL: parameters and tensor names/shapes exact, KV within 1 %.

The tokenizer is the demo model's (SmolLM2, a GPT-2 BPE), so every model is converted with its
set_vocab swapped for the GPT-2 reader (ERNIE's reads a SentencePiece model, GLM's wants GLM's
special tokens, DeepSeek-V3.2's asserts add_bos_token); the tokenizer changes no tensor. GLM-5
and DeepSeek-V3.2 are converted with --no-mtp: a tiny transformers model has no MTP layer (the
converter keeps the real checkpoints' one, bench/mtp_ground_truth.py checks that case), so the
estimator reads their configs with num_nextn_predict_layers 0.

Where llama.cpp refuses the converted file, the estimator must mark the GGUF rows unsupported:
ERNIE with a shared expert wider than intermediate_size // num_key_value_heads (the width the
converter writes), and DeepSeek-V3.2, whose file lacks deepseek32.expert_gating_func; that one is
then converted again with the key added (sigmoid, DeepSeek-V3.2's scoring_func) to measure the
cache. Takes about fifteen minutes on two cores.
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
from planner.estimator.memory import kv_cache_bytes  # noqa: E402

_MLA = dict(hidden_size=256, intermediate_size=512, moe_intermediate_size=64, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1, n_routed_experts=8,
            num_experts_per_tok=2, n_group=1, topk_group=1, first_k_dense_replace=1, kv_lora_rank=64,
            q_lora_rank=96, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32, index_n_heads=4,
            index_head_dim=32, index_topk=64)
TINY = {
    "ernie4.5-moe": ("Ernie4_5_MoeConfig", "Ernie4_5_MoeForCausalLM", dict(
        hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
        moe_intermediate_size=128, moe_num_experts=8, moe_k=2, moe_num_shared_experts=2, moe_layer_start_index=1)),
    # ERNIE-4.5-300B-A47B's layout: no shared expert, three leading dense layers
    "ernie4.5-moe-300b-like": ("Ernie4_5_MoeConfig", "Ernie4_5_MoeForCausalLM", dict(
        hidden_size=256, intermediate_size=512, num_hidden_layers=5, num_attention_heads=4, num_key_value_heads=4,
        moe_intermediate_size=128, moe_num_experts=8, moe_k=2, moe_num_shared_experts=0, moe_layer_start_index=3)),
    # the converter writes the shared expert's width as intermediate_size // num_key_value_heads (128
    # here), not moe_num_shared_experts × moe_intermediate_size (256)
    "ernie4.5-moe-shexp": ("Ernie4_5_MoeConfig", "Ernie4_5_MoeForCausalLM", dict(
        hidden_size=256, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
        moe_intermediate_size=128, moe_num_experts=8, moe_k=2, moe_num_shared_experts=2, moe_layer_start_index=1)),
    "glm-4.5": ("Glm4MoeConfig", "Glm4MoeForCausalLM", dict(
        hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
        head_dim=64, moe_intermediate_size=64, n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1,
        first_k_dense_replace=1, use_qk_norm=True, attention_bias=True, num_nextn_predict_layers=0)),
    "glm-5": ("GlmMoeDsaConfig", "GlmMoeDsaForCausalLM", dict(_MLA)),
    # GLM-5.2: layers marked "shared" reuse the previous indexer's top-k and have no indexer
    "glm-5.2": ("GlmMoeDsaConfig", "GlmMoeDsaForCausalLM", dict(
        _MLA, indexer_types=["full", "full", "shared", "full"])),
    "deepseek-v3.2": ("DeepseekV32Config", "DeepseekV32ForCausalLM", dict(_MLA)),
}
NO_MTP = {"glm-5", "glm-5.2", "deepseek-v3.2"}
CONVERT = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
sys.argv = [sys.argv[1] + "/convert_hf_to_gguf.py"] + sys.argv[2:]
from conversion import base
base.TextModel.set_vocab = lambda self: self._set_vocab_gpt2()
from conversion import deepseek, ernie, glm
for cls in (ernie.Ernie4_5Model, glm.Glm4MoeModel, glm.GlmMoeDsaModel, deepseek.DeepseekV32Model,
            deepseek.DeepseekV2Model):
    cls.set_vocab = lambda self: self._set_vocab_gpt2()
if "--gating-func" in sys.argv:
    sys.argv.remove("--gating-func")
    set_params = deepseek.DeepseekV32Model.set_gguf_parameters
    def with_gating(self):
        set_params(self)
        self.gguf_writer.add_expert_gating_func(base.gguf.ExpertGatingFuncType.SIGMOID)
    deepseek.DeepseekV32Model.set_gguf_parameters = with_gating
runpy.run_path(sys.argv[0], run_name="__main__")
"""
LOAD = """
import sys, llama_cpp
llama_cpp.Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_gpu_layers=0, verbose=True)
"""


def build(name: str, work: Path) -> tuple[Path, int]:
    folder = work / name
    model = save_tiny(*TINY[name], folder)
    total = sum(t.numel() for t in model.state_dict().values())
    if model.config.tie_word_embeddings:
        total -= model.lm_head.weight.numel()
    return folder, total


def convert(name: str, folder: Path, out: Path, *extra: str) -> None:
    extra = (*extra, "--no-mtp") if name in NO_MTP else extra
    done = subprocess.run([sys.executable, "-c", CONVERT, str(CONVERTER.parent), str(folder), "--outtype", "f16",
                           "--outfile", str(out), *extra], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"convert_hf_to_gguf.py failed for {name}:\n{done.stderr[-3000:]}")


def kv_log(path: Path) -> tuple[float, str]:
    """llama.cpp's KV size (MiB, all its KV caches) and log lines; (-1, the load error) if it fails."""
    out = subprocess.run([sys.executable, "-c", LOAD, str(path), str(N_CTX)], capture_output=True, text=True)
    log = out.stderr + out.stdout
    lines = re.findall(r"llama_kv_cache: size = .*", log)
    if not lines:
        error = re.search(r"error loading model.*", log)
        return -1.0, error[0] if error else log[-2000:]
    total = sum(float(re.search(r"size = +([\d.]+) MiB", s)[1]) for s in lines)
    return total, " | ".join(lines)


def row(name: str, what: str, est: float, meas: float, tol: float) -> bool:
    ok = abs(est - meas) <= tol * max(abs(meas), 1e-9)
    print(f"{name:14} {what:26} {est:>16,.2f} {meas:>16,.2f} {'ok' if ok else 'FAIL'}")
    return ok


def main() -> None:
    from gguf import GGUFReader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=sorted(TINY), default=None)
    parser.add_argument("--show", action="store_true", help="print the converted tensors and the KV log line")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="moe-decoders-"))
    failures = 0
    print(f"{'model':14} {'what':26} {'estimate':>16} {'measured':>16}")
    for name in args.only or TINY:
        folder, hf_total = build(name, work)
        f16 = work / f"{name}-f16.gguf"
        convert(name, folder, f16)
        cfg = json.loads((folder / "config.json").read_text())
        if name in NO_MTP:
            cfg["num_nextn_predict_layers"] = 0   # converted with --no-mtp
        real = {(t.name, tuple(int(d) for d in t.shape)) for t in GGUFReader(f16).tensors}
        kv_mib, kv_txt = kv_log(f16)
        arch = Architecture.from_config(cfg)
        refused = kv_mib < 0
        if refused:
            print(f"{name:14} llama.cpp refuses the converted file: {kv_txt}")
            print(f"{name:14} the estimator's GGUF rows: {arch.gguf_unsupported or 'planned'} "
                  f"{'ok' if arch.gguf_unsupported else 'FAIL'}")
            failures += 0 if arch.gguf_unsupported else 1
        if refused and "expert_gating_func" in kv_txt:
            # the vendored converter writes no deepseek32.expert_gating_func; with it the file loads
            convert(name, folder, f16, "--gating-func")
            kv_mib, kv_txt = kv_log(f16)
            kv_txt += " (converted with expert_gating_func = sigmoid added)"
        if args.show:
            for t in sorted(real):
                print("   ", t)
            print("   ", kv_txt)
        mine = {(n, s) for n, s, _ in arch.tensors()}
        checks = [row(name, "params (transformers)", arch.total_params, hf_total, 0)]
        same = mine == real
        print(f"{name:14} {'tensor names/shapes':26} {len(mine):>16,} {len(real):>16,} {'ok' if same else 'FAIL'}")
        if not same:
            print("    only estimator:", sorted(mine - real)[:8])
            print("    only GGUF:     ", sorted(real - mine)[:8])
        checks.append(same)
        est_kv = kv_cache_bytes(arch, Workload(runtime="llama.cpp", context=N_CTX))[0] / MiB
        if kv_mib >= 0:
            checks.append(row(name, f"KV MiB @ {N_CTX}", est_kv, kv_mib, 0.01))
        print(f"{'':14} llama.cpp: {kv_txt}")
        failures += checks.count(False)
    print(f"{failures} FAIL" if failures else "all ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
