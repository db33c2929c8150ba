"""KL needs the reference and the target to tokenize the dataset to the same ids.

1. An HF variant made from the demo GGUF (and what bitsandbytes/GPTQ save from it) tokenizes
   WikiText-2 exactly as llama.cpp tokenizes it with the GGUF: transformers' own GGUF tokenizer
   misses llama.cpp's "smollm" digit split and first differs at " ½" (test.txt, "4 ½ m").
2. Where the tokenizers truly differ, the evaluation still succeeds: perplexity, speed and memory
   are recorded, and the "kl" evaluation says why it was skipped — on the comparison page too.
"""

import json
import os
from pathlib import Path

import pytest

from jobs.methods import hf_common
from jobs.methods.evaluate import tokens_differ
from engines import open_engine
from formats.dequantize import gguf_tokenizer
from tests.support.artifacts import register_copy
from tests.support.fixtures import PASSWORD
from tests.support.processes import WIKITEXT

pytestmark = pytest.mark.slow
# Special-token names and \p{N} characters other than ASCII digits, in plain text.
EDGES = "It ends with <|im_end|> here.\n 4 ½ m, 3 ² and Ⅻ; x 12345 y"


def weights_with_tokenizer(model_folder: Path, out: Path, write_tokenizer) -> Path:
    """`model_folder`'s config and weights (hard links) with the tokenizer `write_tokenizer(out)` saves."""
    out.mkdir()
    for path in model_folder.iterdir():
        if not path.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            os.link(path, out / path.name)
    write_tokenizer(out)
    return out


@pytest.fixture(scope="module")
def llama(demo_gguf):
    return open_engine("gguf", [demo_gguf], n_ctx=128, threads=2)


def test_hf_variants_from_the_demo_gguf_tokenize_wikitext_like_it(demo_gguf, tiny_chat_hf,
                                                                   llama, tmp_path):
    text = (WIKITEXT / "test.txt").read_text(encoding="utf-8")
    expected = llama.tokenize(text)
    assert len(expected) == 312_144  # llama.cpp's ids for the whole of WikiText-2 test

    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(demo_gguf.parent, gguf_file=demo_gguf.name)
    ids = plain(text, add_special_tokens=False)["input_ids"]
    first = next(i for i, (a, b) in enumerate(zip(ids, expected)) if a != b)
    assert (first, plain.convert_ids_to_tokens(ids[first:first + 2])) == (245_502, ["ĠÂ", "½"])

    hf = weights_with_tokenizer(tiny_chat_hf, tmp_path / "hf",
                                lambda out: gguf_tokenizer(demo_gguf).save_pretrained(out))
    quantized = weights_with_tokenizer(tiny_chat_hf, tmp_path / "nf4",
                                       lambda out: hf_common.save_tokenizer(hf, out))
    for folder in (hf, quantized):
        engine = open_engine("hf", sorted(folder.iterdir()), n_ctx=128, threads=2)
        assert engine.tokenize(text) == expected, folder.name
        assert tokens_differ(llama, engine, text[:20_000]) is None, folder.name
        assert tokens_differ(llama, engine, EDGES) is None, folder.name
        assert engine.bos_id is llama.bos_id is None  # SmolLM2 adds no BOS


@pytest.fixture
def lowercasing(tiny_chat_hf, tmp_path) -> Path:
    """The tiny random Llama with a tokenizer that lowercases the text first: the same vocabulary,
    other ids for any text with a capital letter."""
    def write(out: Path) -> None:
        for path in tiny_chat_hf.iterdir():
            if path.name.startswith(("tokenizer", "chat_template")):
                os.link(path, out / path.name)
        (out / "tokenizer.json").unlink()
        spec = json.loads((tiny_chat_hf / "tokenizer.json").read_text())
        spec["normalizer"] = {"type": "Lowercase"}
        (out / "tokenizer.json").write_text(json.dumps(spec))

    return weights_with_tokenizer(tiny_chat_hf, tmp_path / "lowercasing", write)


def test_other_tokenizer_skips_kl_keeps_the_rest_and_the_page_says_why(client, teams, demo_variant,
                                                                        lowercasing):
    from django.utils.html import escape

    from jobs import runner
    from jobs.models import Job
    from jobs.services import job_submit

    target = register_copy(model=demo_variant.model, folder=lowercasing, format="hf",
                           quant_type="F32", parent=demo_variant)
    job = job_submit(team=teams["red"], user=None, method="evaluate", input_variant=target,
                     enqueue=False, params={"dataset_path": str(WIKITEXT / "test.txt"),
                                            "mode": "quick", "context": 128, "chunks": 2,
                                            "prompt_tokens": 32, "gen_tokens": 8})
    assert job.params["reference"] == demo_variant.pk  # the lineage root, the demo GGUF
    runner.execute(job_id=job.pk, worker="kl-tests@local")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, f"{job.error}\n{job.log_tail[-3000:]}"
    found = {e.kind: e for e in job.evaluations.all()}
    assert set(found) == {"perplexity", "speed", "memory", "kl"}
    assert found["perplexity"].metrics["tokens_scored"] == 2 * 63
    assert found["speed"].metrics["decode_tokens_per_s"] > 0
    assert found["memory"].metrics["peak_rss_bytes"] > 100 * 2**20
    kl = found["kl"]
    assert list(kl.metrics) == ["skipped"]
    # " \n = Robert": llama.cpp's 6356 "ĠRobert", the lowercasing tokenizer's 651 "Ġrobert".
    assert kl.metrics["skipped"] == ("tokenizers differ: other token ids for the dataset's first "
                                     "20,000 characters (from id 2: 6356 in the reference, 651 here)")
    assert (kl.method["reference_variant"], kl.method["reference_engine"]["engine"],
            kl.method["engine"]["engine"]) == (demo_variant.pk, "llama.cpp", "transformers")
    target.refresh_from_db()
    assert target.metrics["kl_skipped"] == kl.metrics["skipped"]
    assert "kl_divergence" not in target.metrics and target.perplexity is not None

    client.login(username="alice", password=PASSWORD)
    for sort in ("kl", "-kl", "top1"):
        page = client.get(f"/catalog/models/{target.model_id}/compare/?sort={sort}")
        assert page.status_code == 200, sort
        html = page.content.decode()
        row = html[html.index(f'id="compare-{target.pk}"'):]
        assert row.index(f"KL skipped: {escape(kl.metrics['skipped'])}") < row.index("</tr>"), sort
