"""Snapshots: contract files, determinism, immutability, the RLHF baseline, group threshold, diff."""
from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import load_from_disk

import socialchoice
from aggregation.models import Snapshot
from aggregation.services import AggregationError
from aggregation.snapshots import SnapshotInputs, create_snapshot, delete_snapshot, diff_snapshots
from annotation.models import Ranking

from .factories import World, add_human, add_persona, make_project, random_world, rank_all

pytestmark = pytest.mark.django_db


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != "manifest.json"}


def test_contract_files_and_pairs_match_the_rule(owner):
    world = random_world(owner, seed=21, n_items=8, ks=(3, 4))
    snap, created = create_snapshot(project=world.project, user=owner,
                                    inputs=SnapshotInputs(rule="borda", pair_strategy="all", seed=3))
    assert created and len(snap.snapshot_id) == 16 and snap.path.name == snap.snapshot_id
    for name in ("pairs.jsonl", "rankings.jsonl", "baseline_pairs.jsonl", "manifest.json",
                 "datasets/pairs/dataset_dict.json", "datasets/baseline_pairs/train/dataset_info.json"):
        assert (snap.path / name).exists(), name
    manifest = json.loads((snap.path / "manifest.json").read_text())
    assert manifest["snapshot"] == snap.snapshot_id and manifest["inputs"]["rule"] == "borda"
    assert manifest["source_rankings_hash"] == snap.source_hash and manifest["code_version"]
    rankings = {r["item"]: r for r in _lines(snap.path / "rankings.jsonl")}
    pairs = _lines(snap.path / "pairs.jsonl")
    assert {p["split"] for p in pairs} <= {"train", "validation", "test"}
    for item in world.items:
        orders = list(Ranking.objects.filter(item=item, is_current=True).order_by("pk").values_list("order", flat=True))
        alts = [r["id"] for r in rankings[item.external_id]["responses"]]
        direct = socialchoice.aggregate(socialchoice.Profile.from_weak_orders(alts, orders), "borda")
        assert rankings[item.external_id]["ranking"] == direct.order
        mine = [p for p in pairs if p["item"] == item.external_id]
        expected = socialchoice.pairs.preference_pairs(direct, strategy="all")
        assert [(p["chosen_id"], p["rejected_id"]) for p in mine] == [(q.chosen, q.rejected) for q in expected]
        for p, q in zip(mine, expected, strict=True):
            assert p["margin"] == pytest.approx(q.margin)
            voters = [o for o in orders]
            prof = socialchoice.Profile.from_weak_orders(alts, voters)
            a, b = alts.index(q.chosen), alts.index(q.rejected)
            assert p["vote_share"] == pytest.approx(float(np.mean(prof.ranks[:, a] < prof.ranks[:, b])))
            assert p["prompt"] == [{"role": "user", "content": item.prompt}]
            assert p["chosen"][0]["role"] == "assistant" and p["snapshot"] == snap.snapshot_id
    ds = load_from_disk(str(snap.path / "datasets" / "pairs"))
    assert sum(len(ds[s]) for s in ds) == len(pairs)
    assert set(ds["train"].column_names) >= {"prompt", "chosen", "rejected", "margin"}


