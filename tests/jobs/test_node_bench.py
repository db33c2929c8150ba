"""The node measurement (jobs/node_bench.py): llama-bench's JSON read from a real run, the figures of a
real GGUF file, and a real worker filling its Worker row at start and again on the Workers page's
request.

SmolLM2-135M-Instruct (the demo model; config: hidden 576, 30 layers, 9 heads, 3 KV heads × 64,
intermediate 1536, vocabulary 49,152, tied embeddings) multiplies per prompt token
30 × (576² + 2 × 576 × 192 + 576² + 3 × 576 × 1536) = 30 × 3,538,944 = 106,168,320 weights.
"""

from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from formats.gguf_header import read_gguf_header_from_path
from jobs import node_bench
from jobs.models import Worker
from tests.support.fixtures import start_worker_and_wait, stop_worker_and_forget
from tests.support.processes import wait_until


def test_llama_bench_json_from_a_real_run(demo_gguf):
    out = node_bench.run_llama_bench(demo_gguf, threads=2, n_prompt=32, n_gen=8, repetitions=1)
    got = node_bench.parse_llama_bench(out)
    assert (got["n_prompt"], got["n_gen"], got["threads"], got["repetitions"]) == (32, 8, 2, 1)
    assert got["pp_tokens_per_s"] > 0 and got["tg_tokens_per_s"] > 0
    # llama.cpp's own count of the file's tensor bytes is the figure the planner reads per token
    # (tied embeddings: every tensor is read once per decoded token)
    figures = node_bench.file_figures(demo_gguf, 32)
    assert got["model_size"] == figures["bytes_per_token"] == figures["file_bytes"]


def test_parse_refuses_output_without_tests():
    with pytest.raises(node_bench.NodeBenchError):
        node_bench.parse_llama_bench("llama_model_load: error loading model")
    with pytest.raises(node_bench.NodeBenchError):
        node_bench.parse_llama_bench("[]")


def test_file_figures_of_the_demo_model(demo_gguf):
    """FLOP per prompt token at 32 tokens: 2 × 106,168,320 + causal attention 2 × 30 × 32 × 576."""
    figures = node_bench.file_figures(demo_gguf, 32)
    assert figures["matmul_params"] == 106_168_320
    assert figures["flops_per_prompt_token"] == 2 * 106_168_320 + 2 * 30 * 32 * 576
    header = read_gguf_header_from_path(demo_gguf)
    assert figures["file_bytes"] == sum(t.nbytes for t in header.tensors)


def test_file_figures_count_a_moes_experts_by_top_k(demo_gguf, tmp_path):
    """A 2-layer MoE written as F16 (2-D and 3-D tensors 2 B a value, norms F32): hidden 64, 4 heads and
    2 KV heads of 16, 4 experts of 32, 2 per token, the demo's 49,152-token vocabulary, tied embedding.
    Per layer: norms 2 × 256 B, q and o 2 × 4,096 × 2 B, k and v 2 × (32 × 64) × 2 B, router 4 × 64 × 2 B
    = 25,600 B; experts 3 × 4 × 32 × 64 × 2 B = 49,152 B. Embedding 49,152 × 64 × 2 B = 6,291,456 B,
    output norm 256 B. A decode step reads everything but half the experts: 6,291,456 + 256 +
    2 × 25,600 + 2 × 49,152 / 2 = 6,392,064 B; a 32-token prompt reaches every expert (1 − ½³² of
    them): 6,441,216 B. Multiplied per token: 2 × (4,096 + 2,048 + 2,048 + 4,096 + 256) + 2 × 3 × 8,192 / 2
    = 49,664, of which experts 24,576."""
    path = tmp_path / "moe.gguf"
    meta = node_bench.llama_metadata(hidden=64, layers=2, heads=4, kv_heads=2, ffn=32, context=256) | {
        "expert_count": 4, "expert_used_count": 2}
    node_bench.write_random_gguf(path, arch="llama", metadata=meta, tokenizer_gguf=demo_gguf,
                                 tensors=node_bench.moe_tensors(hidden=64, layers=2, heads=4, kv_heads=2, experts=4,
                                                                expert_ffn=32, vocab=49_152))
    figures = node_bench.file_figures(path, 32)
    assert figures["bytes_per_token"] == 6_392_064
    assert figures["bytes_per_prompt"] == 6_441_216
    assert figures["matmul_params"] == 49_664
    assert figures["expert_flops_per_prompt_token"] == 2 * 24_576
    assert figures["flops_per_prompt_token"] == 2 * 49_664 + 2 * 2 * 32 * 64
    assert (figures["moe_layers"], figures["experts"], figures["experts_per_token"]) == (2, 4, 2)


@pytest.fixture(scope="module")
def measuring_worker(django_db_setup, django_db_blocker, redis_server, session_dir):
    hostname = "bench-worker@%h"
    process = start_worker_and_wait(django_db_blocker, session_dir, hostname, WORKER_NODE_BENCH="1",
                                    WORKER_NODE_BENCH_SCHEMES="Q4_0")
    yield process
    stop_worker_and_forget(django_db_blocker, process, hostname)


