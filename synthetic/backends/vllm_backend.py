"""The vLLM engine (offline `LLM.chat`, vLLM 0.33; GPU machines only, an optional extra).

Requests are built as plain dicts by pure functions (`sampling_kwargs`, `ranking_plan`,
`score_kwargs`), so they are testable where vLLM is not installed; only `_sampling_params` and
the constructor import vLLM.

- Rankings: for small K the answer is a `choice` over every valid ordering (exactly valid, one
  short decode); when there are more orderings than `options["max_choices"]` (default 120:
  K <= 5 strict, K <= 4 with ties) or reasoning is asked for, a JSON schema, validated after
  decoding and re-asked up to `options["format_retries"]` times (default 2).
- Scores: one generated token with `logprobs` (`options["top_logprobs"]`, default 20, vLLM's
  default cap); options outside the top list are left out (-inf).
- Prefix caching is on: judging sends shared text first and the persona last.
- `options["engine_kwargs"]` go to `LLM(...)` as they are (tensor_parallel_size,
  gpu_memory_utilization, max_model_len, tokenizer for .gguf files, ...).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthetic.backends.base import (
    Backend,
    BackendConfig,
    BackendConfigError,
    BackendError,
    Conversation,
    GenerationOutput,
    GenerationParams,
    RankingSpec,
    local_model_problems,
)
from synthetic.backends.ranking_grammar import (
    RankingParseError,
    all_rankings,
    count_rankings,
    parse_json_answer,
    parse_ranking,
    ranking_json_schema,
)

logger = logging.getLogger(__name__)

VLLM_MISSING = (
    "vLLM is not installed in this environment (an optional extra for GPU machines: pip install vllm); "
    "use the 'transformers' engine here, or the 'openai' engine against a `vllm serve` server."
)


@dataclass(frozen=True)
class RankingPlan:
    """How one ranking request is constrained: `mode` is "choice" or "json"."""

    mode: str
    sampling: dict[str, Any]
    structured: dict[str, Any]


def sampling_kwargs(params: GenerationParams, max_tokens: int | None = None) -> dict[str, Any]:
    """`SamplingParams` keyword arguments for our generation parameters."""
    kwargs: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": max_tokens if max_tokens is not None else params.max_new_tokens,
    }
    if params.seed is not None:
        kwargs["seed"] = params.seed
    if params.stop:
        kwargs["stop"] = list(params.stop)
    return kwargs


def ranking_plan(spec: RankingSpec, params: GenerationParams, max_choices: int) -> RankingPlan:
    """A `choice` over all orderings when they are few and no reasoning is wanted, else JSON."""
    k = len(spec.labels)
    if not spec.reasoning and count_rankings(k, spec.allow_ties) <= max_choices:
        choices = all_rankings(spec.labels, spec.allow_ties)
        return RankingPlan("choice", sampling_kwargs(params, 4 * k + 2), {"choice": choices})
    budget = 16 * k + 32 + (spec.max_reasoning_tokens if spec.reasoning else 0)
    schema = ranking_json_schema(spec.labels, spec.allow_ties, spec.reasoning)
    return RankingPlan("json", sampling_kwargs(params, budget), {"json": schema})


def score_kwargs(top_logprobs: int) -> dict[str, Any]:
    """`SamplingParams` keyword arguments for next-token log-probabilities."""
    return {"temperature": 0.0, "max_tokens": 1, "logprobs": top_logprobs}


def chat_kwargs(continue_final: bool) -> dict[str, Any]:
    """`LLM.chat` keyword arguments for a batch that opens (or continues) the assistant turn."""
    return {
        "add_generation_prompt": not continue_final,
        "continue_final_message": continue_final,
        "use_tqdm": False,
    }


def split_by_continuation(conversations: list[Conversation]) -> dict[bool, list[int]]:
    """Indices of conversations that open a new assistant turn (False) or continue one (True):
    `LLM.chat` takes that choice per call."""
    groups: dict[bool, list[int]] = {}
    for index, conv in enumerate(conversations):
        groups.setdefault(bool(conv) and conv[-1].get("role") == "assistant", []).append(index)
    return groups


def option_logprobs(
    first_token_logprobs: Mapping[int, Any], option_ids: Mapping[str, int]
) -> dict[str, float]:
    """Options' log-probabilities from vLLM's {token_id: Logprob} of the first position."""
    found = {}
    for option, token_id in option_ids.items():
        entry = first_token_logprobs.get(token_id)
        if entry is not None:
            found[option] = float(getattr(entry, "logprob", entry))
    return found


def validate_ranking_answer(
    plan: RankingPlan, text: str, spec: RankingSpec
) -> tuple[str, str | None]:
    """(ranking text, reasoning) from an answer; `RankingParseError` when invalid."""
    ranking, reasoning = (text, None) if plan.mode == "choice" else parse_json_answer(text)
    parse_ranking(ranking, spec.labels, spec.allow_ties)
    return ranking, reasoning


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message` (vLLM's messages run over many lines)."""
    line = next((x.strip() for x in str(exc).splitlines() if x.strip()), "")
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def import_llm() -> Any:
    """vLLM's `LLM` class; a missing vLLM is a `BackendConfigError` (use another engine), one that
    is installed but does not import (a CUDA library missing, a torch mismatch) a `BackendError`
    naming the import error."""
    if importlib.util.find_spec("vllm") is None:
        raise BackendConfigError(VLLM_MISSING)
    try:
        from vllm import LLM
    except Exception as exc:  # ImportError, or whatever vLLM's import-time setup raises
        raise BackendError(f"vLLM is installed but could not be imported: {first_line(exc)}") from exc
    return LLM


