"""The API image's contents, started without Docker (issue #17, item 1).

No container registry is reachable here, so the image is not built. Instead the test reads ``deploy/Dockerfile``,
puts exactly the files of its ``COPY`` lines into an empty folder (the image's file system, ``WORKDIR`` included),
adds the API service's volumes of ``deploy/docker-compose.yml`` where the container would see them, and runs from
there what the container runs, with the image's ``ENV`` and the compose service's ``environment``:

* the production ingest (``docker compose run --rm api-blue python -m ingest``, docs/operations.md) into a Chroma
  server started here (the ``chroma`` service);
* the image's ``CMD`` (``uvicorn server:app`` with its flags; host and port changed to a free loopback port);

then requires ``/ready`` to be ready and one real answer with a source from ``/rag/invoke``. Compose service host
names (vllm, chroma, redis, postgres) become 127.0.0.1 with the real local ports; the offline models stand in for
the production ones: the local vLLM (its served model name) for Qwen, and the ``make models`` outputs in the
``models`` volume (``.cache/models/*`` at its root, ``.cache/guards`` as ``guards/``) for whatever the compose
file names. The local PostgreSQL has no ``shop`` role: ``DATABASE_URL`` becomes ``TEST_DATABASE_URL``.

Both processes start through a launcher written outside the image's folder; it removes the editable install of
this repository from the import system and records where every project module was loaded from. The test fails if
any of them comes from outside the image's folder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import yaml

from conftest import VLLM_URL, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
API_SERVICE = "api-blue"
PROJECT_MODULES = ("api", "chains", "core", "evals", "graph", "guards", "ingest", "modelprep", "server")
PYTHON = ROOT / ".venv" / "bin" / "python"
MODELS = ROOT / ".cache" / "models"
GUARDS = ROOT / ".cache" / "guards"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_PORT = 6379
# deploy/.env's required secrets (``${VAR:?…}`` in the compose file); test values only.
COMPOSE_VARS = {
    "POSTGRES_PASSWORD": "image-test-postgres",
    "ADMIN_TOKEN": "image-test-admin-token-0123456789abcdef",
    "AUDIT_HMAC_KEY": "image-test-audit-key-0123456789abcdef",
    "AUDIT_CHAIN_KEY": "image-test-chain-key-0123456789abcdef",
    "THREAD_HMAC_KEY": "image-test-thread-key-0123456789abcdef",
    "PROMPT_CANARY": "image-test-canary-0123456789",
    "GRAFANA_ADMIN_PASSWORD": "image-test-grafana",
}
QUESTION = "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"
ANSWERED = ("generated", "extractive")
START_DEADLINE_S = 240  # two busy cores load e5, the guard encoder and the index
READY_GRACE_S = 20  # once /ready answers at all, how long it may take to say "ready"

# The launcher runs with cwd = the image's WORKDIR. `pip install -e .` put a meta-path finder (and a path hook)
# for this repository into .venv (``__editable__.shop_assistant-*.pth``): it answers `import core` etc. with
# /work/main/... whenever the WORKDIR lacks a module, which would hide exactly the gaps this test looks for.
# So the launcher removes that finder, its path hook and placeholder entry, and every sys.path entry but the
# interpreter's own (stdlib, site-packages) before importing anything of the project, then puts the WORKDIR
# first, as `uvicorn --app-dir .` (its default) and `python -m` do in the container.
LAUNCHER = textwrap.dedent(
    '''
    """Run the image's command from the current folder; write where the project modules were loaded from."""
    import json, os, socket, sys, threading, time

    OUT, MODE, ARGS = sys.argv[1], sys.argv[2], sys.argv[3:]
    PROJECT = set(json.loads(os.environ.pop("IMAGE_TEST_PROJECT_MODULES")))

    def editable(obj):
        text = f"{getattr(obj, '__module__', '')} {getattr(obj, '__qualname__', '')} {obj!r}"
        return "__editable__" in text or "_EditableFinder" in text or "_EditableNamespaceFinder" in text

    sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if not editable(h)]
    keep = (sys.prefix, sys.base_prefix, sys.exec_prefix)
    sys.path[:] = [p for p in sys.path if p and "__editable__" not in p and p.startswith(keep)]
    sys.path.insert(0, os.getcwd())
    sys.path_importer_cache.clear()
    assert not PROJECT & {m.split(".")[0] for m in sys.modules}, "project modules imported before the launcher ran"

    def dump(stage):
        found = {}
        for name, mod in list(sys.modules.items()):
            if name.split(".")[0] in PROJECT:
                where = getattr(mod, "__file__", None) or next(iter(getattr(mod, "__path__", []) or []), None)
                found[name] = where
        tmp = OUT + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"stage": stage, "sys_path": sys.path, "modules": found}, fh, indent=1)
        os.replace(tmp, OUT)

    if MODE == "api":
        port = int(ARGS[ARGS.index("--port") + 1])

        def when_serving():  # uvicorn binds its socket only after the lifespan start-up succeeded
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    dump("serving")
                    return
                except OSError:
                    time.sleep(0.5)

        threading.Thread(target=when_serving, daemon=True).start()
        import uvicorn

        try:
            uvicorn.main.main(args=ARGS, prog_name="uvicorn")
        finally:
            dump("exit")
    else:  # "module": python -m <ARGS[0]> <ARGS[1:]>
        import runpy

        sys.argv = [ARGS[0], *ARGS[1:]]
        try:
            runpy.run_module(ARGS[0], run_name="__main__", alter_sys=True)
        finally:
            dump("exit")
    '''
)


# --- deploy/Dockerfile -------------------------------------------------------------------------------------------


@dataclass
class Image:
    """What the test needs of the Dockerfile's last stage."""

    workdir: PurePosixPath = field(default_factory=lambda: PurePosixPath("/"))
    copies: list[tuple[list[str], PurePosixPath, bool]] = field(default_factory=list)  # sources, dest, dest is dir
    env: dict[str, str] = field(default_factory=dict)
    mkdirs: list[PurePosixPath] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: str = ""


def _instructions(text: str) -> Iterator[tuple[str, str]]:
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""


def _words(rest: str) -> list[str]:
    return list(json.loads(rest)) if rest.startswith("[") else shlex.split(rest)


def parse_dockerfile(text: str) -> Image:
    """WORKDIR, ENV, COPY (files and folders; ``--from``/``--chown``/… flags ignored), RUN's ``mkdir -p``, CMD."""
    image = Image()
    for keyword, rest in _instructions(text):
        if keyword == "FROM":
            image = Image()  # only the last stage is the image
        elif keyword == "WORKDIR":
            image.workdir = image.workdir / rest
        elif keyword == "ENV":
            words = shlex.split(rest)
            if words and "=" not in words[0]:
                image.env[words[0]] = rest.split(None, 1)[1] if len(words) > 1 else ""  # legacy `ENV key value`
            else:
                for word in words:
                    key, _, value = word.partition("=")
                    image.env[key] = value
        elif keyword in ("COPY", "ADD"):
            words = [w for w in _words(rest) if not w.startswith("--")]
            *sources, dest = words
            assert sources, f"{keyword} without a source: {rest}"
            into_dir = dest.endswith("/") or len(sources) > 1 or any(any(c in s for c in "*?[") for s in sources)
            image.copies.append((sources, image.workdir / dest, into_dir))
        elif keyword == "RUN":
            for match in re.finditer(r"mkdir\s+-p\s+((?:[^\s&;|]+\s*)+)", rest):
                image.mkdirs += [image.workdir / p for p in match.group(1).split()]
        elif keyword == "CMD":
            image.cmd = _words(rest)
        elif keyword == "HEALTHCHECK":
            image.healthcheck = rest
    return image


def _inside(rootfs: Path, path: PurePosixPath) -> Path:
    return rootfs / str(path).lstrip("/")


def assemble(image: Image, rootfs: Path) -> None:
    """Copy what the COPY lines copy, from the build context (the repository root), into ``rootfs``."""
    for sources, dest, into_dir in image.copies:
        target = _inside(rootfs, dest)
        for source in sources:
            matches = sorted(ROOT.glob(source)) if any(c in source for c in "*?[") else [ROOT / source]
            assert matches and all(m.exists() for m in matches), f"COPY source {source} is not in the build context"
            for src in matches:
                if src.is_dir():  # Docker copies a folder's contents, not the folder itself
                    shutil.copytree(src, target, dirs_exist_ok=True, symlinks=True)
                else:
                    out = target / src.name if into_dir else target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, out)


# --- deploy/docker-compose.yml ------------------------------------------------------------------------------------

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$$``."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = variables.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is None:
            assert op not in (":?", "?"), f"compose needs {name}: {arg}"
            return arg if op in (":-", "-") else ""
        return value

    return _VAR.sub(one, value)


@dataclass
class Service:
    """The API service's environment and volumes, interpolated."""

    env: dict[str, str]
    volumes: list[tuple[str, PurePosixPath]]  # (source: named volume or host path, container path)
    named_volumes: set[str]
    services: set[str]
    healthcheck: list[str] | str | None


def parse_compose(variables: dict[str, str]) -> Service:
    compose = yaml.safe_load(COMPOSE.read_text())  # resolves the x-api anchor and its `<<` merge
    svc = compose["services"][API_SERVICE]
    raw_env = svc.get("environment") or {}
    if isinstance(raw_env, list):
        raw_env = dict(item.split("=", 1) for item in raw_env)
    env = {k: interpolate(str(v), variables) for k, v in raw_env.items() if v is not None}
    volumes = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            source, target = str(entry.get("source", "")), str(entry["target"])
        else:
            source, target = interpolate(entry, variables).split(":")[:2]
        volumes.append((source, PurePosixPath(target)))
    return Service(
        env=env,
        volumes=volumes,
        named_volumes=set(compose.get("volumes") or {}),
        services=set(compose["services"]),
        healthcheck=(svc.get("healthcheck") or {}).get("test"),
    )


def models_volume(folder: Path) -> Path:
    """The ``models`` volume as docs/operations.md fills it: .cache/models/* at its root, .cache/guards as guards/."""
    folder.mkdir(parents=True)
    for entry in MODELS.iterdir():
        (folder / entry.name).symlink_to(entry)
    if GUARDS.is_dir():
        (folder / "guards").symlink_to(GUARDS)
    return folder


def mount_volumes(service: Service, rootfs: Path, scratch: Path) -> None:
    """Put each volume where the container sees it (a symlink in ``rootfs``)."""
    for source, target in service.volumes:
        where = _inside(rootfs, target)
        assert not where.exists(), f"volume at {target} hides files the image carries"
        if source in service.named_volumes:
            real = models_volume(scratch / source) if source == "models" else (scratch / source)
            real.mkdir(parents=True, exist_ok=True)
        else:
            real = (COMPOSE.parent / source).resolve()  # compose resolves bind mounts from its own folder
            assert real.exists(), f"bind mount source {source} ({real}) does not exist"
        where.parent.mkdir(parents=True, exist_ok=True)
        where.symlink_to(real)


def local_env(service: Service, image: Image, rootfs: Path, ports: dict[str, int]) -> dict[str, str]:
    """The container's environment on this machine: image ENV, then the service's, hosts and paths mapped."""
    env = {**image.env, **service.env}
    out: dict[str, str] = {}
    for key, value in env.items():
        if "://" in value:
            parts = urlsplit(value)
            if parts.hostname in service.services:
                if parts.scheme.startswith("postgres"):
                    value = TEST_DATABASE_URL  # the local server's role and database, not compose's `shop`
                else:
                    port = ports.get(parts.hostname, parts.port)
                    netloc = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
                    value = urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{port}"))
        elif value.startswith("/") and _inside(rootfs, PurePosixPath(value)).parent.exists():
            value = str(_inside(rootfs, PurePosixPath(value)))  # a container path: the same place in rootfs
        out[key] = value
    return out


# --- helpers --------------------------------------------------------------------------------------------------------


def _absent(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


def _llm_models(url: str) -> list[str]:
    try:
        r = httpx.get(url + "/models", timeout=3)
        return [m["id"] for m in r.json()["data"]] if r.status_code == 200 else []
    except (httpx.HTTPError, ValueError, KeyError):
        return []


def _log_tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tree(folder: Path) -> list[Path]:
    """``folder`` and everything below it, never following a symlink (volumes are symlinks to shared folders)."""
    out = [folder]
    for parent, dirs, files in os.walk(folder):  # followlinks=False
        out += [Path(parent) / name for name in dirs + files]
    return [p for p in out if not p.is_symlink()]


def _writable(folder: Path) -> None:
    for p in _tree(folder):
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def llm(request: pytest.FixtureRequest) -> str:
    """The local vLLM; started through the suite's fixture when installed but not running."""
    if not _llm_models(VLLM_URL):
        if not (ROOT / ".venv-vllm" / "bin" / "python").exists():
            _absent(f"no LLM at {VLLM_URL} and no .venv-vllm to start one (`make install models`)")
        request.getfixturevalue("vllm_server")
    return VLLM_URL


@pytest.fixture
def services() -> None:
    """The offline models, PostgreSQL and Redis the compose stack's stand-ins need."""
    for needed in (MODELS / "multilingual-e5-small" / ".complete", MODELS / "guard-encoder-e5-small" / ".complete"):
        if not needed.exists():
            _absent(f"{needed} is missing: run `make models`")
    import psycopg

    try:
        psycopg.connect(TEST_DATABASE_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _absent(f"PostgreSQL not reachable at {TEST_DATABASE_URL}: {exc}")
    try:
        socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=2).close()
    except OSError as exc:
        _absent(f"Redis not reachable on 127.0.0.1:{REDIS_PORT}: {exc}")


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[int]:
    """A Chroma server on a free loopback port (the compose file's ``chroma`` service)."""
    port = free_port()
    log = tmp_path / "chroma.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [
                str(PYTHON.with_name("chroma")),
                "run",
                "--path",
                str(tmp_path / "data"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"chroma run exited: {_log_tail(log)}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"chroma run did not answer in 60 s: {_log_tail(log)}"
            time.sleep(0.3)
        yield port
    finally:
        _stop(proc)


# --- the tests -------------------------------------------------------------------------------------------------------


def test_dockerfile_and_compose_health_checks_use_ready() -> None:
    image = parse_dockerfile(DOCKERFILE.read_text())
    assert "/ready" in image.healthcheck, f"the image's HEALTHCHECK does not probe /ready: {image.healthcheck}"
    service = parse_compose(COMPOSE_VARS)
    check = service.healthcheck
    if check is not None:
        assert "/ready" in " ".join(check if isinstance(check, list) else [check]), f"compose health check: {check}"


def _misplaced(modules: dict[str, str | None], app_dir: Path) -> dict[str, str | None]:
    bad = {}
    for name, where in modules.items():
        if where is None or not Path(where).resolve().is_relative_to(app_dir.resolve()):
            bad[name] = where
    return bad


def test_image_contents_serve_a_ready_api_and_an_answer(tmp_path: Path, llm: str, services: None, chroma: int) -> None:
    t0 = time.monotonic()
    image = parse_dockerfile(DOCKERFILE.read_text())
    assert image.cmd[:2] == ["uvicorn", "server:app"], f"the image's CMD is not `uvicorn server:app`: {image.cmd}"
    served = _llm_models(llm)
    assert served, f"the local LLM at {llm} lists no model"
    service = parse_compose({**COMPOSE_VARS, "LLM_MODEL": served[0]})  # the local vLLM's model in place of Qwen

    rootfs = tmp_path / "rootfs"  # the container's "/"; the image's WORKDIR inside it is the assembled folder
    app_dir = _inside(rootfs, image.workdir)
    app_dir.mkdir(parents=True)
    assemble(image, rootfs)
    mount_volumes(service, rootfs, tmp_path / "volumes")
    vllm_port = urlsplit(llm).port or 80
    env = local_env(service, image, rootfs, {"vllm": vllm_port, "chroma": chroma, "redis": REDIS_PORT})
    # The offline embedding model where the compose file names a hub model (e5-base) the models volume lacks.
    if not Path(env.get("EMBEDDING_MODEL", "/nonexistent")).exists():
        env["EMBEDDING_MODEL"] = str(MODELS / "multilingual-e5-small")
    print("image environment on this machine:\n" + "\n".join(f"  {k}={v}" for k, v in sorted(env.items())))
    # RUN lines are not executed (.venv stands in for `pip install`); the folders they create are made, writable,
    # and the rest of the image read-only, as it is for the image's user.
    for folder in image.mkdirs:
        _inside(rootfs, folder).mkdir(parents=True, exist_ok=True)
    writable = [_inside(rootfs, m) for m in image.mkdirs]
    for p in _tree(app_dir):
        if not any(p == w or w in p.parents for w in writable):
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    tools = tmp_path / "launcher"  # outside the assembled folder
    tools.mkdir()
    launcher = tools / "launch.py"
    launcher.write_text(LAUNCHER)
    process_env = {
        "PATH": f"{PYTHON.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "IMAGE_TEST_PROJECT_MODULES": json.dumps(PROJECT_MODULES),
        **env,
    }
    assert "PYTHONPATH" not in process_env
    problems: list[str] = []

    try:
        # 1. The production ingest, from the image, with the service's environment and volumes.
        ingest_modules = tmp_path / "modules-ingest.json"
        ingest = subprocess.run(
            [str(PYTHON), str(launcher), str(ingest_modules), "module", "ingest"],
            cwd=app_dir, env=process_env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        print(f"ingest (exit {ingest.returncode}, {time.monotonic() - t0:.0f} s):\n{ingest.stdout[-1500:]}")
        if ingest.returncode != 0:
            problems.append(f"ingest exited {ingest.returncode}:\n{ingest.stdout[-1500:]}\n{ingest.stderr[-2500:]}")
        if ingest_modules.exists():
            bad = _misplaced(json.loads(ingest_modules.read_text())["modules"], app_dir)
            if bad:
                problems.append(f"ingest loaded project modules from outside the image: {bad}")

        # 2. The image's CMD on a free loopback port.
        port = free_port()
        cmd = list(image.cmd[1:])
        for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
            if flag in cmd:
                cmd[cmd.index(flag) + 1] = value
            else:
                cmd += [flag, value]
        api_modules = tmp_path / "modules-api.json"
        log = tmp_path / "api.log"
        base = f"http://127.0.0.1:{port}"
        with log.open("w") as fh:
            proc = subprocess.Popen(
                [str(PYTHON), str(launcher), str(api_modules), "api", *cmd],
                cwd=app_dir, env=process_env, stdout=fh, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            ready, last, answered_at = False, "", None
            deadline = time.monotonic() + START_DEADLINE_S
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    r = httpx.get(base + "/ready", timeout=5)
                    last = f"{r.status_code} {r.text}"
                    if r.status_code == 200:
                        ready = True
                        break
                    answered_at = answered_at or time.monotonic()
                    if time.monotonic() - answered_at > READY_GRACE_S:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(1)
            started_s = time.monotonic() - t0
            if proc.poll() is not None:
                problems.append(f"the API exited during start-up (exit {proc.returncode}):\n{_log_tail(log)}")
            elif not ready:
                problems.append(f"/ready is not ready after {started_s:.0f} s: {last or 'no answer'}\n{_log_tail(log)}")
            else:
                print(f"/ready: {last} ({started_s:.0f} s after the test began)")
                r = httpx.post(base + "/rag/invoke", json={"input": {"question": QUESTION}}, timeout=300)
                if r.status_code != 200:
                    problems.append(f"/rag/invoke answered {r.status_code}: {r.text[:1000]}\n{_log_tail(log)}")
                else:
                    out = r.json()["output"]
                    print(f"/rag/invoke: {json.dumps(out, ensure_ascii=False)[:600]}")
                    if out.get("refused") or out.get("mode") not in ANSWERED or not out.get("sources"):
                        problems.append(f"no answer with a source: {out}")
        finally:
            _stop(proc)
        if api_modules.exists():
            loaded = json.loads(api_modules.read_text())
            bad = _misplaced(loaded["modules"], app_dir)
            if bad:
                problems.append(f"the API loaded project modules from outside the image ({app_dir}): {bad}")
            elif ready and not any(m.split(".")[0] == "server" for m in loaded["modules"]):
                problems.append(f"the launcher saw no project module: {loaded}")
        else:
            problems.append("the launcher wrote no module list")
    finally:
        _writable(rootfs)
    print(f"image-contents test: {time.monotonic() - t0:.0f} s")
    assert not problems, "\n\n".join(problems)
