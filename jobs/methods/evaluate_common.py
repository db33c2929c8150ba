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
import json
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from formats import llama_kld

SCHEME = ("llama.cpp perplexity: non-overlapping chunks of `context` tokens, BOS replaces a "
          "chunk's first token when the tokenizer adds BOS, score the tokens after context/2")


@dataclass
class Chunks:
    tokens: list[list[int]]  # each exactly `context` ids
    context: int
    first: int  # scored positions are first .. context-2 (predicting first+1 .. context-1)
    sha256: str  # of the evaluated ids, so two evaluations can prove they scored the same tokens
    # each window's first id before BOS replaced it: llama.cpp's --kl-divergence-base file keeps
    # the text's ids as tokenized (see text_ids)
    original_first: list[int] = field(default_factory=list)

    @property
    def scored_per_chunk(self) -> int:
        return self.context - 1 - self.first

    @property
    def scored_tokens(self) -> int:
        return self.scored_per_chunk * len(self.tokens)

    def text_ids(self) -> np.ndarray:
        """int32 [chunks, context]: the ids as tokenized (BOS only at the text's start), as
        llama-perplexity writes them into a --kl-divergence-base file."""
        ids = np.asarray(self.tokens, dtype=np.int32)
        if self.original_first:
            ids[:, 0] = self.original_first
        return ids

    def next_ids(self, index: int) -> np.ndarray:
        """The token each scored row of chunk `index` predicts."""
        return np.asarray(self.tokens[index][self.first + 1:self.context])


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
    windows, firsts = [], []
    for i in range(n):
        window = list(ids[i * context:(i + 1) * context])
        firsts.append(window[0])
        if bos_id is not None:
            window[0] = bos_id
        windows.append(window)
    digest = hashlib.sha256(np.asarray(windows, dtype=np.int64).tobytes()).hexdigest()
    return Chunks(tokens=windows, context=context, first=context // 2, sha256=digest,
                  original_first=firsts)


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


KL_STATISTICS = {
    "ppl": "ln PPL(Q) and ln PPL(base) = mean NLL with ± from mean_and_uncertainty() "
           "(sqrt((mean of squares - mean²)/(n-1)), 0 for n <= 10); PPL ± = PPL × that; the "
           "ratio's and difference's ± use covariance() of the two NLLs; PPL(base) from the base "
           "log-probs as stored (16-bit), as llama.cpp tools/perplexity/perplexity.cpp "
           "kl_divergence() prints them",
    "kl": "per token Σ_i p_base,i (log p_base,i − log p_Q,i) over the vocabulary entries whose "
          "stored base log-prob is > −16, natural log; mean ± from mean_and_uncertainty(); "
          "median of the sorted values, percentiles by perplexity.cpp's percentile() linear "
          "interpolation at fraction × (n−1) (kl_divergence())",
    "dp": "per token Δp = p_Q(token) − p_base(token) (fractions, not percent); mean ±, median and "
          "percentiles as for KLD; RMS = sqrt(mean Δp²) with ± = 0.5/RMS × the uncertainty of "
          "mean Δp² (kl_divergence())",
    "same_top": "fraction of tokens where the argmax of Q's logits equals the argmax of the "
                "stored base log-probs (first index on ties), ± sqrt(p(1−p)/(n−1)) "
                "(kl_divergence())",
}
PERCENTILES = {"p99_9": 0.999, "p99": 0.99, "p95": 0.95, "p90": 0.90, "p75": 0.75, "p25": 0.25,
               "p10": 0.10, "p5": 0.05, "p1": 0.01, "p0_1": 0.001}
_KL_PERCENTILES = ("p99_9", "p99", "p95", "p90", "p10", "p5", "p1", "p0_1")


@dataclass
class TokenComparison:
    """Per scored token, as kl_divergence()'s log_softmax(..., base_log_prob, ..., kld) computes
    them: Q's NLL, the base's NLL from the stored log-probs, KLD, Δp and top-token agreement."""

    nll: np.ndarray
    nll_base: np.ndarray
    kld: np.ndarray
    p_diff: np.ndarray
    same_top: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[TokenComparison]) -> TokenComparison:
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("nll", "nll_base", "kld", "p_diff", "same_top")))


def compare_tokens(base_log_probs: np.ndarray, target_log_probs: np.ndarray,
                   next_ids: np.ndarray) -> TokenComparison:
    """`base_log_probs`: float32 [rows, vocab] decoded from the 16-bit rows (formats.llama_kld);
    `target_log_probs`: Q's log-softmax at the same rows; `next_ids`: the token each row predicts."""
    rows = np.arange(len(next_ids))
    nll = -target_log_probs[rows, next_ids].astype(np.float64)
    nll_base = -base_log_probs[rows, next_ids].astype(np.float64)
    kld = np.empty(len(next_ids))
    for start in range(0, len(next_ids), 64):  # float64 temporaries of 64 rows at a time
        base, target = base_log_probs[start:start + 64], target_log_probs[start:start + 64]
        terms = np.exp(base.astype(np.float64)) * (base - target)
        kld[start:start + 64] = np.where(base > np.float32(-16), terms, 0.0).sum(axis=-1)
    p_diff = np.exp(-nll) - np.exp(-nll_base)
    same = target_log_probs.argmax(axis=-1) == base_log_probs.argmax(axis=-1)
    return TokenComparison(nll, nll_base, kld, p_diff, same)


