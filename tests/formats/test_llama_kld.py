"""formats/llama_kld.py: llama.cpp's --kl-divergence-base file, on hand-made rows whose encoding is
worked out by hand from perplexity.cpp's log_softmax(n_vocab, logits, uint16_t *log_prob, tok).
That files llama-perplexity writes read back, and that it reads ours, is checked against the real
tool in tests/evaluation/test_llama_perplexity.py."""

import math

import numpy as np
import pytest

from formats import llama_kld


def test_rows_are_the_vocabulary_padded_to_even_plus_two_floats():
    assert llama_kld.row_width(4) == 8 and llama_kld.row_width(5) == 10
    assert llama_kld.row_width(49152) == 49156  # SmolLM2: what llama-perplexity's file holds
    # 256 context, 4 chunks of SmolLM2: the size of the file llama-perplexity wrote (measured).
    assert llama_kld.file_bytes(256, 49152, 4) == 49_946_612


def test_a_row_stores_scale_min_log_prob_and_16_bit_log_probs_above_max_minus_16():
    logits = np.array([[0.0, -16.0, -100.0, -12.0]], dtype=np.float32)
    row = llama_kld.encode_rows(logits)
    scale, min_log_prob = (float(x) for x in row[0, :4].view("<f4"))
    lse = math.log(1 + math.exp(-16) + math.exp(-100) + math.exp(-12))
    assert scale == pytest.approx(16 / 65535, rel=1e-7)
    assert min_log_prob == pytest.approx(-16 - lse, abs=2e-6)  # min clamped to max - 16
    # top -> 65535; -16 and -100 are not above the clamped min -> 0; -12: 4 * 65535/16 = 16383.75
    assert row[0, 4:].tolist() == [65535, 0, 0, 16384]
    decoded = llama_kld.decode_rows(row, 4)[0]
    assert decoded[0] == pytest.approx(-lse, abs=scale)
    assert decoded[3] == pytest.approx(-12 - lse, abs=scale / 2 + 1e-6)
    assert decoded[1] == decoded[2] == min_log_prob  # everything below the window reads as its floor


def test_rounding_is_nearest_int_half_to_even_like_the_float_trick():
    # max - min = 65535 * 2**-12, so scale = 2**-12 and 1/scale = 4096 exactly: the two entries sit
    # at exactly 2.5 and 3.5 steps above the min. nearest_int() (x + 1.5*2**23) rounds half to even.
    low = -65535 * 2.0**-12
    logits = np.array([[0.0, low, low + 2.5 * 2**-12, low + 3.5 * 2**-12]], dtype=np.float32)
    row = llama_kld.encode_rows(logits)
    assert row[0, :4].view("<f4")[0] == 2.0**-12
    assert row[0, 4:].tolist() == [65535, 0, 2, 4]


def test_a_flat_row_has_zero_scale_and_every_log_prob_is_minus_log_n():
    row = llama_kld.encode_rows(np.zeros((1, 2), dtype=np.float32))
    assert row[0, :4].view("<f4").tolist() == [0.0, pytest.approx(-math.log(2))]
    assert row[0, 4:].tolist() == [0, 0]
    assert llama_kld.decode_rows(row, 2)[0].tolist() == pytest.approx([-math.log(2)] * 2)


def _write(path, n_ctx=6, n_vocab=5, n_chunk=2, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, n_vocab, size=(n_chunk, n_ctx))
    chunks = [llama_kld.encode_rows(rng.normal(size=(llama_kld.scored_per_chunk(n_ctx), n_vocab))
                                    .astype(np.float32)) for _ in range(n_chunk)]
    with llama_kld.Writer(path, n_ctx=n_ctx, n_vocab=n_vocab, tokens=tokens) as writer:
        for rows in chunks:
            writer.write_chunk(rows)
        size = writer.commit()
    return tokens, chunks, size


def test_written_files_read_back_header_tokens_and_rows(tmp_path):
    path = tmp_path / "base.kld"
    tokens, chunks, size = _write(path)
    assert size == path.stat().st_size == llama_kld.file_bytes(6, 5, 2)
    assert path.read_bytes()[:20] == b"_logits_" + bytes([6, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0])
    header = llama_kld.read_header(path)
    assert (header.n_ctx, header.n_vocab, header.n_chunk, header.rows_per_chunk) == (6, 5, 2, 2)
    assert np.array_equal(header.tokens, tokens)
    for i, rows in enumerate(chunks):
        assert np.array_equal(llama_kld.read_chunk(path, header, i), rows)
    with pytest.raises(IndexError):
        llama_kld.read_chunk(path, header, 2)
    assert list(tmp_path.iterdir()) == [path]  # the .part file was renamed, nothing left over


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-1], "bytes, but n_ctx=6 n_vocab=5 n_chunk=2 take"),
    (lambda b: b + b"\0\0", "bytes, but"),
    (lambda b: b"_logitz_" + b[8:], "does not start with"),
    (lambda b: b[:16] + (2**24 + 1).to_bytes(4, "little") + b[20:], "implausible header"),
    (lambda b: b[:20] + (99).to_bytes(4, "little") + b[24:], "token ids outside 0..4"),
    (lambda b: b[:10], "too short"),
])
def test_damaged_files_are_refused_before_their_rows_are_read(tmp_path, damage, message):
    path = tmp_path / "base.kld"
    _write(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=message):
        llama_kld.read_header(path)


def test_an_unfinished_writer_leaves_no_file(tmp_path):
    path = tmp_path / "base.kld"
    with llama_kld.Writer(path, n_ctx=6, n_vocab=5, tokens=np.zeros((2, 6), dtype=np.int32)) as w:
        w.write_chunk(llama_kld.encode_rows(np.zeros((2, 5), dtype=np.float32)))
        with pytest.raises(ValueError, match="1 of 2 chunks written"):
            w.commit()
        with pytest.raises(ValueError, match=r"uint16 \(2, 10\)"):
            w.write_chunk(np.zeros((3, 10), dtype=np.uint16))
    assert list(tmp_path.iterdir()) == []
