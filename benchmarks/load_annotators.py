"""Load benchmark: N simulated annotators against the server as the README deploys it, on PostgreSQL.

The server runs exactly as the README's production section runs it: the same command
(`python -m config.serve`, uvicorn workers with SO_REUSEPORT; `--server daphne` for the earlier
`daphne --fd` pre-fork, to compare), the same settings (DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, HTTPS
required behind a TLS proxy, REDIS_URL, DB_POOL_SIZE, DB_SERVER_SIDE_BINDING, default logging), and
every request carries the proxy's `X-Forwarded-Proto: https`. Each annotator has one keep-alive
connection and loops next -> submit through the REST API (token auth).

    .venv/bin/python benchmarks/load_annotators.py --annotators 50 --rate 300         # p95 at 300/s
    .venv/bin/python benchmarks/load_annotators.py --annotators 200 --rate 300
    .venv/bin/python benchmarks/load_annotators.py --annotators 50                     # saturation
    .venv/bin/python benchmarks/load_annotators.py --annotators 50 --server daphne     # the old server

`--rate R` is an open loop: submissions arrive as a Poisson process of rate R, whatever the server
does; an arrival goes to an annotator who holds an item and has nothing in flight, or waits for one,
and its latency counts from its arrival (so a slow server cannot slow the offered load or hide its
queue). Without `--rate` every annotator submits the moment it has its item: the saturation
throughput (latency then follows from Little's law).

Each of `--runs` runs (default 5) gets a fresh project and a measured window of `--seconds` after
every annotator holds its first item; before each, a fixed CPU probe is timed, since this machine's
speed drifts. It prints every run, then the median and range. It also prints CPU milliseconds per
submission of the server processes, of PostgreSQL and of the load client. Afterwards the database
is checked: every submission the clients saw succeed is stored exactly once.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
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


def cpu_probe() -> float:
    """Seconds for a fixed CPU-bound task (hashing and a Python loop): how fast the machine is now."""
    started = time.perf_counter()
    digest = b"rlchf"
    for _ in range(20000):
        digest = hashlib.sha256(digest * 64).digest()
    total = 0
    for n in range(1_500_000):
        total += n % 7
    return time.perf_counter() - started


def prepare_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)


def seed(annotators: int, items: int, target: int, run: int) -> tuple[str, list[str]]:
    """A project with `items` items of 4 responses and `annotators` members with API tokens."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation.models import Item, Membership, Project, Rater, Response
    from annotation.services import create_project

    user_model = get_user_model()
    owner = user_model.objects.create_user(f"bench-owner-{run}")
    project = create_project(owner=owner, name=f"load {run}", overlap_target=target, status=Project.Status.ACTIVE)
    made = Item.objects.bulk_create(Item(project=project, external_id=f"i{n}", prompt=f"p{n}") for n in range(items))
    Response.objects.bulk_create(
        Response(item=i, response_id=f"r{k}", text=f"answer {k}", position=k) for i in made for k in range(4)
    )
    users = user_model.objects.bulk_create(user_model(username=f"r{run}a{n}") for n in range(annotators))
    Membership.objects.bulk_create(Membership(project=project, user=u, role=Membership.Role.ANNOTATOR) for u in users)
    Rater.objects.bulk_create(Rater(kind=Rater.Kind.HUMAN, user=u, key=f"user:{u.pk}") for u in users)
    tokens = Token.objects.bulk_create(Token(user=u, key=Token.generate_key()) for u in users)
    return str(project.public_id), [t.key for t in tokens]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_servers(kind: str, processes: int, env: dict[str, str]) -> tuple[subprocess.Popen, int, object]:
    """The web server as deployed: `python -m config.serve` (the README), or Daphne processes
    sharing one pre-forked socket (`--server daphne`, what the README deployed before)."""
    if kind == "uvicorn":
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "config.serve", "--workers", str(processes),
                                 "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env)
        return proc, port, None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    daphne = str(Path(sys.executable).with_name("daphne"))
    script = ("import subprocess, sys; fd = sys.argv[1]; n = int(sys.argv[2]);"
              " ps = [subprocess.Popen([sys.argv[3], '--fd', fd, 'config.asgi:application'], pass_fds=(int(fd),))"
              " for _ in range(n)]; [p.wait() for p in ps]")
    proc = subprocess.Popen([sys.executable, "-c", script, str(sock.fileno()), str(processes), daphne],
                            cwd=ROOT, env=env, pass_fds=(sock.fileno(),))
    return proc, sock.getsockname()[1], sock


