"""A worker that declares WORKER_DEVICE=cuda gets its jobs computed on the GPU or not at all.

This machine has torch built for CUDA and no GPU (torch.cuda.is_available() is False), which is
exactly a cuda node whose GPU is missing: those tests are real (a real worker declaring cuda, the
real child process, the real engines). A busy GPU and running out of GPU memory can't be produced
without a GPU, so they are simulated where torch reports them. What a GPU node does with a GPU is
bench/gpu_check.py's table, run on one.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from engines import EngineError, open_engine
from jobs import runner
from jobs.child import _error_text
from jobs.heartbeat import detect_device
from jobs.methods.base import RunContext
from jobs.models import Job, Worker
from jobs.services import job_submit
from engines import gpu
from tests.support.processes import WIKITEXT

torch = pytest.importorskip("torch")
no_gpu_here = pytest.mark.skipif(torch.cuda.is_available(),
                                 reason="a GPU is visible here: the missing-GPU case can't happen")
MISSING = "declares WORKER_DEVICE=cuda but has no usable GPU"


@no_gpu_here
def test_a_worker_declaring_cuda_stays_cuda_without_a_gpu(monkeypatch):
    monkeypatch.setenv("WORKER_DEVICE", "cuda")
    monkeypatch.delenv("WORKER_MEMORY_GB", raising=False)
    device, name, _ = detect_device()
    assert (device, name) == ("cuda", "no GPU visible")
    monkeypatch.setenv("WORKER_DEVICE", "")
    assert detect_device()[:2] == ("cpu", "")  # undeclared: what torch sees, no GPU here


@no_gpu_here
def test_require_gpu_names_the_node_and_what_is_missing():
    with pytest.raises(gpu.GpuUnavailable) as err:
        gpu.require_gpu(node="gpu@n1")
    assert str(err.value).startswith(f"node gpu@n1 {MISSING}: ")
    assert "the job was not run on the CPU instead" in str(err.value)


@pytest.fixture
def tiny_variant(teams, tiny_chat_hf):
    from catalog.imports import import_hf_folder

    return import_hf_folder(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                            folder=str(tiny_chat_hf), name="tiny-chat")


@no_gpu_here
@pytest.mark.slow
@pytest.mark.parametrize("method, params", [
    ("bnb-nf4", {}),
    ("gptq", {"group_size": 64, "dataset_path": str(WIKITEXT / "valid.txt"), "samples": 2, "seq_len": 16}),
    ("evaluate", {"dataset_path": str(WIKITEXT / "valid.txt"), "context": 32, "chunks": 1,
                  "speed": False}),
])
def test_a_job_on_a_cuda_node_without_a_gpu_fails_naming_it(db, teams, tiny_variant, settings,
                                                            method, params):
    """The runner (in this process) starts the real child, which finds no GPU: the job fails
    with the node's name and what is missing, and nothing is registered from a CPU run."""
    Worker.objects.create(hostname="gpu@n1", queues=["gpu"], device="cuda", device_name="no GPU visible",
                          memory_bytes=64 * 2**30, methods=[method], last_seen=timezone.now())
    job = job_submit(team=teams["red"], user=teams["alice"], method=method, params=params,
                     input_variant=tiny_variant)
    assert job.queue == "gpu"
    runner.execute(job_id=job.pk, worker="gpu@n1")
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED, job.log_tail
    assert f"node gpu@n1 {MISSING}" in job.error, job.error
    assert not job.outputs.exists() and not job.evaluations.exists()