def _finished(after=None):
    rows = Worker.objects.filter(hostname__startswith="bench-worker@", measurements__status__in=["done", "failed"])
    if after is not None:
        rows = rows.filter(measured_at__gt=after)
    return rows.first()


@pytest.mark.django_db(transaction=True)
def test_worker_start_fills_its_row_and_the_workers_page_remeasures(measuring_worker, client, teams):
    # the first run builds the random-weight bench model (once per machine), then measures
    wait_until(lambda: _finished() is not None, 600, interval=1, what="the node measurement at worker start")
    worker = _finished()
    m = worker.measurements
    assert m["status"] == "done", m.get("error")
    assert worker.measured_at <= timezone.now()
    assert worker.ram_bytes == psutil.virtual_memory().total   # the heartbeat's host RAM
    [row] = m["llama_bench"]
    assert row["scheme"] == "Q4_0" and row["tg_tokens_per_s"] > 0 and row["pp_tokens_per_s"] > 0
    assert row["n_prompt"] == node_bench.PROMPT_TOKENS and row["n_gen"] == node_bench.GEN_TOKENS
    assert m["bandwidth"]["bytes_per_s"] > 0
    cond = m["conditions"]
    assert cond["threads"] == 2 and cond["cores"] >= 1 and isinstance(cond["quiet"], bool)
    assert "load_before" in cond and "load_after" in cond
    depth = m["decode_depth"]
    assert {(r["n_depth"], r["flash_attn"]) for r in depth["rows"]} == {
        (d, fa) for d in node_bench.DECODE_DEPTHS for fa in node_bench.DEPTH_FLASH_ATTN}
    assert depth["scheme"] == "Q4_0" and depth["n_layers"] == node_bench.BENCH_SHAPE["layers"]
    moe = m["moe"]   # the small MoE beside it: its experts counted by top-k, both tests run
    assert (moe["moe_layers"], moe["experts"], moe["experts_per_token"]) == (8, 16, 4)
    assert moe["tg_tokens_per_s"] > 0 and moe["pp_tokens_per_s"] > 0

    client.force_login(teams["alice"])
    page = client.get("/jobs/workers/").content.decode()
    assert f'data-worker="{worker.hostname}"' in page and f'{row["tg_tokens_per_s"]:.1f}' in page
    assert f'Small MoE, {moe["file"]} (8 layers of 16 experts, 4 per token)' in page
    first = worker.measured_at
    r = client.post(f"/jobs/workers/{worker.pk}/measure")
    assert r.status_code == 302
    wait_until(lambda: _finished(after=first) is not None, 300, interval=1, what="the requested measurement")
    assert _finished(after=first).measurements["status"] == "done"


@pytest.mark.django_db
def test_measure_button_needs_post_and_a_live_worker(client, teams):
    client.force_login(teams["alice"])
    w = Worker.objects.create(hostname="gone@x", last_seen=timezone.now() - timedelta(hours=1))
    assert client.get(f"/jobs/workers/{w.pk}/measure").status_code == 405
    r = client.post(f"/jobs/workers/{w.pk}/measure", follow=True)
    assert "is not alive" in r.content.decode()
    assert client.post("/jobs/workers/999999/measure").status_code == 404


@pytest.mark.django_db
def test_workers_page_shows_a_stored_measurement_with_its_conditions(client, teams):
    client.force_login(teams["alice"])
    Worker.objects.create(hostname="busy@x", last_seen=timezone.now(), measured_at=timezone.now(), measurements={
        "status": "done", "bandwidth": {"bytes_per_s": 12_345_000_000, "method": "numpy copy"},
        "llama_bench": [{"scheme": "Q4_K_M", "pp_tokens_per_s": 210.4, "pp_stddev": 1.2, "tg_tokens_per_s": 71.3,
                         "tg_stddev": 0.4, "bytes_per_token": 151_138_368, "n_prompt": 64, "n_gen": 16}],
        "conditions": {"threads": 2, "cores": 2, "load_before": 3.1, "load_after": 3.9, "quiet": False,
                       "busy_reason": "load average 3.1 before, over 0.5 × 2 cores", "n_prompt": 64, "n_gen": 16},
        "decode_depth": {"file": "node.gguf", "n_layers": 16, "n_heads": 16, "n_kv_heads": 4, "head_dim": 64,
                         "n_gen": 16, "rows": [
                             {"n_depth": 512, "flash_attn": False, "tg_tokens_per_s": 48.25, "tg_stddev": 0.71},
                             {"n_depth": 0, "flash_attn": False, "tg_tokens_per_s": 66.04, "tg_stddev": 0.52}]}})
    html = client.get("/jobs/workers/").content.decode()
    assert "12.3 GB/s" in html and "71.3 ± 0.4" in html and "210.4 ± 1.2" in html
    assert "node.gguf (16 layers × 16 heads (4 KV) × 64)" in html
    assert html.index("66.0 ± 0.5") < html.index("48.3 ± 0.7")   # depth 0 first
    assert "not quiet</strong>: load average 3.1 before" in html
    assert 'action="/jobs/workers/' in html and "Measure busy@x again" in html


