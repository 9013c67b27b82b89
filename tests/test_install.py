"""The service as people install it: the wheel built from this repository, with the locked
dependencies, in a virtualenv of its own and run away from the source tree; the lock files
against pyproject.toml; and `./dev undersigned`, the CLI of the checkout's own virtualenv."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy import create_engine

from app.config import driver_url
from app.migrate import current_revision, head_revision
from tests.live import free_port
from tests.waiting import answers, wait_for

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"


def _uv() -> str:
    # uv (the dev extra) builds and installs from its cache in seconds, where pip takes a minute;
    # it runs the same build backend on the same lock file as the Dockerfile's pip.
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert found, "uv is in the dev extra: install it with `pip install -e '.[dev]'` or ./dev"
    return found


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without what points into the checkout or changes the service's defaults."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "ALLOWED_HOSTS"}}
    return {**env, **extra}


def _install(home: Path) -> Path:
    """Build the wheel, make a virtualenv, install the locked dependencies and then the wheel."""
    uv = _uv()
    _run(uv, "build", "--quiet", "--wheel", "--out-dir", home / "dist", ROOT, cwd=home)
    (wheel,) = (home / "dist").glob("undersigned-*.whl")
    venv = home / "venv"
    _run(uv, "venv", "--quiet", "--python", sys.executable, venv, cwd=home)
    python = venv / "bin" / "python"
    pip = [uv, "pip"]
    _run(
        *pip,
        "install",
        "--quiet",
        "--compile-bytecode",
        "--python",
        python,
        "--require-hashes",
        "-r",
        LOCK,
        cwd=home,
    )
    _run(*pip, "install", "--quiet", "--compile-bytecode", "--python", python, "--no-deps", wheel, cwd=home)
    _run(*pip, "check", "--python", python, cwd=home)  # the lock holds everything the wheel asks for
    return venv / "bin"


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Path]:
    """The `bin` folder of a virtualenv holding the wheel; made once per test session, the first
    test worker to need it making it while the others wait."""
    if worker_id == "master":
        yield _install(tmp_path_factory.mktemp("wheel"))
        return
    shared = tmp_path_factory.getbasetemp().parent  # this session's, shared by its workers
    with (shared / "wheel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bin_dir = shared / "wheel" / "venv" / "bin"
        if not (bin_dir / "undersigned").exists():
            (shared / "wheel").mkdir(exist_ok=True)
            bin_dir = _install(shared / "wheel")
    yield bin_dir


@pytest.mark.slow
def test_the_wheel_migrates_loads_the_demo_and_serves_without_the_source_tree(
    installed: Path, fresh_database_url: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(DATABASE_URL=fresh_database_url)
    where = _run(installed / "python", "-c", "import app; print(app.__file__)", cwd=elsewhere, env=env)
    assert not Path(where.strip()).is_relative_to(ROOT), where

    _run(installed / "undersigned", "db", "upgrade", cwd=elsewhere, env=env)
    engine = create_engine(driver_url(fresh_database_url))
    try:
        assert current_revision(engine) == head_revision()  # the wheel's migrations are the checkout's
    finally:
        engine.dispose()
    assert _run(installed / "undersigned", "demo", cwd=elsewhere, env=env).strip() == "demo data loaded"

    port = free_port()
    server = subprocess.Popen(
        [installed / "undersigned", "serve", "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(answers(f"{base}/readyz", server), "the installed server to be ready", timeout=120)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        letter = httpx.get(f"{base}/v1/letters/global-call-un-monitoring-china-2020", timeout=5)
        assert letter.status_code == 200, letter.text
        body = letter.json()
        assert (body["claimed_signatory_count"], body["recorded_signatory_count"]) == (321, 12)
        page = httpx.get(f"{base}/letters/global-call-un-monitoring-china-2020", timeout=5)
        assert page.status_code == 200 and "321" in page.text  # the templates came in the wheel too
        # the API docs' assets came with the runtime lock (fastapi-offline), served from here
        docs = httpx.get(f"{base}/docs", timeout=5)
        assert docs.status_code == 200 and "/static/docs/swagger-ui-bundle.js" in docs.text
        bundle = httpx.get(f"{base}/static/docs/swagger-ui-bundle.js", timeout=5)
        assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()


def _pins(lock: Path) -> dict[str, str]:
    pinned = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", lock.read_text(), flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pinned}


def test_the_lock_files_pin_what_pyproject_asks_for() -> None:
    """A dependency added or bounded in pyproject.toml without `./dev lock` fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = _pins(LOCK), _pins(DEV_LOCK)
    for lock, pins, wanted in (
        (LOCK, runtime, project["dependencies"]),
        (DEV_LOCK, dev, project["dependencies"] + project["optional-dependencies"]["dev"]),
    ):
        for line in wanted:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{name} is not in {lock.name}: run ./dev lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{lock.name} pins {name}=={pins[name]}, outside {requirement}: run ./dev lock"
            )
    assert {name: dev.get(name) for name in runtime} == runtime, "the two lock files disagree: run ./dev lock"


@pytest.mark.slow
def test_dev_runs_the_cli_of_the_checkout_where_it_is_called(tmp_path: Path) -> None:
    """`./dev undersigned …` is the README's `undersigned …` for a checkout set up by ./dev: the
    project's virtualenv, the caller's working directory (relative paths work), DATABASE_URL."""
    stamp = ROOT / ".venv" / ".installed.sha256"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + DEV_LOCK.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != wanted:
        pytest.skip("./dev would install .venv first: run ./dev test, which does")
    env = _clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}")
    dev = ROOT / "dev"
    created = _run(dev, "undersigned", "keys", "create", "--name", "from-dev", cwd=tmp_path, env=env)
    assert re.fullmatch(r"us_\S{20,}", created.strip().splitlines()[-1]), created
    assert "from-dev" in _run(dev, "undersigned", "keys", "list", cwd=tmp_path, env=env)
    _run(dev, "undersigned", "export", "dump", cwd=tmp_path, env=env)  # into the caller's folder
    assert (tmp_path / "dump" / "letters.csv").is_file()