def test_same_inputs_same_id_and_files_are_frozen(owner):
    world = random_world(owner, seed=22, n_items=5)
    inputs = SnapshotInputs(rule="schulze", seed=1)
    first, created = create_snapshot(project=world.project, user=owner, inputs=inputs)
    again, created_again = create_snapshot(project=world.project, user=owner, inputs=inputs)
    assert created and not created_again and again.pk == first.pk
    before = _tree(first.path)
    manifest = (first.path / "manifest.json").read_bytes()
    # Determinism across a fresh write: delete, create again, same id and same bytes.
    delete_snapshot(first)
    rebuilt, _ = create_snapshot(project=world.project, user=owner, inputs=inputs)
    assert rebuilt.snapshot_id == first.snapshot_id and _tree(rebuilt.path) == before
    # A revision: the snapshot on disk stays as it was; creating again gives a new id.
    # Every ranking of one item is revised to its reverse, so the collective of that item flips.
    ranking = Ranking.objects.filter(item__project=world.project, is_current=True).first()
    for old in Ranking.objects.filter(item=ranking.item, is_current=True):
        Ranking.objects.filter(pk=old.pk).update(is_current=False)
        Ranking.objects.create(item=old.item, rater=old.rater, order=list(reversed(old.order)),
                               shown_order=old.shown_order, version=2)
    assert _tree(rebuilt.path) == before
    assert Snapshot.objects.get(pk=rebuilt.pk).source_hash == rebuilt.source_hash
    newer, created = create_snapshot(project=world.project, user=owner, inputs=inputs)
    assert created and newer.snapshot_id != rebuilt.snapshot_id
    assert json.loads(manifest)["inputs"] == json.loads((newer.path / "manifest.json").read_bytes())["inputs"]
    assert all(not p.stat().st_mode & 0o222 for p in rebuilt.path.rglob("*") if p.is_file())
    diff = diff_snapshots(rebuilt, newer)
    assert diff["items_added"]["count"] == 0
    changed = diff["pairs_flipped"]["count"] + diff["margins_changed"]["count"] + diff["pairs_added"]["count"]
    assert changed > 0
    assert {e["item"] for e in diff["margins_changed"]["examples"] + diff["pairs_flipped"]["examples"]} <= {
        ranking.item.external_id}


def test_other_inputs_give_other_ids(owner):
    world = random_world(owner, seed=23, n_items=4)
    ids = {create_snapshot(project=world.project, user=owner, inputs=i)[0].snapshot_id for i in (
        SnapshotInputs(rule="borda"), SnapshotInputs(rule="copeland"), SnapshotInputs(rule="borda", seed=2),
        SnapshotInputs(rule="borda", pair_strategy="adjacent"))}
    assert len(ids) == 4


def test_rlhf_baseline_is_every_raters_own_pairs(owner):
    world = random_world(owner, seed=24, n_items=4, ks=(3, 4))
    snap, _ = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="borda"))
    baseline = _lines(snap.path / "baseline_pairs.jsonl")
    splits = {r["item"]: r["split"] for r in _lines(snap.path / "rankings.jsonl")}
    expected = set()
    for (item_pk, rater_pk), order in world.orders.items():
        item = next(i for i in world.items if i.pk == item_pk)
        key = next(r.key for r in world.humans + world.synthetic if r.pk == rater_pk)
        alts = list(item.responses.values_list("response_id", flat=True))
        prof = socialchoice.Profile.from_weak_orders(alts, [order])
        for p in socialchoice.pairs.per_rater_pairs(prof):
            expected.add((item.external_id, key, p.chosen, p.rejected))
    got = {(b["item"], b["rater"], b["chosen_id"], b["rejected_id"]) for b in baseline}
    assert got == expected and len(baseline) == len(expected)
    assert all(b["split"] == splits[b["item"]] for b in baseline)
    assert {b["human_share"] for b in baseline if b["rater"].startswith("persona")} == {0.0}


ODD_TEXTS = ['say "hi" \\ back\\', "line\nnext\ttab", "emoji \U0001f600 é 中文", "</script>&amp;", "",
             "\u2028\x01\x1f", 'a", "b']


