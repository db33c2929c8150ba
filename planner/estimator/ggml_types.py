"""ggml tensor types: block size and bytes per block.

Source: llama.cpp `ggml/src/ggml.c` (`type_traits[]`: `.blck_size`, `.type_size`) and the
`static_assert(sizeof(block_*) == ...)` lines in `ggml/src/ggml-common.h`, as vendored in
llama-cpp-python 0.3.36. A tensor whose rows have `ne0` elements takes
`ne0 / blck_size * type_size` bytes per row (`ggml_row_size`).
"""

from __future__ import annotations

# name -> (elements per block, bytes per block)
GGML_TYPE_SIZES: dict[str, tuple[int, int]] = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q4_0": (32, 18),      # fp16 d + 16 B nibbles
    "Q4_1": (32, 20),      # fp16 d, m + 16 B nibbles
    "Q5_0": (32, 22),      # fp16 d + 4 B high bits + 16 B nibbles
    "Q5_1": (32, 24),
    "Q8_0": (32, 34),      # fp16 d + 32 int8
    "Q2_K": (256, 84),
    "Q3_K": (256, 110),
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),
    "Q6_K": (256, 210),
    "IQ2_XXS": (256, 66),
    "IQ2_XS": (256, 74),
    "IQ2_S": (256, 82),
    "IQ3_XXS": (256, 98),
    "IQ3_S": (256, 110),
    "IQ1_S": (256, 50),
    "IQ1_M": (256, 56),
    "IQ4_NL": (32, 18),
    "IQ4_XS": (256, 136),
    "MXFP4": (32, 17),     # E8M0 scale + 16 B of E2M1 nibbles (block_mxfp4)
    "NVFP4": (64, 36),     # 4 UE4M3 scales (one per 16) + 32 B of E2M1 nibbles (block_nvfp4)
}


def block_size(type_name: str) -> int:
    return GGML_TYPE_SIZES[type_name][0]


def bits_per_weight(type_name: str) -> float:
    """8 × type_size / blck_size, e.g. Q4_K = 8·144/256 = 4.5 bpw (ggml.c `ggml_type_sizef`)."""
    blck, size = GGML_TYPE_SIZES[type_name]
    return 8.0 * size / blck


def tensor_bytes(type_name: str, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor stored as `type_name`; shape is in ggml order (ne0 = row length).

    Mirrors `ggml_nbytes` for contiguous tensors: (ne0 / blck) * type_size * ne1 * ne2 ...
    Requires ne0 % blck == 0 (the quantizer falls back to another type otherwise).
    """
    blck, size = GGML_TYPE_SIZES[type_name]
    n_rows = 1
    for dim in shape[1:]:
        n_rows *= dim
    return (shape[0] // blck) * size * n_rows
