"""Importance-matrix jobs on a real worker, and GGUF jobs that use a matrix for the low-bit types
llama.cpp refuses without one, by both of the GGUF job's paths.

`made` runs three jobs once: an imatrix job on the demo GGUF (SmolLM2-135M Q4_1) over 4 chunks ×
128 tokens of WikiText-2 valid (a catalog dataset), one GGUF job making IQ2_XXS, IQ3_XXS, IQ1_S
and Q2_K_S from the demo with that catalog matrix, and an imatrix job on a text too short for one
chunk. `from_hf` runs one GGUF job the other way: an HF input (a tiny random Llama whose matrices
are 256-multiples, so IQ2_XS really applies; the demo's 576 falls back) with a matrix made in the
job from 2 × 128 tokens. Each test checks one property of what they left. Most of the module's
time is llama-quantize's IQ2_XXS / IQ3_XXS / IQ1_S lattice searches on the demo.
"""

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from jobs import llama_tools
from jobs.models import Job, Worker
from jobs.services import job_submit
from tests.support.processes import WIKITEXT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CHUNKS, CONTEXT = 4, 128
IQ_TYPES = ["IQ2_XXS", "IQ3_XXS", "IQ1_S", "Q2_K_S"]
# Tensor types llama-quantize (this vendor/llama.cpp) gave the demo with an imatrix, measured by
# running the tool by hand: 576-wide matrices can't hold 256-blocks and fall back (iq* -> iq4_nl,
# q2_K -> q4_0, tensor_type_fallback); the 30 ffn_down (1536 wide) keep the low-bit type, three
# of them bumped to q2_K / q4_K by use_more_bits; token_embd (tied output) q8_0; norms f32.
EXPECTED_TYPES = {
    "IQ2_XXS": {"F32": 61, "Q8_0": 1, "IQ4_NL": 150, "Q4_0": 30, "Q2_K": 3, "IQ2_XXS": 27},
    "IQ3_XXS": {"F32": 61, "Q8_0": 1, "IQ4_NL": 180, "IQ3_XXS": 30},
    "IQ1_S": {"F32": 61, "Q8_0": 1, "IQ4_NL": 150, "Q4_0": 30, "Q2_K": 3, "IQ1_S": 27},
    "Q2_K_S": {"F32": 61, "Q8_0": 1, "Q4_0": 180, "Q4_K": 3, "Q2_K": 27},
}
HF_CHUNKS = 2
# The tiny Llama (tiny_llama_256_hf: width 256, FFN 512, 2 layers, 4 heads / 2 KV heads, tied
# embeddings) as llama.cpp's convert_hf_to_gguf.py writes it (F16 matrices, F32 norms) and as
# llama-quantize IQ2_XS makes it from that F16 with a 2 × 128 llama-imatrix matrix of WikiText-2
# valid, measured by running both tools by hand (jobs.llama_tools.convert_hf, then
# `llama-imatrix -m model-F16.gguf -f valid.txt --chunks 2 -c 128`, `llama-quantize --imatrix
# imatrix.gguf model-F16.gguf out.gguf IQ2_XS 2`): attn_q, attn_k, attn_output, ffn_gate, ffn_up,
# ffn_down of both layers IQ2_XS; attn_v q2_K (n_gqa 2 < 4); no ffn_down bumped (2 / 8 rounds
# to 0); the tied token_embd q5_K (the output rule for IQ2 file types); the 5 norms f32.
HF_INTERMEDIATE_TYPES = {"F16": 15, "F32": 5}
HF_IQ2_XS_TYPES = {"F32": 5, "Q5_K": 1, "IQ2_XS": 12, "Q2_K": 2}


def wait_final(job: Job, timeout: float) -> Job:
    wait_until(lambda: Job.objects.get(pk=job.pk).is_final, timeout, interval=0.5,
               what=f"job {job.pk} to finish")
    job.refresh_from_db()
    return job


def keep(path: Path, folder: Path) -> str:
    """A hard link outside the catalog, so the file outlives the rows the next test flushes."""
    target = folder / f"{os.urandom(4).hex()}-{path.name}"
    os.link(path, target)
    return str(target)


