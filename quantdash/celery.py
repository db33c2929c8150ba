"""The Celery application. Configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantdash.settings")

app = Celery("quantdash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("cpu"), Queue("gpu")]
app.autodiscover_tasks()

from jobs.heartbeat import WorkerHeartbeat  # noqa: E402  (bootstep; imports Django lazily)

app.steps["worker"].add(WorkerHeartbeat)
