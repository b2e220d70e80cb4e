"""Small snapshot directories that follow ARCHITECTURE.md's contract, written by tests."""
from __future__ import annotations

import json
from pathlib import Path


def pair(item: str, chosen: str, rejected: str, split: str = "test", **extra) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"Question {item}: which answer is better?"}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "margin": 1.0, "vote_share": 0.8, "human_share": 1.0, "item": item, "split": split, **extra,
    }


def write_snapshot(root: Path, snapshot_id: str, groups: dict[str, list[str]] | None = None) -> Path:
    """A snapshot with 2 train and 4 test pairs, and each group's test pairs (items listed)."""
    path = root / snapshot_id
    (path / "groups").mkdir(parents=True)
    texts = [("The quick brown fox jumps.", "Dog lazy the."), ("Response A is better.", "B"),
             ("Answer: A.", "Answer: B. Answer: B."), ("Rank the responses.", "worst")]
    rows = [pair(f"t{n}", "helpful answer", "no", split="train") for n in range(2)]
    rows += [pair(f"i{n}", c, r) for n, (c, r) in enumerate(texts)]
    (path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for group, items in (groups or {}).items():
        key, value = group.split("=")
        lines = [json.dumps({**r, "group": {key: value}}) for r in rows if r["item"] in items]
        (path / "groups" / f"{group}.jsonl").write_text("\n".join(lines) + "\n")
    (path / "manifest.json").write_text(json.dumps({"snapshot": snapshot_id}))
    return path
