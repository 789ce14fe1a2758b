"""Settings read the environment and nothing else: no folder is made when they are loaded."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)

# Records every folder made while Django starts, through the interpreter's audit events (real
# calls, whoever makes them), then prints them with the broker's folders.
START_AND_REPORT = """
import json, sys
made = []
sys.addaudithook(lambda event, args: made.append(str(args[0])) if event == "os.mkdir" else None)
import django
django.setup()
from crowdfund_site.celery import app
print(json.dumps({"made": made, "options": app.conf.broker_transport_options}))
"""


def test_starting_django_makes_no_folder_and_the_broker_keeps_its_files_under_var():
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "DATABASE_URL"}},
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "crowdfund_site.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", START_AND_REPORT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["made"] == []
    folders = {
        name: Path(value) for name, value in report["options"].items() if name.endswith("folder") or "_folder_" in name
    }
    assert set(folders) == {"data_folder_in", "data_folder_out", "processed_folder", "control_folder"}
    for folder in folders.values():
        assert folder.is_relative_to(ROOT / "var"), folder
