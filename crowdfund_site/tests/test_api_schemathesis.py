"""Schemathesis fuzzes the running API (gunicorn) from the project's own OpenAPI schema.

Every check is on (server errors, schema and status-code conformance, content types, negative and
positive data, auth, unsupported methods, ...), bounded in time, and must find nothing. The server
runs on a fresh database: on PostgreSQL the test database itself; on SQLite (whose test
database lives in memory) a migrated file in a temporary folder. Afterwards the ledger must
still verify: nothing the fuzzer sent may have broken a money invariant.

SCHEMATHESIS_MAX_TIME (seconds) and SCHEMATHESIS_SEED change the budget and the seed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from crowdfund_site.api.testing import current_database_url, gunicorn_serving
from crowdfund_site.tests.fuzz import fuzz_data_create

pytest.importorskip("schemathesis")

pytestmark = pytest.mark.slow

ROOT = Path(settings.BASE_DIR)
CONFIG = ROOT / "crowdfund_site" / "api" / "schemathesis.toml"
MAX_TIME = os.environ.get("SCHEMATHESIS_MAX_TIME", "30")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261125")
# Fuzzing sends thousands of requests from one address; throttling is tested elsewhere.
UNTHROTTLED = {"API_THROTTLE_USER": "1000000/min", "API_THROTTLE_IP": "1000000/min", "API_THROTTLE_AUTH": "1000000/min"}


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def fuzz_database(transactional_db, tmp_path):
    """Return (server environment, seed data, ledger check) for a fresh, seeded database."""
    # Tasks run inside the server against the same database, never through a shared broker.
    # Pictures the fuzzer manages to upload go to the test's own folder.
    env = {**UNTHROTTLED, "CELERY_TASK_ALWAYS_EAGER": "1", "CONN_MAX_AGE": "0", "MEDIA_ROOT": str(tmp_path / "media")}
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = current_database_url()
        data = fuzz_data_create()

        def verify() -> str:
            from settlement.verification import ledger_verify

            return "\n".join(ledger_verify())

    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
        migrated = _manage("migrate", "--noinput", "-v", "0", env=env)
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        seeded = _manage(
            "shell",
            "-c",
            "import json; from crowdfund_site.tests.fuzz import fuzz_data_create as f; print(json.dumps(f()))",
            env=env,
        )
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        data = json.loads(seeded.stdout.strip().splitlines()[-1])

        def verify() -> str:
            checked = _manage("verify_ledger", env=env)
            return "" if checked.returncode == 0 else checked.stdout + checked.stderr

    return env, data, verify


def test_schemathesis_finds_nothing(fuzz_database, tmp_path):
    env, data, verify = fuzz_database
    with gunicorn_serving(env=env, workers=2, threads=4) as base_url:
        command = [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(CONFIG),
            "run",
            f"{base_url}/api/schema/",
            "--checks",
            "all",
            "--header",
            f"Authorization: Token {data['token']}",
            "--max-time",
            MAX_TIME,
            "--max-examples",
            "15",
            "--seed",
            SEED,
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
        ]
        result = subprocess.run(
            command,
            cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
            capture_output=True,
            text=True,
            timeout=int(MAX_TIME) + 120,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20_000:]
    assert "Test cases:" in output, output[-5_000:]
    assert verify() == ""
