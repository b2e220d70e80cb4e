"""The OpenAI-compatible engine: any server speaking `/v1/chat/completions` (e.g. `vllm serve`).

- Where requests go: only to `config.base_urls`, the replicas of an operator-defined inference
  endpoint (`synthetic.endpoints`), spread by `replicas.ReplicaPool` (fewest in flight, round
  robin on ties). A replica that stops answering is marked down for `options["replica_down_s"]`
  seconds (default 30) and the request is retried at once on another replica.
- Before any work: `GET {base}/models` on every replica (`readiness_problems`, also run when the
  engine is built). No replica answering, or none serving `model`, is a clear error up front
  instead of a run whose every judgment fails.
- Concurrency: at most `max_concurrency` requests in flight (a thread pool over one httpx client).
- Failures: timeouts, connection errors, 429 and 5xx are retried up to `max_retries` times with
  exponential backoff and jitter (`options["backoff_s"]`, default 0.5 s, capped at 8 s), plus one
  immediate retry per other replica when one stops answering; other 4xx are not retried. A
  request that still fails becomes a `GenerationOutput` with `error` set (for `generate` and
  `rank`), so a run records it instead of crashing; `score` raises `BackendError`, since there
  is no partial answer to keep.
- Rankings: `response_format` with a JSON schema (`ranking_grammar.ranking_json_schema`); the
  answer is validated (JSON, then the ranking grammar) and re-asked up to
  `options["format_retries"]` times (default 2).
- Scores: `logprobs` + `top_logprobs` (`options["top_logprobs"]`, default 20) of one generated
  token; options outside the server's top list are left out (treated as -inf).
- Continuing an assistant message uses vLLM's `continue_final_message` extension.
- The API key (`config.api_key`, read by `synthetic.endpoints` from the operator's variable) is
  sent as a bearer token to the endpoint's own replicas only; a free URL never gets one.
- Every failure is one readable line naming the endpoint, the replica and the cause (refused
  connection, no answer within the timeout, a refused key, a model or route not found, an answer
  that is not JSON), with the server's own message where it gave one; the key is blanked out of
  anything the server echoes.
"""

from __future__ import annotations

import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from synthetic.backends.base import (
    Backend,
    BackendConfig,
    BackendError,
    Conversation,
    GenerationOutput,
    GenerationParams,
    RankingSpec,
)
from synthetic.backends.ranking_grammar import (
    RankingParseError,
    parse_json_answer,
    parse_ranking,
    ranking_json_schema,
)
from synthetic.backends.replicas import Replica, ReplicaPool

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# The models request before a run: a live server answers at once; a dead one should not hold
# the researcher's page for the whole generation timeout.
PROBE_TIMEOUT_S = 5.0


class RequestFailed(Exception):
    """One request failed for good (after retries, or a non-retryable status)."""


