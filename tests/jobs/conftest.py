"""Fixtures for the jobs tests: a database that subprocesses share, and a real `db_worker`.

Cross-process tests need a database another process can open: on PostgreSQL that is the test
database itself (with committed, `transaction=True` data); on SQLite the test database lives in
memory, so these tests run against a migrated temporary FILE database instead, swapped in as
the default connection for the test's duration (every thread's new connection opens it too).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

import tests.jobs.handlers  # noqa: F401  (registers the test-only run kinds in this process)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path: Path) -> None:
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


def _postgres_url(conn_settings: dict) -> str:
    user, host, port = conn_settings["USER"], conn_settings["HOST"] or "127.0.0.1", conn_settings["PORT"] or 5432
    password = f":{conn_settings['PASSWORD']}" if conn_settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{conn_settings['NAME']}"


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jobsdb") / "template.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=120)
    return path


@pytest.fixture
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """DATABASE_URL of a database that this test and its subprocesses both use.

    Tests using it are marked `django_db(transaction=True)`, so that on PostgreSQL the test
    database exists and what the test writes is committed for the subprocesses to see.
    """
    if connections["default"].vendor == "postgresql":
        yield _postgres_url(connections["default"].settings_dict)
        return
    template = request.getfixturevalue("_migrated_sqlite_template")
    blocker = request.getfixturevalue("django_db_blocker")
    path = tmp_path / "shared.sqlite3"
    shutil.copy(template, path)
    conn_settings = connections.settings["default"]
    saved, old_wrapper = dict(conn_settings), connections["default"]
    conn_settings["NAME"] = str(path)
    connections["default"] = old_wrapper.__class__(conn_settings, "default")
    try:
        with blocker.unblock():
            yield f"sqlite:///{path}"
            connections["default"].close()
    finally:
        conn_settings.clear()
        conn_settings.update(saved)
        connections["default"] = old_wrapper


def subprocess_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "JOBS_EXTRA_HANDLER_MODULES": "tests.jobs.handlers",
        "RLCHF_ARTIFACTS_DIR": str(settings.ARTIFACTS_DIR),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture
def start_worker(shared_db: str, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Starts `manage.py db_worker` processes on the shared database; stops them afterwards."""
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--queue-name", "default,gpu", "--no-reload",
             "--interval", "0.2", "--no-startup-delay"],
            cwd=REPO,
            env=subprocess_env(shared_db, JOBS_HEARTBEAT_SECONDS="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_path = log.name  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(predicate: Callable[[], object], *, timeout: float = 20, what: str = "condition") -> object:
    """Poll until predicate() is truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