class VLLMBackend(Backend):
    engine = "vllm"
    loads_local_model = True

    @classmethod
    def config_problems(cls, config: BackendConfig) -> list[str]:
        if config.options.get("allow_hub_id"):
            return []
        return local_model_problems(config.model)

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        llm_class = import_llm()
        kwargs: dict[str, Any] = {"model": config.model, "enable_prefix_caching": True}
        if config.dtype != "auto":
            kwargs["dtype"] = config.dtype
        kwargs.update(config.options.get("engine_kwargs", {}))
        try:
            self.llm = llm_class(**kwargs)
            self.tokenizer = self.llm.get_tokenizer()
        except Exception as exc:  # vLLM raises anything (CUDA, memory, config); the run needs the cause
            raise BackendError(f"vLLM could not start model {config.model}: {first_line(exc)}") from exc

    def _sampling_params(self, kwargs: dict[str, Any], structured: dict[str, Any] | None) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        if structured:
            kwargs = {**kwargs, "structured_outputs": StructuredOutputsParams(**structured)}
        return SamplingParams(**kwargs)

    def _chat(self, conversations: list[Conversation], sampling: Any) -> list[Any]:
        """One `LLM.chat` call per continuation group; request outputs in input order."""
        results: list[Any] = [None] * len(conversations)
        for continue_final, indices in split_by_continuation(conversations).items():
            outs = self.llm.chat(
                [conversations[i] for i in indices],
                sampling_params=sampling,
                **chat_kwargs(continue_final),
            )
            for index, out in zip(indices, outs, strict=True):
                results[index] = out
        return results

    def generate(
        self, conversations: list[Conversation], params: GenerationParams
    ) -> list[GenerationOutput]:
        sampling = self._sampling_params(sampling_kwargs(params), None)
        return [_output(r) for r in self._chat(conversations, sampling)]

    def score(
        self, conversations: list[Conversation], options: list[str]
    ) -> list[dict[str, float]]:
        top = int(self.config.options.get("top_logprobs", 20))
        sampling = self._sampling_params(score_kwargs(top), None)
        option_ids = {o: self.tokenizer.encode(o, add_special_tokens=False)[0] for o in options}
        outs = self._chat(conversations, sampling)
        return [option_logprobs(r.outputs[0].logprobs[0], option_ids) for r in outs]

    def rank(
        self, conversations: list[Conversation], spec: RankingSpec, params: GenerationParams
    ) -> list[GenerationOutput]:
        plan = ranking_plan(spec, params, int(self.config.options.get("max_choices", 120)))
        sampling = self._sampling_params(plan.sampling, plan.structured)
        results: list[GenerationOutput] = [GenerationOutput(text="") for _ in conversations]
        pending = list(range(len(conversations)))
        for attempt in range(1, int(self.config.options.get("format_retries", 2)) + 2):
            outs = self._chat([conversations[i] for i in pending], sampling)
            retry = []
            for index, out in zip(pending, outs, strict=True):
                results[index] = self._ranking_output(plan, _output(out), spec, attempt)
                if results[index].error:
                    retry.append(index)
            if not retry:
                break
            logger.info("re-asking %d invalid rankings (attempt %d)", len(retry), attempt + 1)
            pending = retry
        return results

    def _ranking_output(
        self, plan: RankingPlan, out: GenerationOutput, spec: RankingSpec, attempt: int
    ) -> GenerationOutput:
        try:
            text, reasoning = validate_ranking_answer(plan, out.raw, spec)
        except RankingParseError as exc:
            return GenerationOutput(text="", raw=out.raw, error=str(exc), attempts=attempt)
        return GenerationOutput(
            text=text, raw=out.raw, reasoning=reasoning, num_tokens=out.num_tokens, attempts=attempt
        )


def _output(request_output: Any) -> GenerationOutput:
    completion = request_output.outputs[0]
    return GenerationOutput(
        text=completion.text,
        raw=completion.text,
        finish_reason=completion.finish_reason or "stop",
        num_tokens=len(completion.token_ids),
    )
