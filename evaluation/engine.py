"""The scoring engines: log-likelihoods of continuations on a transformers causal LM, batched;
and rewards of conversations on a reward model (`RewardEngine`, at the end of this module).

    engine = ScoringEngine("var/models/smollm2-135m-instruct")
    engine.loglikelihood([("Q: 2+2?\\nA:", " 4"), ("Q: 2+2?\\nA:", " 5")])   # [-1.2, -7.9]

Tokenization follows lm-evaluation-harness: the context is encoded alone, the continuation's
tokens are what encoding context + continuation adds after it, and an empty context is replaced
by one start token (BOS, or EOS where the tokenizer has no BOS).

Why it is fast (every trick keeps the result of scoring each request alone, up to float
rounding; `loglikelihood_one_at_a_time` is that reference and the baseline of
benchmarks/evaluation.py):
1. requests sharing a context are packed into ONE row: context, then each continuation, with a
   4-D attention mask under which each continuation sees the context and itself only, and
   position ids that restart after the context for each continuation. BBQ's three answers cost
   one pass over the context instead of three;
2. rows are sorted by length and batched up to a token budget (right padding, masked);
3. the output projection (about a fifth of a small model's weights) is applied only at the
   positions whose next token is scored, not at every position.

torch and transformers are imported when an engine is built, never at Django start-up.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Request = tuple[str, str]
Progress = Callable[[int, int], None]


class EngineError(RuntimeError):
    """The model cannot be loaded or cannot score what was asked; the message says why."""


@dataclass
class _Row:
    """One packed row: a context and the continuations scored after it."""

    context: list[int]
    continuations: list[tuple[int, list[int]]]  # (request index, token ids)

    @property
    def length(self) -> int:
        return len(self.context) + sum(len(c) for _, c in self.continuations)


class ScoringEngine:
    """Scores continuations with a local Hugging Face causal LM directory."""

    def __init__(
        self, model_dir: str | Path, *, device: str = "auto", dtype: str = "auto",
        batch_tokens: int = 8192, max_row_tokens: int = 4096,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, dtype = _prepare(self, model_dir, device, dtype, torch)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), attn_implementation="sdpa")
        self.model.to(self.device).eval()
        self.batch_tokens, self.max_row_tokens = batch_tokens, max_row_tokens
        self.name = path.name
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        if start is None:
            raise EngineError(f"{path}: the tokenizer has neither a BOS nor an EOS token to start an empty context")
        self.start_token = int(start)

    # ------------------------------------------------------------ tokenization

    def render_chat(self, turns: Sequence[tuple[str, str]]) -> str:
        """The prompt text before an assistant reply to `turns` ((role, content) pairs): the
        model's chat template with the generation prompt, or plain role-prefixed lines."""
        messages = [{"role": role, "content": content} for role, content in turns]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(f"{role}: {content}\n\n" for role, content in turns) + "assistant:"

    def encode(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of the context and of the continuation after it (lm-eval's split)."""
        if not continuation:
            raise EngineError("cannot score an empty continuation")
        if not context:
            return [self.start_token], self.tokenizer.encode(continuation, add_special_tokens=False)
        ctx = self.tokenizer.encode(context, add_special_tokens=False)
        whole = self.tokenizer.encode(context + continuation, add_special_tokens=False)
        return ctx, whole[len(ctx):]

    def _rows(self, requests: Sequence[Request]) -> list[_Row]:
        by_context: dict[str, _Row] = {}
        rows: list[_Row] = []
        for index, (context, continuation) in enumerate(requests):
            ctx, cont = self.encode(context, continuation)
            if not cont:
                raise EngineError(f"request {index}: the continuation adds no tokens after its context")
            row = by_context.get(context)
            if row is None or row.length + len(cont) > self.max_row_tokens:
                row = by_context[context] = _Row(ctx, [])
                rows.append(row)
            row.continuations.append((index, cont))
        return rows

    # ------------------------------------------------------------ batched scoring

    def score(self, requests: Sequence[Request], progress: Progress | None = None) -> list[float]:
        """The engines' common entry point (evaluation runs call it): here, log-likelihoods."""
        return self.loglikelihood(requests, progress)

    def loglikelihood(self, requests: Sequence[Request], progress: Progress | None = None) -> list[float]:
        """Sum of log-probabilities of each continuation given its context."""
        rows = sorted(self._rows(requests), key=lambda r: -r.length)
        results = [0.0] * len(requests)
        done = 0
        for batch in self._batches(rows):
            for index, value in self._score_batch(batch):
                results[index] = value
            done += sum(len(r.continuations) for r in batch)
            if progress is not None:
                progress(done, len(requests))
        return results

    def _batches(self, rows: list[_Row]) -> list[list[_Row]]:
        batches: list[list[_Row]] = []
        for row in rows:  # longest first, so a batch's padded size is its first row's length
            if batches and (len(batches[-1]) + 1) * batches[-1][0].length <= self.batch_tokens:
                batches[-1].append(row)
            else:
                batches.append([row])
        return batches

    def _layout(self, batch: list[_Row]) -> tuple[Any, ...]:
        """Input ids, positions, 4-D mask, and for every scored token: (row, position, target, request)."""
        torch = self.torch
        width = batch[0].length
        ids = torch.full((len(batch), width), self.start_token, dtype=torch.long)
        positions = torch.zeros((len(batch), width), dtype=torch.long)
        allowed = torch.zeros((len(batch), width, width), dtype=torch.bool)
        targets: list[tuple[int, int, int, int]] = []
        for b, row in enumerate(batch):
            n = len(row.context)
            ids[b, :n] = torch.tensor(row.context)
            positions[b, :n] = torch.arange(n)
            allowed[b, :n, :n] = torch.tril(torch.ones(n, n, dtype=torch.bool))
            start = n
            for index, cont in row.continuations:
                m, end = len(cont), start + len(cont)
                ids[b, start:end] = torch.tensor(cont)
                positions[b, start:end] = torch.arange(n, n + m)
                allowed[b, start:end, :n] = True
                allowed[b, start:end, start:end] = torch.tril(torch.ones(m, m, dtype=torch.bool))
                # token t of the continuation is predicted at the position before it
                previous = [n - 1, *range(start, end - 1)]
                targets.extend((b, p, tok, index) for p, tok in zip(previous, cont, strict=True))
                start = end
            allowed[b, start:, :] = torch.eye(width, dtype=torch.bool)[start:]  # padding sees itself: no NaN
        return ids, positions, allowed, targets

    def _score_batch(self, batch: list[_Row]) -> list[tuple[int, float]]:
        torch = self.torch
        ids, positions, allowed, targets = self._layout(batch)
        dtype = self.model.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]
        with torch.inference_mode():
            hidden = self.model.base_model(
                input_ids=ids.to(self.device), position_ids=positions.to(self.device),
                attention_mask=mask.to(self.device), use_cache=False,
            ).last_hidden_state
            rows = torch.tensor([t[0] for t in targets], device=self.device)
            cols = torch.tensor([t[1] for t in targets], device=self.device)
            logits = self.model.get_output_embeddings()(hidden[rows, cols]).float()
            logprobs = torch.log_softmax(logits, dim=-1)
            picked = logprobs[torch.arange(len(targets), device=self.device), torch.tensor([t[2] for t in targets], device=self.device)]
        sums: dict[int, float] = {}
        for (_, _, _, index), value in zip(targets, picked.tolist(), strict=True):
            sums[index] = sums.get(index, 0.0) + value
        return list(sums.items())

    # ------------------------------------------------------------ generation

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 128, batch_size: int = 16) -> list[str]:
        """Greedy continuations of rendered prompts, batched with left padding (so every row's
        new tokens start at the same column); the text up to the first end-of-turn token."""
        torch = self.torch
        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        outputs: list[str] = []
        for start in range(0, len(prompts), batch_size):
            encoded = [tok.encode(p, add_special_tokens=False) for p in prompts[start:start + batch_size]]
            width = max(len(e) for e in encoded)
            ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=self.device)
            mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=self.device)
            with torch.inference_mode():
                out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                          do_sample=False, pad_token_id=pad)
            outputs.extend(tok.decode(row[width:], skip_special_tokens=True).strip() for row in out.tolist())
        return outputs

    # ------------------------------------------------------------ the reference

    def loglikelihood_one_at_a_time(self, requests: Sequence[Request], progress: Progress | None = None) -> list[float]:
        """The plain way: one forward pass per request over context + continuation, full logits.
        The reference the batched path must equal, and the benchmark's baseline."""
        torch = self.torch
        results = []
        for i, (context, continuation) in enumerate(requests):
            ctx, cont = self.encode(context, continuation)
            ids = torch.tensor([ctx + cont], device=self.device)
            with torch.inference_mode():
                logprobs = torch.log_softmax(self.model(input_ids=ids).logits[0].float(), dim=-1)
            predicted = logprobs[len(ctx) - 1:-1]
            results.append(float(predicted[torch.arange(len(cont)), torch.tensor(cont, device=self.device)].sum()))
            if progress is not None:
                progress(i + 1, len(requests))
        return results


