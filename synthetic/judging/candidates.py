"""Candidate responses: K sampled answers per prompt from one engine (for generation runs)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from synthetic.backends.base import Backend, GenerationParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    id: str
    text: str
    source: str
    finish_reason: str


@dataclass(frozen=True)
class CandidateSet:
    prompt: str
    responses: list[Candidate]


def generate_candidates(
    backend: Backend, prompts: Sequence[str], k: int, params: GenerationParams, seed: int
) -> list[CandidateSet]:
    """K responses per prompt (ids r1..rK). Candidate j of every prompt comes from one large
    engine call seeded with `seed + j`, so candidates differ even where an engine's sampling
    depends only on the seed and the conversation."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if k > 1 and params.temperature <= 0:
        logger.warning("greedy decoding gives %d identical candidates per prompt", k)
    conversations = [[{"role": "user", "content": p}] for p in prompts]
    columns = [backend.generate(conversations, replace(params, seed=seed + j)) for j in range(k)]
    return [
        CandidateSet(
            prompt=prompt,
            responses=[
                Candidate(f"r{j + 1}", column[i].text, backend.model_label, column[i].finish_reason)
                for j, column in enumerate(columns)
            ],
        )
        for i, prompt in enumerate(prompts)
    ]
