"""Ground truth for the MTP (NextN) layers the converter keeps: GLM-4.5 (glm4moe) and Qwen3-Next.

    python bench/mtp_ground_truth.py [--workdir DIR]

transformers builds neither model's MTP layer, so a tiny random-weight model is saved with
save_pretrained and synthetic MTP tensors are added to its safetensors under the names the real
checkpoints use: GLM-4.5 `model.layers.<num_hidden_layers>.*` (a full MoE decoder layer plus
eh_proj, embed_tokens, enorm, hnorm, shared_head.head, shared_head.norm; conversion/glm.py keeps
layers >= num_hidden_layers unless --no-mtp) and Qwen3-Next `mtp.*` (mtp.layers.0.* a full-attention
MoE layer, mtp.fc, mtp.pre_fc_norm_embedding, mtp.pre_fc_norm_hidden, mtp.norm; conversion/qwen.py
_QwenMtpMixin renames them to model.layers.<n>.*). The decoder block is a copy of the model's
last (attention) layer, so its format is the one the converter already reads. Then
convert_hf_to_gguf.py --outtype f16, llama_model_quantize Q4_K_M, GGUFReader (tensor names, shapes,
per-tensor types and bytes) and a verbose llama-cpp-python load (model buffer: the MTP block is
TENSOR_SKIP). Targets: names/shapes/types exact, GGUF tensor bytes within 0.1 %, model buffer 1 %.
The vocabulary is the demo model's (SmolLM2, GPT-2 BPE): GLM is converted with set_vocab swapped
for the GPT-2 reader (_set_vocab_glm wants GLM's special tokens; the tokenizer changes no tensor).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.hybrid_ground_truth import CONVERTER, MiB, load_log, quantize, row  # noqa: E402
from bench.moe_mla_ground_truth import save_tiny  # noqa: E402
from planner.estimator import Architecture  # noqa: E402
from planner.estimator.gguf_quant import gguf_file_plan, gguf_weights_bytes  # noqa: E402

TINY = {
    # 4 main layers + 1 MTP: use_more_bits over n_layer_all 5 differs from 4 at layer 3
    "glm-4.5": ("Glm4MoeConfig", "Glm4MoeForCausalLM", dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
        intermediate_size=512, moe_intermediate_size=64, n_routed_experts=8, n_shared_experts=1,
        num_experts_per_tok=2, first_k_dense_replace=1, n_group=1, topk_group=1, attention_bias=True,
        num_nextn_predict_layers=1)),
    "qwen3-next": ("Qwen3NextConfig", "Qwen3NextForCausalLM", dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
        intermediate_size=512, linear_conv_kernel_dim=4, linear_key_head_dim=32, linear_value_head_dim=32,
        linear_num_key_heads=2, linear_num_value_heads=4, num_experts=8, num_experts_per_tok=2,
        moe_intermediate_size=64, shared_expert_intermediate_size=64, full_attention_interval=4)),
}
CONVERT = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
name, sys.argv = sys.argv[2], [sys.argv[1] + "/convert_hf_to_gguf.py"] + sys.argv[3:]
if name == "glm-4.5":
    from conversion import glm
    glm.Glm4MoeModel.set_vocab = lambda self: self._set_vocab_gpt2()
runpy.run_path(sys.argv[0], run_name="__main__")
"""


# With mmap (the default) llama.cpp's "CPU_Mapped model buffer" is the file span from the first to
# the last loaded tensor, so skipped MTP tensors lying between them are in it: the converter writes
# output.weight after blk.<n>.*, and the F16 GLM file shows 102.30 MiB for 52.82 MiB of loaded
# tensors (the MTP pages are mapped, never read). llama_model_quantize rewrites the tensors in
# weights_map order, MTP last, so the quantized files show the loaded tensors only. The bench
# reports that span from the file's offsets and checks the estimate against the loaded tensors.


def build(name: str, work: Path) -> tuple[Path, int]:
    import torch
    from safetensors.torch import load_file, save_file

    folder = work / name
    config = save_tiny(*TINY[name], folder).config
    st = folder / "model.safetensors"
    weights = load_file(str(st))
    # the checkpoint's tensors: parameters() leaves out GLM's e_score_correction_bias (a buffer)
    hf_total = sum(v.numel() for v in weights.values())
    L, H, V = config.num_hidden_layers, config.hidden_size, config.vocab_size
    last = f"model.layers.{L - 1}."   # an attention MoE layer in both tiny models
    block = {k[len(last):]: v for k, v in weights.items() if k.startswith(last)}

    def rand(*shape: int) -> "torch.Tensor":
        return (torch.randn(*shape) * 0.02).to(torch.bfloat16)

    if name == "glm-4.5":
        p = f"model.layers.{L}."
        extra = {p + k: v.clone() for k, v in block.items()}
        extra.update({p + "eh_proj.weight": rand(H, 2 * H), p + "embed_tokens.weight": rand(V, H),
                      p + "enorm.weight": torch.ones(H, dtype=torch.bfloat16),
                      p + "hnorm.weight": torch.ones(H, dtype=torch.bfloat16),
                      p + "shared_head.head.weight": rand(V, H),
                      p + "shared_head.norm.weight": torch.ones(H, dtype=torch.bfloat16)})
    else:
        extra = {"mtp.layers.0." + k: v.clone() for k, v in block.items()}
        extra.update({"mtp.fc.weight": rand(H, 2 * H),
                      "mtp.pre_fc_norm_embedding.weight": torch.zeros(H, dtype=torch.bfloat16),
                      "mtp.pre_fc_norm_hidden.weight": torch.zeros(H, dtype=torch.bfloat16),
                      "mtp.norm.weight": torch.zeros(H, dtype=torch.bfloat16)})
    save_file({**weights, **extra}, str(st), metadata={"format": "pt"})
    return folder, hf_total


