"""The openai engine against real OpenAI-compatible HTTP servers on loopback, started here
(tests/openai_server.py): retries, formats, scores, replicas and the models request."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from synthetic.backends import (
    BackendConfig,
    GenerationParams,
    RankingSpec,
    load_backend,
    readiness_problems,
)
from synthetic.backends.base import BackendError
from synthetic.backends.ranking_grammar import default_labels
from synthetic.backends.replicas import ReplicaPool
from tests import openai_server
from tests.openai_server import closed_port_url, completion

serve = openai_server.serve  # the fixture


def config(*urls: str, **overrides: Any) -> BackendConfig:
    options = {"backoff_s": 0.01, **overrides.pop("options", {})}
    return BackendConfig(engine="openai", model="judge-7b", base_urls=urls, options=options, **overrides)


def engine(*urls: str, **overrides: Any):  # noqa: ANN201
    return load_backend(config(*urls, **overrides))


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


def test_the_key_goes_as_a_bearer_token_and_no_header_without_one(serve) -> None:
    fake, url = serve(lambda body, n: (200, completion("ok"), 0))
    engine(url, api_key="sk-test").generate([CONV], GenerationParams())
    engine(url).generate([CONV], GenerationParams())
    assert fake.headers[0]["Authorization"] == "Bearer sk-test"
    assert fake.model_requests[0]["Authorization"] == "Bearer sk-test"
    assert "Authorization" not in fake.headers[1]


def test_the_key_never_shows_in_the_config_repr() -> None:
    assert "sk-secret" not in repr(config("http://127.0.0.1:9/v1", api_key="sk-secret"))


def test_an_unreachable_server_is_an_error_before_any_work() -> None:
    url = closed_port_url()
    problems = readiness_problems(config(url))
    assert len(problems) == 1 and "not reachable: no replica answered GET /models" in problems[0]
    assert url in problems[0] and "ConnectError" in problems[0]
    with pytest.raises(BackendError, match="not reachable"):
        engine(url)


def test_a_server_that_does_not_serve_the_model_is_an_error_naming_what_it_serves(serve) -> None:
    fake, url = serve(lambda body, n: (200, completion("ok"), 0), models=["llama-3-8b", "qwen-7b"])
    problems = readiness_problems(config(url, endpoint="fleet"))
    assert problems == ["endpoint 'fleet' does not serve model 'judge-7b'; it serves: llama-3-8b, qwen-7b."]
    assert fake.requests == []


def test_requests_are_spread_over_the_replicas(serve) -> None:
    a, url_a = serve(lambda body, n: (200, completion("a"), 0.02))
    b, url_b = serve(lambda body, n: (200, completion("b"), 0.02))
    outs = engine(url_a, url_b, max_concurrency=4).generate([CONV] * 20, GenerationParams())
    assert all(o.error is None for o in outs)
    assert len(a.requests) + len(b.requests) == 20
    assert 6 <= len(a.requests) <= 14, (len(a.requests), len(b.requests))
    sequential = engine(url_a, url_b, max_concurrency=1)
    before = len(a.requests)
    sequential.generate([CONV] * 6, GenerationParams())
    assert len(a.requests) - before == 3  # round robin when nothing is in flight


def test_a_replica_killed_mid_run_is_skipped_and_nothing_is_lost(serve) -> None:
    killed = threading.Event()

    def dying(body: dict[str, Any], n: int):  # noqa: ANN202
        if n == 3:
            a.kill_soon()
            killed.set()
        return 200, completion("a"), 0.01

    a, url_a = serve(dying)
    b, url_b = serve(lambda body, n: (200, completion("b"), 0.01))
    backend = engine(url_a, url_b, max_concurrency=2, max_retries=0, options={"replica_down_s": 60})
    outs = backend.generate([CONV] * 30, GenerationParams())
    assert killed.is_set()
    assert [o.error for o in outs] == [None] * 30  # every request answered, by one replica or the other
    assert len(a.requests) <= 4 and len(a.requests) + len(b.requests) == 30
    stats = {s["url"]: s for s in backend.replica_stats}
    assert stats[url_a]["failures"] == 1  # one refused connection, then it is skipped while down
    assert stats[url_b]["requests"] == len(b.requests)


def test_a_replica_down_at_the_start_is_skipped_and_the_run_goes_on(serve) -> None:
    b, url_b = serve(lambda body, n: (200, completion("b"), 0))
    backend = engine(closed_port_url(), url_b, max_retries=0)
    outs = backend.generate([CONV] * 5, GenerationParams())
    assert [o.text for o in outs] == ["b"] * 5
    assert sum(s["requests"] for s in backend.replica_stats) == 5  # no request went to the dead one


def test_when_every_replica_stops_answering_each_request_fails_with_the_cause(serve) -> None:
    a, url_a = serve(lambda body, n: (200, completion("a"), 0))
    b, url_b = serve(lambda body, n: (200, completion("b"), 0))
    backend = engine(url_a, url_b, max_retries=1)
    a.kill()
    b.kill()
    (out,) = backend.generate([CONV], GenerationParams())
    assert out.error is not None and "ConnectError" in out.error
    # one switch to the other replica, then max_retries backed-off tries: bounded
    assert sum(s["requests"] for s in backend.replica_stats) == 3


def test_the_pool_marks_a_replica_down_for_a_while_then_tries_it_again() -> None:
    now = [0.0]
    pool = ReplicaPool(["http://a", "http://b"], down_s=10, clock=lambda: now[0])
    pool.release(pool.acquire(), answered=False)  # a stops answering

    def one() -> str:
        replica = pool.acquire()
        pool.release(replica, answered=True)
        return replica.url

    assert [one() for _ in range(3)] == ["http://b"] * 3
    now[0] = 11.0
    assert [one() for _ in range(4)] == ["http://a", "http://b", "http://a", "http://b"]


def test_with_every_replica_down_the_one_down_longest_is_tried() -> None:
    now = [0.0]
    pool = ReplicaPool(["http://a", "http://b"], down_s=10, clock=lambda: now[0])
    a = pool.acquire()
    pool.release(a, answered=False)
    now[0] = 1.0
    b = pool.acquire()
    pool.release(b, answered=False)
    assert pool.acquire().url == "http://a"


# ---------------------------------------------------------------- failures: one readable line each

KEY = "sk-live-0123456789abcdef"


def _echo_key(status: int):  # noqa: ANN202
    """A server that refuses and echoes the key it got, as OpenAI's API does."""
    def reply(body: dict[str, Any], n: int):  # noqa: ANN202
        return status, {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}}, 0

    return reply


