"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests of the openai engine and of the
inference endpoints around it: it serves `GET /v1/models` and `POST /v1/chat/completions`, records
every request with its headers, and can be killed mid-run (the port then refuses connections)."""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Reply = tuple[int, Any, float]  # status, JSON body (or raw str), delay in seconds
Script = Callable[[dict[str, Any], int], Reply]


def completion(content: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "stop",
    }
    if logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": logprobs[0]["token"],
                    "logprob": logprobs[0]["logprob"],
                    "top_logprobs": logprobs,
                }
            ]
        }
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [choice],
        "usage": {"completion_tokens": 3},
    }


def ranking_reply(body: dict[str, Any], number: int) -> Reply:
    """A valid listwise answer: the labels of the request's JSON schema in alphabetical order."""
    pattern = body["response_format"]["json_schema"]["schema"]["properties"]["ranking"]["pattern"]
    labels = re.search(r"\[([A-Z]+)\]", pattern).group(1)  # type: ignore[union-attr]
    return 200, completion(json.dumps({"ranking": " > ".join(labels)})), 0


@dataclass
class FakeServer:
    """Serves /v1/chat/completions through `script` and /v1/models from `models`."""

    script: Script
    models: list[str] = field(default_factory=lambda: ["judge-7b"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    model_requests: list[dict[str, str]] = field(default_factory=list)  # headers of GET /models
    models_reply: Reply | None = None  # GET /models answers this instead of the models list
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    httpd: ThreadingHTTPServer | None = None

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        with self.lock:
            self.requests.append(body)
            self.headers.append(dict(handler.headers))
            number = len(self.requests)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            status, reply, delay = self.script(body, number)
            time.sleep(delay)
            self.send(handler, status, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up: expected in the timeout test
        finally:
            with self.lock:
                self.in_flight -= 1

    def list_models(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.model_requests.append(dict(handler.headers))
        status, reply, delay = self.models_reply or (
            200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}, 0
        )
        try:
            time.sleep(delay)
            self.send(handler, status, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, reply: Any) -> None:
        payload = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def kill(self) -> None:
        """Stop answering for good: the listening socket is closed, so connections are refused."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def kill_soon(self) -> None:
        """Kill from inside a request handler (shutdown waits for the serving loop)."""
        threading.Thread(target=self.kill, daemon=True).start()


def start_server(script: Script, models: list[str] | None = None) -> FakeServer:
    fake = FakeServer(script) if models is None else FakeServer(script, models=models)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            fake.handle(self)

        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/v1/models":
                self.send_error(404)
                return
            fake.list_models(self)

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake.httpd, fake.url = httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    return fake


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[FakeServer, str]]]:
    """`serve(script, models=None) -> (server, base URL)`; every server is stopped after the test."""
    servers: list[FakeServer] = []

    def start(script: Script, models: list[str] | None = None) -> tuple[FakeServer, str]:
        fake = start_server(script, models)
        servers.append(fake)
        return fake, fake.url

    yield start
    for fake in servers:
        fake.kill()


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