def test_lines_are_the_contract_json_of_odd_texts(owner):
    """Quotes, backslashes, control characters, non-ASCII and earlier turns: each JSONL line is
    exactly the contract's JSON (", " and ": " separators, raw UTF-8) of what it holds."""
    world = random_world(owner, seed=25, n_items=7, ks=(2, 3, 4), partial=True)
    prompts, texts = {}, {}
    for n, item in enumerate(world.items):
        item.prompt = ODD_TEXTS[n % len(ODD_TEXTS)]
        item.context = [{"role": "system", "content": ODD_TEXTS[(n + 1) % len(ODD_TEXTS)]}] if n % 2 else []
        item.save()
        prompts[item.external_id] = [*item.context, {"role": "user", "content": item.prompt}]
        for r in item.responses.all():
            r.text = ODD_TEXTS[(n + r.position + 2) % len(ODD_TEXTS)] + r.response_id
            r.save()
            texts[(item.external_id, r.response_id)] = r.text
    snap, _ = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="borda"))
    for name in ("pairs.jsonl", "baseline_pairs.jsonl", "rankings.jsonl"):
        lines = (snap.path / name).read_bytes().decode().split("\n")  # U+2028 is no line break
        assert lines.pop() == ""
        assert lines
        for line in lines:
            row = json.loads(line)
            assert json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) == line
            assert row["prompt"] == prompts[row["item"]]
            if "chosen" in row:
                assert row["chosen"] == [{"role": "assistant", "content": texts[(row["item"], row["chosen_id"])]}]
                assert row["rejected"] == [{"role": "assistant",
                                            "content": texts[(row["item"], row["rejected_id"])]}]
            else:
                assert row["responses"] == [{"id": r, "content": texts[(row["item"], r)]}
                                            for r in sorted(row["scores"])]


def _group_world(owner, n_de: int, n_fr: int) -> World:
    project, items = make_project(owner, name="Groups", n_items=12)
    w = World(project, owner, items)
    w.humans = [add_human(project, f"de{n}", {"country": "DE"}) for n in range(n_de)]
    w.humans += [add_human(project, f"fr{n}", {"country": "FR"}) for n in range(n_fr)]
    w.synthetic = [add_persona(f"p{n}", {"political_leaning": "left"}) for n in range(6)]
    rank_all(w, w.humans + w.synthetic, seed=9)
    return w


def test_a_group_needs_enough_members_on_each_item(owner, settings):
    settings.AGGREGATE_MIN_GROUP = 5
    world = _group_world(owner, n_de=5, n_fr=0)
    split = {"train": 0.0, "validation": 0.0, "test": 1.0}
    # One German annotator's ranking of the first item goes: that item has 4 German rankings left.
    Ranking.objects.filter(item=world.items[0], rater=world.humans[0]).update(is_current=False)
    snap, _ = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="borda", split=split))
    items = {ln["item"] for ln in _lines(snap.path / "groups" / "country_DE.jsonl")}
    assert world.items[0].external_id not in items and world.items[1].external_id in items


def test_groups_below_the_threshold_are_left_out(owner, settings):
    settings.AGGREGATE_MIN_GROUP = 5
    world = _group_world(owner, n_de=5, n_fr=4)
    snap, _ = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(
        rule="borda", split={"train": 0.5, "validation": 0.0, "test": 0.5}))
    files = sorted(p.name for p in (snap.path / "groups").iterdir())
    assert files == ["country_DE.jsonl"]
    lines = _lines(snap.path / "groups" / "country_DE.jsonl")
    tests = {r["item"] for r in _lines(snap.path / "rankings.jsonl") if r["split"] == "test"}
    assert lines and {ln["item"] for ln in lines} <= tests and all(ln["split"] == "test" for ln in lines)
    assert all(ln["group"] == {"country": "DE"} and ln["human_share"] == 1.0 for ln in lines)
    assert json.loads((snap.path / "manifest.json").read_text())["group_min_size"] == 5
    ds = load_from_disk(str(snap.path / "datasets" / "groups" / "country_DE"))
    assert len(ds["test"]) == len(lines) and ds["test"][0]["group"] == {"country": "DE"}
    baseline = load_from_disk(str(snap.path / "datasets" / "baseline_pairs"))
    assert sum(len(baseline[s]) for s in baseline) == len(_lines(snap.path / "baseline_pairs.jsonl"))
    assert baseline["train"][0]["rater"].startswith(("user:", "persona:"))