def tensor_types(path: str) -> tuple[Counter, dict]:
    """Tensor type counts and quantize.* metadata, by the catalog's own header reader (0.1 s a
    file; gguf.GGUFReader spends ~2 s on the 49152-entry vocabulary arrays)."""
    from gguf import GGMLQuantizationType

    from formats.gguf_header import read_gguf_header_from_path

    header = read_gguf_header_from_path(path)
    return (Counter(GGMLQuantizationType(t.ggml_type).name for t in header.tensors),
            {k: v for k, v in header.metadata.items() if k.startswith("quantize.")})


@pytest.fixture(scope="module")
def made(django_db_setup, django_db_blocker, celery_worker, tmp_path_factory):
    """Runs the module's three jobs once; returns what they left as plain data."""
    from accounts.models import Team
    from catalog.datasets import dataset_upload
    from catalog.imports.demo import demo_model_import

    folder = tmp_path_factory.mktemp("imatrix-kept")
    short = folder / "short.txt"
    short.write_text("Too short for a chunk of 128 tokens.\n")
    with django_db_blocker.unblock():
        team = Team.objects.create(name="imatrix")
        demo = demo_model_import(team=team).variants.get()
        valid = dataset_upload(team_id=team.pk, user_id=None, path=str(WIKITEXT / "valid.txt"),
                               name="wikitext-2 valid")
        tiny = dataset_upload(team_id=team.pk, user_id=None, path=str(short), name="short")
        wait_until(lambda: Worker.objects.filter(hostname__startswith="test-worker@").exists(), 10,
                   what="the worker's heartbeat row")
        job = wait_final(job_submit(team=team, user=None, method="imatrix", input_variant=demo,
                                    params={"dataset": valid.pk, "chunks": CHUNKS,
                                            "context": CONTEXT}), 300)
        assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-3000:]
        [matrix] = job.outputs.all()
        [matrix_file] = matrix.files.all()
        out = {"demo": demo.pk, "dataset": {"id": valid.pk, "sha256": valid.sha256,
                                            "path": str(valid.absolute_path)},
               "imatrix": {"pk": matrix.pk, "parent": matrix.parent_id, "format": matrix.format,
                           "quant_type": matrix.quant_type, "params": matrix.params,
                           "tool_versions": matrix.tool_versions, "files": [matrix_file.path],
                           "path": keep(matrix_file.absolute_path, folder),
                           "progress": job.progress}}
        quantized = wait_final(job_submit(team=team, user=None, method="gguf", input_variant=demo,
                                          params={"types": IQ_TYPES, "imatrix": matrix.pk}), 900)
        assert quantized.status == Job.Status.SUCCEEDED, (quantized.error
                                                          + quantized.log_tail[-3000:])
        out["quantized"] = {}
        for v in quantized.outputs.all():
            [f] = v.files.all()
            out["quantized"][v.quant_type] = {"parent": v.parent_id, "params": v.params,
                                              "path": keep(f.absolute_path, folder)}
        failed = wait_final(job_submit(team=team, user=None, method="imatrix", input_variant=demo,
                                       params={"dataset": tiny.pk, "chunks": 2, "context": 128}),
                            120)
        out["too_short"] = {"status": failed.status, "error": failed.error,
                            "outputs": failed.outputs.count()}
    return out


