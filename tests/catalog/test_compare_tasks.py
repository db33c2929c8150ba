"""Task accuracy on the comparison page and its API (catalog.comparison_tasks): one column per task
and protocol, the primary metric ± its standard error, sortable, and "other protocol" (with what
differs) where a variant was scored another way.

The evaluations are written in the shape the tasks job records (kind "tasks"; metrics.results
{metric: {value, stderr}}, method with the protocol's parts and its sha256). Their numbers are
stated here; each standard error is lm-eval's for a mean of 0/1 scores, sqrt(p(1 − p)/(n − 1)),
worked by hand for n = 200 documents:

    capitals (multiple choice), 0-shot, all 200 documents, seed 1234, lm-eval 0.4.13
      F16     acc 0.6150 ± 0.0345 (sqrt(0.615 · 0.385 / 199) = 0.03449), acc_norm 0.6400 ± 0.0340
      Q8_0    acc 0.6100 ± 0.0346
      Q4_K_M  acc 0.5850 ± 0.0349
      Q2_K    not scored so: scored 5-shot (acc 0.5200 ± 0.0354), its own column
    arith (generate_until), 0-shot, the first 50 documents, seed 1234
      F16     exact_match 0.4400 ± 0.0709 (sqrt(0.44 · 0.56 / 49) = 0.07091)
"""

import hashlib
import json

import pytest

from catalog.comparison import comparison_rows
from catalog.comparison_tasks import protocol_differences
from catalog.evaluations import evaluation_record
from catalog.models import File, Model, Variant
from tests.support.fixtures import PASSWORD

pytestmark = pytest.mark.django_db

MC_TEMPLATE = {"doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_target": "{{answer}}",
               "doc_to_choice": "{{choices}}", "target_delimiter": " ", "fewshot_delimiter": "\n\n", "until": None}
QA_TEMPLATE = {"doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_target": "{{answers[0]}}",
               "doc_to_choice": None, "target_delimiter": " ", "fewshot_delimiter": "\n\n", "until": ["\n"]}
SHA = {"capitals": "c4" * 32, "arith": "a7" * 32}


def task_method(task: str, *, fewshot=0, limit=None, seed=1234, version="0.4.13", template=None) -> dict:
    template = template or (MC_TEMPLATE if task == "capitals" else QA_TEMPLATE)
    # The contract's protocol: what makes two results comparable, hashed (the job computes it so).
    protocol = hashlib.sha256(json.dumps([SHA[task], fewshot, limit, seed, version, template],
                                         sort_keys=True).encode()).hexdigest()
    return {"task": task, "source": "catalog", "taskset_id": 1, "task_sha256": SHA[task],
            "output_type": "multiple_choice" if task == "capitals" else "generate_until",
            "num_fewshot": fewshot, "limit": limit, "seed": seed, "max_gen_toks": 32, "lm_eval_version": version,
            "prompt_template": template, "protocol": protocol, "engine": "engines.llamacpp.LlamaCppEngine",
            "n_ctx": 2048, "threads": 2}


def score(variant, task, results: dict, samples=200, **protocol) -> None:
    evaluation_record(planner=None, variant=variant, kind="tasks",
                      metrics={"task": task, "results": {k: {"value": v, "stderr": e} for k, (v, e) in results.items()},
                               "subtasks": {}, "samples": samples},
                      method=task_method(task, **protocol))


SIZES = {"F16": 270_000_000, "Q8_0": 145_000_000, "Q4_K_M": 105_000_000, "Q2_K": 88_000_000}


