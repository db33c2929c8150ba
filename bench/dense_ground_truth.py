"""Ground truth for the planner's dense non-llama decoders (planner/estimator/dense.py: OLMo 1/2/3,
StarCoder 2, GPT-NeoX, Phi-2, StableLM, GLM-4, GLM, Command R / R7B, Seed-OSS, Arcee, Apertus):
tiny random-weight models run through the real tools.

    python bench/dense_ground_truth.py [--workdir DIR] [--only NAME ...]

For each tiny config: transformers builds it (parameters and persistent buffers: what the
checkpoint holds), convert_hf_to_gguf.py (vendored with llama-cpp-python) writes an F16 GGUF
(tensor names and ggml shapes, compared as sets), and llama-cpp-python loads it at n_ctx 4096 in
a subprocess (the "llama_kv_cache: size = … MiB" log lines, both caches of an iSWA model summed;
llama-cpp-python keeps swa_full on). Printed beside the estimator's numbers with ok/FAIL.

What the converter needs that transformers 5.x does not write: GPT-NeoX's config.json gets
`rotary_pct` back and is read raw, Command R7B likewise (see CONVERT). Options llama.cpp 0.3.36
cannot load (measured: OLMo attention biases, StableLM QK-norms, Seed-OSS o/MLP biases, Arcee
biases, Command R QK-norms below 64 layers, GLM with head_dim × heads != hidden) are marked
gguf_unsupported by the estimator and left out here.
Command R / R7B are built tied: llama.cpp's command-r and cohere2 have no output tensor.
The GLM models get pad_token_id 0 (their class default is beyond the demo's 49,152 tokens).
Takes a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import math
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

_B = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, intermediate_size=512)
# name: (config class, architecture, fields, config.json additions)
TINY = {
    "olmo": ("OlmoConfig", "OlmoForCausalLM", _B, {}),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", _B, {}),
    "olmo3": ("Olmo3Config", "Olmo3ForCausalLM", dict(_B, sliding_window=512), {}),
    "starcoder2": ("Starcoder2Config", "Starcoder2ForCausalLM", dict(_B, sliding_window=512), {}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(_B, num_key_value_heads=None), {"rotary_pct": 0.25}),
    "phi": ("PhiConfig", "PhiForCausalLM", dict(_B, num_key_value_heads=4, intermediate_size=1024), {}),
    "stablelm": ("StableLmConfig", "StableLmForCausalLM", dict(_B, use_qkv_bias=True), {}),
    "stablelm-parallel": ("StableLmConfig", "StableLmForCausalLM", dict(_B, use_parallel_residual=True), {}),
    "glm4": ("Glm4Config", "Glm4ForCausalLM", dict(_B, pad_token_id=0), {}),
    "glm": ("GlmConfig", "GlmForCausalLM", dict(_B, pad_token_id=0, head_dim=64), {}),
    "cohere": ("CohereConfig", "CohereForCausalLM", dict(_B, tie_word_embeddings=True), {}),
    "cohere2": ("Cohere2Config", "Cohere2ForCausalLM", dict(_B, tie_word_embeddings=True, sliding_window=512),
                {"rotary_pct": 1.0}),
    "seed_oss": ("SeedOssConfig", "SeedOssForCausalLM", _B, {}),
    "arcee": ("ArceeConfig", "ArceeForCausalLM", _B, {}),
    "apertus": ("ApertusConfig", "ApertusForCausalLM", _B, {}),
}
# The converter reads hparams through transformers' AutoConfig, and transformers 5.x moves GPT-NeoX's
# rotary_pct into rope_parameters (or drops it: Cohere2), so GPTNeoXModel / Cohere2Model.set_gguf_parameters
# fail (KeyError 'rotary_pct'): both are converted from their raw config.json with rotary_pct added.
# GLM's converters read chat tokens (<|user|>) the demo tokenizer lacks: converted with the GPT-2
# vocabulary reader instead (the tokenizer changes no tensor)
CONVERT = """
import json, runpy, sys
sys.path.insert(0, sys.argv[1])
name, sys.argv = sys.argv[2], [sys.argv[1] + "/convert_hf_to_gguf.py"] + sys.argv[3:]
if name in ("glm4", "glm"):
    from conversion import chatglm, glm
    for cls in (glm.Glm4Model, chatglm.ChatGLMModel):
        cls.set_vocab = lambda self: self._set_vocab_gpt2()