def mean_and_uncertainty(values: np.ndarray) -> tuple[float, float]:
    """perplexity.cpp kl_divergence() mean_and_uncertainty(sum, sum2, count)."""
    n = len(values)
    if n < 1:
        return 0.0, 0.0
    mean = float(values.sum() / n)
    var = float((values * values).sum() / n - mean * mean)
    return mean, (np.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0)


def covariance(a: np.ndarray, b: np.ndarray) -> float:
    """perplexity.cpp kl_divergence() covariance(suma, sumb, sumab, count)."""
    n = len(a)
    if n < 10:
        return 0.0
    return float(((a * b).sum() / n - (a.sum() / n) * (b.sum() / n)) / (n - 1))


def percentile(sorted_values: np.ndarray, fraction: float) -> float:
    """perplexity.cpp's percentile(): linear interpolation at fraction*(n-1), in float32."""
    v = sorted_values.astype(np.float32)
    if fraction <= 0:
        return float(v[0])
    if fraction >= 1:
        return float(v[-1])
    p = np.float32(fraction) * np.float32(len(v) - 1)
    ip = int(p)
    p = np.float32(p - np.float32(ip))
    return float((np.float32(1) - p) * v[ip] + p * v[min(ip + 1, len(v) - 1)])


def median(sorted_values: np.ndarray) -> float:
    v, n = sorted_values.astype(np.float32), len(sorted_values)
    return float(np.float32(0.5) * (v[n // 2] + v[n // 2 - 1]) if n % 2 == 0 else v[n // 2])


def _sig(x: float) -> float:
    return float(f"{x:.7g}")


def kl_statistics(t: TokenComparison) -> dict:
    """Every statistic `llama-perplexity --kl-divergence` prints, under stable keys, fractions
    (not percent); plus the older keys (top1_agreement, reference_perplexity, delta_perplexity,
    delta_perplexity_pct) for readers written before them."""
    n = len(t.kld)
    ln_q, ln_q_unc = mean_and_uncertainty(t.nll)
    ln_b, ln_b_unc = mean_and_uncertainty(t.nll_base)
    cov = covariance(t.nll, t.nll_base)
    ppl_q, ppl_b = np.exp(ln_q), np.exp(ln_b)
    ppl_q_unc, ppl_b_unc = ppl_q * ln_q_unc, ppl_b * ln_b_unc
    ratio_unc = np.sqrt(max(ln_q_unc ** 2 + ln_b_unc ** 2 - 2 * cov, 0.0))
    diff_unc = np.sqrt(max(ppl_q_unc ** 2 + ppl_b_unc ** 2 - 2 * ppl_q * ppl_b * cov, 0.0))
    out = {"ppl_q": ppl_q, "ppl_q_unc": ppl_q_unc, "ppl_base": ppl_b, "ppl_base_unc": ppl_b_unc,
           "ppl_correlation": cov / (ln_q_unc * ln_b_unc) if ln_q_unc and ln_b_unc else 0.0,
           "ln_ppl_ratio": ln_q - ln_b, "ln_ppl_ratio_unc": ratio_unc,
           "ppl_ratio": np.exp(ln_q - ln_b), "ppl_ratio_unc": np.exp(ln_q - ln_b) * ratio_unc,
           "ppl_diff": ppl_q - ppl_b, "ppl_diff_unc": diff_unc}
    kld, dp = np.sort(t.kld.astype(np.float32)), np.sort(t.p_diff.astype(np.float32))
    out["kl_mean"], out["kl_mean_unc"] = mean_and_uncertainty(t.kld)
    out["kl_max"] = float(kld[-1])
    out.update({f"kl_{k}": percentile(kld, PERCENTILES[k]) for k in _KL_PERCENTILES[:4]})
    out["kl_median"] = median(kld)
    out.update({f"kl_{k}": percentile(kld, PERCENTILES[k]) for k in _KL_PERCENTILES[4:]})
    out["kl_min"] = float(kld[0])
    out["dp_mean"], out["dp_mean_unc"] = mean_and_uncertainty(t.p_diff)
    out["dp_max"] = float(dp[-1])
    out.update({f"dp_{k}": percentile(dp, f) for k, f in list(PERCENTILES.items())[:5]})
    out["dp_median"] = median(dp)
    out.update({f"dp_{k}": percentile(dp, f) for k, f in list(PERCENTILES.items())[5:]})
    out["dp_min"] = float(dp[0])
    mse, mse_unc = mean_and_uncertainty(t.p_diff ** 2)
    out["dp_rms"] = np.sqrt(mse)
    out["dp_rms_unc"] = 0.5 / out["dp_rms"] * mse_unc if mse > 0 else 0.0
    same = float(t.same_top.sum() / n)
    out["same_top"] = same
    out["same_top_unc"] = np.sqrt(same * (1 - same) / (n - 1)) if n > 1 else 0.0
    out = {k: _sig(float(v)) for k, v in out.items()}
    out["tokens_compared"] = int(n)
    out.update({"top1_agreement": out["same_top"], "reference_perplexity": round(float(ppl_b), 4),
                "delta_perplexity": round(float(ppl_q - ppl_b), 4),
                "delta_perplexity_pct": round(float(100 * (ppl_q / ppl_b - 1)), 3)})
    return out


BASE_LOGITS_FORMAT = ("llama.cpp --kl-divergence-base: per scored token, log-probs as uint16 over "
                      "[min, max] with scale (max − min)/65535, min = max − 16 at the lowest "
                      "(entries below read as min), after a header (\"_logits_\", n_ctx, n_vocab, "
                      "n_chunk) and the text's token ids; formats/llama_kld.py")


def base_logits_key(*, reference, files_sha256: list[str], dataset_sha256: str,
                    chunks: Chunks) -> str:
    """The cache file's name: the reference variant and its files' contents, the text, the
    context, the number of chunks and the evaluated ids."""
    identity = json.dumps({"format": 1, "reference": reference, "files": sorted(files_sha256),
                           "dataset": dataset_sha256, "context": chunks.context,
                           "chunks": len(chunks.tokens), "tokens": chunks.sha256}, sort_keys=True)
    return f"ref{reference}-{hashlib.sha256(identity.encode()).hexdigest()[:32]}"


class BaseLogitsStore:
    """The reference's 16-bit log-probs for one (reference, text, context, chunks) in a worker
    cache folder: hit() finds a valid file; otherwise start() opens a .part file, add() writes each
    chunk's rows as they are computed and finish() renames it into place. Where it can't or
    mustn't store (no folder, over max_bytes, a write error) the rows are still used from memory,
    and describe() says why it didn't store them."""

    def __init__(self, *, folder: str, max_bytes: int, chunks: Chunks, n_vocab: int, key: str):
        self.path = Path(folder) / f"{key}.kld" if folder else None
        self.max_bytes, self.chunks, self.n_vocab = max_bytes, chunks, n_vocab
        self.bytes = llama_kld.file_bytes(chunks.context, n_vocab, len(chunks.tokens))
        self.cache, self.header, self.writer = "not stored: not computed", None, None

    def hit(self, log) -> bool:
        if self.path is None or not self.path.is_file():
            return False
        try:
            header = llama_kld.read_header(self.path)
        except (OSError, ValueError) as exc:
            log(f"base logits cache unusable ({exc}); computing the reference again")
            return False
        dims = (self.chunks.context, self.n_vocab, len(self.chunks.tokens))
        if ((header.n_ctx, header.n_vocab, header.n_chunk) != dims
                or not np.array_equal(header.tokens, self.chunks.text_ids())):
            log(f"base logits cache {self.path.name} is for other tokens; computing again")
            return False
        self.header, self.cache = header, "hit"
        log(f"base logits: cache hit {self.path.name} ({self.bytes:,} bytes)")
        return True

    def read(self, index: int) -> np.ndarray:
        return llama_kld.read_chunk(self.path, self.header, index)

    def start(self, log) -> None:
        if self.path is None:
            self.cache = "not stored: no cache folder on this worker (BASE_LOGITS_CACHE_DIR)"
        elif self.bytes > self.max_bytes:
            self.cache = (f"not stored: {self.bytes:,} bytes, over the {self.max_bytes:,}-byte "
                          "limit (BASE_LOGITS_CACHE_MAX_BYTES)")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.writer = llama_kld.Writer(self.path, n_ctx=self.chunks.context,
                                               n_vocab=self.n_vocab, tokens=self.chunks.text_ids())
            except OSError as exc:
                self.cache = f"not stored: {exc}"
        if self.writer is None:
            log(f"base logits {self.cache}")

    def add(self, rows: np.ndarray) -> np.ndarray:
        if self.writer is not None:
            try:
                self.writer.write_chunk(rows)
            except OSError as exc:
                self._give_up(exc)
        return rows

    def finish(self, log) -> None:
        if self.writer is not None:
            try:
                self.bytes, self.cache = self.writer.commit(), "stored"
                log(f"base logits stored in {self.path} ({self.bytes:,} bytes)")
            except OSError as exc:
                self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        self.writer.close()
        self.writer, self.cache = None, f"not stored: {exc}"

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def describe(self) -> dict:
        return {"cache": self.cache, "file": self.path.name if self.path else None,
                "bytes": self.bytes, "format": BASE_LOGITS_FORMAT}


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



