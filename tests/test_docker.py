"""docker/: Docker cannot run here, so each file is checked against what it names: the CLI's commands,
the settings the server reads, the health endpoint, the package the image installs, a Redis that loads the
conf.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml

import server.cli
from server.cli import build_parser
from server.settings import settings_from_env
from server.sites import load_sites
from tests.conftest import LiveServer, accepts_connections, free_port, wait_until

ROOT = Path(__file__).parent.parent
DOCKER = ROOT / "docker"
# Environment names read elsewhere than settings_from_env(): by the `storetag` command and by uvicorn.
READ_BY_CLI = {"STORETAG_LOG_LEVEL"}
READ_BY_UVICORN = {"FORWARDED_ALLOW_IPS"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def storetag_services() -> dict[str, dict[str, Any]]:
    """The services that run the image docker/Dockerfile builds."""
    services: dict[str, dict[str, Any]] = compose()["services"]
    return {name: service for name, service in services.items() if "build" in service}


def server_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in storetag_services().items() if s["command"][:2] == ["storetag", "serve"]}


def instructions(stage: int = -1) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one build stage of the Dockerfile, continuation lines joined."""
    stages: list[list[tuple[str, str]]] = []
    logical = ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        logical += line.strip().removesuffix("\\").strip() + " "
        if line.rstrip().endswith("\\"):
            continue
        keyword, _, arguments = logical.strip().partition(" ")
        logical = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), arguments))
    return stages[stage]


def only(keyword: str, stage: int = -1) -> str:
    [arguments] = [arguments for found, arguments in instructions(stage) if found == keyword]
    return arguments


def argv_of(arguments: str) -> list[str]:
    """An exec-form (JSON) or shell-form command line as a list."""
    if arguments.startswith("["):
        parsed: list[str] = json.loads(arguments)
        return parsed
    return shlex.split(arguments)


