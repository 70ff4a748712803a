"""Schemathesis (``st run --checks all``) against a real gunicorn serving a published grid: 0 server errors
and 0 schema violations.

The run is bounded: ``SCHEMATHESIS_EXAMPLES`` examples per operation (default 8) and ``SCHEMATHESIS_MAX_TIME``
seconds in all (default 60), a fixed seed so a failure can be reproduced. Dataset and collection ids are pinned
to the published SYNTHETIC grid's dataset (otherwise nearly every request would be a 404 on a random id), the
job id to a real job; every other parameter, header and body is generated. One worker (two threads of
hypothesis hit "AST constructor recursion depth mismatch" inside hypothesis on Python 3.11). Rate limits and quotas are raised
for this server (tests/attack/conftest.py), so 429 does not appear. The JSON report, the JUnit file and the
command's output stay in the test's temporary folder; failures are printed with their curl reproduction.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import FT

pytestmark = pytest.mark.django_db  # the session's database (the server commits; attack_grid cleans up)

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", 8))
MAX_TIME = int(os.environ.get("SCHEMATHESIS_MAX_TIME", 60))
JSON = "application/json"
SEED = int(os.environ.get("SCHEMATHESIS_SEED", 20250613))


# Data queries: a request the schema cannot rule out may still be a 400 naming the field (outside the grid's
# extent or period, neither bbox nor polygon, an unknown variable, an unknown dataset in a job's body; a
# search box with min_lat > max_lat or a period that is not ISO 8601): for these
# positive_data_acceptance also accepts 400 and 413 (too large for a direct answer); every other check, and this
# one on every other operation, keeps schemathesis' defaults.
QUERY_STATUSES = '["2xx", "3xx", "400", "401", "403", "404", "409", "413", "429"]'


def _config(job_id: str) -> str:
    return f"""
[[operations]]
include-path = "/api/datasets/{{id}}/"
parameters = {{ "path.id" = "{FT}" }}

[[operations]]
include-path-regex = "^/api/datasets/\\\\{{id\\\\}}/(subset|point|area)/$"
parameters = {{ "path.id" = "{FT}" }}
checks.positive_data_acceptance.expected-statuses = {QUERY_STATUSES}

[[operations]]
include-path = "/api/edr/collections/{{collection_id}}"
parameters = {{ "path.collection_id" = "{FT}" }}

[[operations]]
include-path-regex = "^/api/edr/collections/\\\\{{collection_id\\\\}}/(position|area|cube)$"
parameters = {{ "path.collection_id" = "{FT}" }}
checks.positive_data_acceptance.expected-statuses = {QUERY_STATUSES}

[[operations]]
include-path = ["/api/observations/", "/api/jobs/", "/api/datasets/"]
checks.positive_data_acceptance.expected-statuses = {QUERY_STATUSES}

[[operations]]
include-path-regex = "^/api/jobs/\\\\{{id\\\\}}/"
parameters = {{ "path.id" = "{job_id}" }}
"""


def test_schemathesis_finds_no_server_error_and_no_schema_violation(attack_url, attack_env, attack_grid, tmp_path):
    request = urllib.request.Request(
        f"{attack_url}/api/jobs/",
        method="POST",
        headers={"Content-Type": JSON},
        data=json.dumps({"dataset": FT, "kind": "subset", "params": {"bbox": "0,0,5,5", "f": "csv"}}).encode(),
    )
    with urllib.request.urlopen(request, timeout=60) as r:  # a real job (no worker runs it: it stays queued)
        job_id = json.loads(r.read())["id"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(job_id))
    report = tmp_path / "report.json"
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{attack_url}/api/schema/",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(MAX_TIME),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--report",
        "json,junit",
        "--report-dir",
        str(tmp_path),
        "--report-json-path",
        str(report),
        "--suppress-health-check",
        "all",
        "--output-truncate",
        "false",
    ]
    # in tmp_path: schemathesis and hypothesis keep their databases (.schemathesis, .hypothesis) in the
    # working directory, and a .hypothesis folder in the repository breaks pytest's collection
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=MAX_TIME + 120,
        cwd=tmp_path,
        env=dict(os.environ, NO_COLOR="1"),
    )  # the jobs it creates are removed with attack_grid
    (tmp_path / "st-output.txt").write_text(done.stdout + done.stderr)
    print(done.stdout[-20000:], done.stderr[-5000:])
    assert done.returncode == 0, f"schemathesis found failures (output above, report {report})"
    summary = json.loads(report.read_text()) if report.exists() else {}
    assert summary, "schemathesis wrote no report"
