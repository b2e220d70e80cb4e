"""Make the review demo's model-made data with the real default model (SmolLM2-135M-Instruct).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python scripts/make_demo_review_data.py [--items 24] [--dry-run]

(`OMP_NUM_THREADS=1` only helps on a busy machine; on two shared cores it took 40 minutes.)

It needs the prepared default model (`manage.py prepare_default_model`) and writes, once, the
files `manage.py seed_demo` loads (it never runs a model on setup or on page load):

* `data/demo/review_items.jsonl`: single-turn prompts from the shipped hh-rlhf sample with three
  responses each: hh-rlhf's chosen (r1) and rejected (r2) answers and one answer sampled from
  SmolLM2 (r3, at most 64 tokens);
* `data/demo/review_personas.jsonl`: the persona panel: a twin of each simulated demo annotator
  of `data/demo/review_annotators.json` (consented fields only) and a small stratified panel;
* `data/demo/review_judgments.jsonl`: every persona's listwise ranking of every item, judged by
  SmolLM2 through the same engine and judging code a synthetic run uses (shown order, raw output
  and parsed ranking kept; a failed parse is kept too, with its reason).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
HH_FILE = ROOT / "data" / "hh-rlhf" / "harmless-base_test.jsonl.gz"
ITEM_SEED, GENERATION_SEED, JUDGE_SEED, PANEL_SEED = 2026, 17, 11, 7

logger = logging.getLogger("make_demo_review_data")


def _setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import django

    django.setup()


def pick_items(n: int) -> list[dict]:
    """`n` short single-turn hh-rlhf items, a seeded sample (short, so a 135M model can read them)."""
    from annotation.importers import load_hh_rlhf_sample

    usable = [
        p for p in load_hh_rlhf_sample(HH_FILE)
        if not p.context and 15 <= len(p.prompt) <= 160
        and all(20 <= len(r.text) <= 350 for r in p.responses)
    ]
    random.Random(ITEM_SEED).shuffle(usable)
    return [
        {"id": f"hh-{p.external_id}", "prompt": p.prompt, "responses": p.response_dicts(),
         "metadata": p.metadata}
        for p in usable[:n]
    ]


def add_model_answers(backend: object, items: list[dict]) -> None:
    from synthetic.backends.base import GenerationParams
    from synthetic.judging import generate_candidates

    params = GenerationParams(max_new_tokens=64, temperature=0.8, top_p=0.95)
    sets = generate_candidates(backend, [i["prompt"] for i in items], 1, params, GENERATION_SEED)  # type: ignore[arg-type]
    for item, cands in zip(items, sets, strict=True):
        for j, cand in enumerate(cands.responses, start=3):
            item["responses"].append({"id": f"r{j}", "text": cand.text.strip() or "(no answer)",
                                      "source": cand.source})


def personas() -> list:
    from synthetic.personas import PanelSpec, generate_panel, twin_persona

    spec = json.loads((DEMO / "review_annotators.json").read_text(encoding="utf-8"))
    twins = [
        # The placeholder id is replaced by the project's own twin id when seed_demo loads it.
        twin_persona(a["username"], a["profile"], a["consented"], persona_id=f"twin-of-{a['username']}")
        for a in spec["annotators"]
    ]
    values = {"sex": ["female", "male"], "age_band": ["18-29", "30-44", "45-59", "60-79"],
              "region": ["Europe", "North America", "Asia"],
              "political_leaning": ["left", "centre", "right"],
              "education": ["secondary school", "university degree"]}
    panel = generate_panel(PanelSpec(size=4, seed=PANEL_SEED, values=values, id_prefix="demo-panel"))
    return twins + panel


def judge(backend: object, items: list[dict], panel: list, out: Path | None) -> int:
    """Judge item by item; each item's judgments are appended to ``out`` as soon as they are
    made, so an interrupted run keeps every finished item (run again to redo the file)."""
    from synthetic.judging import JudgeItem, JudgeOptions, Method, ResponseText, iter_judgments

    judge_items = [
        JudgeItem(i["id"], i["prompt"], tuple(ResponseText(r["id"], r["text"]) for r in i["responses"]))
        for i in items
    ]
    options = JudgeOptions(method=Method.LISTWISE, allow_ties=False, temperature=0.0, chunk_size=len(panel))
    done = 0
    for chunk in iter_judgments(backend, judge_items, panel, options, JUDGE_SEED):  # type: ignore[arg-type]
        rows = [
            {"item": r.item_id, "persona": r.persona_id, "model": r.model, "method": str(r.method),
             "prompt_version": r.prompt_version, "seed": r.seed, "shown_order": r.shown_order,
             "ranking": r.ranking, "raw_output": r.raw_output, "failure": r.failure}
            for r in chunk
        ]
        if out is not None:
            with out.open("a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        done += len(rows)
        logger.info("%d judgments done", done)
    return done


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    logger.info("wrote %s (%d rows)", path.relative_to(ROOT), len(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--dry-run", action="store_true", help="judge, but write nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    _setup()
    from django.conf import settings

    from synthetic.backends import load_backend
    from synthetic.backends.base import BackendConfig

    started = time.monotonic()
    items, panel = pick_items(args.items), personas()
    model_dir = Path(settings.MODELS_DIR) / "smollm2-135m-instruct"
    backend = load_backend(BackendConfig(engine="transformers", model=str(model_dir), device="cpu", batch_size=16))
    out = None if args.dry_run else DEMO / "review_judgments.jsonl"
    try:
        add_model_answers(backend, items)
        if out is not None:
            _write(DEMO / "review_items.jsonl", items)
            _write(DEMO / "review_personas.jsonl", [p.to_dict() for p in panel])
            out.write_text("", encoding="utf-8")
        judge(backend, items, panel, out)
    finally:
        backend.close()
    logger.info("done in %.0f s", time.monotonic() - started)


if __name__ == "__main__":
    main()