@pytest.fixture(scope="module")
def from_hf(django_db_setup, django_db_blocker, celery_worker, tiny_llama_256_hf,
            tmp_path_factory):
    """One GGUF job on an HF variant: F16 intermediate, a matrix made on it in the job from
    2 × 128 tokens of WikiText-2 valid, then IQ2_XS; returns what it left as plain data."""
    from accounts.models import Team
    from catalog.datasets import dataset_upload
    from catalog.imports import import_hf_folder

    folder = tmp_path_factory.mktemp("imatrix-hf-kept")
    with django_db_blocker.unblock():
        team = Team.objects.create(name="imatrix-hf")
        # The catalog's HF import (a new model, its config read from config.json for the job's
        # estimate), as tests/jobs/test_hf_methods_end_to_end.py imports tiny_chat_hf.
        hf = import_hf_folder(team_id=team.pk, user_id=None, folder=str(tiny_llama_256_hf),
                              name="tiny-llama-256")
        valid = dataset_upload(team_id=team.pk, user_id=None, path=str(WIKITEXT / "valid.txt"),
                               name="wikitext-2 valid")
        wait_until(lambda: Worker.objects.filter(hostname__startswith="test-worker@").exists(), 10,
                   what="the worker's heartbeat row")
        job = wait_final(job_submit(team=team, user=None, method="gguf", input_variant=hf,
                                    params={"types": ["IQ2_XS"], "imatrix_dataset": valid.pk,
                                            "imatrix_chunks": HF_CHUNKS,
                                            "imatrix_context": CONTEXT}), 300)
        assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-3000:]
        out = {"hf": hf.pk, "job": {"progress": job.progress, "stage": job.stage},
               "dataset": {"id": valid.pk, "sha256": valid.sha256,
                           "path": str(valid.absolute_path)}, "outputs": {}}
        for v in job.outputs.all():
            [f] = v.files.all()
            out["outputs"][v.quant_type] = {"pk": v.pk, "format": v.format, "parent": v.parent_id,
                                            "params": v.params, "file": f.path,
                                            "path": keep(f.absolute_path, folder)}
    return out

def test_imatrix_job_registers_a_matrix_with_lineage(made):
    m = made["imatrix"]
    assert (m["format"], m["quant_type"]) == ("imatrix", "imatrix")
    assert m["parent"] == made["demo"]
    assert m["files"] == ["imatrix.gguf"]
    assert m["progress"] == 100
    assert m["tool_versions"]["llama.cpp"] == llama_tools.version()
    p = m["params"]
    assert p["dataset"] == {"id": made["dataset"]["id"], "name": "wikitext-2 valid",
                            "sha256": made["dataset"]["sha256"]}
    # WikiText-2 valid holds far more than 4 × 128 tokens: all four chunks were used, and the
    # count comes from the file (imatrix.chunk_count), as does the chunk size.
    assert (p["chunks_requested"], p["chunks_used"], p["chunk_size"], p["context"]) == (4, 4, 128, 128)
    # llama-imatrix's "Final estimate: PPL" over those chunks (measured by hand: 16.07 for the
    # same 4 × 128 tokens of the demo Q4_1).
    assert p["calibration_perplexity"] == pytest.approx(16.0747, abs=1e-3)
    assert "Q4_1" in p["warning"]  # a quantized input measures quantized activations


def test_matrix_equals_llama_imatrix_run_by_hand(made, tmp_path):
    """The job's arguments (model, text, chunks, context) are the ones the tool needs: running
    llama-imatrix by hand on the same file and text gives the same sums, value for value."""
    import gguf

    from catalog.services import demo_model_path

    by_hand = tmp_path / "by-hand.gguf"
    llama_tools.run("llama-imatrix", [
        "-m", str(demo_model_path()), "-f", made["dataset"]["path"], "-o", str(by_hand),
        "--chunks", str(CHUNKS), "-c", str(CONTEXT), "-t", str(os.cpu_count() or 1)])
    ours = {t.name: np.array(t.data) for t in gguf.GGUFReader(made["imatrix"]["path"]).tensors}
    theirs = {t.name: np.array(t.data) for t in gguf.GGUFReader(str(by_hand)).tensors}
    assert len(ours) == 420  # in_sum2 and counts for each of the 210 weight matrices
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert np.array_equal(ours[name], theirs[name]), name