def _one_line_naming(error: str | None, url: str) -> str:
    assert error is not None and "\n" not in error, error
    assert error.startswith(f"endpoint 'fleet' ({url}): "), error
    assert KEY not in error
    return error[len(f"endpoint 'fleet' ({url}): ") :]


@pytest.mark.parametrize(
    ("script", "cause"),
    [
        (_echo_key(401), "HTTP 401: the API key was refused (server: Incorrect API key provided: ***.)"),
        (
            lambda body, n: (404, {"error": {"message": "The model `judge-7b` does not exist."}}, 0),
            "HTTP 404: model 'judge-7b' or the /chat/completions route was not found "
            "(server: The model `judge-7b` does not exist.)",
        ),
        (lambda body, n: (200, "<html>Bad gateway</html>\n<p>", 0),
         "answered HTTP 200 with a body that is not JSON ('<html>Bad gateway</html>')"),
        (lambda body, n: (200, {"unexpected": True}, 0),
         "answered with JSON that is not a chat completion (no choices)"),
        (lambda body, n: (200, completion("late"), 1.0), "no answer within 0.2 s (ReadTimeout)"),
        (lambda body, n: (500, "Traceback (most recent call last):\n  File ...", 0),
         "HTTP 500 (server: Traceback (most recent call last):)"),
    ],
    ids=["401", "404-model", "not-json", "not-a-completion", "timeout", "500"],
)
def test_a_failed_request_is_one_line_naming_the_endpoint_and_the_cause(serve, caplog, script, cause) -> None:
    fake, url = serve(script)
    backend = engine(url, endpoint="fleet", api_key=KEY, timeout_s=0.2, max_retries=1)
    (out,) = backend.generate([CONV], GenerationParams())
    assert _one_line_naming(out.error, url) == cause
    (ranked,) = backend.rank([CONV], SPEC, GenerationParams())
    assert _one_line_naming(ranked.error, url) == cause
    with pytest.raises(BackendError) as excinfo:
        backend.score([CONV], ["A", "B"])
    assert str(excinfo.value) == f"scoring request failed: endpoint 'fleet' ({url}): {cause}"
    assert KEY not in caplog.text


def test_a_refused_connection_mid_run_names_the_endpoint(serve) -> None:
    fake, url = serve(lambda body, n: (200, completion("ok"), 0))
    backend = engine(url, endpoint="fleet", max_retries=0)
    fake.kill()
    (out,) = backend.generate([CONV], GenerationParams())
    assert _one_line_naming(out.error, url).startswith("cannot connect (ConnectError: ")


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        ((401, {"error": {"message": f"Incorrect API key provided: {KEY}."}}, 0),
         "HTTP 401: the API key was refused (server: Incorrect API key provided: ***.)"),
        ((404, {"detail": "Not Found"}, 0), "HTTP 404: no /models route (is the base URL the server's /v1?) (server: Not Found)"),
        ((200, "definitely not json", 0), "answered HTTP 200 with a body that is not JSON ('definitely not json')"),
        ((200, [1, 2], 0), "answered with JSON that is not an OpenAI-compatible models list"),
    ],
    ids=["401", "404-route", "not-json", "not-a-list"],
)
def test_a_models_request_that_fails_is_a_clear_error_before_any_work(serve, caplog, reply, cause) -> None:
    fake, url = serve(lambda body, n: (200, completion("ok"), 0))
    fake.models_reply = reply
    problems = readiness_problems(config(url, endpoint="fleet", api_key=KEY))
    assert problems == [f"endpoint 'fleet' could not list its models: GET /models failed ({url}: {cause})."]
    with pytest.raises(BackendError) as excinfo:
        engine(url, endpoint="fleet", api_key=KEY)
    assert str(excinfo.value) == problems[0]
    assert fake.requests == [] and KEY not in caplog.text


def test_a_models_request_that_times_out_says_how_long_it_waited(serve) -> None:
    fake, url = serve(lambda body, n: (200, completion("ok"), 0))
    fake.models_reply = (200, {"data": [{"id": "judge-7b"}]}, 1.0)
    (problem,) = readiness_problems(config(url, endpoint="fleet", timeout_s=0.2))
    assert problem == (
        f"endpoint 'fleet' is not reachable: no replica answered GET /models ({url}: no answer within 0.2 s (ReadTimeout))."
    )


def test_a_401_without_a_key_says_the_endpoint_has_none(serve) -> None:
    fake, url = serve(lambda body, n: (401, {"error": "unauthorized"}, 0))
    (out,) = engine(url).generate([CONV], GenerationParams())
    assert out.error == f"the server ({url}): HTTP 401: the server wants an API key and the endpoint has none (server: unauthorized)"