@pytest.fixture
def scored(teams):
    model = Model.objects.create(team=teams["red"], name="SmolLM2-135M-Instruct", architecture="llama")
    made = {}
    for quant, size in SIZES.items():
        made[quant] = Variant.objects.create(model=model, parent=made.get("F16"), format="gguf", quant_type=quant)
        File.objects.create(variant=made[quant], path=f"m-{quant}.gguf", bytes=size, sha256=f"{size:064x}")
    score(made["F16"], "capitals", {"acc": (0.5000, 0.0354)})  # older: the next one replaces it
    score(made["F16"], "capitals", {"acc": (0.6150, 0.0345), "acc_norm": (0.6400, 0.0340)})
    score(made["Q8_0"], "capitals", {"acc": (0.6100, 0.0346), "acc_norm": (0.6350, 0.0342)})
    score(made["Q4_K_M"], "capitals", {"acc": (0.5850, 0.0349), "acc_norm": (0.6000, 0.0348)})
    score(made["Q2_K"], "capitals", {"acc": (0.5200, 0.0354), "acc_norm": (0.5300, 0.0354)}, fewshot=5)
    score(made["F16"], "arith", {"exact_match": (0.4400, 0.0709)}, samples=50, limit=50)
    return made


P0 = task_method("capitals")["protocol"]
P5 = task_method("capitals", fewshot=5)["protocol"]
ARITH = task_method("arith", limit=50)["protocol"]
COL0, COL5, COL_ARITH = f"task_{P0[:12]}", f"task_{P5[:12]}", f"task_{ARITH[:12]}"


@pytest.fixture
def alice(client, teams):
    client.login(username="alice", password=PASSWORD)
    return client


def cell(html: str, variant, key: str) -> str:
    row = html[html.index(f'id="compare-{variant.pk}"'):]
    row = row[:row.index("</tr>")]
    start = row.index(f'<td class="num {key}')
    return row[start:row.index("</td>", start)]


def test_a_column_per_task_and_protocol_with_value_and_standard_error(alice, scored):
    html = alice.get(f"/catalog/models/{scored['F16'].model_id}/compare/").content.decode()
    # capitals 0-shot, capitals 5-shot (the Q2_K's), arith: three columns, each named with its protocol.
    assert html.count('class="num col-task_') == 3
    assert f'data-sort-key="{COL0}">capitals acc ±</a><br><small class="protocol">0-shot · all docs · protocol ' \
           f'{P0[:6]}</small>' in html
    assert f'data-sort-key="{COL5}">capitals acc ±</a><br><small class="protocol">5-shot · all docs' in html
    assert f'data-sort-key="{COL_ARITH}">arith exact_match ±</a><br><small class="protocol">0-shot · 50 docs' \
           in html
    f16 = cell(html, scored["F16"], COL0)
    assert '<span class="value">0.6150</span> <small class="unc">± 0.0345</small>' in f16  # not the older 0.5000
    assert "<summary>n=200</summary><div>acc_norm 0.6400 ± 0.0340</div>" in f16
    assert "lm-eval 0.4.13" in f16 and "0-shot, every document, seed 1234" in f16  # the title: how
    assert '<span class="value">0.4400</span> <small class="unc">± 0.0709</small>' in cell(html, scored["F16"],
                                                                                             COL_ARITH)
    assert cell(html, scored["Q4_K_M"], COL_ARITH).endswith(">—")  # never scored on arith
    # The legend under the table says each task column's protocol.
    assert f"Task capitals (acc, protocol {P0[:6]}): 0-shot, every document, seed 1234, lm-eval 0.4.13" in html


def test_a_variant_scored_under_another_protocol_shows_no_number_beside_these(alice, scored):
    html = alice.get(f"/catalog/models/{scored['F16'].model_id}/compare/").content.decode()
    q2 = cell(html, scored["Q2_K"], COL0)
    assert '<small class="note other-protocol">other protocol: 5-shot, not 0-shot</small>' in q2
    assert "0.5200" not in q2 and 'class="value"' not in q2
    assert '<span class="value">0.5200</span> <small class="unc">± 0.0354</small>' in cell(html, scored["Q2_K"], COL5)
    assert "other protocol: 0-shot, not 5-shot" in cell(html, scored["Q8_0"], COL5)