def test_iq_types_with_the_catalog_matrix_have_iq_tensors(made):
    assert set(made["quantized"]) == set(IQ_TYPES)
    for qtype, out in made["quantized"].items():
        counts, meta = tensor_types(out["path"])
        assert dict(counts) == EXPECTED_TYPES[qtype], qtype
        # llama-quantize records the matrix it used (quantize.cpp LLM_KV_QUANTIZE_IMATRIX_*).
        assert meta["quantize.imatrix.file"].endswith("imatrix.gguf"), qtype
        assert meta["quantize.imatrix.dataset"] == made["dataset"]["path"], qtype
        assert meta["quantize.imatrix.chunks_count"] == CHUNKS, qtype
        assert out["parent"] == made["demo"]
        assert out["params"]["imatrix"]["variant"] == made["imatrix"]["pk"]
        assert out["params"]["imatrix"]["chunks_used"] == CHUNKS


def test_an_iq_output_loads_and_generates(made):
    from llama_cpp import Llama

    llm = Llama(model_path=made["quantized"]["IQ3_XXS"]["path"], n_ctx=128, n_threads=2, seed=1,
                verbose=False)
    out = llm("The capital of France is", max_tokens=6, temperature=0)
    assert out["choices"][0]["text"].strip()


def test_a_text_too_short_for_one_chunk_fails_clearly(made):
    failed = made["too_short"]
    assert failed["status"] == Job.Status.FAILED
    assert failed["outputs"] == 0
    assert "too short" in failed["error"]
    assert "you need at least 256 tokens for a context of 128 tokens" in failed["error"]


def test_an_hf_job_registers_intermediate_matrix_and_iq2_xs(from_hf):
    outs = from_hf["outputs"]
    assert (from_hf["job"]["progress"], from_hf["job"]["stage"]) == (100, "done")
    assert {q: o["format"] for q, o in outs.items()} == {"F16": "gguf", "imatrix": "imatrix",
                                                        "IQ2_XS": "gguf"}
    intermediate, matrix, iq2 = outs["F16"], outs["imatrix"], outs["IQ2_XS"]
    assert intermediate["parent"] == from_hf["hf"]
    assert intermediate["params"]["intermediate_of"] == ["IQ2_XS"]
    # The matrix was measured on the intermediate, and the IQ2_XS file was quantized from it.
    assert matrix["parent"] == intermediate["pk"]
    assert iq2["parent"] == intermediate["pk"]
    assert matrix["file"] == "imatrix.gguf"
    p = matrix["params"]
    assert p["dataset"] == {"id": from_hf["dataset"]["id"], "name": "wikitext-2 valid",
                            "sha256": from_hf["dataset"]["sha256"]}
    assert (p["chunks_requested"], p["chunks_used"], p["chunk_size"], p["context"]) == (
        HF_CHUNKS, HF_CHUNKS, CONTEXT, CONTEXT)
    assert iq2["params"]["imatrix"] == {"variant": None, "made_in_job": True,
                                        "dataset": p["dataset"], "chunks_used": HF_CHUNKS,
                                        "context": CONTEXT}


def test_the_hf_iq2_xs_file_has_the_types_llama_quantize_gives_by_hand(from_hf):
    counts, _ = tensor_types(from_hf["outputs"]["F16"]["path"])
    assert dict(counts) == HF_INTERMEDIATE_TYPES
    counts, meta = tensor_types(from_hf["outputs"]["IQ2_XS"]["path"])
    assert dict(counts) == HF_IQ2_XS_TYPES
    assert meta["quantize.imatrix.file"].endswith("imatrix.gguf")
    assert meta["quantize.imatrix.dataset"] == from_hf["dataset"]["path"]
    assert meta["quantize.imatrix.chunks_count"] == HF_CHUNKS


def test_the_hf_iq2_xs_file_loads_in_llama_cpp(from_hf):
    from llama_cpp import Llama

    # logits_all: llama-cpp-python keeps eval()'s logits in `scores` only then.
    llm = Llama(model_path=from_hf["outputs"]["IQ2_XS"]["path"], n_ctx=128, n_threads=2, seed=1,
                logits_all=True, verbose=False)
    assert (llm.n_embd(), llm.n_vocab()) == (256, 49152)
    tokens = llm.tokenize(b"The capital of France is")
    llm.eval(tokens)
    logits = llm.scores[len(tokens) - 1]
    assert logits.shape == (49152,) and np.isfinite(logits).all() and logits.std() > 0
