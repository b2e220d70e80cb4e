"""Synthetic-rater throughput: our listwise constrained method vs the seed project's method.

    .venv/bin/python benchmarks/synthetic_throughput.py [--quick] [--model-dir DIR]

Same engine (transformers, CPU), same model (the embedded SmolLM2-135M-Instruct, prepared on
first use), K = 4 responses per item:

1. ours: one listwise judgment per (persona, item), constrained decoding (valid by construction);
2. seed-style: one free-text generation per persona per PAIR of responses (6 pairs for K = 4),
   up to 1024 new tokens, "A"/"B" read with a regex; a judgment is a complete valid ranking only
   when all its pairs parse. This is slow, so it runs on a bounded number of judgments;
3. floor: the engine's bare forward pass over the same judge prompts as (1), no generation.

It reports complete valid rankings per second, the share of judgments with a valid ranking,
and the ratios (targets: ours >= 5x seed-style, 100 % valid, within 2x of the floor).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synthetic.backends import BackendConfig, GenerationParams, load_backend  # noqa: E402
from synthetic.backends.base import Backend  # noqa: E402
from synthetic.judging import JudgeItem, JudgeOptions, ResponseText, judge_batch  # noqa: E402
from synthetic.judging.listwise import listwise_conversation  # noqa: E402
from synthetic.judging.order import shown_order  # noqa: E402
from synthetic.judging.pairwise import copeland_weak_order, preference_matrix  # noqa: E402
from synthetic.judging.prompts import load_template  # noqa: E402
from synthetic.model_store import prepare_default_model  # noqa: E402
from synthetic.personas import PanelSpec, Persona, generate_panel  # noqa: E402

PROMPTS = {
    "How do I keep basil alive indoors?": [
        "Put it on a sunny windowsill, water when the top of the soil is dry, and pinch off "
        "flower buds so it keeps growing leaves.",
        "Basil is a plant.",
        "Give it six hours of light, a pot with drainage holes, and avoid cold drafts. Harvest "
        "from the top to make it bushier.",
        "Water it every hour and keep it in a dark cupboard so the leaves stay soft.",
    ],
    "Explain inflation to a ten-year-old.": [
        "Inflation means prices go up over time, so the same pocket money buys fewer sweets.",
        "It is the rate of change of the consumer price index relative to a base period.",
        "Imagine everyone suddenly has more money but there are the same number of toys: shops "
        "raise prices, and that is inflation.",
        "Inflation is when balloons get bigger.",
    ],
    "Is it safe to eat raw cookie dough?": [
        "Yes, always, it is perfectly safe.",
        "Raw flour and raw eggs can carry bacteria such as E. coli and Salmonella, so it is "
        "safer to use heat-treated flour and pasteurised eggs.",
        "Not really; bake it first.",
        "Store-bought edible cookie dough is made to be eaten raw; homemade dough carries a small "
        "risk from the flour and eggs.",
    ],
    "Write a polite way to decline a meeting.": [
        "No.",
        "Thank you for the invitation. Unfortunately I cannot attend, but please share the notes "
        "and I will follow up.",
        "I am unable to make it this time; could we find another slot next week?",
        "Meetings are a waste of time and I will not come.",
    ],
    "What should I pack for a day hike?": [
        "Water, snacks, a map, sunscreen, a rain layer and a charged phone.",
        "Nothing, just go.",
        "At least two litres of water, food, a first-aid kit, navigation, extra layers and a "
        "headlamp in case you are out late.",
        "A tent, a stove and a week of food.",
    ],
    "Summarise why sleep matters.": [
        "Sleep restores the body, consolidates memory and regulates mood and appetite.",
        "Sleep is overrated; successful people sleep four hours.",
        "Adults need about seven to nine hours; too little raises the risk of accidents, illness "
        "and poor concentration.",
        "Because you get tired.",
    ],
}

SEED_PROMPT = (
    "{persona}\n\nHere is a prompt and two responses.\n\nPrompt: {prompt}\n\nResponse A: {a}\n\n"
    "Response B: {b}\n\nWhich response do you prefer, A or B? Explain your reasoning, then state "
    "your choice."
)
SEED_ANSWER = re.compile(r"\b(?:Response\s+)?([AB])\b")


@dataclass
class Result:
    name: str
    judgments: int
    valid: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.valid / self.seconds if self.seconds else 0.0

    @property
    def judgment_rate(self) -> float:
        return self.judgments / self.seconds if self.seconds else 0.0

    @property
    def valid_share(self) -> float:
        return self.valid / self.judgments if self.judgments else 0.0


def make_items(n: int) -> list[JudgeItem]:
    items = []
    for i, (prompt, answers) in enumerate(itertools.islice(PROMPTS.items(), n)):
        responses = tuple(ResponseText(f"r{j + 1}", text) for j, text in enumerate(answers))
        items.append(JudgeItem(f"item{i}", prompt, responses))
    return items


def run_ours(backend: Backend, items: list[JudgeItem], personas: list[Persona]) -> Result:
    options = JudgeOptions(chunk_size=len(items) * len(personas))
    start = time.perf_counter()
    records = judge_batch(backend, items, personas, options, seed=0)
    seconds = time.perf_counter() - start
    return Result("ours: listwise constrained", len(records), sum(r.ok for r in records), seconds)


def run_floor(backend: Backend, items: list[JudgeItem], personas: list[Persona]) -> Result:
    template, options = load_template("listwise_v1"), JudgeOptions()
    convs = [
        listwise_conversation(
            template, item, shown_order(item, p.id, 0, None), p.description, options
        )
        for item in items
        for p in personas
    ]
    start = time.perf_counter()
    backend.score(convs, ["A"])  # one forward pass over each prompt, nothing generated
    seconds = time.perf_counter() - start
    return Result("floor: bare forward pass", len(convs), len(convs), seconds)


def seed_answer(text: str) -> str | None:
    """The seed project's parse: the last "A" or "B" standing alone in the text."""
    found = SEED_ANSWER.findall(text)
    return found[-1] if found else None


