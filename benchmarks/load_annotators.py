"""Load benchmark: N simulated annotators against the running server on PostgreSQL.

Each annotator loops next -> submit through the REST API (token auth) for a fixed time. The
server is the product's own ASGI app under Daphne; several Daphne processes share one listening
socket (pre-fork, `daphne --fd`), as a one-machine deployment would run them. Afterwards the
database is checked: every submission the clients saw succeed is stored exactly once.

    .venv/bin/python benchmarks/load_annotators.py --annotators 50 --seconds 20
    .venv/bin/python benchmarks/load_annotators.py --annotators 200 --seconds 20 --rate 300
    .venv/bin/python benchmarks/load_annotators.py --annotators 200 --seconds 20 --mode separate

`--mode combined` (default) uses the submit response's embedded next assignment (one request
per submission, what the browser and API clients do); `--mode separate` asks for the next item
with its own request (two requests per submission).

Without `--rate` every annotator submits the moment it has its item: that measures the server's
saturation throughput, and latency is then fixed by Little's law (annotators / throughput: 200
annotators at 300/s wait 0.67 s each however fast the server is). `--rate R` gives each annotator
a think time so that together they offer R submissions a second, which is how latency at a load
is measured: the target is p95 under 100 ms at 300 submissions a second.

It also prints CPU milliseconds per submission of the server processes, of PostgreSQL and of
the load client (the machine is shared, and CPU per submission varies less than throughput).
The server runs with the recommended production settings for PostgreSQL: a connection pool per
process (DB_POOL_SIZE) and server-side binding with prepared statements (DB_SERVER_SIDE_BINDING).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
logger = logging.getLogger("load")


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    submissions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_next: list[float] = field(default_factory=list)  # each annotator's first request (not in the loop)


def prepare_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)


def seed(annotators: int, items: int, target: int) -> tuple[str, list[str]]:
    """A project with `items` items of 4 responses and `annotators` members with API tokens."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation.models import Item, Membership, Project, Rater, Response
    from annotation.services import create_project

    user_model = get_user_model()
    owner = user_model.objects.create_user("bench-owner")
    project = create_project(owner=owner, name="load", overlap_target=target, status=Project.Status.ACTIVE)
    made = Item.objects.bulk_create(Item(project=project, external_id=f"i{n}", prompt=f"p{n}") for n in range(items))
    Response.objects.bulk_create(
        Response(item=i, response_id=f"r{k}", text=f"answer {k}", position=k) for i in made for k in range(4)
    )
    users = user_model.objects.bulk_create(user_model(username=f"a{n}") for n in range(annotators))
    Membership.objects.bulk_create(Membership(project=project, user=u, role=Membership.Role.ANNOTATOR) for u in users)
    Rater.objects.bulk_create(Rater(kind=Rater.Kind.HUMAN, user=u, key=f"user:{u.pk}") for u in users)
    tokens = Token.objects.bulk_create(Token(user=u, key=Token.generate_key()) for u in users)
    return str(project.public_id), [t.key for t in tokens]


