"""The researcher's project page in a real Chromium, served by Daphne: a ranking stored by another
process appears on the open page without a reload.

This is the embedded deployment exactly: a SQLite file, no Redis, so the update travels through the
database channel layer from the submitting process to the web server, then over the websocket.
pytest-django's live server speaks no websockets, hence a Daphne process of our own.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SEED = """
from django.contrib.auth import get_user_model
from annotation.services import add_member, create_item, create_project
User = get_user_model()
owner = User.objects.create_user("owner", password="owner-pass-123")
annie = User.objects.create_user("annie", password="annie-pass-123")
project = create_project(owner=owner, name="Live demo", overlap_target=2, status="active")
add_member(project=project, user=annie, role="annotator")
for n in range(3):
    create_item(project=project, external_id=f"i{n}", prompt="Q?",
                responses=[{"id": "r1", "text": "a"}, {"id": "r2", "text": "b"}])
print(project.public_id)
"""
SUBMIT = """
from django.contrib.auth import get_user_model
from annotation.models import Project
from annotation.services import next_assignment, submit_ranking
annie = get_user_model().objects.get(username="annie")
lease = next_assignment(project=Project.objects.get(), user=annie)
submit_ranking(user=annie, assignment=lease, order=[["r2"], ["r1"]])
"""
COUNT_WS_MESSAGES = (
    "window.wsMessages = 0;"
    "document.addEventListener('htmx:wsAfterMessage', () => { window.wsMessages += 1; });"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _wait_for_port(port: int, server: subprocess.Popen) -> None:
    for _ in range(150):
        if server.poll() is not None:
            raise AssertionError(f"daphne exited: {server.stdout.read() if server.stdout else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"daphne did not listen on port {port}")


@pytest.fixture(scope="module")
def daphne_site(tmp_path_factory) -> Iterator[dict[str, str]]:
    var = tmp_path_factory.mktemp("live-var")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env |= {"RLCHF_VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}", "DEBUG": "1"}
    _manage(env, "migrate", "-v0")
    public_id = _manage(env, "shell", "-c", SEED).strip().splitlines()[-1]
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        _wait_for_port(port, server)
        yield {"url": f"http://127.0.0.1:{port}", "project": public_id, **env}
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_ranking_from_another_process_appears_without_reload(daphne_site, new_page, console_errors):
    site = daphne_site
    page = new_page(width=375, height=800)
    page.add_init_script(COUNT_WS_MESSAGES)
    project_path = f"/projects/{site['project']}/"
    page.goto(f"{site['url']}/accounts/login/?next={project_path}")
    page.fill("input[name=username]", "owner")
    page.fill("input[name=password]", "owner-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{site['url']}{project_path}")
    assert page.inner_text(".progress-rankings") == "0"
    # The consumer sends the current state once it has joined the group: the socket is live.
    page.wait_for_function("window.wsMessages >= 1")
    page.evaluate("window.notReloaded = true")

    env = {k: v for k, v in site.items() if k not in ("url", "project")}
    _manage(env, "shell", "-c", SUBMIT)

    page.wait_for_function("document.querySelector('.progress-rankings').textContent.trim() === '1'")
    assert page.evaluate("window.notReloaded") is True
    rows = page.inner_text("#project-progress table")
    assert "annie\tannotator\t1" in rows
    page_errors = [e for e in console_errors if not e.startswith("console: Failed to load resource")]
    assert page_errors == []
