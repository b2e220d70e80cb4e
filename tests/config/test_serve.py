"""config.serve: the production web server, started as the README deploys it.

Two uvicorn workers, each with its own SO_REUSEPORT socket on one port, production settings
(DEBUG=0, a TLS proxy's X-Forwarded-Proto). Connections are spread over both workers, websockets
are served, a dead worker is started again, and SIGTERM stops everything.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROXY = "X-Forwarded-Proto: https\r\n"
API = "/api/v1/projects/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.add(int(entry))
    return found


def established_by_process(pids: set[int], port: int) -> dict[int, int]:
    """How many established connections on `port` each process holds (socket inodes in /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    counts = dict.fromkeys(pids, 0)
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                counts[pid] += 1
    return counts


def get(sock: socket.socket, path: str, port: int) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{PROXY}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "DEBUG": "0",
           "SECRET_KEY": "serve-test-" + "x" * 40, "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
           "RLCHF_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "config.serve", "--workers", "2", "--port", str(port)],
                            cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                    if get(sock, API, port).startswith(b"HTTP/1.1 401"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            assert proc.poll() is None, "the server exited"
            time.sleep(0.3)
        yield proc, port, env
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_connections_are_spread_over_the_workers(server):
    proc, port, _ = server
    workers = children(proc.pid)
    assert len(workers) == 2
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    try:
        for sock in socks:
            assert get(sock, API, port).startswith(b"HTTP/1.1 401")  # Django answered (no token)
        counts = established_by_process(workers, port)
        # The kernel hashes each connection to one socket: about 20 each. With one shared socket a
        # single busy worker took them all. P(fewer than 8 of 40) for a fair split is about 1e-5.
        assert sum(counts.values()) == 40, counts
        assert min(counts.values()) >= 8, counts
    finally:
        for sock in socks:
            sock.close()


def test_websockets_are_served(server):
    from websockets.sync.client import connect

    proc, port, env = server
    script = (
        "import django; django.setup()\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "from annotation.services import create_project\n"
        "user = get_user_model().objects.create_user('serve-owner', password='x')\n"
        "project = create_project(owner=user, name='p')\n"
        "s = SessionStore(); s[SESSION_KEY] = str(user.pk)\n"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s[HASH_SESSION_KEY] = user.get_session_auth_hash(); s.create()\n"
        "print(s.session_key, project.public_id)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    session, project = out.stdout.split()
    with connect(f"ws://127.0.0.1:{port}/ws/projects/{project}/", origin=f"https://127.0.0.1:{port}",
                 additional_headers={"Cookie": f"sessionid={session}", "X-Forwarded-Proto": "https"},
                 open_timeout=20) as ws:
        first = ws.recv(timeout=20)
    assert "progress" in first.lower() or "rankings" in first.lower(), first[:200]


def test_a_dead_worker_is_started_again_and_sigterm_stops_all(server):  # last: it stops the server
    proc, port, _ = server
    before = children(proc.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        now = children(proc.pid)
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not children(proc.pid)