def run_seed_style(
    backend: Backend, items: list[JudgeItem], personas: list[Persona], judgments: int
) -> Result:
    jobs = list(itertools.product(items, personas))[:judgments]
    requests = []
    for item, persona in jobs:
        texts = {r.id: r.text for r in item.responses}
        for a, b in itertools.combinations(item.response_ids, 2):
            content = SEED_PROMPT.format(
                persona=persona.description, prompt=item.prompt, a=texts[a], b=texts[b]
            )
            requests.append((item, persona, a, b, [{"role": "user", "content": content}]))
    start = time.perf_counter()
    outputs = backend.generate([r[4] for r in requests], GenerationParams(max_new_tokens=1024))
    seconds = time.perf_counter() - start
    valid = 0
    for (item, _persona), group in itertools.groupby(
        zip(requests, outputs, strict=True), key=lambda x: (x[0][0], x[0][1])
    ):
        shown = []
        for (_, _, a, b, _), out in group:
            answer = seed_answer(out.text)
            if answer is None:
                break
            shown.append((a, b, 1.0 if answer == "A" else 0.0))
        else:
            copeland_weak_order(item.response_ids, preference_matrix(shown), 0.0)
            valid += 1
    name = f"seed-style: free text per pair ({len(requests)} generations)"
    return Result(name, len(jobs), valid, seconds)


def report(results: list[Result]) -> str:
    header = (
        f"{'method':54} {'judgments':>9} {'valid':>6} {'seconds':>8} {'valid/s':>8} {'judg/s':>8}"
    )
    lines = [header]
    for r in results:
        lines.append(
            f"{r.name:54} {r.judgments:9d} {r.valid_share:6.0%} {r.seconds:8.1f} "
            f"{r.rate:8.4f} {r.judgment_rate:8.4f}"
        )
    ours, seed, floor = results
    # Where the seed style produced no valid ranking, compare against its judgment rate: a
    # bound that is generous to it (as if every judgment had parsed).
    seed_rate = seed.rate or seed.judgment_rate
    lines.append(
        f"ours / seed-style: {ours.rate / seed_rate:.1f}x valid rankings per second "
        f"(target >= 5x{'; seed-style judgments/s used, none of its rankings were valid' if not seed.rate else ''})"
    )
    lines.append(
        f"floor / ours: {floor.rate / ours.rate:.2f}x slower than the bare forward pass "
        f"(target <= 2x)"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (minutes on 2 cores)")
    parser.add_argument("--model-dir", type=Path, default=REPO / "var" / "models" / "smollm2")
    parser.add_argument("--personas", type=int, default=None)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--seed-judgments", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    n_personas = args.personas or (2 if args.quick else 8)
    n_items = args.items or (2 if args.quick else 4)
    seed_judgments = args.seed_judgments or (1 if args.quick else 2)

    model_dir = prepare_default_model(args.model_dir)
    config = BackendConfig(
        engine="transformers", model=str(model_dir), device="cpu", batch_size=args.batch_size
    )
    backend = load_backend(config)
    items, personas = make_items(n_items), generate_panel(PanelSpec(size=n_personas, seed=0))
    _say(
        f"model {config.label}, K=4, {n_personas} personas x {n_items} items, "
        f"batch size {args.batch_size}, torch threads {_threads()}"
    )
    # Best of `--repeat` runs for the fast methods (the first also warms up kernels for these
    # shapes); the seed style runs once, it is slow and far off anyway.
    ours = min((run_ours(backend, items, personas) for _ in range(args.repeat)), key=_secs)
    floor = min((run_floor(backend, items, personas) for _ in range(args.repeat)), key=_secs)
    _say(f"done: ours {ours.seconds:.1f} s, floor {floor.seconds:.1f} s (best of {args.repeat})")
    seed = run_seed_style(backend, items, personas, seed_judgments)
    results = [ours, seed, floor]
    _say(report(results))
    return 0


def _secs(result: Result) -> float:
    return result.seconds


def _say(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