def backoff_delay(attempt: int, base: float, cap: float = 8.0) -> float:
    """Seconds to wait before retry number `attempt` (1-based): exponential, full jitter."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def _where(config: BackendConfig) -> str:
    return f"endpoint {config.endpoint!r}" if config.endpoint else "the server"


def redact(text: str, config: BackendConfig) -> str:
    """`text` with the API key blanked out (servers echo a refused key in their error message)."""
    return text.replace(config.api_key, "***") if config.api_key else text


def transport_cause(exc: Exception, config: BackendConfig) -> str:
    """Why a request got no answer, in words (httpx's timeouts and connection errors)."""
    name = type(exc).__name__
    if "Timeout" in name:
        return f"no answer within {config.timeout_s:g} s ({name})"
    detail = redact(one_line(exc), config)
    if name == "ConnectError":
        return f"cannot connect ({name}: {detail})" if detail else f"cannot connect ({name})"
    return f"{name}: {detail}" if detail else name


def status_cause(status: int, body: str, config: BackendConfig, route: str) -> str:
    """Why a server's HTTP error answer to `route` ("/models" or "/chat/completions") failed."""
    if status in (401, 403):
        meaning = "the API key was refused" if config.api_key else "the server wants an API key and the endpoint has none"
    elif status == 404 and route == "/models":
        meaning = "no /models route (is the base URL the server's /v1?)"
    elif status == 404:
        meaning = f"model {config.model!r} or the {route} route was not found"
    else:
        meaning = ""
    said = server_message(body, config)
    text = f"HTTP {status}" + (f": {meaning}" if meaning else "")
    return f"{text} (server: {said})" if said else text


def server_message(body: str, config: BackendConfig) -> str:
    """The server's own error message: OpenAI's and vLLM's `{"error": {"message"}}`, FastAPI's
    `{"detail"}`, or the body's first line; at most 200 characters, the key blanked out."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        text = error if isinstance(error, str) else json.dumps(error) if error is not None else ""
    else:
        text = body
    return redact(one_line_text(text), config)[:200]


def one_line(exc: BaseException) -> str:
    return one_line_text(str(exc))


def one_line_text(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def not_json_cause(body: str, config: BackendConfig) -> str:
    snippet = redact(one_line_text(body), config)[:60]
    return f"answered HTTP 200 with a body that is not JSON ({snippet!r})" if snippet else "answered HTTP 200 with an empty body"


def _headers(config: BackendConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


class ModelsUnavailable(Exception):
    """A replica's GET /models failed; `answered` says whether the server answered at all."""

    def __init__(self, cause: str, answered: bool) -> None:
        super().__init__(cause)
        self.answered = answered


def _models_of(client: Any, url: str, config: BackendConfig) -> list[str]:
    """The served model ids of one replica (GET {url}/models); `ModelsUnavailable` otherwise."""
    try:
        response = client.get(f"{url}/models")
    except Exception as exc:  # httpx's transport errors, or anything else that kept the answer away
        raise ModelsUnavailable(transport_cause(exc, config), answered=False) from exc
    if response.status_code != 200:
        raise ModelsUnavailable(status_cause(response.status_code, response.text, config, "/models"), answered=True)
    try:
        data = response.json().get("data") or []
        return [str(m.get("id")) for m in data if isinstance(m, dict)]
    except ValueError:
        raise ModelsUnavailable(not_json_cause(response.text, config), answered=True) from None
    except (AttributeError, TypeError):
        raise ModelsUnavailable("answered with JSON that is not an OpenAI-compatible models list", answered=True) from None


def probe(client: Any, config: BackendConfig) -> tuple[list[str], list[str]]:
    """(replicas that answered GET /models, problems that stop the run). Replicas are asked at once."""
    def ask(url: str) -> tuple[str, list[str] | None, ModelsUnavailable | None]:
        try:
            return url, _models_of(client, url, config), None
        except ModelsUnavailable as exc:
            return url, None, exc

    urls = list(config.base_urls)
    with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
        answers = list(pool.map(ask, urls))
    up = [(url, models) for url, models, _ in answers if models is not None]
    if not up:
        failures = [error for _, _, error in answers if error is not None]
        detail = "; ".join(f"{url}: {error}" for url, _, error in answers)
        if any(f.answered for f in failures):
            return [], [f"{_where(config)} could not list its models: GET /models failed ({detail})."]
        return [], [f"{_where(config)} is not reachable: no replica answered GET /models ({detail})."]
    served = sorted({m for _, models in up for m in (models or [])})
    if served and config.model not in served:
        return [url for url, _ in up], [
            f"{_where(config)} does not serve model {config.model!r}; it serves: {', '.join(served[:20])}."
        ]
    return [url for url, _ in up], []


class OpenAIBackend(Backend):
    engine = "openai"

    @classmethod
    def config_problems(cls, config: BackendConfig) -> list[str]:
        problems = []
        if not config.base_urls:
            problems.append("The openai engine needs an inference endpoint: choose one by name.")
        elif not all(u.startswith(("http://", "https://")) for u in config.base_urls):
            problems.append("An inference endpoint's base URLs must be http(s) URLs.")
        if not config.model:
            problems.append("The openai engine needs the served model name as model.")
        return problems

    @classmethod
    def readiness_problems(cls, config: BackendConfig) -> list[str]:
        import httpx

        config = replace(config, timeout_s=min(config.timeout_s, PROBE_TIMEOUT_S))
        with httpx.Client(timeout=httpx.Timeout(config.timeout_s), headers=_headers(config)) as client:
            return probe(client, config)[1]

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        import httpx

        self._httpx = httpx
        self._client = httpx.Client(
            timeout=httpx.Timeout(config.timeout_s),
            headers=_headers(config),
            limits=httpx.Limits(max_connections=config.max_concurrency),
        )
        self._backoff = float(config.options.get("backoff_s", 0.5))
        self._pool = ReplicaPool(config.base_urls, down_s=float(config.options.get("replica_down_s", 30.0)))
        self._where = _where(config)
        up, problems = probe(self._client, config)
        if problems:
            self._client.close()
            raise BackendError(" ".join(problems))
        for replica in self._pool.replicas:
            if replica.url not in up:
                logger.warning("replica %s did not answer GET /models; skipped for now", replica.url)
                self._pool.mark_down(replica)

    def close(self) -> None:
        self._client.close()

    @property
    def replica_stats(self) -> list[dict[str, Any]]:
        """Requests and failures per replica, for the run log."""
        return [{"url": r.url, "requests": r.requests, "failures": r.failures} for r in self._pool.replicas]

    # ---- transport -------------------------------------------------------------------------

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST to a replica with bounded retries; the decoded JSON body, or `RequestFailed`.

        `max_retries` bounds the retries after a backoff; a replica that stops answering costs
        no backoff while another one is up (at most one such switch per replica).
        """
        last, retries, switches = "", 0, 0
        while True:
            replica = self._pool.acquire()
            outcome = self._send(replica, body)
            if isinstance(outcome, dict):
                return outcome
            last, status = outcome
            if status is not None and status not in RETRY_STATUS:
                break
            if status is None and switches < len(self._pool.replicas) - 1 and self._pool.any_up():
                switches += 1
                continue
            retries += 1
            if retries > self.config.max_retries:
                break
            time.sleep(backoff_delay(retries, self._backoff))
        raise RequestFailed(last)

    def _send(self, replica: Replica, body: dict[str, Any]) -> dict[str, Any] | tuple[str, int | None]:
        """One POST: the JSON answer, or (what went wrong in one line naming the endpoint and the
        replica, HTTP status or None if no answer)."""
        where = f"{self._where} ({replica.url})"
        try:
            response = self._client.post(f"{replica.url}/chat/completions", json=body)
        except self._httpx.TransportError as exc:  # timeouts and connection errors
            self._pool.release(replica, answered=False)
            cause = transport_cause(exc, self.config)
            logger.warning("%s: %s (marked down)", where, cause)
            return f"{where}: {cause}", None
        self._pool.release(replica, answered=True)
        if response.status_code == 200:
            try:
                data = response.json()
            except ValueError:
                cause = not_json_cause(response.text, self.config)
                logger.warning("%s: %s", where, cause)
                return f"{where}: {cause}", 502
            if isinstance(data, dict) and isinstance(data.get("choices"), list) and data["choices"]:
                return data
            cause = "answered with JSON that is not a chat completion (no choices)"
            logger.warning("%s: %s", where, cause)
            return f"{where}: {cause}", 502
        cause = status_cause(response.status_code, response.text, self.config, "/chat/completions")
        logger.warning("%s: %s", where, cause)
        return f"{where}: {cause}", response.status_code

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        """`fn` over `items` with at most `max_concurrency` in flight, results in input order."""
        if len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=self.config.max_concurrency) as pool:
            return list(pool.map(fn, items))

    def _body(self, conversation: Conversation, params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": conversation,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if conversation and conversation[-1].get("role") == "assistant":
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body

    # ---- the interface ---------------------------------------------------------------------

    def generate(
        self, conversations: list[Conversation], params: GenerationParams
    ) -> list[GenerationOutput]:
        return self._map(lambda c: self._generate_one(c, params), conversations)

    def _generate_one(
        self, conversation: Conversation, params: GenerationParams
    ) -> GenerationOutput:
        try:
            data = self._post(self._body(conversation, params))
        except RequestFailed as exc:
            return GenerationOutput(text="", error=str(exc), finish_reason="error")
        return _output_from(data, self._where)

    def score(
        self, conversations: list[Conversation], options: list[str]
    ) -> list[dict[str, float]]:
        return self._map(lambda c: self._score_one(c, options), conversations)

    def _score_one(self, conversation: Conversation, options: list[str]) -> dict[str, float]:
        body = self._body(conversation, GenerationParams(max_new_tokens=1))
        body.update(logprobs=True, top_logprobs=int(self.config.options.get("top_logprobs", 20)))
        try:
            data = self._post(body)
        except RequestFailed as exc:
            raise BackendError(f"scoring request failed: {exc}") from exc
        return option_logprobs(data, options, self._where)

    def rank(
        self, conversations: list[Conversation], spec: RankingSpec, params: GenerationParams
    ) -> list[GenerationOutput]:
        return self._map(lambda c: self._rank_one(c, spec, params), conversations)

    def _rank_one(
        self, conversation: Conversation, spec: RankingSpec, params: GenerationParams
    ) -> GenerationOutput:
        budget = params.max_new_tokens + (spec.max_reasoning_tokens if spec.reasoning else 0)
        body = self._body(
            conversation,
            GenerationParams(
                max_new_tokens=budget,
                temperature=params.temperature,
                top_p=params.top_p,
                seed=params.seed,
            ),
        )
        body["response_format"] = ranking_response_format(spec)
        retries = int(self.config.options.get("format_retries", 2))
        problem, raw = "", ""
        for attempt in range(1, retries + 2):
            try:
                answer = _output_from(self._post(body), self._where)
                if answer.error:
                    return replace(answer, attempts=attempt)
                raw = answer.raw
                text, reasoning = parse_json_answer(raw)
                parse_ranking(text, spec.labels, spec.allow_ties)
            except RequestFailed as exc:
                return GenerationOutput(text="", raw=raw, error=str(exc), attempts=attempt)
            except RankingParseError as exc:
                problem = str(exc)
                logger.info("invalid ranking answer (%s), attempt %d", problem, attempt)
                continue
            return GenerationOutput(text=text, raw=raw, reasoning=reasoning, attempts=attempt)
        return GenerationOutput(
            text="",
            raw=raw,
            error=f"no valid ranking after {retries + 1} attempts: {problem}",
            attempts=retries + 1,
        )


def ranking_response_format(spec: RankingSpec) -> dict[str, Any]:
    """The `response_format` asking for a JSON ranking answer."""
    schema = ranking_json_schema(spec.labels, spec.allow_ties, spec.reasoning)
    return {
        "type": "json_schema",
        "json_schema": {"name": "ranking", "schema": schema, "strict": True},
    }


def _output_from(data: dict[str, Any], where: str = "the server") -> GenerationOutput:
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raw = json.dumps(data)[:2000]
        error = f"{where} answered with JSON that is not a chat completion (no choices[0].message.content: {exc!r})"
        return GenerationOutput(text="", raw=raw, error=error, finish_reason="error")
    tokens = (data.get("usage") or {}).get("completion_tokens", 0)
    reason = choice.get("finish_reason") or "stop"
    return GenerationOutput(text=text, raw=text, finish_reason=reason, num_tokens=tokens)


def option_logprobs(data: dict[str, Any], options: list[str], where: str = "the server") -> dict[str, float]:
    """Log-probabilities of `options` among the first generated token's top log-probs."""
    try:
        top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError) as exc:
        raise BackendError(f"{where} returned no top_logprobs (does it support logprobs?)") from exc
    found: dict[str, float] = {}
    for entry in top:
        token, logprob = entry.get("token"), entry.get("logprob")
        if token in options and token not in found and logprob is not None:
            found[token] = float(logprob)
    return found
