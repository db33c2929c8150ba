"""Choose a quant (planner.choose, the page /planner/choose/<id>/, GET /api/planner/choose/<id>).

The model is Llama 3.1 8B Instruct (the planner preset's config.json) with an F16 GGUF and nine
quants made from it, each with the file size stated below and a KL evaluation in the shape the
evaluate job records (llama.cpp perplexity --kl-divergence statistics, against the F16, 40 chunks
× 512 tokens of wiki.test.raw). The quality numbers are stated here, measured-looking:

    variant  file bytes       mean KLD ± unc       99.9 % KLD  PPL ratio ± unc    same top ± unc
    F16      16,068,890,912   reference (KL 0 by definition)
    Q8_0      8,540,770,592   0.00117 ± 0.00002    0.040       1.0007 ± 0.0003    0.9880 ± 0.0009
    Q6_K      6,596,006,176   0.0047  ± 0.00005    0.152       1.0025 ± 0.0004    0.9750 ± 0.0013
    Q5_K_M    5,732,987,168   0.0104  ± 0.0001     0.331       1.0060 ± 0.0006    0.9620 ± 0.0016
    Q4_K_M    4,920,734,496   0.0335  ± 0.0003     1.02        1.0195 ± 0.0011    0.9330 ± 0.0021
    Q4_0      4,661,211,424   0.0410  ± 0.0450     1.30        1.0250 ± 0.0300    0.9200 ± 0.0500   1 chunk: unstable
    IQ4_XS    4,447,669,024   KL skipped (the reference tokenizes the text differently)
    Q3_K_L    4,321,956,640   0.0950  ± 0.0007     2.10        1.0600 ± 0.0018    0.8870 ± 0.0028
    Q3_K_M    4,018,918,176   0.0895  ± 0.0006     2.30        1.0560 ± 0.0017    0.8910 ± 0.0027
    Q2_K      3,179,131,680   0.3380  ± 0.0020     6.00        1.2150 ± 0.0040    0.7900 ± 0.0036

Hand-checked Pareto frontier (size on disk, mean KLD; smaller is better on both): every measured
variant but Q3_K_L, which is larger (4.32 GB) and worse (0.0950) than Q3_K_M (4.02 GB, 0.0895).
By the 99.9 % KLD, Q3_K_L (2.10) beats Q3_K_M (2.30) and is on it. Q4_0 (unstable: its
uncertainty is as large as its mean) and IQ4_XS (skipped) are never on it, though either would
be with any value better than Q3_K_M's: they are smaller than Q4_K_M.

Hand-checked fits at context 4096 (memory = weights + f16 KV + compute + runtime overhead):
the KV cache is 2 (K, V) × 32 layers × 8 KV heads × 128 × 4096 positions × 2 B = 0.5 GiB.
* Hardware A, Apple M1 8 GB: Metal lets llama.cpp use 2/3 of 8 GiB = 5.33 GiB, of which the
  planner fills 95 %: 5.07 GiB. Q3_K_M: 3.74 GiB weights + 0.5 KV + 0.30 compute + 0.15 Metal
  overhead = 4.68 GiB, fits (0.38 GiB left); Q3_K_L (4.02 GiB weights) 4.97 GiB, fits with 0.10
  left; Q2_K 3.90 GiB; Q4_K_M (4.58 GiB weights) 5.52 GiB does not fit, and Apple silicon has no
  separate RAM to offload to. So: best quality that fits = Q3_K_M (0.0895 < Q3_K_L's 0.0950);
  nothing within mean KLD ≤ 0.05 runs there; within ≤ 0.1, the smallest is Q3_K_M (4.02 GB vs
  Q3_K_L's 4.32) and so is the fastest (the M1's cited llama-bench figure gives both the same
  efficiency; Q3_K_M reads fewer bytes a token); with 0.5 GiB of headroom asked, Q3_K_M (0.38
  left) and Q3_K_L drop out and Q2_K is the best.
* Hardware B, RTX 4090 24 GB: 22.8 GiB to fill; the F16 needs 14.96 GiB weights + 0.5 + 0.30 +
  0.49 CUDA context = 16.25 GiB and fits, so the best quality is the reference itself; the
  smallest within mean KLD ≤ 0.05 is Q4_K_M (4.92 GB; Q4_0 and IQ4_XS are excluded); the fastest
  is Q5_K_M: the 4090's cited llama-bench figures give Q4_K_M its own decode efficiency (130.58
  tok/s on Llama 3 8B → 0.60) and the schemes nearer F16 in precision the F16's (54.84 tok/s →
  0.82), so Q5_K_M, reading 5.7 GB a token at 0.82, outruns Q4_K_M at 0.60 and the larger Q6_K,
  Q8_0, F16. Asking for 8 GiB of headroom drops the F16 (22.8 − 16.25 = 6.55 GiB left): Q8_0.
* Hardware C, a custom 6 GiB GPU: 5.7 GiB to fill; Q4_K_M needs 4.58 + 0.5 + 0.30 + 0.49 =
  5.87 GiB: offloaded (system RAM holds the rest), as are the larger ones; Q3_K_M 5.02 fits. Best =
  Q3_K_M (Q4_0 and IQ4_XS would fit too, but are unstable and skipped); smallest within 0.05 =
  Q4_K_M, with offload.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from planner.choose import choose
from catalog.evaluations import evaluation_record
from catalog.models import File, Model, Variant
from planner.estimator import HARDWARE_PROFILES, Hardware, Workload
from planner.forms import catalog_architecture
from planner.presets import PRESETS
from tests.evaluation.test_compare_page import LLAMA_CPP_KL
from tests.support.fixtures import PASSWORD

pytestmark = pytest.mark.django_db

SIZES = {"F16": 16_068_890_912, "Q8_0": 8_540_770_592, "Q6_K": 6_596_006_176, "Q5_K_M": 5_732_987_168,
         "Q4_K_M": 4_920_734_496, "Q4_0": 4_661_211_424, "IQ4_XS": 4_447_669_024, "Q3_K_L": 4_321_956_640,
         "Q3_K_M": 4_018_918_176, "Q2_K": 3_179_131_680}
# quant: (mean KLD, ±, 99.9 % KLD, PPL ratio, ±, same top, ±)
KL = {"Q8_0": (0.00117, 0.00002, 0.040, 1.0007, 0.0003, 0.9880, 0.0009),
      "Q6_K": (0.0047, 0.00005, 0.152, 1.0025, 0.0004, 0.9750, 0.0013),
      "Q5_K_M": (0.0104, 0.0001, 0.331, 1.0060, 0.0006, 0.9620, 0.0016),
      "Q4_K_M": (0.0335, 0.0003, 1.02, 1.0195, 0.0011, 0.9330, 0.0021),
      "Q4_0": (0.0410, 0.0450, 1.30, 1.0250, 0.0300, 0.9200, 0.0500),
      "Q3_K_L": (0.0950, 0.0007, 2.10, 1.0600, 0.0018, 0.8870, 0.0028),
      "Q3_K_M": (0.0895, 0.0006, 2.30, 1.0560, 0.0017, 0.8910, 0.0027),
      "Q2_K": (0.3380, 0.0020, 6.00, 1.2150, 0.0040, 0.7900, 0.0036)}
SKIPPED = "the reference tokenizes the text differently: first difference at token 1,387"
TEXT = {"name": "wiki.test.raw", "sha256": "f4b3" * 16}


def kl_metrics(mean, mean_unc, p99_9, ratio, ratio_unc, same_top, same_top_unc) -> dict:
    """A KL evaluation's metrics in the shape llama.cpp's statistics are stored in (every key of a real
    one, tests/evaluation/test_compare_page.py), with this variant's headline numbers."""
    return {**LLAMA_CPP_KL["Q4_0"], "kl_mean": mean, "kl_mean_unc": mean_unc, "kl_p99_9": p99_9,
            "ppl_ratio": ratio, "ppl_ratio_unc": ratio_unc, "same_top": same_top, "same_top_unc": same_top_unc,
            "top1_agreement": same_top, "tokens_compared": 40 * 255}


