"""The Workers page (/jobs/workers/): what the cluster looks like right now — each worker's queues,
device, memory, methods and heartbeat, what it measured of its node (and a button to measure again),
its running jobs, how many jobs wait in each Redis queue,
and what the runtime server has loaded. Any part that can't be reached shows "unavailable"."""

from collections import defaultdict

from django.conf import settings
from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from kombu.exceptions import ChannelError, OperationalError

from jobs.heartbeat import node_queue
from jobs.models import Job, Worker
from jobs.tasks import measure_node
from jobs.selectors import jobs_visible_to
from quantdash.celery import app

# Fail fast when the broker is down: one attempt, one second to connect or answer, so the page
# says "Redis unavailable" at once instead of waiting out kombu's connection retries.
BROKER_PROBE = {"max_retries": 0, "socket_connect_timeout": 1, "socket_timeout": 1}


def queue_lengths(names: list[str]) -> dict[str, int] | None:
    """Messages waiting in each queue, or None if the broker is down.

    A passive queue_declare returns kombu's own count: for Redis, `Channel._size` sums LLEN over
    the queue's list and one list per priority step (kombu/transport/redis.py, `_size`,
    `_q_for_pri`). A queue with nothing in it has no Redis key at all, which the passive
    declare reports as NOT_FOUND (`_has_queue`): that is an empty queue, 0.
    The URL is REDIS_URL, which settings use as the Celery broker URL.
    """
    conn = app.connection_for_read(url=settings.REDIS_URL, connect_timeout=1, transport_options=BROKER_PROBE)
    try:
        with conn:
            channel = conn.default_channel
            return {name: _message_count(channel, name) for name in names}
    except (OperationalError, *conn.connection_errors):
        return None


def _message_count(channel, name: str) -> int:
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except ChannelError:
        return 0


def worker_list(request):
    from runtime.client import status_sync

    workers = list(Worker.objects.all())
    running = defaultdict(list)
    visible = set(jobs_visible_to(request.user).filter(status=Job.Status.RUNNING)
                  .values_list("pk", flat=True))
    for pk, worker in Job.objects.filter(status=Job.Status.RUNNING).values_list("pk", "worker"):
        running[worker].append({"pk": pk, "visible": pk in visible})
    rows = [{"worker": w, "running": running.get(w.hostname, []), "measured": measurement_rows(w.measurements)}
            for w in workers]
    names = sorted({*settings.CELERY_TASK_QUEUES_NAMES, *(q for w in workers for q in w.queues or [])})
    lengths = queue_lengths(names)
    queued = dict(Job.objects.filter(status=Job.Status.QUEUED).values("queue")
                  .annotate(n=Count("pk")).values_list("queue", "n"))
    context = {
        "rows": rows,
        "queues": [{"name": n, "length": None if lengths is None else lengths[n],
                    "jobs_queued": queued.get(n, 0),
                    "consumers": [w.hostname for w in workers if n in (w.queues or [])]}
                   for n in names],
        "redis_up": lengths is not None,
        "runtime": status_sync(),
        "runtime_url": settings.RUNTIME_URL,
    }
    return render(request, "jobs/workers.html", context)


def measurement_rows(m: dict) -> dict | None:
    """A node measurement (jobs/node_bench.py) as the page shows it."""
    if not m:
        return None
    cond = m.get("conditions", {})
    bw = m.get("bandwidth", {})
    return {"status": m.get("status", ""), "error": m.get("error", ""),
            "bandwidth_gbs": bw["bytes_per_s"] / 1e9 if bw.get("bytes_per_s") else None,
            "bandwidth_method": bw.get("method", ""), "conditions": cond,
            "schemes": [{"scheme": r["scheme"], "pp": r.get("pp_tokens_per_s"), "pp_sd": r.get("pp_stddev"),
                         "tg": r.get("tg_tokens_per_s"), "tg_sd": r.get("tg_stddev"),
                         "read_gb": r.get("bytes_per_token", 0) / 1e9,
                         "achieved_gbs": (r.get("tg_tokens_per_s") or 0) * r.get("bytes_per_token", 0) / 1e9,
                         "n_prompt": r.get("n_prompt"), "n_gen": r.get("n_gen")}
                        for r in m.get("llama_bench", [])],
            "depth": _depth_rows(m.get("decode_depth") or {}), "moe": _moe_row(m.get("moe") or {})}


def _moe_row(moe: dict) -> dict | None:
    """The small MoE measured beside the dense file (what a MoE layer adds, the experts' prefill rate)."""
    if not moe.get("tg_tokens_per_s"):
        return None
    return {"file": moe.get("file", ""), "scheme": moe.get("scheme", ""),
            "shape": f"{moe.get('n_layers')} layers of {moe.get('experts')} experts, {moe.get('experts_per_token')} per token",
            "pp": moe.get("pp_tokens_per_s"), "pp_sd": moe.get("pp_stddev"), "tg": moe.get("tg_tokens_per_s"),
            "tg_sd": moe.get("tg_stddev"), "read_gb": moe.get("bytes_per_token", 0) / 1e9}


def _depth_rows(depth: dict) -> dict | None:
    """Decode at context depth (llama-bench tg after a prompt of n_depth tokens), each kernel."""
    if not depth.get("rows"):
        return None
    rows = sorted(depth["rows"], key=lambda r: (r["flash_attn"], r["n_depth"]))
    return {"file": depth.get("file", ""), "n_gen": depth.get("n_gen"),
            "shape": (f"{depth['n_layers']} layers × {depth['n_heads']} heads ({depth['n_kv_heads']} KV) × "
                      f"{depth['head_dim']}") if depth.get("n_layers") else "",
            "rows": [{"n_depth": r["n_depth"], "flash_attn": "on" if r["flash_attn"] else "off",
                      "tg": r.get("tg_tokens_per_s"), "tg_sd": r.get("tg_stddev")} for r in rows]}


@require_POST
def worker_measure(request, pk: int):
    """Asks a worker to measure its node again: a task on its own queue, run between its jobs."""
    worker = get_object_or_404(Worker, pk=pk)
    if not worker.is_alive:
        messages.error(request, f"{worker.hostname} is not alive: nothing to measure")
        return redirect("jobs:workers")
    try:
        measure_node.apply_async(args=[worker.hostname], queue=node_queue(worker.hostname), retry=False)
    except (OperationalError, ConnectionError) as exc:   # Redis down
        messages.error(request, f"could not reach the queue of {worker.hostname}: {exc}")
        return redirect("jobs:workers")
    messages.success(request, f"{worker.hostname} will measure its node (between jobs); refresh in a minute.")
    return redirect("jobs:workers")
