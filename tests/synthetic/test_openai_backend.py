"""The openai engine against a real OpenAI-compatible HTTP server on loopback, started here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from synthetic.backends import (
    BackendConfig,
    BackendConfigError,
    GenerationParams,
    RankingSpec,
    load_backend,
)
from synthetic.backends.base import BackendError
from synthetic.backends.ranking_grammar import default_labels

Reply = tuple[int, Any, float]  # status, JSON body (or raw str), delay in seconds


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


@dataclass
class FakeServer:
    """Serves /v1/chat/completions; `script` picks each reply from the request and its number."""

    script: Callable[[dict[str, Any], int], Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

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
            payload = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up: expected in the timeout test
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[FakeServer, str]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(script: Callable[[dict[str, Any], int], Reply]) -> tuple[FakeServer, str]:
        fake = FakeServer(script)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                assert self.path == "/v1/chat/completions"
                fake.handle(self)

            def log_message(self, *args: object) -> None:
                return None

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return fake, f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def engine(url: str, **overrides: Any):  # noqa: ANN201
    options = {"backoff_s": 0.01, **overrides.pop("options", {})}
    config = BackendConfig(
        engine="openai", model="judge-7b", base_url=url, options=options, **overrides
    )
    return load_backend(config)


CONV = [{"role": "user", "content": "Rank A, B, C."}]
SPEC = RankingSpec(default_labels(3), allow_ties=True)


def test_server_errors_are_retried_with_backoff(serve) -> None:
    fake, url = serve(
        lambda body, n: (500, {"error": "busy"}, 0) if n <= 2 else (200, completion("hello"), 0)
    )
    (out,) = engine(url, max_retries=3).generate([CONV], GenerationParams(max_new_tokens=5, seed=3))
    assert out.text == "hello" and out.error is None
    assert len(fake.requests) == 3
    assert fake.requests[0]["model"] == "judge-7b" and fake.requests[0]["max_tokens"] == 5
    assert fake.requests[0]["seed"] == 3


def test_retries_are_bounded_and_failure_is_reported(serve) -> None:
    fake, url = serve(lambda body, n: (503, "overloaded", 0))
    (out,) = engine(url, max_retries=2).generate([CONV], GenerationParams())
    assert out.error is not None and "HTTP 503" in out.error
    assert len(fake.requests) == 3


def test_client_errors_are_not_retried(serve) -> None:
    fake, url = serve(lambda body, n: (400, {"error": "bad model"}, 0))
    (out,) = engine(url, max_retries=5).generate([CONV], GenerationParams())
    assert "HTTP 400" in (out.error or "")
    assert len(fake.requests) == 1


def test_slow_answers_time_out_and_are_retried(serve) -> None:
    fake, url = serve(
        lambda body, n: (200, completion("late"), 1.0) if n == 1 else (200, completion("quick"), 0)
    )
    start = time.monotonic()
    (out,) = engine(url, timeout_s=0.3, max_retries=1).generate([CONV], GenerationParams())
    assert out.text == "quick"
    assert len(fake.requests) == 2
    assert time.monotonic() - start < 1.0


def test_invalid_rankings_are_re_asked_until_valid(serve) -> None:
    replies = [
        "not json at all",
        json.dumps({"ranking": "A > A > B"}),
        json.dumps({"ranking": "C > A = B"}),
    ]
    fake, url = serve(lambda body, n: (200, completion(replies[n - 1]), 0))
    (out,) = engine(url).rank([CONV], SPEC, GenerationParams(max_new_tokens=20))
    assert out.text == "C > A = B" and out.error is None and out.attempts == 3
    response_format = fake.requests[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["required"] == ["ranking"]


def test_format_retries_are_bounded_and_raw_output_kept(serve) -> None:
    fake, url = serve(lambda body, n: (200, completion('{"ranking": "A > B"}'), 0))
    (out,) = engine(url, options={"format_retries": 1}).rank([CONV], SPEC, GenerationParams())
    assert out.error is not None and "after 2 attempts" in out.error
    assert out.raw == '{"ranking": "A > B"}'
    assert len(fake.requests) == 2


def test_reasoning_comes_back_with_the_ranking(serve) -> None:
    answer = json.dumps({"reasoning": "B is kinder.", "ranking": "B > C > A"})
    fake, url = serve(lambda body, n: (200, completion(answer), 0))
    spec = RankingSpec(default_labels(3), reasoning=True)
    (out,) = engine(url).rank([CONV], spec, GenerationParams())
    assert (out.text, out.reasoning) == ("B > C > A", "B is kinder.")
    assert fake.requests[0]["response_format"]["json_schema"]["schema"]["required"] == [
        "reasoning",
        "ranking",
    ]


def test_concurrency_is_limited_and_order_kept(serve) -> None:
    fake, url = serve(lambda body, n: (200, completion(body["messages"][0]["content"]), 0.05))
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
    outs = engine(url, max_concurrency=3).generate(convs, GenerationParams())
    assert [o.text for o in outs] == [f"q{i}" for i in range(12)]
    assert fake.max_in_flight == 3


def test_score_reads_top_logprobs(serve) -> None:
    top = [
        {"token": "B", "logprob": -0.2},
        {"token": "A", "logprob": -1.8},
        {"token": " A", "logprob": -4.0},
    ]
    fake, url = serve(lambda body, n: (200, completion("B", logprobs=top), 0))
    (scores,) = engine(url).score([CONV], ["A", "B", "C"])
    assert scores == {"A": -1.8, "B": -0.2}
    assert fake.requests[0]["logprobs"] is True and fake.requests[0]["max_tokens"] == 1


def test_score_without_logprobs_support_is_an_error(serve) -> None:
    fake, url = serve(lambda body, n: (200, completion("B"), 0))
    with pytest.raises(BackendError, match="top_logprobs"):
        engine(url).score([CONV], ["A", "B"])


def test_continuing_an_assistant_message_uses_the_vllm_extension(serve) -> None:
    fake, url = serve(lambda body, n: (200, completion("A"), 0))
    engine(url).generate([[*CONV, {"role": "assistant", "content": "Because"}]], GenerationParams())
    assert fake.requests[0]["continue_final_message"] is True
    assert fake.requests[0]["add_generation_prompt"] is False


def test_api_key_comes_from_the_named_environment_variable(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = serve(lambda body, n: (200, completion("ok"), 0))
    with pytest.raises(BackendConfigError, match="RLCHF_TEST_KEY"):
        engine(url, api_key_env="RLCHF_TEST_KEY")
    monkeypatch.setenv("RLCHF_TEST_KEY", "sk-test")
    engine(url, api_key_env="RLCHF_TEST_KEY").generate([CONV], GenerationParams())
    assert fake.headers[0]["Authorization"] == "Bearer sk-test"


def test_unreachable_server_fails_after_retries() -> None:
    (out,) = engine("http://127.0.0.1:9/v1", max_retries=1, timeout_s=0.5).generate(
        [CONV], GenerationParams()
    )
    assert out.error is not None and "ConnectError" in out.error
