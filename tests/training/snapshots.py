"""Small snapshot directories that follow ARCHITECTURE.md's snapshot contract, written by tests."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

GROUPS = ({"country": "DE"}, {"country": "KE"})
WORDS = ("kind", "clear", "short", "long", "rude", "vague", "honest", "helpful")


def _prompt(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Question {n}: how do I rank answers?"}]


def _answer(n: int, k: int) -> str:
    return f"Answer {k}: a {WORDS[(n + k) % len(WORDS)]} reply."


def snapshot_id_for(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def write_snapshot(root: Path, *, items: int = 8, responses: int = 3, seed: str = "test",
                   files: tuple[str, ...] = ("pairs", "rankings", "baseline_pairs", "groups", "manifest")) -> Path:
    """Write `root / <snapshot id>` with `items` items of `responses` responses; return the dir.

    Items 0..items-3 are train, then one validation, one test. Rankings have one tie (when there
    are at least 3 responses); baseline pairs come from two raters in different groups.
    """
    sid = snapshot_id_for(f"{seed}-{items}-{responses}")
    out = Path(root) / sid
    (out / "groups").mkdir(parents=True, exist_ok=True)
    pairs, rankings, baseline = [], [], []
    for n in range(items):
        split = "train" if n < items - 2 else ("validation" if n == items - 2 else "test")
        ids = [f"r{k}" for k in range(responses)]
        texts = {rid: _answer(n, k) for k, rid in enumerate(ids)}
        ranking = [[ids[0]], ids[1:3], *([[x] for x in ids[3:]])] if responses >= 3 else [[i] for i in ids]
        rankings.append({
            "prompt": _prompt(n), "responses": [{"id": i, "content": texts[i]} for i in ids], "ranking": ranking,
            "scores": {i: float(responses - k) for k, i in enumerate(ids)}, "item": f"item-{n}", "split": split,
            "snapshot": sid,
        })
        for better, worse in ((ids[0], ids[-1]), (ids[0], ids[1])):
            pair = _pair(n, texts[better], texts[worse], split, sid)
            pairs.append({**pair, "margin": 1.0 + 0.1 * n, "vote_share": 0.5 + 0.05 * (n % 10), "human_share": 0.5})
            for r, group in enumerate(GROUPS):
                flip = r == 1 and n % 2 == 0
                b, w = (texts[worse], texts[better]) if flip else (texts[better], texts[worse])
                baseline.append({**_pair(n, b, w, split, sid), "margin": 1.0, "vote_share": 1.0, "human_share": 1.0,
                                 "rater": f"rater-{r}", "group": group})
    if "pairs" in files:
        _write(out / "pairs.jsonl", pairs)
    if "rankings" in files:
        _write(out / "rankings.jsonl", rankings)
    if "baseline_pairs" in files:
        _write(out / "baseline_pairs.jsonl", baseline)
    if "groups" in files:
        for group in GROUPS:
            rows = [r for r in baseline if r["group"] == group and r["split"] == "test"]
            _write(out / "groups" / f"country={group['country']}.jsonl", rows)
    if "manifest" in files:
        manifest = {"id": sid, "pool": {"humans": 1.0}, "rule": "borda", "pair_strategy": "best_vs_rest",
                    "seed": 0, "counts": {"pairs": len(pairs), "rankings": len(rankings)}}
        (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _pair(n: int, chosen: str, rejected: str, split: str, sid: str) -> dict[str, Any]:
    return {"prompt": _prompt(n), "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "item": f"item-{n}", "split": split,
            "snapshot": sid}


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