class RewardEngine:
    """Rewards of (conversation, response) on a local reward model: a Hugging Face
    sequence-classification directory with one output, as training/recipes/reward.py (TRL's
    RewardTrainer) writes it.

        engine = RewardEngine("var/models/trained/my-rm")
        context = engine.render_chat([("user", "2+2?")])
        engine.score([(context, "4"), (context, "5")])   # [1.3, -0.8]

    A reward model scores a whole conversation, not a continuation of a rendered prompt, so its
    `render_chat` gives the conversation itself (JSON of the turns) and the request's text is the
    assistant's reply. Each request is tokenized as TRL tokenized the training pairs: the chat
    template over prompt turns + the reply (`apply_chat_template(..., tokenize=True)`), or, for a
    tokenizer without a template, role-prefixed text + the reply + EOS. Rows are sorted by length
    and batched up to a token budget, right-padded with the pad token, which the model uses to
    find each row's last token: the reward of a padded row is that of the row alone, up to float
    rounding (`score_one_at_a_time` is that reference). float32 on CPU, bfloat16 on CUDA.
    """

    def __init__(self, model_dir: str | Path, *, device: str = "auto", dtype: str = "auto", batch_tokens: int = 8192) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path, dtype = _prepare(self, model_dir, device, dtype, torch)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=getattr(torch, dtype))
        if self.model.config.num_labels != 1:
            raise EngineError(f"{path} has {self.model.config.num_labels} outputs: a reward model has one")
        self.model.to(self.device).eval()
        self.batch_tokens = batch_tokens
        self.name = path.name
        self.pad_id = self._pad_id(path)
        self.max_tokens = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)

    def _pad_id(self, path: Path) -> int:
        """The pad token the model looks for (TRL's trainer stored it in the config); else the
        tokenizer's pad or EOS, set on the config so batches of several rows can be pooled."""
        text_config = self.model.config.get_text_config()
        pad = text_config.pad_token_id
        if pad is None:
            tok = self.tokenizer
            pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
            if pad is None:
                raise EngineError(f"{path}: neither the model nor the tokenizer names a pad or EOS token to pad batches with")
            text_config.pad_token_id = self.model.config.pad_token_id = pad
        return int(pad)

    # ------------------------------------------------------------ tokenization

    def render_chat(self, turns: Sequence[Sequence[str]]) -> str:
        """The conversation before the reply, as JSON: `encode` renders it with the reply."""
        return json.dumps([{"role": role, "content": content} for role, content in turns], ensure_ascii=False)

    def encode(self, context: str, response: str, index: int = 0) -> list[int]:
        """Token ids of the conversation `context` (from `render_chat`) ending with `response`."""
        try:
            turns = json.loads(context)
        except ValueError:
            turns = None
        if not isinstance(turns, list) or not all(isinstance(t, dict) and {"role", "content"} <= set(t) for t in turns):
            raise EngineError(f"request {index}: a reward model scores conversations (render_chat's JSON), not plain text")
        messages = [*turns, {"role": "assistant", "content": response}]
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            encoded: Any = tok.apply_chat_template(messages, tokenize=True, return_dict=True)
            ids = list(encoded["input_ids"])
        else:
            text = "".join(f"{m['role']}: {m['content']}\n\n" for m in messages[:-1]) + f"assistant: {response}"
            ids = tok(text + (tok.eos_token or ""))["input_ids"]
        if self.max_tokens is not None and len(ids) > self.max_tokens:
            raise EngineError(f"request {index}: {len(ids)} tokens, more than the model's {self.max_tokens} positions")
        return ids

    # ------------------------------------------------------------ batched scoring

    def score(self, requests: Sequence[Request], progress: Progress | None = None) -> list[float]:
        """The reward of each (context, response)."""
        encoded = [self.encode(context, response, i) for i, (context, response) in enumerate(requests)]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        results = [0.0] * len(encoded)
        done = 0
        for batch in self._batches(order, encoded):
            for index, value in zip(batch, self._forward([encoded[i] for i in batch]), strict=True):
                results[index] = value
            done += len(batch)
            if progress is not None:
                progress(done, len(encoded))
        return results

    def _batches(self, order: list[int], encoded: list[list[int]]) -> list[list[int]]:
        batches: list[list[int]] = []
        for i in order:  # longest first, so a batch's padded width is its first row's length
            if batches and (len(batches[-1]) + 1) * len(encoded[batches[-1][0]]) <= self.batch_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _forward(self, rows: list[list[int]]) -> list[float]:
        torch = self.torch
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, row in enumerate(rows):
            ids[b, :len(row)] = torch.tensor(row)
            mask[b, :len(row)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
        return [float(v) for v in logits[:, 0].float().tolist()]

    def score_one_at_a_time(self, requests: Sequence[Request]) -> list[float]:
        """One unpadded forward pass per request: the reference the batched path must equal."""
        return [self._forward([self.encode(context, response, i)])[0] for i, (context, response) in enumerate(requests)]


def _prepare(engine: Any, model_dir: str | Path, device: str, dtype: str, torch: Any) -> tuple[Path, str]:
    """Check the model directory, set the engine's torch and device; the dtype ("auto": bf16 on CUDA, fp32 on CPU)."""
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise EngineError(f"{path} is not a model directory (no config.json)")
    engine.torch = torch
    engine.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if dtype == "auto":
        dtype = "bfloat16" if engine.device.startswith("cuda") else "float32"
    return path, dtype
