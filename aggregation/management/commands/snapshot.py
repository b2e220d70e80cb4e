"""Snapshots from the command line (an operator's tool: no per-user permission check).

    manage.py snapshot create --project PUBLIC_ID [--pool NAME] --rule NAME [--pairs STRATEGY] [--seed N]
                              [--params JSON] [--tie-policy keep|random] [--tie-seed N] [--split 0.8,0.1,0.1]
    manage.py snapshot list [--project PUBLIC_ID]
    manage.py snapshot show SNAPSHOT_ID
    manage.py snapshot diff SNAPSHOT_ID OTHER_ID
    manage.py snapshot delete SNAPSHOT_ID

`create` prints the snapshot id and its directory (the same id again when it exists already).
"""
from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

import socialchoice
from aggregation import snapshots
from aggregation.models import Snapshot
from aggregation.pools import ALL_POOL, PoolError
from aggregation.services import AggregationError
from annotation.models import Project
from socialchoice.pairs import STRATEGIES


def find_project(public_id: str) -> Project:
    try:
        return Project.objects.get(public_id=public_id)
    except (Project.DoesNotExist, ValidationError):
        raise CommandError(f"--project: no project with public id {public_id!r}") from None


def find_snapshot(snapshot_id: str) -> Snapshot:
    snap = Snapshot.objects.filter(snapshot_id=snapshot_id).select_related("project").first()
    if snap is None:
        raise CommandError(f"no snapshot {snapshot_id!r} (manage.py snapshot list shows them)")
    return snap


def parse_split(text: str) -> dict[str, float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise CommandError(f"--split: {text!r} is not three numbers like 0.8,0.1,0.1") from None
    if len(values) != 3:
        raise CommandError(f"--split: {text!r} needs three fractions (train, validation, test)")
    return dict(zip(("train", "validation", "test"), values, strict=True))


class Command(BaseCommand):
    help = "Create, list, show, diff and delete snapshots (frozen preference datasets)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="freeze a snapshot; prints its id and path")
        create.add_argument("--project", required=True, help="the project's public id")
        create.add_argument("--pool", default=ALL_POOL, help="a saved pool's name (default: all)")
        create.add_argument("--rule", required=True, choices=sorted(r["name"] for r in socialchoice.describe()))
        create.add_argument("--pairs", default="all", choices=STRATEGIES, help="pair strategy (default: all)")
        create.add_argument("--seed", type=int, default=0, help="seed of the item split (default 0)")
        create.add_argument("--params", default="{}", help="rule parameters as a JSON object")
        create.add_argument("--tie-policy", default="keep", choices=["keep", "random"])
        create.add_argument("--tie-seed", type=int, default=0)
        create.add_argument("--split", default="0.8,0.1,0.1", help="train,validation,test fractions")
        listing = sub.add_parser("list", help="snapshots, newest first")
        listing.add_argument("--project", help="only this project's")
        show = sub.add_parser("show", help="a snapshot's manifest")
        show.add_argument("snapshot_id")
        diff = sub.add_parser("diff", help="what changed between two snapshots")
        diff.add_argument("snapshot_id")
        diff.add_argument("other_id")
        delete = sub.add_parser("delete", help="delete a snapshot and its files")
        delete.add_argument("snapshot_id")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        project = find_project(options["project"])
        try:
            params = json.loads(options["params"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params: not JSON ({exc})") from None
        inputs = snapshots.SnapshotInputs(
            pool=options["pool"], rule=options["rule"], params=params, tie_policy=options["tie_policy"],
            tie_seed=options["tie_seed"], pair_strategy=options["pairs"], seed=options["seed"],
            split=parse_split(options["split"]),
        )
        try:
            snap, created = snapshots.create_snapshot(project=project, user=None, inputs=inputs)
        except PoolError as exc:
            raise CommandError(f"--pool {options['pool']}: {exc}") from None
        except AggregationError as exc:
            raise CommandError(str(exc)) from None
        if not created:
            self.stderr.write("the same snapshot exists already")
        self.stdout.write(f"{snap.snapshot_id} {snap.path}")

    def _list(self, options: dict[str, Any]) -> None:
        rows = Snapshot.objects.select_related("project")
        if options["project"]:
            rows = rows.filter(project=find_project(options["project"]))
        for snap in rows:
            counts = snap.manifest.get("counts", {})
            self.stdout.write(
                f"{snap.snapshot_id}  {snap.created_at:%Y-%m-%d %H:%M}  {snap.project.public_id}  pool={snap.pool_name}"
                f"  rule={snap.rule}  pairs={snap.pair_strategy}  seed={snap.seed}  items={counts.get('items', 0)}"
                f"  pairs={counts.get('pairs', 0)}"
            )

    def _show(self, options: dict[str, Any]) -> None:
        snap = find_snapshot(options["snapshot_id"])
        self.stdout.write(f"path: {snap.path}")
        self.stdout.write(json.dumps(snap.manifest | {"split": {"counts": snap.manifest["split"]["counts"]}},
                                     indent=2, sort_keys=True))

    def _diff(self, options: dict[str, Any]) -> None:
        a, b = find_snapshot(options["snapshot_id"]), find_snapshot(options["other_id"])
        self.stdout.write(json.dumps(snapshots.diff_snapshots(a, b), indent=2))

    def _delete(self, options: dict[str, Any]) -> None:
        snap = find_snapshot(options["snapshot_id"])
        snapshots.delete_snapshot(snap)
        self.stdout.write(f"deleted {options['snapshot_id']}")
