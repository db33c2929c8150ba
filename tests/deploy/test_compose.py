"""docker/compose.yml and the Dockerfiles, checked against the project without a Docker engine:
commands that exist, settings the project reads, matching ports, one artifact path everywhere,
health checks on real URLs, COPY sources that exist and the pinned requirements installed."""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
APP_SERVICES = ("migrate", "web", "worker-cpu", "worker-gpu", "runtime")
ARTIFACT_PATH = "/srv/quantdash/artifacts"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def _services(compose):
    return {name: compose["services"][name] for name in APP_SERVICES}


def _variables_the_project_reads() -> set[str]:
    """Names passed to the env helpers in settings.py and to os.environ.get anywhere in the apps."""
    names = set(re.findall(r'env_(?:str|int|bool|list)\("([A-Z0-9_]+)"',
                           (ROOT / "quantdash" / "settings.py").read_text()))
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        names |= set(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', path.read_text()))
    return names


def _command_lines(command: list[str]) -> list[list[str]]:
    """A command list; `sh -c "a && b"` becomes its parts."""
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def _check_manage_py(argv: list[str]) -> None:
    assert argv[:2] == ["python", "manage.py"], argv
    name, args = argv[2], argv[3:]
    commands = get_commands()
    assert name in commands, f"manage.py has no command {name}"
    if name == "runtime_supervisor":  # the options after -- go to runtime_server
        assert args[0] == "--"
        name, args = "runtime_server", args[1:]
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    parser.parse_args(args)  # exits (fails the test) on an option the command doesn't have


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _check_celery(argv: list[str]) -> None:
    from django.conf import settings

    assert argv[:4] == ["celery", "-A", "quantdash", "worker"], argv
    assert (ROOT / "quantdash" / "celery.py").exists()
    queues = _option(argv, "-Q").split(",")
    assert set(queues) <= set(settings.CELERY_TASK_QUEUES_NAMES), queues
    assert "%h" in _option(argv, "--hostname")


def _check_uvicorn(argv: list[str]) -> None:
    import importlib

    assert argv[0] == "uvicorn"
    module, attribute = argv[1].split(":")
    assert hasattr(importlib.import_module(module), attribute)


def _check_python(argv: list[str]) -> None:
    """`python manage.py ...`, or `python -m quantdash.web <uvicorn options>` (the web tier)."""
    if argv[1:3] != ["-m", "quantdash.web"]:
        return _check_manage_py(argv)
    from uvicorn.main import main as uvicorn_cli

    from quantdash.web import uvicorn_argv

    command = uvicorn_argv(argv[3:], workers=2)
    _check_uvicorn(["uvicorn", *command[3:]])
    uvicorn_cli.make_context("uvicorn", command[3:])  # fails on an option uvicorn doesn't have


def test_the_stack_has_every_service(compose):
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "web", "worker-cpu",
                                        "worker-gpu", "runtime"}


def test_every_command_runs_something_the_project_has(compose):
    for name, service in _services(compose).items():
        for argv in _command_lines(service["command"]):
            {"python": _check_python, "celery": _check_celery,
             "uvicorn": _check_uvicorn}[argv[0]](argv)


def test_the_dockerfile_defaults_match_compose(compose):
    """Each image's CMD is the command compose runs (so `docker run` alone does the same)."""
    text = (DOCKER / "Dockerfile").read_text()
    cmds = {target: json for target, json in re.findall(
        r"FROM base AS ([\w-]+)\n(?:.*\n)*?CMD (\[.*\])", text)}
    gpu_cmd = re.search(r"^CMD (\[.*\])", (DOCKER / "Dockerfile.gpu").read_text(), re.M).group(1)
    import json

    services = compose["services"]
    assert json.loads(cmds["web"]) == services["web"]["command"]
    assert json.loads(cmds["worker-cpu"]) == services["worker-cpu"]["command"]
    assert json.loads(cmds["runtime"]) == services["runtime"]["command"]
    assert json.loads(gpu_cmd) == services["worker-gpu"]["command"]


def test_workers_consume_their_queue_and_the_gpu_one_declares_cuda(compose):
    cpu, gpu = compose["services"]["worker-cpu"], compose["services"]["worker-gpu"]
    assert _option(cpu["command"], "-Q") == "cpu" and cpu["environment"]["WORKER_DEVICE"] == "cpu"
    assert _option(gpu["command"], "-Q") == "gpu" and gpu["environment"]["WORKER_DEVICE"] == "cuda"
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    # Fixed hostnames: a restarted container keeps its Worker row and node queue.
    assert cpu["hostname"] and gpu["hostname"]


def test_every_variable_set_is_one_the_project_reads(compose):
    known = _variables_the_project_reads()
    for name, service in _services(compose).items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets {unknown}, which nothing reads"


def test_every_variable_is_documented():
    documented = (DOCKER / "README.md").read_text()
    text = (DOCKER / "compose.yml").read_text()
    names = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+):", text, re.M))
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    missing = sorted(n for n in names if f"`{n}`" not in documented)
    assert not missing, f"docker/README.md does not describe {missing}"
    example = (DOCKER / "env.example").read_text()
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):\?", text))
    assert required <= set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.M))