def parse_storetag(argv: list[str]) -> argparse.Namespace:
    assert argv[0] == "storetag", f"{argv} does not run storetag"
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{shlex.join(argv)}` is not a command line `storetag` accepts")


def test_the_image_serves_on_all_interfaces_by_default() -> None:
    args = parse_storetag(argv_of(only("CMD")))
    assert (args.command, args.host) == ("serve", "0.0.0.0")
    assert only("EXPOSE") == str(args.port)


def test_the_image_runs_as_an_unprivileged_user_it_creates() -> None:
    user = only("USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    assert shlex.split(only("RUN"))[:1] == ["useradd"] and shlex.split(only("RUN"))[-1] == user


@pytest.mark.parametrize("name", sorted(storetag_services()))
def test_every_storetag_service_runs_a_command_the_cli_has(name: str) -> None:
    command = storetag_services()[name]["command"]
    assert parse_storetag(command).command == command[1]


def test_compose_runs_two_servers_behind_the_load_balancer_and_a_worker() -> None:
    lb = compose()["services"]["lb"]["command"]
    targets = {lb[n + 1] for n, word in enumerate(lb) if word == "--to"}
    servers = server_services()
    assert len(servers) == 2
    assert targets == {f"{name}:{parse_storetag(s['command']).port}" for name, s in servers.items()}
    assert [s["command"][1] for s in storetag_services().values()].count("worker") == 1


def server_healthchecks() -> dict[str, tuple[list[str], int]]:
    """Where → (the healthcheck's command, the port that server listens on)."""
    options, _, command = only("HEALTHCHECK").partition(" CMD ")
    assert all(option.startswith("--") for option in options.split())
    checks = {"Dockerfile": (argv_of(command), parse_storetag(argv_of(only("CMD"))).port)}
    for name, service in server_services().items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD", "exec form: the slim image has no shell tools to rely on"
        checks[name] = (test[1:], parse_storetag(service["command"]).port)
    return checks


@pytest.mark.parametrize("where", ["Dockerfile", *sorted(server_services())])
def test_a_servers_healthcheck_passes_on_healthz_and_fails_when_nothing_answers(
    where: str, api_server: LiveServer
) -> None:
    argv, port = server_healthchecks()[where]
    url = f"http://127.0.0.1:{port}/healthz"
    assert argv[:2] == ["python", "-c"] and url in argv[2]

    def run_against(live_port: int) -> int:
        script = argv[2].replace(url, f"http://127.0.0.1:{live_port}/healthz")
        return subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=10).returncode

    assert run_against(api_server.port) == 0
    assert run_against(free_port()) != 0


def test_the_worker_has_no_http_healthcheck() -> None:
    workers = [s for s in storetag_services().values() if s["command"][1] == "worker"]
    assert workers and all(s["healthcheck"] == {"disable": True} for s in workers)


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def names_storetag_reads() -> set[str]:
    env = RecordingEnv()
    settings_from_env(env)
    cli_source = inspect.getsource(server.cli)
    assert all(f'"{name}"' in cli_source for name in READ_BY_CLI)
    return env.asked | READ_BY_CLI


def test_every_environment_name_given_is_one_storetag_or_uvicorn_reads() -> None:
    readable = names_storetag_reads() | READ_BY_UVICORN
    assert {"REDIS_URL", "STORETAG_SITES", "STORETAG_ADMIN_TOKEN_SHA256", "STORETAG_PUBLIC_URL"} <= readable
    for name, service in storetag_services().items():
        unknown = set(service["environment"]) - readable
        assert not unknown, f"{name} sets {sorted(unknown)}, which nothing reads"
    image_env = shlex.split(only("ENV"))
    given = {pair.partition("=")[0] for pair in image_env if pair.startswith("STORETAG_")}
    assert given and given <= readable


def test_every_storetag_service_keeps_state_in_the_compose_redis() -> None:
    services = compose()["services"]
    for name, service in storetag_services().items():
        host = urlsplit(service["environment"]["REDIS_URL"]).hostname
        assert host in services and "redis-server" in services[host]["command"], name
        assert service["depends_on"][host] == {"condition": "service_healthy"}


def test_compose_gives_redis_the_conf_and_a_named_volume_for_its_data() -> None:
    services, volumes = compose()["services"], compose()["volumes"]
    redis_service = services["redis"]
    mounts = dict(volume.split(":")[:2][::-1] for volume in redis_service["volumes"])
    conf = redis_service["command"][-1]
    assert mounts[conf] == "./redis.conf"
    assert mounts["/data"] in volumes


def test_the_sites_file_compose_mounts_is_a_valid_sites_file() -> None:
    for service in storetag_services().values():
        mounts = dict(volume.rsplit(":", 2)[:2][::-1] for volume in service["volumes"])
        source = mounts[service["environment"]["STORETAG_SITES"]]
        assert source == "${STORETAG_SITES_FILE:-./sites.toml}"
    assert load_sites(DOCKER / "sites.toml")


@pytest.fixture
def redis_on_the_docker_conf(tmp_path: Path) -> Iterator[redis.Redis]:
    """redis-server with docker/redis.conf; only where it listens is overridden (the image's /data is cwd)."""
    port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    conf = str(DOCKER / "redis.conf")
    process = subprocess.Popen(
        [binary, conf, "--port", str(port), "--bind", "127.0.0.1"], cwd=tmp_path, stdout=subprocess.DEVNULL
    )
    client = redis.Redis(port=port)
    try:
        wait_until(lambda: accepts_connections(port) or process.poll() is not None, what="redis-server")
        assert process.poll() is None, "redis-server refused docker/redis.conf"
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def test_redis_loads_the_conf_and_appends_every_write_to_the_aof(
    redis_on_the_docker_conf: redis.Redis, tmp_path: Path
) -> None:
    config = redis_on_the_docker_conf.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["maxmemory-policy"] == "noeviction"
    redis_on_the_docker_conf.sadd("st:{shop}:pool:WINTER", "KEEP-ME")

    def in_the_aof() -> bool:
        return any(b"KEEP-ME" in aof.read_bytes() for aof in (tmp_path / "appendonlydir").glob("*.aof"))

    wait_until(in_the_aof, what="the write in the AOF")


def test_the_dockerignore_keeps_out_local_state_and_lets_in_what_the_image_copies() -> None:
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert {".git", ".venv"} <= set(ignored)
    for keyword, arguments in instructions(0):
        if keyword == "COPY":
            for source in shlex.split(arguments)[:-1]:
                assert not any(fnmatch(source.rstrip("/"), pattern) for pattern in ignored), source


def test_the_package_the_image_installs_carries_every_file_the_server_reads(tmp_path: Path) -> None:
    """The build stage copies a few paths and runs `pip install .`: the wheel built from exactly those
    paths must hold every file of server/, rules/ and widget/ (the tag, templates, the demo's sites)."""
    install = [arguments for keyword, arguments in instructions(0) if keyword == "RUN"][-1]
    assert shlex.split(install)[-2:] == ["install", "."]
    source = tmp_path / "src"
    source.mkdir()
    for keyword, arguments in instructions(0):
        if keyword == "COPY":
            *copied, _ = shlex.split(arguments)
            for path in copied:
                (shutil.copytree if (ROOT / path).is_dir() else shutil.copy)(ROOT / path, source / path)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path / "wheel"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "wheel").glob("storetag-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        str(path.relative_to(ROOT))
        for top in ("server", "rules", "widget")
        for path in (ROOT / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert wanted - packaged == set()