def test_per_layer_cost_separates_fixed_time_from_reading():
    """Made-up steps with a 100 µs fixed time per layer and 30 GB/s reads: 16 layers, 150 MB →
    1.6 ms + 5 ms = 6.6 ms (151.515 tok/s); 4 layers, 66 MB → 0.4 ms + 2.2 ms = 2.6 ms (384.615 tok/s)."""
    deep = {"scheme": "Q4_K_M", "n_layers": 16, "bytes_per_token": 150e6, "tg_best_tokens_per_s": 1 / 6.6e-3}
    shallow = {"scheme": "Q4_K_M", "n_layers": 4, "bytes_per_token": 66e6, "tg_best_tokens_per_s": 1 / 2.6e-3}
    assert node_bench.per_layer_cost(deep, shallow)["seconds_per_layer"] == pytest.approx(100e-6, rel=1e-9)
    # a 3.5 ms shallow step makes the fitted fixed time negative (-0.2 ms per layer): the data show no
    # fixed cost, and none is assumed
    shallow["tg_best_tokens_per_s"] = 1 / 3.5e-3
    assert node_bench.per_layer_cost(deep, shallow)["seconds_per_layer"] == 0.0


def test_depth_runs_from_a_real_llama_bench(demo_gguf):
    """tg after 0 and 64 tokens of context (`-d`), flash attention off: one row per depth, with the
    mode and the KV type the attention term's derivation needs."""
    out = node_bench.run_llama_bench_depths(demo_gguf, threads=2, n_gen=4, depths=(0, 64, 0), flash_attn=False,
                                            repetitions=1)
    rows = node_bench.parse_llama_bench_depths(out)
    assert [(r["n_depth"], r["n_gen"], r["flash_attn"], r["type_k"], r["threads"]) for r in rows] == [
        (0, 4, False, "f16", 2), (64, 4, False, "f16", 2)]
    # the shallow test ran before and after the deep one: one row, both samples
    assert [len(r["samples_ts"]) for r in rows] == [2, 1]
    assert all(r["tg_best_tokens_per_s"] == max(r["samples_ts"]) > 0 for r in rows)
    # the demo model's attention shape, from its header (SmolLM2-135M config: 30 layers, 9 heads, 3 KV heads × 64)
    assert node_bench.attention_shape(demo_gguf) == {"n_layers": 30, "n_heads": 9, "n_kv_heads": 3, "head_dim": 64}


def test_depth_parse_refuses_an_unknown_attention_kernel():
    """llama-bench writes flash_attn -1 for `-fa auto`: which kernel ran is then unknown."""
    auto = '[{"n_prompt": 0, "n_gen": 16, "n_depth": 512, "flash_attn": -1, "avg_ts": 50.0, "samples_ts": [50.0]}]'
    with pytest.raises(node_bench.NodeBenchError, match="flash_attn -1"):
        node_bench.parse_llama_bench_depths(auto)
    with pytest.raises(node_bench.NodeBenchError):
        node_bench.parse_llama_bench_depths('[{"n_prompt": 64, "n_gen": 0, "avg_ts": 1.0}]')


# llama-bench -m llama-1024x16-Q4_K_M.gguf -t 1 -p 0 -n 16 -d 0,512 -fa off -r 3 -o json on this machine,
# 2026-12-07 18:35:57 UTC (build 0c1e570; a busy machine, load 6.6), the fields the parser reads
MEASURED_DEPTHS = """[
 {"n_threads": 1, "type_k": "f16", "type_v": "f16", "flash_attn": 0, "n_prompt": 0, "n_gen": 16, "n_depth": 0,
  "avg_ts": 60.948447, "stddev_ts": 3.593352, "samples_ts": [58.2619, 59.5533, 65.0302]},
 {"n_threads": 1, "type_k": "f16", "type_v": "f16", "flash_attn": 0, "n_prompt": 0, "n_gen": 16, "n_depth": 512,
  "avg_ts": 56.296928, "stddev_ts": 0.994818, "samples_ts": [55.7441, 55.7013, 57.4454]}
]"""


def test_depth_parse_of_a_measured_run_keeps_llama_benchs_own_figures():
    """Mean and (sample) standard deviation recomputed over the samples equal llama-bench's own."""
    shallow, deep = node_bench.parse_llama_bench_depths(MEASURED_DEPTHS)
    assert (shallow["n_depth"], shallow["flash_attn"], deep["n_depth"]) == (0, False, 512)
    assert (shallow["tg_tokens_per_s"], shallow["tg_stddev"], shallow["tg_best_tokens_per_s"]) == (60.948, 3.593, 65.03)
    assert (deep["tg_tokens_per_s"], deep["tg_stddev"], deep["tg_best_tokens_per_s"]) == (56.297, 0.995, 57.445)
