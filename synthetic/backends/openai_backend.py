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
"""

from __future__ import annotations

import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
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


def _headers(config: BackendConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


def _models_of(client: Any, url: str) -> list[str]:
    """The served model ids of one replica (GET {url}/models); raises on no or a bad answer."""
    response = client.get(f"{url}/models")
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}")
    try:
        data = response.json().get("data") or []
        return [str(m.get("id")) for m in data if isinstance(m, dict)]
    except (ValueError, AttributeError):
        raise RuntimeError("not an OpenAI-compatible models list") from None


def probe(client: Any, config: BackendConfig) -> tuple[list[str], list[str]]:
    """(replicas that answered GET /models, problems that stop the run). Replicas are asked at once."""
    def ask(url: str) -> tuple[str, list[str] | None, str]:
        try:
            return url, _models_of(client, url), ""
        except Exception as exc:  # any failure means "this replica does not answer"
            return url, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    urls = list(config.base_urls)
    with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
        answers = list(pool.map(ask, urls))
    up = [(url, models) for url, models, _ in answers if models is not None]
    if not up:
        detail = "; ".join(f"{url}: {error}" for url, _, error in answers)
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

        timeout = httpx.Timeout(min(config.timeout_s, PROBE_TIMEOUT_S))
        with httpx.Client(timeout=timeout, headers=_headers(config)) as client:
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
        """One POST: the JSON answer, or (what went wrong, HTTP status or None if no answer)."""
        try:
            response = self._client.post(f"{replica.url}/chat/completions", json=body)
        except self._httpx.TransportError as exc:  # timeouts and connection errors
            self._pool.release(replica, answered=False)
            logger.warning("replica %s did not answer (%s: %s); marked down", replica.url, type(exc).__name__, exc)
            return f"{replica.url}: {type(exc).__name__}: {exc}", None
        self._pool.release(replica, answered=True)
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                return f"{replica.url}: HTTP 200 with a body that is not JSON", 502
        logger.warning("replica %s answered HTTP %s", replica.url, response.status_code)
        return f"HTTP {response.status_code}: {response.text[:300]}", response.status_code

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
        return _output_from(data)

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
        return option_logprobs(data, options)

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
                raw = _output_from(self._post(body)).raw
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


def _output_from(data: dict[str, Any]) -> GenerationOutput:
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raw = json.dumps(data)[:2000]
        return GenerationOutput(text="", raw=raw, error=f"malformed response: {exc!r}")
    tokens = (data.get("usage") or {}).get("completion_tokens", 0)
    reason = choice.get("finish_reason") or "stop"
    return GenerationOutput(text=text, raw=text, finish_reason=reason, num_tokens=tokens)


def option_logprobs(data: dict[str, Any], options: list[str]) -> dict[str, float]:
    """Log-probabilities of `options` among the first generated token's top log-probs."""
    try:
        top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError) as exc:
        raise BackendError(
            "the server returned no top_logprobs (does it support logprobs?)"
        ) from exc
    found: dict[str, float] = {}
    for entry in top:
        token, logprob = entry.get("token"), entry.get("logprob")
        if token in options and token not in found and logprob is not None:
            found[token] = float(logprob)
    return found
