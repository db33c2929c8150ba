"""Choose by a task's accuracy (planner.choose with a "tasks" evaluation's column as the metric): the
page, the API and `manage.py recommend`.

The Llama 3.1 8B family and its fits are tests/planner/test_choose.py's (its docstring works the
fits out by hand). On top, each variant's accuracy on a multiple-choice task "capitals" scored by
lm-eval 0-shot over 200 documents (stated here; ± lm-eval's standard error):

    F16 0.700 ± 0.032   Q8_0 0.705 ± 0.032   Q6_K 0.695 ± 0.033   Q5_K_M 0.690 ± 0.033
    Q4_K_M 0.680 ± 0.033   Q3_K_M 0.640 ± 0.034   Q2_K 0.550 ± 0.035
    Q3_K_L scored 5-shot (0.900): another protocol, not compared.  Q4_0, IQ4_XS: not scored.

Hand-checked, higher accuracy better, the tolerance counting down from the best (0.705):
* RTX 4090 (every one of these fits fully): best = Q8_0 (0.705, above the F16's 0.700). Within
  0.02 (≥ 0.685): Q8_0, F16, Q6_K, Q5_K_M; the smallest is Q5_K_M (5.73 GB) and so is the
  fastest (test_choose.py: Q5_K_M outruns Q6_K, Q8_0 and F16 on the 4090). Within 0.03 (≥ 0.675)
  the Q4_K_M (0.680) joins: smallest Q4_K_M, fastest still Q5_K_M (it outruns Q4_K_M there).
* Apple M1 8 GB (only Q3_K_M, Q3_K_L, Q2_K fit): best = Q3_K_M (0.640 > Q2_K's 0.550; the Q3_K_L is
  not comparable); nothing within 0.02 of 0.705 runs there.
* Frontier on disk size (smaller and more accurate): Q2_K 3.18 GB 0.550, Q3_K_M 4.02 0.640,
  Q4_K_M 4.92 0.680, Q5_K_M 5.73 0.690, Q6_K 6.60 0.695, Q8_0 8.54 0.705 are on it; the F16
  (16.07 GB, 0.700) is dominated by the Q8_0.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from catalog.evaluations import evaluation_record
from tests.catalog.test_compare_tasks import task_method
from tests.support.fixtures import PASSWORD
from tests.planner.test_choose import RTX_4090, M1, alice, by_quant, llama, page_picks, picks, run  # noqa: F401

pytestmark = pytest.mark.django_db

ACC = {"F16": (0.700, 0.032), "Q8_0": (0.705, 0.032), "Q6_K": (0.695, 0.033), "Q5_K_M": (0.690, 0.033),
       "Q4_K_M": (0.680, 0.033), "Q3_K_M": (0.640, 0.034), "Q2_K": (0.550, 0.035)}
P0 = task_method("capitals")["protocol"]
METRIC = f"task_{P0[:12]}"


@pytest.fixture
def scored(llama):  # noqa: F811
    for quant, (acc, stderr) in ACC.items():
        evaluation_record(planner=None, variant=llama[quant], kind="tasks",
                          metrics={"task": "capitals", "results": {"acc": {"value": acc, "stderr": stderr}},
                                   "subtasks": {}, "samples": 200},
                          method=task_method("capitals"))
    evaluation_record(planner=None, variant=llama["Q3_K_L"], kind="tasks",
                      metrics={"task": "capitals", "results": {"acc": {"value": 0.9, "stderr": 0.021}},
                               "subtasks": {}, "samples": 200},
                      method=task_method("capitals", fewshot=5))
    return llama


def test_picks_by_accuracy_higher_is_better(scored):
    model = scored["F16"].model
    choice = run(model, RTX_4090, metric=METRIC)
    assert choice.metric.higher_is_better and choice.metric.title == "capitals acc"
    assert picks(choice) == {"best": "Q8_0", "smallest": "Q5_K_M", "fastest": "Q5_K_M"}
    assert choice.tolerance_text == "capitals acc ≥ best − 0.02 (0.685)"
    assert "highest capitals acc of the variants that fit fully" in choice.picks[0].reason
    assert "capitals acc 0.705 ± 0.032" in choice.picks[0].reason
    assert picks(run(model, RTX_4090, metric=METRIC, tolerance=0.03)) == {
        "best": "Q8_0", "smallest": "Q4_K_M", "fastest": "Q5_K_M"}
    assert picks(run(model, M1, metric=METRIC)) == {"best": "Q3_K_M", "smallest": None, "fastest": None}


def test_only_the_same_protocol_is_compared_and_the_frontier(scored):
    c = by_quant(run(scored["F16"].model, RTX_4090, metric=METRIC))
    assert (c["Q3_K_L"].status, c["Q3_K_L"].status_note) == ("not comparable", "other protocol: 5-shot, not 0-shot")
    assert c["Q3_K_L"].value is None and not c["Q3_K_L"].frontier
    assert (c["Q4_0"].status, c["Q4_0"].status_note) == ("not evaluated", "no capitals score yet")
    # No reference for a task: the F16 is measured like the others.
    assert (c["F16"].status, c["F16"].value, c["F16"].unc) == ("measured", 0.700, 0.032)
    assert {q for q, cand in c.items() if cand.frontier} == {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"}
    assert c["F16"].dominated_by == scored["Q8_0"].pk


def test_page_offers_the_task_and_draws_accuracy_with_its_standard_error(alice, scored):  # noqa: F811
    html = alice.get(f"/planner/choose/{scored['F16'].model_id}/",
                     {"hardware": "rtx-4090", "context": 4096, "metric": METRIC}).content.decode()
    assert f'<option value="{METRIC}" selected>capitals acc — 0-shot · all docs · protocol {P0[:6]}, ' \
           'higher is better</option>' in html
    assert page_picks(html) == {"best": str(scored["Q8_0"].pk), "smallest": str(scored["Q5_K_M"].pk),
                                "fastest": str(scored["Q5_K_M"].pk)}
    row = html[html.index(f'id="candidate-{scored["Q8_0"].pk}"'):]
    assert '<td class="num quality"><span class="value">0.705</span> <small class="unc">± 0.032</small></td>' in row
    row = html[html.index(f'id="candidate-{scored["Q3_K_L"].pk}"'):]
    assert '<td class="num quality"><small class="meta">other protocol: 5-shot, not 0-shot</small></td>' in row
    chart = html[html.index('id="pareto"'):html.index("</svg>", html.index('id="pareto"'))]
    assert "capitals acc (higher is better)" in chart and "bars: ± the standard error lm-eval reports" in html

    def point(quant):  # (y, half the bar's length): the bar is the stderr either side of the point
        g = chart[chart.index(f'data-variant="{scored[quant].pk}"'):]
        y = float(g[g.index('cy="') + 4:g.index('"', g.index('cy="') + 4)])
        bar = g[g.index('<line class="unc"'):g.index("/>", g.index('<line class="unc"'))]
        y1 = float(bar[bar.index('y1="') + 4:bar.index('"', bar.index('y1="') + 4)])
        y2 = float(bar[bar.index('y2="') + 4:bar.index('"', bar.index('y2="') + 4)])
        assert y1 - y == pytest.approx(y - y2, abs=0.11) or y2 - y == pytest.approx(y - y1, abs=0.11)
        return y, abs(y1 - y2) / 2

    (y_q8, half_q8), (y_q2, half_q2) = point("Q8_0"), point("Q2_K")
    assert y_q8 < y_q2  # the more accurate one higher up
    assert half_q2 / half_q8 == pytest.approx(0.035 / 0.032, rel=0.01)  # linear: bars in proportion to stderr
    assert f'data-variant="{scored["Q3_K_L"].pk}"' not in chart


def test_api_and_cli_answer_the_same(alice, scored):  # noqa: F811
    model = scored["F16"].model
    data = alice.get(f"/api/planner/choose/{model.pk}", {"hardware": "rtx-4090", "context": 4096,
                                                         "metric": METRIC}).json()
    assert data["higher_is_better"] is True and data["tolerance_text"] == "capitals acc ≥ best − 0.02 (0.685)"
    assert {p["kind"]: p["variant"] for p in data["picks"]} == {
        "best": scored["Q8_0"].pk, "smallest": scored["Q5_K_M"].pk, "fastest": scored["Q5_K_M"].pk}
    task = next(m for m in data["metrics"] if m["key"] == METRIC)
    assert (task["title"], task["protocol"], task["higher_is_better"]) == ("capitals acc", P0, True)
    q8 = next(c for c in data["candidates"] if c["variant"] == scored["Q8_0"].pk)
    assert (q8["value"], q8["uncertainty"], q8["distance"]) == (0.705, 0.032, pytest.approx(0.295))
    out = StringIO()
    call_command("recommend", str(model.pk), "--hardware", "rtx-4090", "--context", "4096", "--metric", METRIC,
                 "--json", stdout=out)
    assert json.loads(out.getvalue())["picks"] == data["picks"]
    out = StringIO()
    call_command("recommend", str(model.pk), "--hardware", "rtx-4090", "--context", "4096", "--metric", METRIC,
                 stdout=out)
    assert "capitals acc, tolerance capitals acc ≥ best − 0.02 (0.685)" in out.getvalue()
    assert f"Best quality that fits: #{scored['Q8_0'].pk} GGUF Q8_0" in out.getvalue()
    assert "0.705 ± 0.032" in out.getvalue()


def test_an_unknown_task_metric_is_a_400_listing_the_tasks(alice, scored):  # noqa: F811
    model = scored["F16"].model
    response = alice.get(f"/api/planner/choose/{model.pk}", {"hardware": "rtx-4090", "metric": "task_000000000000"})
    assert response.status_code == 400
    assert METRIC in response.json()["errors"]["metric"] and "capitals acc" in response.json()["errors"]["metric"]
    response = alice.get(f"/api/planner/choose/{model.pk}", {"hardware": "rtx-4090", "metric": METRIC,
                                                             "tolerance": 2})
    assert response.status_code == 400 and "tolerance" in response.json()["errors"]


def test_another_teams_task_choice_is_a_404(client, scored):
    client.login(username="bob", password=PASSWORD)
    model_id = scored["F16"].model_id
    assert client.get(f"/api/planner/choose/{model_id}", {"hardware": "rtx-4090", "metric": METRIC}).status_code == 404
    assert client.get(f"/planner/choose/{model_id}/", {"metric": METRIC}).status_code == 404