def kl_method(reference: Variant, chunks: int = 40) -> dict:
    return {"context": 512, "chunks": chunks, "mode": "full", "dataset": TEXT, "reference_variant": reference.pk,
            "reference_label": reference.label, "statistics": {"kl": "KL(base ‖ Q) per token, natural log"}}


def make_variant(model, quant: str, parent=None) -> Variant:
    v = Variant.objects.create(model=model, parent=parent, format="gguf", quant_type=quant)
    File.objects.create(variant=v, path=f"Meta-Llama-3.1-8B-Instruct-{quant}.gguf", bytes=SIZES[quant],
                        sha256=f"{len(quant):02x}" * 32)
    return v


@pytest.fixture
def llama(teams):
    """{quant: Variant} of a Llama 3.1 8B in team red, measured as the module docstring says."""
    config = PRESETS["llama-3.1-8b"]["config"]
    model = Model.objects.create(team=teams["red"], name="Llama-3.1-8B-Instruct", config=config,
                                 param_count=8_030_261_248, architecture="llama")
    f16 = make_variant(model, "F16")
    made = {"F16": f16}
    for quant in SIZES:
        if quant == "F16":
            continue
        made[quant] = make_variant(model, quant, f16)
        if quant == "IQ4_XS":
            metrics = {"skipped": SKIPPED}
        else:
            metrics = kl_metrics(*KL[quant])
        evaluation_record(planner=None, variant=made[quant], kind="kl", metrics=metrics,
                          method=kl_method(f16, chunks=1 if quant == "Q4_0" else 40))
    return made


