"""A deterministic fake engine for tests of the code around engines (runs, views, exports).

Answers depend only on the conversation text (a SHA-256 of it), never on call order or batch
size, so a resumed run reproduces the same judgments. `options`:
- `invalid_every`: every n-th distinct conversation (by hash) gets an unparseable ranking,
  to exercise failure records;
- `prefer_first`: rankings put the first label on top (a maximally position-biased rater);
- `copy_order`: rankings are the labels in shown order (a rater that reads nothing).
"""

from __future__ import annotations

import hashlib
import json
import math
import random

from synthetic.backends.base import (
    Backend,
    BackendConfig,
    Conversation,
    GenerationOutput,
    GenerationParams,
    RankingSpec,
)
from synthetic.backends.ranking_grammar import format_ranking


def conversation_seed(conversation: Conversation, salt: str = "") -> int:
    """A stable integer from the conversation's text."""
    text = json.dumps(conversation, sort_keys=True) + salt
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class FakeBackend(Backend):
    engine = "fake"

    @classmethod
    def config_problems(cls, config: BackendConfig) -> list[str]:
        every = config.options.get("invalid_every", 0)
        return [] if isinstance(every, int) and every >= 0 else ["invalid_every must be >= 0."]

    def generate(
        self, conversations: list[Conversation], params: GenerationParams
    ) -> list[GenerationOutput]:
        outputs = []
        for conversation in conversations:
            seed = conversation_seed(conversation, str(params.seed))
            text = f"Fake answer {seed % 10_000:04d}."
            outputs.append(GenerationOutput(text=text, raw=text, num_tokens=4))
        return outputs

    def score(
        self, conversations: list[Conversation], options: list[str]
    ) -> list[dict[str, float]]:
        results = []
        for conversation in conversations:
            weights = [1 + conversation_seed(conversation, o) % 1000 for o in options]
            total = sum(weights)
            results.append({o: math.log(w / total) for o, w in zip(options, weights, strict=True)})
        return results

    def rank(
        self, conversations: list[Conversation], spec: RankingSpec, params: GenerationParams
    ) -> list[GenerationOutput]:
        return [self._rank_one(c, spec) for c in conversations]

    def _rank_one(self, conversation: Conversation, spec: RankingSpec) -> GenerationOutput:
        seed = conversation_seed(conversation)
        every = int(self.config.options.get("invalid_every", 0))
        if every and seed % every == 0:
            return GenerationOutput(text="I cannot decide.", raw="I cannot decide.")
        rng = random.Random(seed)
        labels = list(spec.labels)
        rng.shuffle(labels)
        if self.config.options.get("copy_order"):
            return GenerationOutput(text=format_ranking([[x] for x in spec.labels]), raw=" > ".join(spec.labels))
        if self.config.options.get("prefer_first"):
            labels.remove(spec.labels[0])
            labels.insert(0, spec.labels[0])
        groups: list[list[str]] = []
        for label in labels:
            if groups and spec.allow_ties and rng.random() < 0.25:
                groups[-1].append(label)
            else:
                groups.append([label])
        text = format_ranking(groups)
        reasoning = "Fake reasoning." if spec.reasoning else None
        return GenerationOutput(text=text, raw=text, reasoning=reasoning, num_tokens=len(labels))
