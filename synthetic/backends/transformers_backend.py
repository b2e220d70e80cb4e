"""The transformers engine: a local HF directory or a .gguf file, CPU or GPU, batched.

Constrained listwise ranking uses a `LogitsProcessor` state machine (`constrained.py`) that only
lets the model write tokens that keep the answer a valid ranking, so even random weights give
valid rankings. torch and transformers are imported in the constructor only.

Speed on small machines: each call tokenizes its prompts once, batches them in length order, and
runs the token ids every prompt of the call starts with (the chat template's system turn and the
judge's instructions: a third or more of a short judging prompt) once, each batch continuing that
prefix's key/value cache. Scoring computes the vocabulary logits of the last position only.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthetic.backends.base import (
    Backend,
    BackendConfig,
    BackendError,
    Conversation,
    GenerationOutput,
    GenerationParams,
    RankingSpec,
    local_model_problems,
)
from synthetic.backends.constrained import (
    RankingConstraint,
    candidate_tokens,
    ranking_logits_processor,
)
from synthetic.backends.ranking_grammar import GRAMMAR_ALPHABET

logger = logging.getLogger(__name__)

ANSWER_CUE = "\n\nFinal ranking:"
# A shared prefix shorter than this is not worth its own forward pass and cache copies.
MIN_SHARED_PREFIX = 8


def _first_line(exc: BaseException) -> str:
    line = next((x.strip() for x in str(exc).splitlines() if x.strip()), "")
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def accepts(function: Any, name: str) -> bool:
    return name in inspect.signature(function).parameters


def continues_assistant(conversation: Conversation) -> bool:
    """True when the conversation ends with a partial assistant message to continue."""
    return bool(conversation) and conversation[-1].get("role") == "assistant"


def shared_prefix_length(rows: list[list[int]]) -> int:
    """How many leading token ids every row has in common, leaving each row at least one of its own
    (the position whose next-token distribution is read)."""
    if not rows:
        return 0
    first, limit = rows[0], min(len(r) for r in rows) - 1
    n = 0
    while n < limit and all(r[n] == first[n] for r in rows):
        n += 1
    return max(n, 0)


def pad_after_prefix(rows: list[list[int]], shared: int, pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    """(input ids, attention mask): each row's own tokens (after the `shared` prefix) left-padded
    to the longest, so that every row's last token is in the last column."""
    width = max(len(r) for r in rows) - shared
    ids, mask = [], []
    for row in rows:
        gap = width - (len(row) - shared)
        ids.append(row[:shared] + [pad_id] * gap + row[shared:])
        mask.append([1] * shared + [0] * gap + [1] * (len(row) - shared))
    return ids, mask


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut `text` at the first stop string; say whether one was found."""
    cuts = [text.index(s) for s in stop if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


class TransformersBackend(Backend):
    engine = "transformers"
    loads_local_model = True

    @classmethod
    def config_problems(cls, config: BackendConfig) -> list[str]:
        problems = local_model_problems(config.model)
        if config.device not in ("auto", "cpu") and not config.device.startswith(("cuda", "mps")):
            problems.append(f"Unknown device {config.device!r}: use auto, cpu, cuda or cuda:N.")
        return problems

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        import torch

        self._torch = torch
        self.device = self._pick_device(config.device)
        self.tokenizer, self.model = self._load(Path(config.model))
        self._token_texts: dict[int, str] | None = None
        # Only the last position's logits are read; models that cannot skip the others compute all.
        self._last_only = {"logits_to_keep": 1} if accepts(self.model.forward, "logits_to_keep") else {}

    def _pick_device(self, device: str) -> str:
        if device != "auto":
            return device
        return "cuda" if self._torch.cuda.is_available() else "cpu"

    def _load(self, path: Path) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs: dict[str, Any] = {}
        if path.is_file():
            kwargs["gguf_file"] = path.name
            path = path.parent
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        except Exception as exc:  # transformers raises many types; the run needs the cause
            raise BackendError(f"tokenizer could not be loaded from {path}: {_first_line(exc)}") from exc
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=self._dtype(), **kwargs)
        except Exception as exc:
            raise BackendError(f"model weights could not be loaded from {path}: {_first_line(exc)}") from exc
        model.to(self.device).eval()  # Any: transformers' decorated `.to` confuses mypy
        logger.info("loaded %s on %s", path, self.device)
        return tokenizer, model

    def _dtype(self) -> Any:
        if self.config.dtype != "auto":
            return getattr(self._torch, self.config.dtype)
        return self._torch.bfloat16 if self.device.startswith("cuda") else self._torch.float32

    # ---- prompts and batches -------------------------------------------------------------

    def render(self, conversation: Conversation) -> str:
        """The prompt text, always from the tokenizer's chat template."""
        cont = continues_assistant(conversation)
        return self.tokenizer.apply_chat_template(
            conversation,
            tokenize=False,
            add_generation_prompt=not cont,
            continue_final_message=cont,
        )

    def _batches(self, conversations: list[Conversation]) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """(original indices, batch) in length order, to waste little padding.

        A batch holds `input_ids` and `attention_mask` of the whole prompts and, when the call's
        prompts share a prefix, `past_key_values`: that prefix's cache, computed once per call.
        """
        texts = [self.render(c) for c in conversations]
        rows: list[list[int]] = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        shared = shared_prefix_length(rows) if len(rows) > 1 else 0
        prefix = self._prefix_cache(rows[0][:shared]) if shared >= MIN_SHARED_PREFIX else None
        if prefix is None:
            shared = 0
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        size = self.config.batch_size
        for start in range(0, len(order), size):
            indices = order[start : start + size]
            ids, mask = pad_after_prefix([rows[i] for i in indices], shared, self.tokenizer.pad_token_id)
            batch: dict[str, Any] = {
                "input_ids": self._torch.tensor(ids, device=self.device),
                "attention_mask": self._torch.tensor(mask, device=self.device),
            }
            if prefix is not None:
                batch["past_key_values"] = self._expand_cache(prefix, len(indices))
            yield indices, batch

    def _prefix_cache(self, ids: list[int]) -> list[tuple[Any, Any]] | None:
        """Keys and values of every layer for the token ids `ids` (batch of one), or None where the
        model's cache is not a plain, growing one (sliding windows, recurrent state)."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache()
        with self._torch.inference_mode():
            out = self.model(input_ids=self._torch.tensor([ids], device=self.device), past_key_values=cache,
                             use_cache=True, **self._last_only)
        cache = out.past_key_values
        layers: list[Any] = list(cache.layers) if isinstance(cache, DynamicCache) else []
        if not layers or not all(type(layer) is DynamicLayer for layer in layers):
            return None
        return [(layer.keys, layer.values) for layer in layers]

    def _expand_cache(self, prefix: list[tuple[Any, Any]], rows: int) -> Any:
        """A fresh cache holding the prefix once per row (views: the cache copies as it grows)."""
        from transformers import DynamicCache

        return DynamicCache([(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in prefix])

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        ids = eos if isinstance(eos, list) else [eos]
        if self.tokenizer.eos_token_id is not None:
            ids = [self.tokenizer.eos_token_id, *ids]
        return list(dict.fromkeys(i for i in ids if i is not None))

    def _run_generate(
        self, batch: Any, params: GenerationParams, max_new_tokens: int, processors: list
    ) -> list[list[int]]:
        sampling = params.temperature > 0
        if params.seed is not None:
            self._torch.manual_seed(params.seed)
        extra = {"temperature": params.temperature, "top_p": params.top_p} if sampling else {}
        with self._torch.inference_mode():
            out = self.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=sampling,
                eos_token_id=self._eos_ids(),
                pad_token_id=self.tokenizer.pad_token_id,
                logits_processor=processors,
                **extra,
            )
        return out[:, batch["input_ids"].shape[1] :].tolist()

    def _finish(self, ids: list[int]) -> tuple[list[int], str]:
        eos = set(self._eos_ids())
        for i, token in enumerate(ids):
            if token in eos:
                return ids[:i], "stop"
        return ids, "length"

    # ---- the interface -----------------------------------------------------------------

    def generate(
        self, conversations: list[Conversation], params: GenerationParams
    ) -> list[GenerationOutput]:
        results: list[GenerationOutput | None] = [None] * len(conversations)
        for indices, batch in self._batches(conversations):
            rows = self._run_generate(batch, params, params.max_new_tokens, [])
            for index, ids in zip(indices, rows, strict=True):
                results[index] = self._text_output(ids, params.stop)
        return [r for r in results if r is not None]

    def _text_output(self, ids: list[int], stop: tuple[str, ...]) -> GenerationOutput:
        kept, reason = self._finish(ids)
        raw = self.tokenizer.decode(kept, skip_special_tokens=True)
        text, stopped = truncate_at_stop(raw, stop)
        return GenerationOutput(
            text=text, raw=raw, finish_reason="stop" if stopped else reason, num_tokens=len(kept)
        )

    def score(
        self, conversations: list[Conversation], options: list[str]
    ) -> list[dict[str, float]]:
        option_ids = [self.tokenizer.encode(o, add_special_tokens=False) for o in options]
        if any(len(ids) != 1 for ids in option_ids):
            return self._score_sequences(conversations, options, option_ids)
        first = [ids[0] for ids in option_ids]
        results: list[dict[str, float]] = [{} for _ in conversations]
        for indices, batch in self._batches(conversations):
            logprobs = self._last_logprobs(batch)[:, first].tolist()
            for index, row in zip(indices, logprobs, strict=True):
                results[index] = dict(zip(options, row, strict=True))
        return results

    def _last_logprobs(self, batch: dict[str, Any]) -> Any:
        """Next-token log-probabilities after each row's last token (the last column)."""
        cache = batch.get("past_key_values")
        past = cache.get_seq_length() if cache is not None else 0
        mask = batch["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with self._torch.inference_mode():
            logits = self.model(
                input_ids=batch["input_ids"][:, past:],
                attention_mask=mask,
                position_ids=positions[:, past:],
                past_key_values=cache,
                use_cache=cache is not None,
                **self._last_only,
            ).logits[:, -1, :].float()
        return self._torch.log_softmax(logits, dim=-1)

    def _score_sequences(
        self, conversations: list[Conversation], options: list[str], option_ids: list[list[int]]
    ) -> list[dict[str, float]]:
        """Multi-token options: sum of the option tokens' log-probabilities, teacher-forced."""
        results: list[dict[str, float]] = []
        for conversation in conversations:
            prompt = self.tokenizer.encode(self.render(conversation), add_special_tokens=False)
            scores = {
                o: self._sequence_logprob(prompt, ids)
                for o, ids in zip(options, option_ids, strict=True)
            }
            results.append(scores)
        return results

    def _sequence_logprob(self, prompt: list[int], option: list[int]) -> float:
        ids = self._torch.tensor([prompt + option], device=self.device)
        with self._torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        logprobs = self._torch.log_softmax(logits, dim=-1)
        return float(logprobs[range(len(option)), option].sum())

    def rank(
        self, conversations: list[Conversation], spec: RankingSpec, params: GenerationParams
    ) -> list[GenerationOutput]:
        reasonings: list[str | None] = [None] * len(conversations)
        if spec.reasoning:
            conversations, reasonings = self._reason_first(conversations, spec, params)
        constraint = self._constraint(spec)
        results: list[GenerationOutput | None] = [None] * len(conversations)
        for indices, batch in self._batches(conversations):
            mass: list[float] = []
            processor = ranking_logits_processor(constraint, batch["input_ids"].shape[1], mass)
            rows = self._run_generate(batch, params, constraint.max_answer_tokens(), [processor])
            for row, (index, ids) in enumerate(zip(indices, rows, strict=True)):
                out = self._ranking_output(ids, constraint, reasonings[index])
                out.label_mass = mass[row] if row < len(mass) else None
                results[index] = out
        return [r for r in results if r is not None]

    def _reason_first(
        self, conversations: list[Conversation], spec: RankingSpec, params: GenerationParams
    ) -> tuple[list[Conversation], list[str | None]]:
        """Free-text reasoning, then conversations that continue it with the answer cue."""
        free = GenerationParams(
            max_new_tokens=spec.max_reasoning_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
        )
        outputs = self.generate(conversations, free)
        continued = [
            [*conv, {"role": "assistant", "content": out.text.strip() + ANSWER_CUE}]
            for conv, out in zip(conversations, outputs, strict=True)
        ]
        return continued, [out.text for out in outputs]

    def _constraint(self, spec: RankingSpec) -> RankingConstraint:
        if self._token_texts is None:
            self._token_texts = self._grammar_token_texts()
        return RankingConstraint(self._token_texts, spec.labels, spec.allow_ties, self._eos_ids())

    def _grammar_token_texts(self) -> dict[int, str]:
        """Text each token writes mid-sequence, for tokens made only of grammar characters.

        Decoded after a fixed reference token so tokenizers that drop a leading space when a
        token is decoded alone (SentencePiece) still report the space they write.
        """
        ref = self.tokenizer.encode("A", add_special_tokens=False)[:1]
        ref_text = self.tokenizer.decode(ref)
        pairs = [ref + [i] for i in range(len(self.tokenizer))]
        texts = self.tokenizer.batch_decode(pairs, skip_special_tokens=True)
        special = set(self.tokenizer.all_special_ids)
        token_texts = [
            "" if i in special or not t.startswith(ref_text) else t[len(ref_text) :]
            for i, t in enumerate(texts)
        ]
        return candidate_tokens(token_texts, GRAMMAR_ALPHABET)

    def _ranking_output(
        self, ids: list[int], constraint: RankingConstraint, reasoning: str | None
    ) -> GenerationOutput:
        kept, reason = self._finish(ids)
        text = constraint.text_of(kept)
        raw = self.tokenizer.decode(kept, skip_special_tokens=True)
        if reasoning is not None:
            raw = reasoning.strip() + ANSWER_CUE + " " + raw
        return GenerationOutput(
            text=text, raw=raw, reasoning=reasoning, finish_reason=reason, num_tokens=len(kept)
        )