if name in ("gpt_neox", "cohere2"):
    from conversion import base
    def raw_config(dir_model, is_mistral_format):
        return json.loads((dir_model / "config.json").read_text())
    base.ModelBase.load_hparams = staticmethod(raw_config)
runpy.run_path(sys.argv[0], run_name="__main__")
"""
LOAD = """
import sys, llama_cpp
llama_cpp.Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_gpu_layers=0, verbose=True)
"""


def build(name: str, work: Path) -> tuple[Path, int]:
    config_class, architecture, fields, extra = TINY[name]
    folder = work / name
    model = save_tiny(config_class, architecture, {k: v for k, v in fields.items() if v is not None}, folder)
    if extra:
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**cfg, **extra}, indent=2))
    # parameters + persistent buffers, a tied head counted once (state_dict lists it under both names)
    unique = {t.data_ptr(): t for t in model.state_dict().values()}
    return folder, sum(t.numel() for t in unique.values())


def kv_mib(path: Path) -> tuple[float, str]:
    out = subprocess.run([sys.executable, "-c", LOAD, str(path), str(N_CTX)], capture_output=True, text=True)
    log = out.stderr + out.stdout
    sizes = re.findall(r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers", log)
    if not sizes:
        raise RuntimeError(f"no KV size in the llama.cpp log of {path}:\n{log[-2000:]}")
    return sum(float(s[0]) for s in sizes), " + ".join(f"{s[0]} MiB ({s[1]} cells, {s[2]} layers)" for s in sizes)


def check(name: str, work: Path, GGUFReader) -> int:
    """One tiny model through the tools; returns the number of failed rows."""
    failures = 0
    folder, hf_total = build(name, work)
    out = work / f"{name}.gguf"
    done = subprocess.run([sys.executable, "-c", CONVERT, str(CONVERTER.parent), name, str(folder), "--outtype", "f16",
                           "--outfile", str(out)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"convert_hf_to_gguf.py failed for {name}:\n{done.stderr[-3000:]}")
    arch = Architecture.from_config(json.loads((folder / "config.json").read_text()))
    real = {(t.name, tuple(int(d) for d in t.shape)) for t in GGUFReader(out).tensors}
    mine = {(n, s) for n, s, _ in arch.tensors()}
    kv, kv_txt = kv_mib(out)
    est_kv = kv_cache_bytes(arch, Workload(context=N_CTX))[0] / MiB
    rows = [("params (transformers)", arch.total_params, hf_total, 0),
            ("GGUF tensors", len(mine), len(real), 0),
            ("GGUF elements", sum(math.prod(s) for _, s in mine), sum(math.prod(s) for _, s in real), 0),
            (f"KV MiB @ {N_CTX}", est_kv, kv, 0.01)]
    for what, est, meas, tol in rows:
        ok = abs(est - meas) <= tol * abs(meas) or abs(est - meas) < 0.006 and tol
        failures += not ok
        print(f"{name:18} {what:22} {est:>14,.2f} {meas:>14,.2f} {'ok' if ok else 'FAIL'}")
    same = mine == real
    failures += not same
    print(f"{'':18} llama.cpp KV {kv_txt}; tensor names/shapes {'ok' if same else 'FAIL'}")
    if not same:
        print(f"{'':18} only estimator: {sorted(mine - real)[:6]}\n{'':18} only GGUF: {sorted(real - mine)[:6]}")
    return failures


def main() -> None:
    from gguf import GGUFReader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=sorted(TINY), default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dense-"))
    failures = 0
    print(f"{'model':18} {'what':22} {'estimate':>14} {'measured':>14}")
    for name in args.only or TINY:
        try:
            failures += check(name, work, GGUFReader)
        except RuntimeError as exc:
            failures += 1
            print(f"{name:18} FAIL {exc}")
    print(f"{failures} FAIL" if failures else "all ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