def convert(name: str, folder: Path, out: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CONVERT, str(CONVERTER.parent), name, str(folder), "--outtype", "f16",
                           "--outfile", str(out)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"convert_hf_to_gguf.py failed for {name}:\n{done.stderr[-3000:]}")


def main() -> None:
    from gguf import GGUFReader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=sorted(TINY), default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mtp-"))
    failures = 0
    print(f"{'model':11} {'what':28} {'estimate':>16} {'measured':>16}")
    for name in args.only or TINY:
        folder, hf_total = build(name, work)
        f16, q4 = work / f"{name}-f16.gguf", work / f"{name}-q4_k_m.gguf"
        convert(name, folder, f16)
        quantize(f16, q4)
        arch = Architecture.from_config(json.loads((folder / "config.json").read_text()))
        checks = [row(name, "params (transformers)", arch.total_params, hf_total, 0)]
        reader = GGUFReader(f16)
        real = {(t.name, tuple(int(d) for d in t.shape)) for t in reader.tensors}
        same = real == {(n, s) for n, s, _ in arch.gguf_tensors()}
        print(f"{name:11} {'tensor names/shapes (file)':28} {len(arch.gguf_tensors()):>16,} {len(real):>16,} "
              f"{'':4} {'ok' if same else 'FAIL'}")
        if not same:
            print("   only in file:", sorted(real - {(n, s) for n, s, _ in arch.gguf_tensors()})[:8])
            print("   only in estimate:", sorted({(n, s) for n, s, _ in arch.gguf_tensors()} - real)[:8])
        checks.append(same)
        for ftype, path in (("F16", f16), ("Q4_K_M", q4)):
            tensors = GGUFReader(path).tensors
            plan = {n: (t, b) for n, t, b in gguf_file_plan(arch, ftype)}
            wrong = [(t.name, t.tensor_type.name, plan.get(t.name)) for t in tensors
                     if plan.get(t.name, ("?",))[0] != t.tensor_type.name]
            print(f"{name:11} {'types ' + ftype:28} {'':>16} {len(wrong):>13} bad {'ok' if not wrong else 'FAIL'}"
                  + (f"  {wrong[:4]}" if wrong else ""))
            checks.append(not wrong)
            file_bytes = sum(int(t.n_bytes) for t in tensors)
            mtp_bytes = sum(int(t.n_bytes) for t in tensors if t.name.startswith(f"blk.{arch.n_layers}."))
            checks.append(row(name, f"GGUF tensor bytes {ftype}", sum(b for _, b in plan.values()),
                              file_bytes, 0.001))
            print(f"{name:11} {'  of which MTP block':28} {'':>16} {mtp_bytes:>16,}")
            log = load_log(path)
            loaded = [t for t in tensors if not t.name.startswith(f"blk.{arch.n_layers}.")]
            span = max(int(t.data_offset) + int(t.n_bytes) for t in loaded) - min(int(t.data_offset) for t in loaded)
            gap = span - sum(int(t.n_bytes) for t in loaded)   # skipped bytes inside the mapped span
            checks.append(row(name, f"mmap span {ftype} (file)", span / MiB, log["model"], 0.01, "MiB"))
            checks.append(row(name, f"model buffer − MTP gap {ftype}", gguf_weights_bytes(arch, ftype) / MiB,
                              log["model"] - gap / MiB, 0.01, "MiB"))
        meta = {f.name: (f.contents() if not f.types or f.types[0].name != "ARRAY" or len(f.data) < 64 else
                         [None] * len(f.data)) for f in reader.fields.values() if not f.name.startswith("GGUF.")}
        meta["tensor_names"] = [t.name for t in reader.tensors]
        from_header = Architecture.from_gguf_metadata(meta)
        ok = from_header.gguf_tensors() == arch.gguf_tensors()
        print(f"{name:11} {'from GGUF header = config':28} {'':>16} {from_header.n_layers_all:>16} {'':4} "
              f"{'ok' if ok else 'FAIL'}")
        checks.append(ok)
        failures += checks.count(False)
    print(f"{failures} FAIL" if failures else "all ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
