"""llama.cpp's `llama-perplexity --kl-divergence-base FILE` format: a base model's log-probabilities
over the scored tokens of a perplexity run, each row quantized to 16 bits. numpy only, no Django.

Layout (tools/perplexity/perplexity.cpp, perplexity() writes it, kl_divergence() reads it; all
little-endian):

    "_logits_"                   8 bytes
    n_ctx                        uint32 (written from an int32)
    n_vocab, n_chunk             int32, int32
    tokens                       n_chunk * n_ctx int32: the text's ids as tokenized (BOS first
                                 when the vocabulary adds one; a chunk's first id is NOT replaced
                                 by BOS here, llama.cpp does that at evaluation time)
    per chunk, per scored token  (n_ctx - 1 - n_ctx/2 rows per chunk) one row of
                                 nv = 2*((n_vocab+1)/2) + 4 uint16:
                                   [0:4]  two float32: scale, min_log_prob
                                   [4:4+n_vocab]  q_i with log p_i = scale*q_i + min_log_prob
                                   [4+n_vocab:nv] padding (0)

A row is written as log_softmax(n_vocab, logits, uint16_t *log_prob, tok) does it: max and min
logit, the min clamped to max - 16; log-sum-exp from expf() summed in double; scale = (max -
min)/65535; q_i = nearest_int((logit_i - min)/scale) for logits above the min, else 0 (so every
log-prob below max - 16 - lse reads back as min_log_prob). The file is an untrusted input: its
header is checked against its length before anything is read (hand-written rather than read
with a library, so that every offset is bounds-checked before use).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"_logits_"
HEADER = struct.Struct("<8sIii")
LOG_PROB_FLOOR = 16.0  # log-probs more than this below the top one are not resolved


def row_width(n_vocab: int) -> int:
    """uint16 entries per row: 4 for the two floats, the vocabulary, padded to an even count."""
    return 2 * ((n_vocab + 1) // 2) + 4


def scored_per_chunk(n_ctx: int) -> int:
    return n_ctx - 1 - n_ctx // 2


def file_bytes(n_ctx: int, n_vocab: int, n_chunk: int) -> int:
    """The exact size of a file with these dimensions."""
    return (HEADER.size + 4 * n_chunk * n_ctx
            + 2 * n_chunk * scored_per_chunk(n_ctx) * row_width(n_vocab))


@dataclass
class Header:
    n_ctx: int
    n_vocab: int
    n_chunk: int
    tokens: np.ndarray  # int32 [n_chunk, n_ctx]

    @property
    def rows_per_chunk(self) -> int:
        return scored_per_chunk(self.n_ctx)

    @property
    def chunk_offset(self) -> int:
        return HEADER.size + 4 * self.n_chunk * self.n_ctx

    @property
    def chunk_bytes(self) -> int:
        return 2 * self.rows_per_chunk * row_width(self.n_vocab)


def encode_rows(logits: np.ndarray) -> np.ndarray:
    """Quantized log-prob rows (uint16 [rows, nv]) from raw float32 logits [rows, n_vocab]."""
    x = np.ascontiguousarray(logits, dtype=np.float32)
    rows, n_vocab = x.shape
    top = x.max(axis=1)
    low = np.maximum(x.min(axis=1), top - np.float32(LOG_PROB_FLOOR))
    # expf() values added one by one in double, in vocabulary order. glibc's expf is correctly
    # rounded, numpy's float32 exp is not always (1 ulp): exp in double rounded to float32 is.
    # cumsum adds sequentially (a pairwise sum differs in the last bits). Measured: without both,
    # 4 of 508 rows' min_log_prob differ from llama-perplexity's by one float32 ulp.
    exps = np.exp((x - top[:, None]).astype(np.float64)).astype(np.float32)
    sum_exp = np.cumsum(exps, axis=1, dtype=np.float64)[:, -1]
    log_sum_exp = np.log(sum_exp).astype(np.float32)
    min_log_prob = (low - top) - log_sum_exp
    scale = (top - low) / np.float32(65535)
    out = np.zeros((rows, row_width(n_vocab)), dtype=np.uint16)
    head = np.stack([scale, min_log_prob], axis=1).astype("<f4")
    out[:, :4] = head.view("<u2").reshape(rows, 4)
    nonzero = scale != 0
    inv = np.zeros_like(scale)
    inv[nonzero] = np.float32(1) / scale[nonzero]
    # nearest_int(): round half to even through the float's mantissa; the int is stored in a
    # uint16, so (as in C) it wraps rather than saturates.
    q = np.rint(inv[:, None] * (x - low[:, None])).astype(np.int64)
    q = np.where((x > low[:, None]) & nonzero[:, None], q, 0)
    out[:, 4:4 + n_vocab] = q.astype(np.uint16)
    return out


def decode_rows(rows: np.ndarray, n_vocab: int) -> np.ndarray:
    """log p (float32 [rows, n_vocab]) as kl_divergence() reads it: scale*q + min_log_prob."""
    head = np.ascontiguousarray(rows[:, :4]).view("<f4")
    scale, min_log_prob = head[:, 0:1], head[:, 1:2]
    return scale * rows[:, 4:4 + n_vocab].astype(np.float32) + min_log_prob


def read_header(path: Path) -> Header:
    """The header and tokens, checked: the magic, positive sizes, and the file's length equal to
    what those sizes take (a truncated or padded file is refused). Raises ValueError."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(HEADER.size)
        if len(raw) < HEADER.size:
            raise ValueError(f"{path.name}: {size} bytes, too short for a --kl-divergence-base header")
        magic, n_ctx, n_vocab, n_chunk = HEADER.unpack(raw)
        if magic != MAGIC:
            raise ValueError(f"{path.name}: does not start with {MAGIC!r} (not a llama.cpp "
                             "--kl-divergence-base file)")
        if not (2 <= n_ctx <= 1 << 24 and 1 <= n_vocab <= 1 << 24 and 1 <= n_chunk <= 1 << 24):
            raise ValueError(f"{path.name}: implausible header n_ctx={n_ctx} n_vocab={n_vocab} "
                             f"n_chunk={n_chunk}")
        expected = file_bytes(n_ctx, n_vocab, n_chunk)
        if size != expected:
            raise ValueError(f"{path.name}: {size:,} bytes, but n_ctx={n_ctx} n_vocab={n_vocab} "
                             f"n_chunk={n_chunk} take {expected:,}")
        tokens = np.frombuffer(f.read(4 * n_chunk * n_ctx), dtype="<i4").reshape(n_chunk, n_ctx)
    if tokens.min() < 0 or tokens.max() >= n_vocab:
        raise ValueError(f"{path.name}: token ids outside 0..{n_vocab - 1}")
    return Header(n_ctx=n_ctx, n_vocab=n_vocab, n_chunk=n_chunk, tokens=tokens)


