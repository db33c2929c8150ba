"""Scenario 16: schemathesis against the project's generated OpenAPI document (/api/openapi.json) on
the real uvicorn server, logged in and with an API token: no request it generates gets a 5xx.

Left out: /healthz, whose 503 is its answer while no Celery worker runs (tests/quantdash/
test_healthz.py), and the three operations that open a generation on the runtime server, which
this test doesn't start (their 503 says so; tests/runtime cover them with one running)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.conftest import record
from tests.reliability.web import session_headers

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CLI = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = 15
NEEDS_A_PROCESS = ["/healthz", "/v1/chat/completions", "/v1/completions", "/playground/chat/"]


@pytest.mark.skipif(not CLI.exists(), reason="schemathesis is not installed (requirements-dev.txt)")
def test_16_no_generated_api_request_gets_a_5xx(teams, demo_variant, web):
    from runtime.services import api_token_create

    headers = session_headers(teams["alice"])
    token = api_token_create(user=teams["alice"], name="schemathesis")[1]
    excluded = [arg for path in NEEDS_A_PROCESS for arg in ("--exclude-path", path)]
    result = subprocess.run(
        [str(CLI), "run", f"{web}/api/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,fuzzing", "--no-color",
         "-H", f"Cookie: {headers['Cookie']}", "-H", f"X-CSRFToken: {headers['X-CSRFToken']}",
         "-H", f"Referer: {web}/", "-H", f"Authorization: Bearer {token}", *excluded],
        capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    calls = re.search(r"(\d+) generated", output)
    assert calls, f"schemathesis printed no count of generated cases: {output[-2000:]}"
    record(16, "schemathesis", f"0 server errors ({calls.group(1)} generated cases over the "
           f"OpenAPI operations, logged in and with a token, {len(NEEDS_A_PROCESS)} operations that "
           f"need a worker or the runtime left out; --max-examples {MAX_EXAMPLES})")
