"""The scoring every evaluation engine shares: reading the text, chunking token ids, turning logits
into negative log-likelihoods and KL divergences, peak memory. numpy only, no Django, no torch.

The perplexity scheme is llama.cpp's (tools/perplexity/perplexity.cpp, perplexity()): the text is
tokenized once (BOS at the front when the tokenizer adds one), cut into non-overlapping chunks of
`context` tokens; each chunk's first token is replaced by BOS when the tokenizer adds one; the
chunk is evaluated from an empty KV cache and only the tokens after the first context/2 are scored
— the logits at positions first .. context-2 predict tokens first+1 .. context-1, i.e.
context - 1 - context/2 scored tokens per chunk, so every scored token has at least context/2
tokens of left context. perplexity = exp(mean NLL over all scored tokens).
"""

from __future__ import annotations

import hashlib
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEME = ("llama.cpp perplexity: non-overlapping chunks of `context` tokens, BOS replaces a "
          "chunk's first token when the tokenizer adds BOS, score the tokens after context/2")


@dataclass
class Chunks:
    tokens: list[list[int]]  # each exactly `context` ids
    context: int
    first: int  # scored positions are first .. context-2 (predicting first+1 .. context-1)
    sha256: str  # of the evaluated ids, so two evaluations can prove they scored the same tokens

    @property
    def scored_per_chunk(self) -> int:
        return self.context - 1 - self.first

    @property
    def scored_tokens(self) -> int:
        return self.scored_per_chunk * len(self.tokens)


def read_text(path: Path, chars: int | None = None) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read() if chars is None else f.read(chars)


def tokenize_enough(tokenize, path: Path, needed: int) -> tuple[list[int], bool]:
    """Token ids of the text, reading only as much as `needed` ids take (≈ 8 characters per
    token to start, doubling). Returns (ids, whole file read). A prefix's last token may be cut
    in the middle of a word, so a prefix must give more than `needed` ids to be used."""
    chars = max(needed * 8, 4096) if needed else None
    while True:
        text = read_text(path, chars)
        ids = tokenize(text)
        whole = chars is None or len(text) < chars
        if whole or len(ids) > needed:
            return ids, whole
        chars *= 2


def make_chunks(ids: list[int], *, context: int, chunks: int, bos_id: int | None) -> Chunks:
    """`chunks` (0 = as many as fit) non-overlapping windows of `context` ids, BOS first."""
    if bos_id is not None:
        ids = [bos_id, *ids]
    available = len(ids) // context
    if available < 1 or (chunks and available < chunks):
        raise ValueError(f"the text gives {len(ids):,} tokens: {max(chunks, 1)} chunk(s) of "
                         f"{context} need {max(chunks, 1) * context:,}; lower chunks or context")
    n = min(chunks, available) if chunks else available
    windows = []
    for i in range(n):
        window = list(ids[i * context:(i + 1) * context])
        if bos_id is not None:
            window[0] = bos_id
        windows.append(window)
    digest = hashlib.sha256(np.asarray(windows, dtype=np.int64).tobytes()).hexdigest()
    return Chunks(tokens=windows, context=context, first=context // 2, sha256=digest)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (llama.cpp's log_softmax also sums in double)."""
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def scored_log_probs(logits: np.ndarray, chunks: Chunks) -> np.ndarray:
    """Log-probabilities at the scored positions: rows first .. context-2 of a chunk's logits."""
    return log_softmax(logits[chunks.first:chunks.context - 1])


def chunk_nll(log_probs: np.ndarray, window: list[int], chunks: Chunks) -> np.ndarray:
    """NLL of each scored token: -log p(token[j+1] | logits at j) for j in first .. context-2."""
    targets = np.asarray(window[chunks.first + 1:chunks.context])
    return -log_probs[np.arange(len(targets)), targets]


def perplexity_summary(nll: np.ndarray) -> dict:
    """ppl = exp(mean NLL) and its ± from the standard error of the mean NLL (as perplexity.cpp
    prints it: ppl × stderr)."""
    mean = float(nll.mean())
    stderr = float(nll.std(ddof=1) / np.sqrt(len(nll))) if len(nll) > 1 else 0.0
    ppl = float(np.exp(mean))
    return {"perplexity": round(ppl, 4), "perplexity_stderr": round(ppl * stderr, 4),
            "nll_mean": round(mean, 6), "tokens_scored": int(len(nll))}


def kl_and_top1(ref_log_probs: np.ndarray, target_log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-token KL(ref ‖ target) = Σ p_ref (log p_ref − log p_target), and whether the two
    distributions' most likely tokens agree (llama.cpp perplexity --kl-divergence)."""
    kl = (np.exp(ref_log_probs) * (ref_log_probs - target_log_probs)).sum(axis=-1)
    same = ref_log_probs.argmax(axis=-1) == target_log_probs.argmax(axis=-1)
    return np.maximum(kl, 0.0), same


def kl_summary(kl: np.ndarray, same: np.ndarray) -> dict:
    return {"kl_mean": round(float(kl.mean()), 6), "kl_median": round(float(np.median(kl)), 6),
            "kl_p99": round(float(np.percentile(kl, 99)), 6), "kl_max": round(float(kl.max()), 6),
            "top1_agreement": round(float(same.mean()), 6), "tokens_compared": int(len(kl))}


def peak_rss_bytes() -> int:
    """This process's peak resident set size: VmHWM on Linux (proc(5)), ru_maxrss elsewhere
    (bytes on macOS). Not ru_maxrss on Linux: it survives execve (getrusage(2)), so a job child
    started by a 500 MiB worker would report at least the worker's 500 MiB as its own peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # "VmHWM:   35680 kB"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)



