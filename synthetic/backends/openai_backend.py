"""The OpenAI-compatible engine: any server speaking `/v1/chat/completions` (e.g. `vllm serve`).

- Concurrency: at most `max_concurrency` requests in flight (a thread pool over one httpx client).
- Failures: timeouts, connection errors, 429 and 5xx are retried up to `max_retries` times with
  exponential backoff and jitter (`options["backoff_s"]`, default 0.5 s, capped at 8 s); other
  4xx are not retried. A request that still fails becomes a `GenerationOutput` with `error` set
  (for `generate` and `rank`), so a run records it instead of crashing; `score` raises
  `BackendError`, since there is no partial answer to keep.
- Rankings: `response_format` with a JSON schema (`ranking_grammar.ranking_json_schema`); the
  answer is validated (JSON, then the ranking grammar) and re-asked up to
  `options["format_retries"]` times (default 2).
- Scores: `logprobs` + `top_logprobs` (`options["top_logprobs"]`, default 20) of one generated
  token; options outside the server's top list are left out (treated as -inf).
- Continuing an assistant message uses vLLM's `continue_final_message` extension.
- The API key is read from the environment variable named by `api_key_env`.
"""

from __future__ import annotations

import json
import logging
import os
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

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class RequestFailed(Exception):
    """One request failed for good (after retries, or a non-retryable status)."""


def backoff_delay(attempt: int, base: float, cap: float = 8.0) -> float:
    """Seconds to wait before retry number `attempt` (1-based): exponential, full jitter."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class OpenAIBackend(Backend):
    engine = "openai"

    @classmethod
    def config_problems(cls, config: BackendConfig) -> list[str]:
        problems = []
        if not config.base_url or not config.base_url.startswith(("http://", "https://")):
            problems.append("The openai engine needs base_url, e.g. http://127.0.0.1:8000/v1.")
        if not config.model:
            problems.append("The openai engine needs the served model name as model.")
        if config.api_key_env and not os.environ.get(config.api_key_env):
            problems.append(f"The environment variable {config.api_key_env} (API key) is not set.")
        return problems

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        import httpx

        self._httpx = httpx
        headers = {"Content-Type": "application/json"}
        if config.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[config.api_key_env]}"
        self._client = httpx.Client(
            timeout=httpx.Timeout(config.timeout_s),
            headers=headers,
            limits=httpx.Limits(max_connections=config.max_concurrency),
        )
        self._url = str(config.base_url).rstrip("/") + "/chat/completions"
        self._backoff = float(config.options.get("backoff_s", 0.5))

    def close(self) -> None:
        self._client.close()

    # ---- transport -------------------------------------------------------------------------

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST with bounded retries; the decoded JSON body, or `RequestFailed`."""
        last = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                time.sleep(backoff_delay(attempt, self._backoff))
            try:
                response = self._client.post(self._url, json=body)
            except self._httpx.TransportError as exc:  # timeouts and connection errors
                last = f"{type(exc).__name__}: {exc}"
                logger.warning("request failed (%s), attempt %d", last, attempt + 1)
                continue
            if response.status_code == 200:
                return response.json()
            last = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code not in RETRY_STATUS:
                break
            logger.warning("server answered %s, attempt %d", response.status_code, attempt + 1)
        raise RequestFailed(last)

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
