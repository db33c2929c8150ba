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


def test_kl_of_identical_distributions_is_zero_and_of_known_ones_matches_the_formula():
    p = np.log(np.array([[0.5, 0.25, 0.25]]))
    q = np.log(np.array([[0.25, 0.5, 0.25]]))
    kl, same = common.kl_and_top1(p, p)
    assert kl.tolist() == [0.0] and same.tolist() == [True]
    kl, same = common.kl_and_top1(p, q)
    assert kl[0] == pytest.approx(0.5 * math.log(2) + 0.25 * math.log(0.5))  # 0.1733
    assert same.tolist() == [False]
    summary = common.kl_summary(np.array([0.0, 0.1, 0.2, 0.3]), np.array([True, True, False, True]))
    assert summary["kl_mean"] == pytest.approx(0.15) and summary["top1_agreement"] == 0.75


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
