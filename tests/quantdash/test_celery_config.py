from django.conf import settings

from quantdash.celery import app


def test_celery_speaks_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]


def test_long_jobs_are_acked_late_one_at_a_time():
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_reject_on_worker_lost is True


def test_queues_cpu_and_gpu():
    assert sorted(q.name for q in app.conf.task_queues) == ["cpu", "gpu"]
    assert app.conf.task_default_queue == "cpu"


def test_visibility_timeout_outlasts_the_longest_hard_time_limit():
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert timeout > settings.JOB_HARD_TIME_LIMIT_MAX