def read_chunk(path: Path, header: Header, index: int) -> np.ndarray:
    """Chunk `index`'s rows, uint16 [rows_per_chunk, nv] (the header has checked the length)."""
    if not 0 <= index < header.n_chunk:
        raise IndexError(f"chunk {index} of {header.n_chunk}")
    with open(path, "rb") as f:
        f.seek(header.chunk_offset + index * header.chunk_bytes)
        data = f.read(header.chunk_bytes)
    return np.frombuffer(data, dtype="<u2").reshape(header.rows_per_chunk, row_width(header.n_vocab))


class Writer:
    """Writes a file to `path` + ".part" and renames it into place on commit(); a writer closed
    without commit() (an error, a cancel) removes the part file, so a reader never sees half."""

    def __init__(self, path: Path, *, n_ctx: int, n_vocab: int, tokens: np.ndarray):
        tokens = np.asarray(tokens, dtype="<i4")
        if tokens.ndim != 2 or tokens.shape[1] != n_ctx:
            raise ValueError(f"tokens must be [n_chunk, {n_ctx}], got {tokens.shape}")
        self.path, self.n_ctx, self.n_vocab = Path(path), n_ctx, n_vocab
        self.n_chunk, self.written = tokens.shape[0], 0
        self.part = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
        self.file = open(self.part, "wb")
        self.file.write(HEADER.pack(MAGIC, n_ctx, n_vocab, self.n_chunk))
        self.file.write(tokens.tobytes())

    def write_chunk(self, rows: np.ndarray) -> None:
        expected = (scored_per_chunk(self.n_ctx), row_width(self.n_vocab))
        if rows.shape != expected or rows.dtype != np.uint16:
            raise ValueError(f"a chunk is uint16 {expected}, got {rows.dtype} {rows.shape}")
        self.file.write(rows.astype("<u2", copy=False).tobytes())
        self.written += 1

    def commit(self) -> int:
        if self.written != self.n_chunk:
            raise ValueError(f"{self.written} of {self.n_chunk} chunks written")
        self.file.close()
        os.replace(self.part, self.path)
        return self.path.stat().st_size

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
            self.part.unlink(missing_ok=True)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