def test_ports_match_the_processes(compose):
    web, runtime = compose["services"]["web"], compose["services"]["runtime"]
    port = _option(web["command"], "--port")
    assert web["ports"] == [f"${{WEB_PORT:-8000}}:{port}"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(web["healthcheck"]["test"])
    assert f"EXPOSE {port}" in (DOCKER / "Dockerfile").read_text()
    # The runtime listens on loopback in the web container's network namespace, where
    # RUNTIME_URL points; 8100 is also runtime_server's own default.
    assert runtime["network_mode"] == "service:web"
    runtime_argv = runtime["command"]
    assert _option(runtime_argv, "--host") == "127.0.0.1"
    assert web["environment"]["RUNTIME_URL"] == f"http://127.0.0.1:{_option(runtime_argv, '--port')}"
    parser = load_command_class("runtime", "runtime_server").create_parser("manage.py", "runtime_server")
    assert parser.get_default("port") == int(_option(runtime_argv, "--port"))


def test_the_artifact_volume_is_mounted_at_artifact_root_everywhere(compose):
    for name, service in _services(compose).items():
        assert service["environment"]["ARTIFACT_ROOT"] == ARTIFACT_PATH, name
        assert f"artifacts:{ARTIFACT_PATH}" in service["volumes"], name
    assert "artifacts" in compose["volumes"]
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        assert f"ARTIFACT_ROOT={ARTIFACT_PATH}" in (DOCKER / dockerfile).read_text()


def test_every_app_service_shares_the_same_database_and_broker(compose):
    envs = [s["environment"] for s in _services(compose).values()]
    assert len({e["DATABASE_URL"] for e in envs}) == 1
    assert len({e["REDIS_URL"] for e in envs}) == 1
    assert envs[0]["DATABASE_URL"].startswith("postgres://quantdash:")
    assert envs[0]["DATABASE_URL"].endswith("@postgres:5432/quantdash")
    assert envs[0]["REDIS_URL"] == "redis://redis:6379/0"


def test_health_checks(compose):
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    url = re.search(r"http://127\.0\.0\.1:\d+(/\S*?)'", " ".join(services["web"]["healthcheck"]["test"]))
    assert resolve(url.group(1)).url_name == "healthz"


def test_redis_is_append_only_and_never_evicts(compose):
    command = compose["services"]["redis"]["command"]
    assert _option(command, "--appendonly") == "yes"
    assert _option(command, "--maxmemory-policy") == "noeviction"


def test_the_app_waits_for_migrations_and_healthy_backends(compose):
    for name in ("web", "worker-cpu", "worker-gpu"):
        depends = compose["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_copy_files_that_exist_and_install_the_pins(dockerfile):
    text = (DOCKER / dockerfile).read_text()
    for sources in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"{dockerfile} copies {source}, which is missing"
    assert "COPY requirements.txt" in text and "-r requirements.txt" in text or \
        "requirements.txt > /tmp/requirements-rest.txt" in text
    pins = dict(re.findall(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    llama = re.search(r"ARG LLAMA_CPP_VERSION=(\S+)", text).group(1)
    assert llama == pins["llama-cpp-python"]
    assert f"LLAMA_CPP_VERSION := {llama}" in (ROOT / "Makefile").read_text()
    assert (DOCKER / f"{dockerfile}.dockerignore").exists()


def test_the_gpu_image_builds_the_cuda_kernels():
    text = (DOCKER / "Dockerfile.gpu").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:13\.[\d.]+-devel-ubuntu22\.04$", text, re.M)
    assert '-DGGML_CUDA=on' in text and "--no-binary llama-cpp-python" in text
    assert re.search(r"ARG TORCH_VERSION=(\S+)", text).group(1) == pins["torch"]
    assert re.search(r"ARG GPTQMODEL_VERSION=(\S+)", text).group(1) == pins["gptqmodel"]
    assert "BUILD_CUDA_EXT=1" in text and "--no-build-isolation" in text
    assert "python3.11" in text  # pyproject: requires-python >=3.11,<3.12


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_llama_cpp_is_built_for_portable_x86_64_not_this_cpu(dockerfile):
    """A -march=native build (llama.cpp's default) reused on another CPU dies with SIGILL."""
    make_args = re.search(r"^LLAMA_CMAKE_ARGS := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert "-DGGML_NATIVE=OFF" in make_args and "-DGGML_AVX2=ON" in make_args
    assert 'CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)"' in (ROOT / "Makefile").read_text()
    text = (DOCKER / dockerfile).read_text()
    assert re.search(r'^ARG LLAMA_CMAKE_ARGS="(.+)"$', text, re.M).group(1) == make_args
    assert re.search(r'CMAKE_ARGS="[^"]*\$LLAMA_CMAKE_ARGS"[^"]{0,40}pip install --no-binary llama-cpp-python', text)