def stop_servers(proc: subprocess.Popen, sock: object) -> None:
    for pid in [*descendants(proc.pid), proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
    proc.wait(timeout=30)
    if sock is not None:
        sock.close()


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [c for c, p in parents.items() if p in frontier]
        found.extend(children)
        frontier = children
    return found


async def wait_ready(port: int) -> None:
    for _ in range(300):
        try:
            conn = Connection("127.0.0.1", port, "not-a-token")
            status, _ = await conn.request("GET", "/api/v1/projects/")
            await conn.close()
            if status == 401:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("server did not start")


class Connection:
    """A minimal keep-alive HTTP/1.1 client, one per simulated annotator.

    httpx spent most of a core here; the load generator shares the machine with the server, so
    every cycle it burns is taken from the system under test. Requests carry the TLS proxy's
    `X-Forwarded-Proto: https`, as production traffic reaches the server.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Token {token}\r\nX-Forwarded-Proto: https\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict | None = None) -> tuple[int, bytes]:
        return await self.request("POST", path, body)

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.auth}"
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


class Annotator:
    def __init__(self, conn: Connection, project: str, mode: str, stats: Stats) -> None:
        self.conn, self.project, self.mode, self.stats = conn, project, mode, stats
        self.assignment: dict | None = None

    async def first(self) -> None:
        first = Stats()
        self.assignment = await _timed_next(self.conn, self.project, first)
        self.stats.first_next.extend(first.latencies)
        self.stats.errors.extend(first.errors)

    async def submit(self, since: float) -> bool:
        """One submission (and the next item); latency from `since`. False when there is no more work."""
        assert self.assignment is not None
        sid = str(uuid.uuid4())
        body = {"ranking": [[rid] for rid in self.assignment["responses_order"]], "submission_id": sid, "seconds": 1.0}
        status, reply = await self.conn.post(f"/api/v1/assignments/{self.assignment['id']}/submit/", body)
        if status not in (200, 201):
            self.stats.errors.append(f"submit {status}: {reply[:200]!r}")
            self.assignment = None
            return False
        self.stats.submissions.append(sid)
        if self.mode == "combined":
            self.assignment = _assignment_of(json.loads(reply).get("next"))
            self.stats.latencies.append(time.perf_counter() - since)
        else:
            self.stats.latencies.append(time.perf_counter() - since)
            self.assignment = await _timed_next(self.conn, self.project, self.stats)
        return self.assignment is not None


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


async def closed_loop(annotators: list[Annotator], deadline: float) -> None:
    """Saturation: every annotator submits the moment it has its item."""
    async def loop(a: Annotator) -> None:
        while a.assignment is not None and time.perf_counter() < deadline:
            await a.submit(time.perf_counter())

    await asyncio.gather(*(loop(a) for a in annotators))


async def open_loop(annotators: list[Annotator], deadline: float, rate: float, rng: random.Random) -> int:
    """Poisson arrivals at `rate`; each goes to an idle annotator (item in hand, nothing in flight)
    or waits in a queue for one. Returns how many arrivals were still waiting at the deadline."""
    idle: asyncio.Queue[Annotator] = asyncio.Queue()
    for a in annotators:
        if a.assignment is not None:
            idle.put_nowait(a)
    in_flight: set[asyncio.Task] = set()

    async def serve(arrival: float) -> None:
        a = await idle.get()
        if await a.submit(arrival):
            idle.put_nowait(a)

    arrival = time.perf_counter()
    while True:
        arrival += rng.expovariate(rate)
        if arrival >= deadline:
            break
        await asyncio.sleep(max(0.0, arrival - time.perf_counter()))
        task = asyncio.create_task(serve(arrival))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    waiting = sum(1 for t in in_flight if not t.done())
    if in_flight:
        await asyncio.wait(in_flight, timeout=30)
    for task in in_flight:
        task.cancel()
    return waiting


async def drive(port: int, project: str, tokens: list[str], seconds: float, mode: str, rate: float,
                snapshot, seed: int) -> tuple[Stats, float, tuple[float, ...], int]:
    """Every annotator gets a first item; then the measured window. Returns the stats, the window's
    length, `snapshot()` at its start and the arrivals still queued at its end."""
    stats = Stats()
    annotators = [Annotator(Connection("127.0.0.1", port, t), project, mode, stats) for t in tokens]
    await asyncio.gather(*(a.first() for a in annotators))
    before = snapshot()
    started = time.perf_counter()
    deadline = started + seconds
    waiting = 0
    if rate:
        waiting = await open_loop(annotators, deadline, rate, random.Random(seed))
    else:
        await closed_loop(annotators, deadline)
    elapsed = time.perf_counter() - started
    for a in annotators:
        await a.conn.close()
    return stats, elapsed, before, waiting


def check_database(project: str, stats: Stats) -> dict[str, int]:
    from django.db.models import Count

    from annotation.models import Ranking

    rankings = Ranking.objects.filter(item__project__public_id=project)
    stored = rankings.filter(submission_id__in=stats.submissions).count()
    duplicates = rankings.values("item_id", "rater_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    return {"client_submissions": len(stats.submissions), "stored": stored,
            "total_rankings": rankings.count(), "duplicate_item_rater": duplicates}


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


def one_run(args: argparse.Namespace, run: int, port: int, servers: list[int]) -> dict[str, float]:
    probe = cpu_probe()
    project, tokens = seed(args.annotators, args.items, args.target, run)
    gc.collect()
    gc.freeze()  # the seeded ORM objects: keep the collector from rescanning them while the client runs

    def snapshot() -> tuple[float, float, float]:
        return cpu_seconds(servers), cpu_seconds(command="postgres"), time.process_time()

    stats, elapsed, before, waiting = asyncio.run(
        drive(port, project, tokens, args.seconds, args.mode, args.rate, snapshot, seed=run))
    after = snapshot()
    gc.unfreeze()
    check = check_database(project, stats)
    lat = sorted(stats.latencies)
    per = 1000 / max(len(stats.submissions), 1)
    server_cpu, db_cpu, client_cpu = ((a - b) * per for a, b in zip(after, before, strict=True))
    ok = check["stored"] == check["client_submissions"] == check["total_rankings"] and not check["duplicate_item_rater"]
    row = {"probe_ms": probe * 1000, "rate": len(stats.submissions) / elapsed, "p50": percentile(lat, 50) * 1000,
           "p95": percentile(lat, 95) * 1000, "p99": percentile(lat, 99) * 1000, "errors": len(stats.errors),
           "server_cpu": server_cpu, "db_cpu": db_cpu, "client_cpu": client_cpu, "queued_at_end": waiting,
           "ok": ok}
    print(f"run {run}: probe {row['probe_ms']:.0f} ms  submissions/s {row['rate']:.1f}  p50 {row['p50']:.1f} ms  "
          f"p95 {row['p95']:.1f} ms  p99 {row['p99']:.1f} ms  errors {row['errors']}  queued at end {waiting}  "
          f"CPU/submission server {server_cpu:.2f} / PostgreSQL {db_cpu:.2f} / client {client_cpu:.2f} ms  "
          f"stored once: {'yes' if ok else 'MISMATCH ' + str(check)}", flush=True)
    for error in stats.errors[:3]:
        print("  error:", error)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--target", type=int, default=3)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn",
                        help="uvicorn: python -m config.serve, as the README deploys it; daphne: the earlier pre-fork")
    parser.add_argument("--server-processes", type=int, default=2)
    parser.add_argument("--pool", type=int, default=8, help="database connections per server process (DB_POOL_SIZE)")
    parser.add_argument("--mode", choices=["combined", "separate"], default="combined")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered submissions per second, a Poisson process (0: saturation, no think time)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/rlchf_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    # The README's production settings; only the addresses are this machine's.
    env = {**os.environ, "DATABASE_URL": args.database_url, "DEBUG": "0", "SECRET_KEY": "bench-" + uuid.uuid4().hex,
           "ALLOWED_HOSTS": "127.0.0.1", "REDIS_URL": args.redis_url, "DB_POOL_SIZE": str(args.pool),
           "DB_SERVER_SIDE_BINDING": "1", "DJANGO_SETTINGS_MODULE": "config.settings"}
    for name in ("SECURE_SSL_REDIRECT", "LOG_LEVEL", "ANNOTATION_FAST_SUBMIT", "DB_CONN_MAX_AGE"):
        if name in os.environ:
            print(f"note: {name}={os.environ[name]} from the environment differs from the README's deployment")
    os.environ.update(env)
    prepare_database(args.database_url)
    import django

    django.setup()
    proc, port, sock = start_servers(args.server, args.server_processes, env)
    rows = []
    try:
        asyncio.run(wait_ready(port))
        servers = descendants(proc.pid) + [proc.pid]
        offered = f"{args.rate:g}/s (Poisson)" if args.rate else "saturation (no think time)"
        print(f"server={args.server} processes={args.server_processes} annotators={args.annotators} "
              f"mode={args.mode} offered={offered} window={args.seconds:g} s runs={args.runs}", flush=True)
        for run in range(1, args.runs + 1):
            rows.append(one_run(args, run, port, servers))
    finally:
        stop_servers(proc, sock)
    print("median [min - max] of the runs:")
    for key, label in (("rate", "submissions/s"), ("p50", "p50 ms"), ("p95", "p95 ms"), ("p99", "p99 ms"),
                       ("server_cpu", "server CPU ms/submission"), ("db_cpu", "PostgreSQL CPU ms/submission"),
                       ("client_cpu", "client CPU ms/submission"), ("probe_ms", "CPU probe ms")):
        values = [r[key] for r in rows]
        print(f"  {label:30s} {statistics.median(values):9.1f}  [{min(values):.1f} - {max(values):.1f}]")
    ok = all(r["ok"] and not r["errors"] for r in rows)
    print("database check: " + ("every submission stored exactly once" if ok else "MISMATCH or errors"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