def start_servers(processes: int, env: dict[str, str]) -> tuple[list[subprocess.Popen], int, socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    daphne = str(Path(sys.executable).with_name("daphne"))
    procs = [
        subprocess.Popen(
            [daphne, "--fd", str(sock.fileno()), "-v", "0", "config.asgi:application"],
            cwd=ROOT, env=env, pass_fds=(sock.fileno(),),
        )
        for _ in range(processes)
    ]
    return procs, sock.getsockname()[1], sock


async def wait_ready(base: str) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                await client.get(f"{base}/api/v1/schema/", timeout=2)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise RuntimeError("server did not start")


class Connection:
    """A minimal keep-alive HTTP/1.1 client, one per simulated annotator.

    httpx spent most of a core here; the load generator shares the machine with the server, so
    every cycle it burns is taken from the system under test.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Token {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode() if body is not None else b""
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.auth}"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
        self.writer.write(head.encode() + payload)
        return await self._response()

    async def _response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        status = int((await self.reader.readline()).split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        body = b""
        while size := int((await self.reader.readline()).strip(), 16):
            body += await self.reader.readexactly(size + 2)
            body = body[:-2]
        await self.reader.readline()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def annotator(conn: Connection, project: str, seconds: float, mode: str, stats: Stats,
                    interval: float, ready: asyncio.Barrier, window: list, snapshot) -> None:
    """Get a first item, wait until every annotator has one, then loop next -> submit for `seconds`
    (the measured, steady-state window). With `interval` > 0 the annotator submits at most once per
    `interval` seconds (a think time), starting at a random offset, so N annotators offer
    N / interval submissions a second; with 0 each submits as soon as it has its next item."""
    try:
        first = Stats()
        assignment = await _timed_next(conn, project, first)
        stats.first_next.extend(first.latencies)
        stats.errors.extend(first.errors)
        await ready.wait()
        if not window:  # the first annotator to wake opens the measured window
            window.extend([time.perf_counter(), snapshot()])
        deadline = window[0] + seconds
        due = time.perf_counter() + random.uniform(0, interval)
        while assignment is not None and time.perf_counter() < deadline:
            if interval:
                await asyncio.sleep(max(0.0, min(due, deadline) - time.perf_counter()))
                due += interval
                if time.perf_counter() >= deadline:
                    break
            sid = str(uuid.uuid4())
            body = {"ranking": [[rid] for rid in assignment["responses_order"]], "submission_id": sid, "seconds": 1.0}
            started = time.perf_counter()
            status, reply = await conn.post(f"/api/v1/assignments/{assignment['id']}/submit/", body)
            stats.latencies.append(time.perf_counter() - started)
            if status not in (200, 201):
                stats.errors.append(f"submit {status}: {reply[:200]!r}")
                return
            stats.submissions.append(sid)
            if mode == "combined":
                assignment = _assignment_of(json.loads(reply).get("next"))
            else:
                assignment = await _timed_next(conn, project, stats)
    finally:
        await conn.close()


async def _timed_next(conn: Connection, project: str, stats: Stats) -> dict | None:
    started = time.perf_counter()
    status, reply = await conn.post(f"/api/v1/projects/{project}/next/")
    stats.latencies.append(time.perf_counter() - started)
    if status == 204:
        return None
    if status != 200:
        stats.errors.append(f"next {status}: {reply[:200]!r}")
        return None
    return _assignment_of(json.loads(reply))


def _assignment_of(data: dict | None) -> dict | None:
    if not data:
        return None
    return {"id": data["id"], "responses_order": [r["id"] for r in data["responses"]]}


async def drive(port: int, project: str, tokens: list[str], seconds: float, mode: str, rate: float,
                snapshot) -> tuple[Stats, float, tuple[float, ...]]:
    """Run the annotators; the stats, the measured window's length, and `snapshot()` at its start."""
    stats = Stats()
    interval = len(tokens) / rate if rate else 0.0
    conns = [Connection("127.0.0.1", port, t) for t in tokens]
    ready, window = asyncio.Barrier(len(conns)), []
    await asyncio.gather(*(annotator(c, project, seconds, mode, stats, interval, ready, window, snapshot)
                           for c in conns))
    return stats, time.perf_counter() - window[0], window[1]


def check_database(stats: Stats) -> dict[str, int]:
    from django.db.models import Count

    from annotation.models import Ranking

    stored = Ranking.objects.filter(submission_id__in=stats.submissions).count()
    duplicates = (
        Ranking.objects.values("item_id", "rater_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    )
    return {"client_submissions": len(stats.submissions), "stored": stored,
            "total_rankings": Ranking.objects.count(), "duplicate_item_rater": duplicates}


def cpu_seconds(pids: list[int] | None = None, command: str | None = None) -> float:
    """User+system CPU seconds of the given processes, or of every process named `command` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in (str(p) for p in pids) if pids is not None else (e for e in os.listdir("/proc") if e.isdigit()):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if command is None or name == command:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else (values[0] if values else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--target", type=int, default=3)
    parser.add_argument("--server-processes", type=int, default=2)
    parser.add_argument("--pool", type=int, default=8, help="database connections per server process (DB_POOL_SIZE)")
    parser.add_argument("--mode", choices=["combined", "separate"], default="combined")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered submissions per second, spread over the annotators (0: each submits as fast "
                        "as it is answered, i.e. the server's saturation throughput)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/rlchf_bench")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    env = {**os.environ, "DATABASE_URL": args.database_url, "DEBUG": "0", "SECRET_KEY": "bench-" + uuid.uuid4().hex,
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0", "DB_POOL_SIZE": str(args.pool), "LOG_LEVEL": "WARNING",
           "DB_SERVER_SIDE_BINDING": os.environ.get("DB_SERVER_SIDE_BINDING", "1"),
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    os.environ.update(env)
    prepare_database(args.database_url)
    project, tokens = seed(args.annotators, args.items, args.target)
    procs, port, sock = start_servers(args.server_processes, env)
    base = f"http://127.0.0.1:{port}"
    try:
        # The seeded ORM objects make a large heap; keep the collector from rescanning it while
        # the client runs, so the load generator takes as little CPU from the server as it can.
        gc.collect()
        gc.freeze()
        asyncio.run(wait_ready(base))
        servers = [p.pid for p in procs]
        def snapshot() -> tuple[float, float, float]:
            return cpu_seconds(servers), cpu_seconds(command="postgres"), time.process_time()

        stats, elapsed, before = asyncio.run(drive(port, project, tokens, args.seconds, args.mode, args.rate, snapshot))
        after = snapshot()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
        sock.close()
    check = check_database(stats)
    rate = len(stats.submissions) / elapsed
    lat = sorted(stats.latencies)
    offered = f"offered={args.rate:g}/s" if args.rate else "offered=saturation (no think time)"
    print(f"annotators={args.annotators} mode={args.mode} {offered} server_processes={args.server_processes} "
          f"seconds={elapsed:.1f}")
    print(f"submissions/s={rate:.1f}  requests={len(lat)}  p50={percentile(lat, 50) * 1000:.1f} ms  "
          f"p95={percentile(lat, 95) * 1000:.1f} ms  p99={percentile(lat, 99) * 1000:.1f} ms  errors={len(stats.errors)}")
    first = sorted(stats.first_next)
    print(f"first next per annotator (before the loop): n={len(first)}  p50={percentile(first, 50) * 1000:.1f} ms  "
          f"max={(first[-1] if first else 0) * 1000:.1f} ms")
    per = 1000 / max(len(stats.submissions), 1)
    server_cpu, db_cpu, client_cpu = ((a - b) * per for a, b in zip(after, before, strict=True))
    print(f"CPU per submission: server {server_cpu:.2f} ms  PostgreSQL {db_cpu:.2f} ms  load client {client_cpu:.2f} ms")
    print(f"database: {check}")
    ok = check["stored"] == check["client_submissions"] == check["total_rankings"] and not check["duplicate_item_rater"]
    print("database check: " + ("every submission stored exactly once" if ok else "MISMATCH"))
    for error in stats.errors[:5]:
        print("  error:", error)
    sys.exit(0 if ok and not stats.errors else 1)


if __name__ == "__main__":
    main()
