"""/healthz against a real Redis and a real Celery worker."""

import pytest

from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _worker_registered():
    from jobs.models import Worker

    return any(w.is_alive for w in Worker.objects.all())


def test_healthz_is_200_when_database_redis_and_worker_are_up(client, redis_running, celery_worker):
    wait_until(_worker_registered, 10, what="worker heartbeat")
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {"cpu", "gpu"} <= set(body["checks"]["workers"]["workers"][0]["queues"])


def test_healthz_is_503_naming_redis_when_redis_is_stopped(client, redis_running, celery_worker):
    redis_running.stop()
    try:
        response = client.get("/healthz")
        assert response.status_code == 503
        body = response.json()
        assert "redis" in body["failing"]
        assert "database" not in body["failing"]
        assert "redis unreachable" in body["checks"]["redis"]["error"]
    finally:
        redis_running.start()


def test_healthz_is_503_naming_workers_when_no_heartbeat_is_fresh(client, redis_running, settings):
    from django.utils import timezone

    from jobs.models import Worker

    Worker.objects.create(hostname="gone@node", last_seen=timezone.now() - timezone.timedelta(minutes=5))
    settings.WORKER_STALE_SECONDS = 0  # no heartbeat, however recent, counts as fresh
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["workers"]
    assert "no celery worker" in body["checks"]["workers"]["error"]


def test_healthz_needs_no_login(client, redis_running):
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/healthz")["Content-Type"] == "application/json"