@no_gpu_here
@pytest.mark.slow
def test_the_child_reads_the_device_from_its_spec(tmp_path, tiny_chat_hf):
    """`python -m jobs.child` as the runner starts it, with the spec's device: cuda fails before
    loading anything; the same spec with cpu quantizes."""
    def child(device: str) -> dict:
        workdir = tmp_path / device
        workdir.mkdir()
        spec = {"job_id": 1, "method": "bnb-nf4", "workdir": str(workdir), "device": device,
                "node": "gpu@n1", "peak_memory_bytes": 0, "input_format": "hf",
                "input_quant_type": "f32", "input_dir": str(tiny_chat_hf), "input_files": [],
                "params": {"quant_type": "nf4", "double_quant": True, "compute_dtype": "bfloat16"}}
        (workdir / "spec.json").write_text(json.dumps(spec))
        subprocess.run([sys.executable, "-m", "jobs.child", str(workdir / "spec.json")], timeout=300,
                       cwd=Path(runner.ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads((workdir / "result.json").read_text())

    failed = child("cuda")
    assert failed["ok"] is False and failed["error"].startswith(f"node gpu@n1 {MISSING}")
    assert not (tmp_path / "cuda" / "work" / "out").exists()
    done = child("cpu")
    assert done["ok"] is True and done["outputs"][0]["params"]["device"] == "cpu"


@no_gpu_here
@pytest.mark.slow
def test_engines_on_a_cuda_node_without_a_gpu_refuse_to_load(demo_gguf, tiny_chat_hf):
    for fmt, files in (("gguf", [demo_gguf]), ("hf", sorted(tiny_chat_hf.iterdir()))):
        with pytest.raises(EngineError) as err:
            open_engine(fmt, files, n_ctx=64, threads=1, device="cuda", node="gpu@n1")
        assert err.value.code == "gpu_unavailable"
        assert (f"node gpu@n1 {MISSING}" in str(err.value)
                or "built without GPU offload" in str(err.value)), str(err.value)
        engine = open_engine(fmt, files, n_ctx=64, threads=1, device="cpu")
        assert engine.info["device"] == "cpu"
        engine.unload()


def test_the_runner_hands_the_workers_declared_device_to_the_child(db):
    Worker.objects.create(hostname="gpu@n2", queues=["gpu"], device="cuda", memory_bytes=2**34,
                          methods=["gptq"], last_seen=timezone.now())
    assert runner.declared_device("gpu@n2") == "cuda"
    assert runner.declared_device("nobody@n3") == "cpu"


def test_out_of_gpu_memory_names_the_node_and_keeps_torchs_first_line():
    """Simulated: torch raises torch.cuda.OutOfMemoryError mid-run on a GPU (not producible here)."""
    ctx = RunContext(job_id=1, params={}, input_format="hf", input_quant_type="f32", input_dir="",
                     input_files=[], workdir="", device="cuda", node="gpu@n1")
    exc = torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB\n"
        "Of the allocated memory 70.1 GiB is allocated by PyTorch ...")
    text = _error_text(exc, ctx)
    assert text.startswith("node gpu@n1's GPU ran out of memory (")
    assert text.endswith("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                         "capacity of 79.19 GiB")
    cpu_ctx = RunContext(job_id=1, params={}, input_format="hf", input_quant_type="f32",
                         input_dir="", input_files=[], workdir="")
    assert _error_text(ValueError("bad"), cpu_ctx) == "ValueError: bad"


def test_a_busy_gpu_is_refused_before_loading(monkeypatch):
    """Simulated: torch sees an 80 GiB GPU with 3 GiB free (another process holds the rest)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (3 * 2**30, 80 * 2**30))
    with pytest.raises(gpu.GpuUnavailable) as err:
        gpu.require_gpu(node="gpu@n1", need_bytes=5 * 2**30)
    assert str(err.value) == ("node gpu@n1's GPU NVIDIA H100 80GB HBM3 is busy: 3.0 GiB free of "
                              "80.0 GiB, the job needs about 5.0 GiB")
    assert gpu.require_gpu(node="gpu@n1", need_bytes=2 * 2**30) == "NVIDIA H100 80GB HBM3"


@no_gpu_here
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_declaring_cuda_fails_its_job_naming_the_missing_gpu(
        teams, tiny_chat_hf, redis_server, django_db_blocker, session_dir):
    """A Celery worker started with WORKER_DEVICE=cuda on this GPU-less machine: it declares
    itself cuda (GPU memory unreadable), takes the bnb job from the gpu queue, and fails it."""
    from catalog.imports import import_hf_folder
    from tests.support.fixtures import start_worker_and_wait, stop_worker_and_forget
    from tests.support.processes import wait_until

    process = start_worker_and_wait(django_db_blocker, session_dir, "cudaless@%h", queues="gpu",
                                    WORKER_DEVICE="cuda", WORKER_NODE_BENCH="0")
    try:
        worker = Worker.objects.get(hostname__startswith="cudaless@")
        assert (worker.device, worker.device_name) == ("cuda", "no GPU visible")
        assert "error" in worker.gpu_memory and "bnb-nf4" in worker.methods
        variant = import_hf_folder(team_id=teams["red"].pk, user_id=teams["alice"].pk,
                                   folder=str(tiny_chat_hf), name="tiny-chat")
        job = job_submit(team=teams["red"], user=teams["alice"], method="bnb-nf4", params={},
                         input_variant=variant)
        wait_until(lambda: Job.objects.get(pk=job.pk).is_final, 120, interval=0.5, what="bnb job")
        job.refresh_from_db()
        assert job.status == Job.Status.FAILED
        assert job.error.startswith(f"node {worker.hostname} {MISSING}: "), job.error
        assert not job.outputs.exists()
    finally:
        stop_worker_and_forget(django_db_blocker, process, "cudaless@%h")


def test_gpu_memory_report_without_nvidia_smi(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi on it
    assert gpu.gpu_memory_report() == {"error": "no GPU visible (nvidia-smi not found)"}


def test_gpu_memory_report_reads_nvidia_smi(monkeypatch, tmp_path):
    """A stand-in nvidia-smi printing what the real one prints for an H100 in use (MiB)."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '2345, 81559'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu.gpu_memory_report() == {"used_bytes": 2345 * 2**20, "total_bytes": 81559 * 2**20}
    monkeypatch.setenv("WORKER_DEVICE", "cuda")
    assert gpu.runtime_memory_budget(4 * 2**30) == (81559 - 2345) * 2**20
    monkeypatch.setenv("WORKER_DEVICE", "cpu")
    assert gpu.runtime_memory_budget(4 * 2**30) == 4 * 2**30


def test_the_runtime_budget_on_a_cuda_node_without_a_gpu_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("WORKER_DEVICE", "cuda")
    with pytest.raises(gpu.GpuUnavailable, match="GPU memory can't be read: no GPU visible"):
        gpu.runtime_memory_budget(4 * 2**30)


def test_the_workers_page_shows_gpu_memory_for_cuda_nodes(client, teams, settings):
    from tests.support.fixtures import PASSWORD
    from tests.support.processes import free_port

    settings.RUNTIME_URL = f"http://127.0.0.1:{free_port()}"
    now = timezone.now()
    Worker.objects.create(hostname="cpu@w1", queues=["cpu"], device="cpu", memory_bytes=2**34,
                          last_seen=now)
    Worker.objects.create(hostname="gpu@w2", queues=["gpu"], device="cuda", memory_bytes=80 * 2**30,
                          device_name="NVIDIA H100 80GB HBM3", last_seen=now,
                          gpu_memory={"used_bytes": 2345 * 2**20, "total_bytes": 81559 * 2**20})
    Worker.objects.create(hostname="gpu@w3", queues=["gpu"], device="cuda", memory_bytes=2**34,
                          device_name="no GPU visible", last_seen=now,
                          gpu_memory={"error": "no GPU visible (nvidia-smi not found)"})
    client.login(username="alice", password=PASSWORD)
    html = client.get("/jobs/workers/").content.decode()

    def cell(host: str) -> str:
        row = html.split(f'data-worker="{host}"')[1].split("</tr>")[0]
        return row.split('class="gpu-memory">')[1].split("</td>")[0]

    assert cell("cpu@w1") == "no GPU"
    assert cell("gpu@w2") == "2.3\xa0GiB in use of 79.6\xa0GiB"
    assert "no GPU visible (nvidia-smi not found)" in cell("gpu@w3")


def test_the_gpu_image_builds_every_cuda_part_for_sm80_sm89_sm90():
    """llama-cpp-python, the llama.cpp tools and GPTQModel's kernels from one architecture list,
    and the build stops when bitsandbytes' wheel lacks its CUDA 13.0 library."""
    import re

    text = (Path(runner.ROOT) / "docker" / "Dockerfile.gpu").read_text()
    assert re.search(r'^ARG CUDA_ARCHITECTURES="80;89;90"$', text, re.M)
    assert text.count("-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHITECTURES") == 2  # bindings and tools
    assert 'TORCH_CUDA_ARCH_LIST="$(echo "$CUDA_ARCHITECTURES"' in text
    assert "libbitsandbytes_cuda130.so" in text
