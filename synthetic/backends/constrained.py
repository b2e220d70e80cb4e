"""Token-level constrained decoding of ranking answers for engines that expose logits.

`RankingConstraint` is pure Python: given the text each vocabulary token writes, it answers
"which token ids may come next after this answer prefix?" so that every finished answer is a
complete ranking (`ranking_grammar`). Any token whose text stays inside the grammar is allowed
(`" >"`, `" A"`, `"A"`, `">"` ...), so the model keeps its natural tokenisation. End-of-sequence
is allowed exactly when every label has been placed.

`ranking_logits_processor` wraps it as a transformers `LogitsProcessor` (torch imported there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synthetic.backends.ranking_grammar import PrefixState, is_complete, scan

GRAMMAR_CHARS = frozenset(" >=")


def candidate_tokens(token_texts: Sequence[str], alphabet: frozenset[str]) -> dict[int, str]:
    """Token id -> text for tokens whose (non-empty) text uses only `alphabet`."""
    return {i: s for i, s in enumerate(token_texts) if s and set(s) <= alphabet}


class RankingConstraint:
    """Allowed next tokens for ranking answers over `labels` (memoised per answer prefix)."""

    def __init__(
        self,
        token_texts: dict[int, str],
        labels: tuple[str, ...],
        allow_ties: bool,
        eos_token_ids: Sequence[int],
    ) -> None:
        alphabet = frozenset(labels) | GRAMMAR_CHARS
        self.tokens = {i: s for i, s in token_texts.items() if set(s) <= alphabet}
        self.labels = labels
        self.allow_ties = allow_ties
        self.eos_token_ids = list(eos_token_ids)
        self._cache: dict[str, list[int]] = {}

    def text_of(self, token_ids: Sequence[int]) -> str:
        """The answer text written by generated tokens (stops at end-of-sequence)."""
        parts = []
        for token_id in token_ids:
            if token_id in self.eos_token_ids:
                break
            parts.append(self.tokens.get(token_id, ""))
        return "".join(parts)

    def allowed(self, text: str) -> list[int]:
        """Token ids that may follow answer prefix `text`."""
        if text not in self._cache:
            self._cache[text] = self._compute_allowed(scan(text, self.labels, self.allow_ties))
        return self._cache[text]

    def _compute_allowed(self, state: PrefixState | None) -> list[int]:
        if state is None or is_complete(state, self.labels):
            return self.eos_token_ids
        allowed = [
            token_id
            for token_id, text in self.tokens.items()
            if scan(text, self.labels, self.allow_ties, state) is not None
        ]
        # A vocabulary without single-character tokens could strand us; ending then yields an
        # explicit parse failure instead of an engine error.
        return allowed or self.eos_token_ids

    def max_answer_tokens(self) -> int:
        """An upper bound on answer length in tokens (every character its own token), + EOS."""
        k = len(self.labels)
        return k + 3 * max(k - 1, 0) + 1


def allowed_after(constraint: RankingConstraint, generated: Sequence[int]) -> list[int]:
    """Allowed next tokens after a row's generated ids (finished rows may only end)."""
    if any(t in constraint.eos_token_ids for t in generated):
        return constraint.eos_token_ids
    return constraint.allowed(constraint.text_of(generated))


def ranking_logits_processor(
    constraint: RankingConstraint, prompt_length: int, first_step_mass: list[float] | None = None
) -> Any:
    """A transformers `LogitsProcessor` masking every token `constraint` forbids.

    `prompt_length` is the padded prompt length of the batch (left padding, so generated tokens
    of every row start there). `first_step_mass`, when given, receives per row the share of the
    first answer step's probability on allowed tokens (before masking).
    """
    import torch
    from transformers import LogitsProcessor

    class _RankingLogitsProcessor(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
            mask = torch.ones_like(scores, dtype=torch.bool)
            for row, ids in enumerate(input_ids[:, prompt_length:].tolist()):
                mask[row, allowed_after(constraint, ids)] = False
            if first_step_mass is not None and input_ids.shape[1] == prompt_length:
                probs = torch.softmax(scores.float(), dim=-1).masked_fill(mask, 0.0)
                first_step_mass.extend(probs.sum(dim=-1).tolist())
            return scores.masked_fill(mask, float("-inf"))

    return _RankingLogitsProcessor()
