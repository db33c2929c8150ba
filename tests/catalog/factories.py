"""Builders for catalog test data: a tiny real HF Llama model, crafted safetensors files and
hostile archives, and upload helpers for the test client."""

import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

TINY_LLAMA = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, vocab_size=256)


def tiny_hf_model(folder: Path, *, max_shard_size: str | None = None) -> int:
    """Saves a randomly initialised tiny Llama (safetensors) into `folder`; returns its exact
    parameter count as torch counts it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**TINY_LLAMA))
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(folder, safe_serialization=True, **kwargs)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny llama\nFor tests.\n")
    return model.num_parameters()


def uploads(folder: Path) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], tuple[int, int]]], *,
                      data_len: int, header_len: int | None = None) -> bytes:
    """A safetensors file with an arbitrary (possibly hostile) header."""
    header = json.dumps({name: {"dtype": d, "shape": s, "data_offsets": list(o)}
                         for name, (d, s, o) in tensors.items()}).encode()
    length = len(header) if header_len is None else header_len
    return struct.pack("<Q", length) + header + b"\0" * data_len


def zip_bytes(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return buf.getvalue()


def tar_gz_of(folder: Path, *, arcname: str = "tiny-llama") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(folder, arcname=arcname)
    return buf.getvalue()


def tar_with_device() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("model/null")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tf.addfile(info)
    return buf.getvalue()