def test_protocol_differences_are_named():
    mine = task_method("capitals", fewshot=5, limit=100, seed=7, version="0.4.12",
                       template={**MC_TEMPLATE, "doc_to_text": "Q: {{question}}\nA:"})
    assert protocol_differences(mine, task_method("capitals")) == (
        "5-shot, not 0-shot; the first 100 documents, not every document; seed 7, not 1234; "
        "lm-eval 0.4.12, not 0.4.13; another prompt template (doc_to_text)")
    other_file = {**task_method("capitals"), "task_sha256": "0f" * 32, "protocol": "9" * 64}
    assert protocol_differences(other_file, task_method("capitals")) == "another version of the task file"


def test_sorting_by_a_task_column_puts_the_other_protocol_last(alice, scored):
    model_id = scored["F16"].model_id
    order = [r.variant.quant_type for r in comparison_rows(scored["F16"].model, COL0)]
    assert order == ["Q4_K_M", "Q8_0", "F16", "Q2_K"]  # 0.585 < 0.610 < 0.615, then the unmeasured
    html = alice.get(f"/catalog/models/{model_id}/compare/", {"sort": f"-{COL0}"}).content.decode()
    rows = [html.index(f'id="compare-{scored[q].pk}"') for q in ("F16", "Q8_0", "Q4_K_M", "Q2_K")]
    assert rows == sorted(rows)
    assert f'href="?sort={COL0}"' in html  # clicking the sorted header reverses it
    data = alice.get(f"/api/catalog/models/{model_id}/compare", {"sort": f"-{COL0}"}).json()
    assert [r["label"] for r in data["rows"]] == [scored[q].label for q in ("F16", "Q8_0", "Q4_K_M", "Q2_K")]


def test_the_column_chooser_offers_the_task_columns(alice, scored):
    html = alice.get(f"/catalog/models/{scored['F16'].model_id}/compare/").content.decode()
    chooser = html[html.index('id="compare-columns"'):html.index("</details>", html.index('id="compare-columns"'))]
    for key in (COL0, COL5, COL_ARITH):
        assert f'data-column="{key}" data-default="1" checked>' in chooser


def test_the_api_gives_the_task_columns_and_cells(alice, scored):
    data = alice.get(f"/api/catalog/models/{scored['F16'].model_id}/compare").json()
    columns = {c["key"]: c for c in data["columns"]}
    assert (columns[COL0]["task"], columns[COL0]["metric"], columns[COL0]["protocol"]) == ("capitals", "acc", P0)
    assert columns[COL0]["method"]["num_fewshot"] == 0 and columns[COL5]["method"]["num_fewshot"] == 5
    cells = {r["label"]: {c["key"]: c for c in r["cells"]} for r in data["rows"]}
    f16 = cells[scored["F16"].label][COL0]
    assert (f16["value"], f16["uncertainty"], f16["text"]) == (0.615, 0.0345, "0.6150")
    assert f16["details"] == ["n=200", "acc_norm 0.6400 ± 0.0340"]
    q2 = cells[scored["Q2_K"].label][COL0]
    assert (q2["value"], q2["note"]) == (None, "other protocol: 5-shot, not 0-shot")


def test_another_teams_comparison_is_a_404(client, scored):
    client.login(username="bob", password=PASSWORD)
    model_id = scored["F16"].model_id
    assert client.get(f"/catalog/models/{model_id}/compare/").status_code == 404
    assert client.get(f"/api/catalog/models/{model_id}/compare").status_code == 404


def test_a_model_without_task_scores_has_no_task_column(alice, teams):
    model = Model.objects.create(team=teams["red"], name="unscored", architecture="llama")
    Variant.objects.create(model=model, format="gguf", quant_type="Q8_0")
    html = alice.get(f"/catalog/models/{model.pk}/compare/").content.decode()
    assert "col-task_" not in html
    assert alice.get(f"/api/catalog/models/{model.pk}/compare", {"sort": "task_nothing"}).status_code == 200
