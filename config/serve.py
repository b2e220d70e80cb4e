"""The production web server: N uvicorn worker processes on one port, each with its own socket.

    .venv/bin/python -m config.serve --host 127.0.0.1 --port 8000 --workers 2

Every worker binds its own listening socket with SO_REUSEPORT, so the kernel spreads incoming
connections over the workers by a hash of their addresses. With one socket shared by pre-forked
processes (`daphne --fd`, or uvicorn's and gunicorn's own `--workers`), whichever process wakes
first takes the connection, and under load one process took 0, 8, 12 or 71 of 50-200 keep-alive
connections while the other took the rest (issue 14). A worker that dies is started again.

Each worker runs uvicorn with uvloop and httptools (HTTP) and `websockets` (its sans-I/O
implementation, for the live pages' sockets), and serves `config.asgi:application`, the same ASGI application Daphne served. Proxy
headers are left to Django (`SECURE_PROXY_SSL_HEADER`), which trusts `X-Forwarded-Proto` only where
the deployment says a proxy sets it.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time

logger = logging.getLogger("rlchf.serve")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket of this worker's own on (host, port), shared with the other workers by SO_REUSEPORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_worker(host: str, port: int, log_level: str) -> None:
    import uvicorn

    config = uvicorn.Config(
        "config.asgi:application", loop="uvloop", http="httptools", ws="websockets-sansio", lifespan="off",
        proxy_headers=False, server_header=False, access_log=False, log_level=log_level.lower(),
        timeout_keep_alive=75,
    )
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def supervise(host: str, port: int, workers: int, log_level: str) -> int:
    """Start the workers, restart any that dies, stop them all on SIGINT or SIGTERM."""
    # Fail at once, in the supervisor, if the port is taken (a worker would die and restart forever).
    listening_socket(host, port).close()
    command = [sys.executable, "-m", "config.serve", "--worker", "--host", host, "--port", str(port),
               "--log-level", log_level]
    children = [subprocess.Popen(command) for _ in range(workers)]
    started = [time.monotonic()] * workers
    quick_deaths = 0
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    logger.info("rlchf: %d uvicorn workers on http://%s:%d/ (SO_REUSEPORT)", workers, host, port)
    while not stopping:
        for n, child in enumerate(children):
            if child.poll() is not None and not stopping:
                quick_deaths += time.monotonic() - started[n] < 10
                if quick_deaths > 2 * workers:  # a worker that cannot start: say so instead of looping
                    logger.error("workers keep exiting at start-up; stopping")
                    stop(signal.SIGTERM, None)
                    break
                logger.warning("worker %d exited with %s; starting it again", child.pid, child.returncode)
                children[n], started[n] = subprocess.Popen(command), time.monotonic()
        time.sleep(0.5)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return 1 if quick_deaths > 2 * workers else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", os.cpu_count() or 1)),
                        help="worker processes (default: WEB_WORKERS or one per core)")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
    if args.worker:
        run_worker(args.host, args.port, args.log_level)
        return 0
    return supervise(args.host, args.port, args.workers, args.log_level)


if __name__ == "__main__":
    sys.exit(main())
