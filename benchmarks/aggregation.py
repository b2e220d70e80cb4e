"""Benchmark: collective rankings and snapshots from a PostgreSQL project, against a plain ORM loop.

Run (PostgreSQL, a database of its own; it is dropped and rebuilt unless --reuse finds it filled):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlchf_agg_bench \\
        .venv/bin/python benchmarks/aggregation.py [--items 10000] [--raters 20] [--reuse]

The project: ``--items`` items x 4 responses, every item ranked by ``--raters`` raters (half
humans with consented demographics, half personas of two models), random weak orders.

Timed, each the best of ``--repeat`` runs in this process:

* ``collective <rule>``: `services.collective` for the whole project: pool `all` resolved, every
  current ranking read from the database into arrays, the rule, the scores and orders decoded;
* ``agreement summary``: Kendall's W and mean tau-b for all / humans / synthetic;
* ``ORM loop``: the plain way: every current ranking read through the ORM (``values_list`` of
  item and order), one ``Profile.from_weak_orders`` and one ``aggregate`` per item (same rule);
  the ratio column is ORM loop / ours;
* ``snapshot``: `snapshots.create_snapshot` (rule borda, all pairs, all files and `datasets`
  directories) in a fresh child process, which reports its wall time and peak RSS.

Targets (issue 11): any rule < 2 s; a snapshot < 10 s with peak memory < 1 GB.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
logger = logging.getLogger("bench.aggregation")
PROJECT_NAME = "aggregation-bench"
RESPONSES = 4


def prepare_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)


def existing_project(items: int, raters: int) -> object | None:
    from annotation.models import Project, Ranking

    project = Project.objects.filter(name=PROJECT_NAME).first()
    if project and Ranking.objects.filter(item__project=project).count() == items * raters:
        return project
    return None


def seed(items: int, raters: int) -> object:
    """The benchmark project (bulk inserts; the annotation loop is benchmarked elsewhere)."""
    from django.contrib.auth import get_user_model

    from annotation.models import AnnotatorProfile, Item, Project, Ranking, Rater, Response
    from annotation.services import create_project

    rng = random.Random(0)
    user_model = get_user_model()
    owner = user_model.objects.create_user("bench-owner")
    project = create_project(owner=owner, name=PROJECT_NAME, status=Project.Status.ACTIVE)
    made = Item.objects.bulk_create(
        (Item(project=project, external_id=f"i{n:05d}", prompt=f"Prompt number {n}?") for n in range(items)),
        batch_size=5000,
    )
    Response.objects.bulk_create(
        (Response(item=i, response_id=f"r{k}", text=f"Answer {k} to {i.external_id}.", position=k)
         for i in made for k in range(RESPONSES)), batch_size=10000,
    )
    n_humans = raters // 2
    users = user_model.objects.bulk_create(user_model(username=f"h{n}") for n in range(n_humans))
    AnnotatorProfile.objects.bulk_create(
        AnnotatorProfile(user=u, age_band=rng.choice(["18-29", "30-49", "50+"]), gender=rng.choice(["f", "m"]),
                         country=rng.choice(["DE", "FR"]), consented_fields=["age_band", "gender", "country"])
        for u in users
    )
    people = Rater.objects.bulk_create(Rater(kind=Rater.Kind.HUMAN, user=u, key=f"user:{u.pk}") for u in users)
    personas = Rater.objects.bulk_create(
        Rater(kind=Rater.Kind.SYNTHETIC, model=f"bench:model-{n % 2}", key=f"persona:p{n}@bench:model-{n % 2}",
              persona={"id": f"p{n}", "description": "d", "attributes": {"political_leaning": rng.choice(["l", "r"])}})
        for n in range(raters - n_humans)
    )
    ids = [f"r{k}" for k in range(RESPONSES)]
    batch: list[Ranking] = []
    for item in made:
        for rater in people + personas:
            order = ids[:]
            rng.shuffle(order)
            groups = [[order[0]], [order[1], order[2]], [order[3]]] if rng.random() < 0.2 else [[r] for r in order]
            batch.append(Ranking(item=item, rater=rater, order=groups, shown_order=ids))
        if len(batch) >= 20000:
            Ranking.objects.bulk_create(batch)
            batch = []
    Ranking.objects.bulk_create(batch)
    Item.objects.filter(project=project).update(ranking_count=raters)
    return project


def best(fn: object, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times), out


def orm_loop(project: object, rule: str) -> int:
    """The plain way: rankings through the ORM, one Profile and one aggregate per item."""
    import socialchoice
    from annotation.models import Ranking, Response

    alts: dict[int, list[str]] = {}
    for item_id, rid in Response.objects.filter(item__project=project).order_by("item_id", "position") \
            .values_list("item_id", "response_id"):
        alts.setdefault(item_id, []).append(rid)
    orders: dict[int, list[list[list[str]]]] = {}
    for item_id, order in Ranking.objects.filter(item__project=project, is_current=True).order_by("pk") \
            .values_list("item_id", "order"):
        orders.setdefault(item_id, []).append(order)
    n = 0
    for item_id, ballots in orders.items():
        socialchoice.aggregate(socialchoice.Profile.from_weak_orders(alts[item_id], ballots), rule)
        n += 1
    return n


def child_snapshot(seed_value: int) -> None:
    """Run in a fresh process: one snapshot, then print its time and this process's peak RSS."""
    import django

    django.setup()
    from aggregation.models import Snapshot
    from aggregation.snapshots import SnapshotInputs, create_snapshot, delete_snapshot
    from annotation.models import Project

    project = Project.objects.get(name=PROJECT_NAME)
    inputs = SnapshotInputs(rule="borda", seed=seed_value)
    for old in Snapshot.objects.filter(project=project, seed=seed_value):
        delete_snapshot(old)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    snap, _ = create_snapshot(project=project, user=None, inputs=inputs)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = sum(p.stat().st_size for p in snap.path.rglob("*") if p.is_file())
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak / 1024, "rss_before_mb": rss_before / 1024,
                      "bytes": size, "counts": snap.manifest["counts"], "id": snap.snapshot_id}))
    delete_snapshot(snap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rules", default="", help="comma-separated; default every registered rule")
    parser.add_argument("--reuse", action="store_true", help="keep the database if it holds the project")
    parser.add_argument("--child-snapshot", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.child_snapshot is not None:
        child_snapshot(args.child_snapshot)
        return
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database of this benchmark's own")
    import django

    if not args.reuse:
        prepare_database(url)
    django.setup()
    import socialchoice
    from aggregation.services import agreement_summary, collective

    project = existing_project(args.items, args.raters) if args.reuse else None
    if project is None:
        if args.reuse:
            prepare_database(url)
        t0 = time.perf_counter()
        project = seed(args.items, args.raters)
        logger.info("seeded %d items x %d raters in %.1f s", args.items, args.raters, time.perf_counter() - t0)
    rules = args.rules.split(",") if args.rules else [r["name"] for r in socialchoice.describe()]
    logger.info("%-28s %10s %10s %8s %s", "what", "ours s", "ORM s", "ratio", "target")
    for rule in rules:
        ours, result = best(lambda rule=rule: collective(project, rule=rule), args.repeat)
        orm, n = best(lambda rule=rule: orm_loop(project, rule), 1)
        assert n == len(result.ballots.items)
        logger.info("%-28s %10.3f %10.3f %7.1fx %s", f"collective {rule}", ours, orm, orm / ours,
                    "< 2 s: " + ("holds" if ours < 2 else "MISSED"))
    agreement, _ = best(lambda: agreement_summary(project), args.repeat)
    logger.info("%-28s %10.3f", "agreement summary", agreement)
    for attempt in range(2):
        out = subprocess.run([sys.executable, __file__, "--child-snapshot", str(1000 + attempt)], cwd=ROOT,
                             capture_output=True, text=True, check=True, env=os.environ.copy())
        report = json.loads(out.stdout.strip().splitlines()[-1])
        logger.info("%-28s %10.3f peak RSS %.0f MB (process start %.0f MB), %.0f MB written, %s",
                    "snapshot (child process)", report["seconds"], report["peak_rss_mb"], report["rss_before_mb"],
                    report["bytes"] / 2**20, report["counts"])
        logger.info("   targets: < 10 s %s; < 1 GB %s", "holds" if report["seconds"] < 10 else "MISSED",
                    "holds" if report["peak_rss_mb"] < 1024 else "MISSED")


if __name__ == "__main__":
    main()
