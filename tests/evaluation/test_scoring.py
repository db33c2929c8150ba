"""The scoring every engine shares (jobs/methods/evaluate_common.py), on hand-made logits."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from jobs.methods import evaluate_common as common
from tests.support.processes import ROOT


def test_chunks_are_non_overlapping_windows_with_bos_replacing_the_first_token():
    ids = list(range(100, 130))  # 30 tokens
    chunks = common.make_chunks(ids, context=8, chunks=0, bos_id=1)
    # [BOS, 100..129] is 31 ids: 3 whole windows of 8; each window's first id becomes BOS.
    assert chunks.tokens == [[1, 100, 101, 102, 103, 104, 105, 106],
                             [1, 108, 109, 110, 111, 112, 113, 114],
                             [1, 116, 117, 118, 119, 120, 121, 122]]
    assert (chunks.first, chunks.scored_per_chunk, chunks.scored_tokens) == (4, 3, 9)


def test_without_bos_the_text_is_cut_as_is_and_chunks_limits_the_count():
    chunks = common.make_chunks(list(range(40)), context=16, chunks=1, bos_id=None)
    assert chunks.tokens == [list(range(16))]
    assert chunks.sha256 != common.make_chunks(list(range(1, 41)), context=16, chunks=1,
                                               bos_id=None).sha256


def test_too_short_a_text_names_what_it_needs():
    with pytest.raises(ValueError, match="4 chunk\\(s\\) of 16 need 64"):
        common.make_chunks(list(range(40)), context=16, chunks=4, bos_id=None)


def test_uniform_logits_give_the_vocabulary_size_as_perplexity():
    chunks = common.make_chunks(list(range(16)), context=16, chunks=1, bos_id=None)
    log_probs = common.scored_log_probs(np.zeros((16, 50), dtype=np.float32), chunks)
    assert log_probs.shape == (7, 50)  # positions 8..14 predict tokens 9..15
    nll = common.chunk_nll(log_probs, chunks.tokens[0], chunks)
    assert common.perplexity_summary(nll)["perplexity"] == pytest.approx(50.0)


def test_nll_reads_the_probability_of_the_next_token():
    chunks = common.make_chunks([0, 1, 2, 3], context=4, chunks=1, bos_id=None)
    logits = np.zeros((4, 3), dtype=np.float32)
    logits[2, 3 % 3] = math.log(2.0)  # position 2 predicts token 3 (id 0 of 3 here: 3 % 3)
    window = [0, 1, 2, 0]
    nll = common.chunk_nll(common.scored_log_probs(logits, chunks), window, chunks)
    # first = 2, one scored position: p(0) = 2 / (2 + 1 + 1)
    assert nll.tolist() == pytest.approx([-math.log(0.5)])


def test_kl_and_delta_p_of_known_distributions():
    # KL(p ‖ q) for p = (1/2, 1/4, 1/4), q = (1/4, 1/2, 1/4): 1/2 ln 2 + 1/4 ln 1/2 = 1/4 ln 2.
    p = np.log(np.array([[0.5, 0.25, 0.25]], dtype=np.float32))
    q = np.log(np.array([[0.25, 0.5, 0.25]]))
    same = common.compare_tokens(p, p.astype(np.float64), np.array([0]))
    assert same.kld.tolist() == [0.0] and same.same_top.tolist() == [True]
    t = common.compare_tokens(p, q, np.array([0]))
    assert t.kld[0] == pytest.approx(0.25 * math.log(2), rel=1e-6)  # 0.1733
    assert t.p_diff[0] == pytest.approx(0.25 - 0.5, rel=1e-6)  # Δp = p_Q(token) - p_base(token)
    assert t.nll[0] == pytest.approx(math.log(4)) and t.nll_base[0] == pytest.approx(math.log(2))
    assert t.same_top.tolist() == [False]


def test_kl_leaves_out_vocabulary_entries_the_base_puts_at_or_below_minus_16():
    # kl_divergence()'s log_softmax: only entries with p_log_base > -16 are summed. Here only the
    # first is: 1 * (0 - (-1)) = 1 exactly; the others would add e^-16 * (-16 + 2) + ... ≈ -1.6e-6.
    base = np.array([[0.0, -16.0, -20.0]], dtype=np.float32)
    target = np.array([[-1.0, -2.0, -3.0]])
    assert common.compare_tokens(base, target, np.array([1])).kld.tolist() == [1.0]


def test_percentiles_interpolate_linearly_at_fraction_times_n_minus_1():
    values = np.array([0.0, 0.1, 0.2, 0.3])  # sorted
    assert common.percentile(values, 0.9) == pytest.approx(0.27, rel=1e-6)  # 2.7: 0.3*0.2 + 0.7*0.3
    assert common.percentile(values, 0.999) == pytest.approx(0.2997, rel=1e-6)
    assert common.percentile(values, 0.0) == 0.0 and common.percentile(values, 1.0) == pytest.approx(0.3)
    assert common.median(values) == pytest.approx(0.15) and common.median(values[:3]) == pytest.approx(0.1)


def test_uncertainty_is_zero_up_to_ten_values_then_the_standard_error():
    assert common.mean_and_uncertainty(np.array([0.0] * 9 + [1.0])) == (0.1, 0.0)  # n = 10
    # n = 11: mean 0.1, mean of squares 1.21/11 = 0.11, variance 0.1, ± sqrt(0.1/10) = 0.1
    mean, unc = common.mean_and_uncertainty(np.array([0.0] * 10 + [1.1]))
    assert (mean, unc) == (pytest.approx(0.1), pytest.approx(0.1))
    assert common.covariance(np.arange(9.0), np.arange(9.0)) == 0.0  # n < 10: none
    # n = 10, a = b = 0..9: (28.5 - 4.5²) / 9 = 0.916667
    assert common.covariance(np.arange(10.0), np.arange(10.0)) == pytest.approx(8.25 / 9)


KL_KEYS = {
    "ppl_q", "ppl_q_unc", "ppl_base", "ppl_base_unc", "ppl_correlation", "ln_ppl_ratio",
    "ln_ppl_ratio_unc", "ppl_ratio", "ppl_ratio_unc", "ppl_diff", "ppl_diff_unc",
    "kl_mean", "kl_mean_unc", "kl_max", "kl_p99_9", "kl_p99", "kl_p95", "kl_p90", "kl_median",
    "kl_p10", "kl_p5", "kl_p1", "kl_p0_1", "kl_min",
    "dp_mean", "dp_mean_unc", "dp_max", "dp_p99_9", "dp_p99", "dp_p95", "dp_p90", "dp_p75",
    "dp_median", "dp_p25", "dp_p10", "dp_p5", "dp_p1", "dp_p0_1", "dp_min", "dp_rms", "dp_rms_unc",
    "same_top", "same_top_unc", "tokens_compared",
    "top1_agreement", "reference_perplexity", "delta_perplexity", "delta_perplexity_pct",
}


def test_the_summary_has_every_statistic_llama_perplexity_prints_and_the_old_keys():
    # 12 tokens: Q's NLL ln 2 everywhere (PPL 2), the base's ln 4 for half and 0 for half (PPL 2,
    # ln PPL ± sqrt(((ln 4)²/2 - (ln 2)²)/11) = ln 2/sqrt(11)); 9 of 12 same top tokens.
    half = np.array([math.log(4), 0.0] * 6)
    t = common.TokenComparison(nll=np.full(12, math.log(2)), nll_base=half,
                               kld=np.linspace(0.0, 1.1, 12), p_diff=0.5 - np.exp(-half),
                               same_top=np.array([True] * 9 + [False] * 3))
    s = common.kl_statistics(t)
    assert set(s) == KL_KEYS
    assert s["tokens_compared"] == 12
    assert s["ppl_q"] == 2.0 and s["ppl_q_unc"] == pytest.approx(0.0, abs=1e-7)
    assert s["ppl_base"] == pytest.approx(2.0)
    assert s["ppl_base_unc"] == pytest.approx(2 * math.log(2) / math.sqrt(11), rel=1e-6)  # 0.41798
    assert s["ln_ppl_ratio"] == pytest.approx(0.0, abs=1e-9) and s["ppl_ratio"] == pytest.approx(1.0)
    assert s["kl_mean"] == pytest.approx(0.55) and s["kl_max"] == pytest.approx(1.1)
    assert s["kl_median"] == pytest.approx(0.55)  # (0.5 + 0.6) / 2
    assert s["kl_p90"] == pytest.approx(0.99, rel=1e-6)  # 0.9 * 11 = 9.9 -> 0.9 + 0.9 * 0.1
    # Δp is 0.5 - 0.25 = 0.25 or 0.5 - 1 = -0.5: mean -0.125, RMS sqrt((0.0625 + 0.25)/2)
    assert s["dp_mean"] == pytest.approx(-0.125) and s["dp_rms"] == pytest.approx(math.sqrt(0.15625))
    assert s["dp_max"] == pytest.approx(0.25) and s["dp_min"] == pytest.approx(-0.5)
    assert s["same_top"] == s["top1_agreement"] == 0.75
    assert s["same_top_unc"] == pytest.approx(math.sqrt(0.75 * 0.25 / 11), rel=1e-6)
    assert s["reference_perplexity"] == 2.0 and s["delta_perplexity"] == 0.0


# Run in a fresh interpreter: this test process has loaded torch, so its own peak is already far
# above anything a test could add. The child reads peak_rss_bytes() before and after touching (and
# freeing) TOUCHED bytes, and the kernel's own high-water mark (VmHWM) and current RSS (VmRSS).
TOUCHED = 200 * 1024**2
PEAK_CHILD = f"""
import json
import numpy as np
from jobs.methods import evaluate_common as common

def status_bytes(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

before = common.peak_rss_bytes()
block = np.ones({TOUCHED} // 8)  # every page written
del block  # unmapped again: current RSS drops, the peak must not
after = common.peak_rss_bytes()
print(json.dumps({{"before": before, "after": after, "hwm": status_bytes("VmHWM"),
                  "rss": status_bytes("VmRSS")}}))
"""


def test_peak_rss_is_the_high_water_mark_including_memory_already_freed():
    child = subprocess.run([sys.executable, "-c", PEAK_CHILD], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == 0, child.stderr[-2000:]
    m = json.loads(child.stdout)
    mib = {k: round(v / 1024**2) for k, v in m.items()}
    assert m["before"] < TOUCHED / 2, mib  # a fresh numpy process starts far below the block
    assert m["after"] - m["before"] >= 0.9 * TOUCHED, mib  # the touched block counts, in bytes
    assert abs(m["after"] - m["hwm"]) <= 4 * 1024**2, mib  # agrees with the kernel's VmHWM
    assert m["rss"] < m["after"] - 0.9 * TOUCHED, mib  # a peak, not the current RSS