def test_refusals(owner):
    world = random_world(owner, seed=25, n_items=3)
    for bad, needle in ((SnapshotInputs(rule="nope"), "unknown rule"),
                        (SnapshotInputs(pair_strategy="best"), "pair strategy"),
                        (SnapshotInputs(split={"train": 0.5, "validation": 0.1, "test": 0.1}), "sum to 0.7")):
        with pytest.raises(AggregationError, match=needle):
            create_snapshot(project=world.project, user=owner, inputs=bad)
    assert not Snapshot.objects.exists()


def test_a_failed_write_fails_the_snapshot_and_leaves_nothing(owner, monkeypatch):
    """The files are made and written in a second thread: its error reaches the caller, after
    which no row and no directory (not even the temporary one) is left."""
    from aggregation import snapshot_files, snapshots
    from aggregation.models import snapshot_root

    world = random_world(owner, seed=26, n_items=7)
    monkeypatch.setattr(snapshots, "CHUNK_ITEMS", 2)
    calls = []

    def fail_on_the_third_chunk(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args)

    real = snapshot_files.ranking_lines
    monkeypatch.setattr(snapshot_files, "ranking_lines", fail_on_the_third_chunk)
    with pytest.raises(OSError, match="disk full"):
        create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="borda"))
    assert not Snapshot.objects.exists() and not any(snapshot_root().iterdir())
    monkeypatch.setattr(snapshot_files, "ranking_lines", real)
    snap, created = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="borda"))
    assert created and len(_lines(snap.path / "rankings.jsonl")) == 7


def test_a_ranking_revised_while_writing_starts_the_snapshot_again(owner, monkeypatch):
    """The rankings are hashed again after the last one is read (while the files are still
    being written): a change in between makes a new attempt, whose files hold the change."""
    from aggregation import snapshot_files, snapshots
    from aggregation.ballots import source_digest

    world = random_world(owner, seed=27, n_items=5)
    monkeypatch.setattr(snapshots, "CHUNK_ITEMS", 2)
    total = Ranking.objects.filter(item__project=world.project, is_current=True).count()
    real, calls = snapshot_files.load_chunk, []

    def revise_during_the_first_attempt(*args):
        calls.append(1)
        if len(calls) == 3:  # the last chunk of the first attempt: one ranking is withdrawn
            ranking = Ranking.objects.filter(item__project=world.project, is_current=True).first()
            Ranking.objects.filter(pk=ranking.pk).update(is_current=False)
        return real(*args)

    monkeypatch.setattr(snapshot_files, "load_chunk", revise_during_the_first_attempt)
    inputs = SnapshotInputs(rule="borda")
    snap, created = create_snapshot(project=world.project, user=owner, inputs=inputs)
    assert created and len(calls) == 6 and snap.source_hash == source_digest(world.project)
    assert snap.manifest["counts"]["rankings"] == total - 1


@pytest.mark.parametrize("strategy", ["all", "best_vs_rest", "best_vs_worst", "adjacent"])
def test_every_pair_strategy_matches_socialchoice(owner, strategy):
    world = random_world(owner, seed=26, n_items=6, ks=(3, 4, 5))
    snap, _ = create_snapshot(project=world.project, user=owner,
                              inputs=SnapshotInputs(rule="copeland", pair_strategy=strategy))
    pairs = _lines(snap.path / "pairs.jsonl")
    for item in world.items:
        orders = list(Ranking.objects.filter(item=item, is_current=True).order_by("pk").values_list("order", flat=True))
        alts = list(item.responses.values_list("response_id", flat=True))
        direct = socialchoice.aggregate(socialchoice.Profile.from_weak_orders(alts, orders), "copeland")
        expected = socialchoice.pairs.preference_pairs(direct, strategy=strategy)
        mine = [p for p in pairs if p["item"] == item.external_id]
        assert [(p["chosen_id"], p["rejected_id"]) for p in mine] == [(q.chosen, q.rejected) for q in expected]
        assert [p["margin"] for p in mine] == pytest.approx([q.margin for q in expected])