def run(model, hardware: Hardware, **kwargs):
    return choose(model=model, arch=catalog_architecture(model), hardware=hardware,
                  workload=Workload(runtime="llama.cpp", context=4096), **kwargs)


def picks(choice) -> dict:
    return {p.kind: p.candidate.variant.quant_type if p.candidate else None for p in choice.picks}


def by_quant(choice) -> dict:
    return {c.variant.quant_type: c for c in choice.candidates}


M1, RTX_4090 = HARDWARE_PROFILES["m1-8gb"], HARDWARE_PROFILES["rtx-4090"]
CUSTOM_6 = Hardware.custom("Custom", 6, 300, 50)


def test_the_frontier_is_every_measured_variant_but_the_dominated_one(llama):
    choice = run(llama["F16"].model, RTX_4090)
    c = by_quant(choice)
    assert {q for q, x in c.items() if x.frontier} == {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"}
    assert c["Q3_K_L"].dominated_by == llama["Q3_K_M"].pk
    assert (c["Q4_0"].status, c["IQ4_XS"].status) == ("unstable", "skipped")
    assert c["Q4_0"].distance is None and c["IQ4_XS"].distance is None  # no value placed for them
    assert "as large as the value" in c["Q4_0"].status_note and SKIPPED in c["IQ4_XS"].status_note
    assert (c["F16"].status, c["F16"].distance) == ("reference", 0.0)
    # The same on the planned-memory axis (the planner's memory grows with the file here too).
    assert {q for q, x in by_quant(run(llama["F16"].model, RTX_4090, axis="memory")).items() if x.frontier} == {
        "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"}


def test_switching_the_metric_to_the_999_percentile_puts_q3_k_l_on_the_frontier(llama):
    c = by_quant(run(llama["F16"].model, RTX_4090, metric="kl_p99_9"))
    assert c["Q3_K_L"].frontier and c["Q3_K_M"].frontier
    assert (c["Q3_K_L"].value, c["Q3_K_L"].distance) == (2.10, 2.10)
    same_top = by_quant(run(llama["F16"].model, RTX_4090, metric="same_top"))
    assert same_top["Q3_K_M"].distance == pytest.approx(1 - 0.8910) and not same_top["Q3_K_L"].frontier
    ratio = by_quant(run(llama["F16"].model, RTX_4090, metric="ratio"))
    assert ratio["Q8_0"].distance == pytest.approx(0.0007) and ratio["Q8_0"].unc == 0.0003


def test_hardware_a_apple_m1_8gb_only_the_small_quants_fit(llama):
    model = llama["F16"].model
    choice = run(model, M1)
    c = by_quant(choice)
    assert {q for q, x in c.items() if x.fit == "device"} == {"Q3_K_L", "Q3_K_M", "Q2_K"}
    assert {x.fit for q, x in c.items() if q not in ("Q3_K_L", "Q3_K_M", "Q2_K")} == {"none"}
    assert c["Q3_K_M"].headroom_bytes / 2**30 == pytest.approx(0.38, abs=0.01)
    assert picks(choice) == {"best": "Q3_K_M", "smallest": None, "fastest": None}
    assert picks(run(model, M1, tolerance=0.1)) == {"best": "Q3_K_M", "smallest": "Q3_K_M", "fastest": "Q3_K_M"}
    assert picks(run(model, M1, headroom_gb=0.5))["best"] == "Q2_K"
    smallest = next(p for p in choice.picks if p.kind == "smallest")
    assert smallest.reason == "no variant within mean KLD ≤ 0.05 runs on Apple M1 8 GB at context 4,096"


def test_hardware_b_rtx_4090_the_reference_fits_and_q5_k_m_is_fastest(llama):
    model = llama["F16"].model
    choice = run(model, RTX_4090)
    assert all(x.fit == "device" for x in choice.candidates)
    assert picks(choice) == {"best": "F16", "smallest": "Q4_K_M", "fastest": "Q5_K_M"}
    assert picks(run(model, RTX_4090, headroom_gb=8))["best"] == "Q8_0"
    best = choice.picks[0]
    assert best.reason.startswith("lowest mean KLD of the variants that fit fully on GeForce RTX 4090 24 GB "
                                  "at context 4,096: the reference (mean KLD 0 by definition)")
    # The planner's llama-server command, for the variant's own file at the context asked.
    assert best.candidate.command == ("llama-server -m Meta-Llama-3.1-8B-Instruct-F16.gguf -c 4096 -ngl 99 "
                                      "-fa off")
    assert best.candidate.chat_url == f"/playground/?variant={llama['F16'].pk}"
    assert best.candidate.downloads[0]["url"] == f"/catalog/files/{llama['F16'].files.get().pk}/download/"


def test_hardware_c_custom_6_gib_gpu_offloads_the_larger_quants(llama):
    choice = run(llama["F16"].model, CUSTOM_6)
    c = by_quant(choice)
    assert {q for q, x in c.items() if x.fit == "offload"} == {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"}
    assert {q for q, x in c.items() if x.fit == "device"} == {"Q4_0", "IQ4_XS", "Q3_K_L", "Q3_K_M", "Q2_K"}
    assert picks(choice)["best"] == "Q3_K_M" and picks(choice)["smallest"] == "Q4_K_M"
    assert "-ngl" in c["Q4_K_M"].command and "-ngl 99" not in c["Q4_K_M"].command
    assert "runs with offload to system RAM" in choice.picks[1].reason


def test_a_variant_measured_against_another_reference_is_not_compared(llama):
    # The Q6_K re-measured against the Q8_0: its numbers say how far it is from the Q8_0, not the F16.
    evaluation_record(planner=None, variant=llama["Q6_K"], kind="kl", metrics=kl_metrics(*KL["Q6_K"]),
                      method=kl_method(llama["Q8_0"]))
    c = by_quant(run(llama["F16"].model, RTX_4090))
    assert c["Q6_K"].status == "not comparable" and not c["Q6_K"].frontier
    assert c["Q6_K"].status_note == f"measured against #{llama['Q8_0'].pk}, not the reference #{llama['F16'].pk}"


# ---- the page and the API -----------------------------------------------------------------------
@pytest.fixture
def alice(client, teams):
    client.login(username="alice", password=PASSWORD)
    return client


def page_picks(html: str) -> dict:
    out = {}
    for kind in ("best", "smallest", "fastest"):
        start = html.index(f'id="pick-{kind}" data-variant="') + len(f'id="pick-{kind}" data-variant="')
        out[kind] = html[start:html.index('"', start)]
    return out


@pytest.mark.parametrize("query, expected", [
    ({"hardware": "m1-8gb", "context": 4096}, {"best": "Q3_K_M", "smallest": None, "fastest": None}),
    ({"hardware": "rtx-4090", "context": 4096}, {"best": "F16", "smallest": "Q4_K_M", "fastest": "Q5_K_M"}),
    ({"hardware": "rtx-4090", "context": 4096, "headroom_gb": 8}, {"best": "Q8_0", "smallest": "Q4_K_M",
                                                                   "fastest": "Q5_K_M"}),
    ({"hardware": "m1-8gb", "context": 4096, "tolerance": 0.1},
     {"best": "Q3_K_M", "smallest": "Q3_K_M", "fastest": "Q3_K_M"}),
])
def test_page_api_and_cli_give_the_same_answer(alice, llama, query, expected):
    model = llama["F16"].model
    want = {k: str(llama[q].pk) if q else "" for k, q in expected.items()}
    html = alice.get(f"/planner/choose/{model.pk}/", query).content.decode()
    assert page_picks(html) == want
    api = alice.get(f"/api/planner/choose/{model.pk}", query)
    assert api.status_code == 200, api.content
    data = api.json()
    assert {p["kind"]: str(p["variant"] or "") for p in data["picks"]} == want
    args = [str(model.pk), "--hardware", query["hardware"], "--context", str(query["context"]), "--json"]
    for key in ("headroom_gb", "tolerance"):
        if key in query:
            args += [f"--{key.replace('_', '-')}", str(query[key])]
    out = StringIO()
    call_command("recommend", *args, stdout=out)
    cli = json.loads(out.getvalue())
    assert cli["picks"] == data["picks"]
    assert [(c["variant"], c["fit"], c["frontier"], c["status"], c["command"]) for c in cli["candidates"]] == [
        (c["variant"], c["fit"], c["frontier"], c["status"], c["command"]) for c in data["candidates"]]


def test_page_draws_the_frontier_greys_the_dominated_and_lists_what_it_cannot_draw(alice, llama):
    html = alice.get(f"/planner/choose/{llama['F16'].model_id}/",
                     {"hardware": "m1-8gb", "context": 4096}).content.decode()
    assert 'id="pareto"' in html and 'id="frontier"' in html
    assert f'<g class="point dominated" data-variant="{llama["Q3_K_L"].pk}" data-fit="device" ' \
           f'data-frontier="false">' in html
    assert f'<g class="point" data-variant="{llama["Q4_K_M"].pk}" data-fit="none" data-frontier="true">' in html
    assert f'id="not-drawn-{llama["IQ4_XS"].pk}">' in html and f'id="not-drawn-{llama["Q4_0"].pk}">' in html
    assert 'data-variant="%d"' % llama["IQ4_XS"].pk not in html.split('id="pareto"')[1].split("</svg>")[0]
    assert "± 0.0006" in html  # the uncertainty bar's value in Q3_K_M's row
    assert f'href="/playground/?variant={llama["Q3_K_M"].pk}">Chat with it</a>' in html


def test_custom_hardware_in_the_api_and_the_cli(alice, llama):
    model = llama["F16"].model
    data = alice.get(f"/api/planner/choose/{model.pk}", {
        "hardware": "custom", "custom_memory_gb": 6, "custom_bandwidth_gbs": 300, "custom_tflops": 50,
        "context": 4096}).json()
    picked = {p["kind"]: p["variant"] for p in data["picks"]}
    assert (picked["best"], picked["smallest"]) == (llama["Q3_K_M"].pk, llama["Q4_K_M"].pk)
    out = StringIO()
    call_command("recommend", str(model.pk), "--hardware", "custom", "--memory-gb", "6", "--bandwidth-gbs", "300",
                 "--tflops", "50", "--context", "4096", "--json", stdout=out)
    assert json.loads(out.getvalue())["picks"] == data["picks"]


@pytest.mark.parametrize("query, field", [
    ({"hardware": "rtx-4090", "context": 0}, "context"),
    ({"hardware": "no-such-card", "context": 4096}, "hardware"),
    ({"hardware": "custom", "custom_memory_gb": -1, "context": 4096}, "custom_memory_gb"),
    ({"hardware": "rtx-4090", "metric": "bleu"}, "metric"),
    ({"hardware": "rtx-4090", "headroom_gb": -2}, "headroom_gb"),
    ({"hardware": "rtx-4090", "metric": "same_top", "tolerance": 1.5}, "tolerance"),
])
def test_bad_input_is_a_400_naming_the_field(alice, llama, query, field):
    model = llama["F16"].model
    response = alice.get(f"/api/planner/choose/{model.pk}", query)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    page = alice.get(f"/planner/choose/{model.pk}/", query)
    assert page.status_code == 200 and f'id="error-{field}"' in page.content.decode()


def test_another_teams_model_is_a_404(client, llama):
    client.login(username="bob", password=PASSWORD)
    model = llama["F16"].model
    assert client.get(f"/planner/choose/{model.pk}/").status_code == 404
    assert client.get(f"/api/planner/choose/{model.pk}", {"hardware": "rtx-4090"}).status_code == 404


def test_the_model_page_links_to_choose(alice, llama):
    html = alice.get(f"/catalog/models/{llama['F16'].model_id}/").content.decode()
    assert f'href="/planner/choose/{llama["F16"].model_id}/"' in html


# ---- nothing measured yet -----------------------------------------------------------------------
def test_a_model_without_evaluations_says_what_a_sweep_would_measure_and_how_long(alice, teams, settings):
    """SmolLM2-135M (the planner preset's config), an F16 GGUF and a Q4_K_M from it, neither
    evaluated; one node of ours measured as tests/planner/test_node_hardware.py's MEASUREMENT
    (10 GB/s, decode efficiency 1.0, prefill 2.37037e11 FLOP/s: pp64 at 1,000 tok/s is 0.064 s, less
    one 0.01 s pass over the weights, for 64 × 2e8 FLOP). A sweep scores 100 chunks × 512 tokens of
    each candidate and of the reference (the F16, the lineage root) once; a chunk is one prefill:
        FLOP = 2 × 106,203,456 matmul params × 512 + 2 × 30 layers × 512² × 576 = 117,812,035,584
             → 0.497020 s at 2.37037e11 FLOP/s, plus one pass over the weights at 1e10 B/s:
        Q4_K_M: 103,668,480 B → 0.010367 s: 100 × 0.507387 s = 50.7 s;
        F16: 134,515,008 × 2 B + the 61 norms of 576 kept in F32 (70,272 B) = 269,100,288 B
             → 0.026910 s: 100 × 0.523930 s = 52.4 s."""
    from django.utils import timezone

    from jobs.models import Worker
    from tests.planner.test_node_hardware import MEASUREMENT

    settings.WORKER_STALE_SECONDS = 3600  # live throughout: the first config build imports torch (seconds)
    Worker.objects.create(hostname="node-a@test", memory_bytes=24 * 2**30, last_seen=timezone.now(),
                          measurements=MEASUREMENT, measured_at=timezone.now())
    model = Model.objects.create(team=teams["red"], name="SmolLM2-135M", config=PRESETS["smollm2-135m"]["config"],
                                 param_count=134_515_008, architecture="llama")
    f16 = Variant.objects.create(model=model, format="gguf", quant_type="F16")
    q4 = Variant.objects.create(model=model, parent=f16, format="gguf", quant_type="Q4_K_M")
    data = alice.get(f"/api/planner/choose/{model.pk}", {"hardware": "rtx-4090", "context": 2048}).json()
    sweep = data["sweep"]
    assert (sweep["reference"], sweep["unevaluated"]) == (f16.pk, [q4.pk])
    assert sweep["type_seconds"]["Q4_K_M"] == 50.7 and sweep["reference_seconds"] == 52.4
    assert sweep["seconds"] == pytest.approx(sum(sweep["type_seconds"].values()) + 52.4, abs=0.1)
    assert sweep["hardware"] == "our nodes: node-a@test"
    assert "mean KLD ± its uncertainty, against the reference" in sweep["measures"]
    assert [p["variant"] for p in data["picks"]] == [None, None, None]
    assert all("see what a sweep would measure" in p["reason"] for p in data["picks"])
    html = alice.get(f"/planner/choose/{model.pk}/", {"hardware": "rtx-4090", "context": 2048}).content.decode()
    assert 'id="sweep"' in html and f"(not yet: #{q4.pk})" in html and 'id="no-chart"' in html
    assert f"would make Q8_0, Q6_K, Q5_K_M, Q4_K_M, IQ4_XS, Q3_K_M, IQ3_XXS, Q2_K from #{f16.pk}" in html
    assert f"The planner puts its scoring at {sweep['seconds']} s on our nodes: node-a@test" in html
    assert "Q4_K_M 50.7 s" in html and "the reference's once 52.4 s" in html


def test_without_a_measured_node_the_time_is_refused_with_the_planners_reason(alice, teams):
    model = Model.objects.create(team=teams["red"], name="SmolLM2-135M", config=PRESETS["smollm2-135m"]["config"],
                                 param_count=134_515_008, architecture="llama")
    Variant.objects.create(model=model, format="gguf", quant_type="F16")
    sweep = alice.get(f"/api/planner/choose/{model.pk}", {"hardware": "rtx-4090"}).json()["sweep"]
    assert sweep["hardware"] == "Dev box: 2 vCPU, 24 GB RAM"
    assert (sweep["seconds"] is None) == bool(sweep["seconds_note"])


def test_a_model_the_planner_cannot_plan_shows_its_measurements_and_why_nothing_fits(alice, teams):
    model = Model.objects.create(team=teams["red"], name="Mystery", config={})
    Variant.objects.create(model=model, format="gguf", quant_type="Q4_K_M")
    response = alice.get(f"/planner/choose/{model.pk}/", {"hardware": "rtx-4090"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="planner-refused"' in html and "Mystery has neither a config nor a parameter count" in html
    data = alice.get(f"/api/planner/choose/{model.pk}", {"hardware": "rtx-4090"}).json()
    assert data["planner_refused"] == "Mystery has neither a config nor a parameter count"
    assert data["sweep"]["seconds_note"] == "the planner can't plan this model, so it gives no time"


def test_blind_votes_are_shown_beside_each_candidate(alice, llama):
    """Twelve blind votes, Q8_0 against Q4_K_M, 8 to 4: Bradley–Terry's strengths are in the ratio
    8 : 4, so on the Elo scale 1000 ± 200·log10(2) = 1060.206 and 939.794 (tests/catalog/
    test_ratings.py works the interval out: ±104.25, overlapping, so neither is ranked yet)."""
    from django.utils import timezone

    from catalog.models import BlindPair

    from django.contrib.auth import get_user_model
    user = get_user_model().objects.get(username="alice")
    model = llama["F16"].model
    for i in range(12):
        BlindPair.objects.create(team=model.team, user=user, model=model, variant_a=llama["Q8_0"],
                                 variant_b=llama["Q4_K_M"], prompt=f"question {i}",
                                 vote="a" if i < 8 else "b", voted_at=timezone.now())
    data = alice.get(f"/api/planner/choose/{model.pk}", {"hardware": "rtx-4090"}).json()
    votes = {c["variant"]: c["votes"] for c in data["candidates"]}
    assert votes[llama["Q8_0"].pk]["rating"] == pytest.approx(1060.206, abs=1e-3)
    assert votes[llama["Q4_K_M"].pk]["rating"] == pytest.approx(939.794, abs=1e-3)
    assert (votes[llama["Q8_0"].pk]["votes"], votes[llama["Q8_0"].pk]["rank"], votes[llama["Q6_K"].pk]) == (12, None, None)
    html = alice.get(f"/planner/choose/{model.pk}/", {"hardware": "rtx-4090"}).content.decode()
    assert html.count("not enough votes (12)") == 2
