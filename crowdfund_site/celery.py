"""Celery application: configured from Django settings (CELERY_* names)."""

import os
from pathlib import Path

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crowdfund_site.settings")

app = Celery("crowdfund_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_FOLDER_OPTIONS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
_folders_made: set[str] = set()


@signals.before_task_publish.connect
@signals.worker_init.connect
def _broker_folders_create(**_) -> None:
    """Create the folders of the filesystem broker (the local default) before they are used.

    Settings never touch the file system; this runs when a process sends a task or starts a
    worker (`make run` creates var/ for beat's schedule). On Redis there are no folders to make.
    """
    options = app.conf.broker_transport_options or {}
    for folder in [options[name] for name in _FOLDER_OPTIONS if options.get(name)]:
        if folder not in _folders_made:
            Path(folder).mkdir(parents=True, exist_ok=True)
            _folders_made.add(folder)
