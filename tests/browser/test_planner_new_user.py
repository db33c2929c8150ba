"""The planner as a new user first meets it, in Chromium: commands that say what to substitute,
schemes that do nothing for the model folded away, the upload limit shown beside the field, and
an Estimate that leaves the console clean."""

import json

import pytest

from tests.jobs.methods.factories import SMOLLM2_CONFIG
from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open_planner(page, web_server, query=""):
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/planner/{query}")


def test_a_bare_count_plan_prints_placeholders_and_says_what_to_replace(page, web_server, teams):
    _open_planner(page, web_server, "?source=params&params=7B&hardware=rtx-4090")
    fit, vllm = page.locator("#fit-command").inner_text(), page.locator("#vllm-command").inner_text()
    scheme = page.locator('#fit-card').get_attribute('data-scheme')
    assert fit.startswith(f"llama-server -m <path/to/your-model-{scheme}.gguf> ")
    assert vllm.startswith("vllm serve <your-model-id> ")
    assert "modelled" not in fit + vllm
    assert page.locator("#vllm-command-note").inner_text() == (
        "Before running: replace <your-model-id> with the model's Hub id or local folder (its config.json "
        "and .safetensors)")
    assert page.locator("#fit-command-note").inner_text() == (
        f"Before running: replace <path/to/your-model-{scheme}.gguf> with the path of a {scheme} GGUF file of "
        "your model (a GGUF quantize job makes one)")

    # a preset names a real model: vLLM serves its id as printed; the GGUF file is still the user's
    page.goto(f"{web_server}/planner/?source=preset&preset=llama-3.1-8b&hardware=rtx-4090")
    assert page.locator("#vllm-command").inner_text().startswith("vllm serve meta-llama/Llama-3.1-8B ")
    assert page.locator("#vllm-command-note").count() == 0
    assert page.locator("#fit-command").inner_text().startswith("llama-server -m <path/to/Llama-3.1-8B-")
    assert "GGUF file of Llama 3.1 8B" in page.locator("#fit-command-note").inner_text()


def test_moe_only_schemes_fold_away_on_a_dense_model(page, web_server, teams):
    _open_planner(page, web_server, "?source=preset&preset=llama-3.1-8b&hardware=rtx-4090")
    assert page.locator('#plan-table tr.plan-row[data-scheme="MXFP4_MOE"]').count() == 0
    group = page.locator("#inapplicable-schemes")
    assert "Not useful for this model: MXFP4_MOE" in group.locator(":scope > summary").inner_text()
    reason = group.locator('li[data-scheme="MXFP4_MOE"]')
    assert not reason.is_visible()   # collapsed until asked for
    group.locator(":scope > summary").click()
    assert "quantizes only the expert (MoE) tensors; this model has none" in reason.inner_text()
    assert group.locator('tr.plan-row[data-scheme="MXFP4_MOE"]').is_visible()
    assert page.locator('svg.bars g.bar[data-scheme="MXFP4_MOE"]').count() == 0

    # on a MoE model it is a real choice, in the table like any other
    page.goto(f"{web_server}/planner/?source=preset&preset=mixtral-8x7b&hardware=rtx-4090")
    assert page.locator('#plan-table tr.plan-row[data-scheme="MXFP4_MOE"]').count() == 1
    assert page.locator("#inapplicable-schemes").count() == 0


def test_an_oversized_config_upload_is_an_inline_error_not_an_alert(page, web_server, teams, tmp_path):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _open_planner(page, web_server)
    page.select_option("#id_source", "config")
    big = tmp_path / "config.json"
    big.write_text(json.dumps({"model_type": "llama", "pad": "x" * (2 * 1024 * 1024)}))
    page.set_input_files("#config-upload", str(big))
    error = page.locator("#config_file-error")
    page.wait_for_function("document.querySelector('#config_file-error').textContent.includes('1 MiB')")
    page.wait_for_load_state("networkidle")   # a plan answered meanwhile refreshes the slot: it stays
    size = big.stat().st_size
    assert error.inner_text() == f"{size:,} bytes is over the 1 MiB limit (1,048,576 bytes)"
    assert page.locator("#config-upload").get_attribute("aria-invalid") == "true"
    assert page.locator("#id_config").input_value() == ""   # not read into the box nor sent
    assert dialogs == []

    # a file within the limit clears the message and is planned as before
    small = tmp_path / "small.json"
    small.write_text(json.dumps(SMOLLM2_CONFIG))
    page.set_input_files("#config-upload", str(small))
    page.wait_for_function("document.querySelector('#plan-model')?.textContent === 'Pasted config'")
    page.wait_for_load_state("networkidle")
    assert error.inner_text() == "" and page.locator("#config-upload").get_attribute("aria-invalid") == "false"


def test_an_estimate_click_logs_no_aborted_request(page, web_server, teams):
    messages = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    _open_planner(page, web_server, "?source=preset&preset=llama-3.1-8b&hardware=rtx-4090")
    for context in ("8192", "16384"):
        # what people do: edit a field and press Estimate straight away (the field's change and
        # the submit both ask for the plan)
        page.fill("#id_context", context)
        with page.expect_response(lambda r: "/planner/" in r.url and f"context={context}" in r.url):
            page.get_by_role("button", name="Estimate").click()
        page.wait_for_function(f"document.querySelector('#plan-context').textContent === '{context}'")
        page.wait_for_timeout(800)   # past the input's 400 ms debounce: a late request would show here
    # a select's change and Estimate straight after: two asks for the same plan again
    page.select_option("#id_runtime", "vllm")
    with page.expect_response(lambda r: "/planner/" in r.url and "runtime=vllm" in r.url):
        page.get_by_role("button", name="Estimate").click()
    page.wait_for_function("document.querySelector('#results').textContent.includes('vllm, context 16384')")
    page.wait_for_timeout(800)
    assert page.locator("#plan-context").inner_text() == "16384"
    assert not [m for m in messages if "sendAbort" in m or m.startswith("error")], messages
