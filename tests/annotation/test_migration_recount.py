"""Migration 0003 recounts every item's rankings by rater kind: until then synthetic rankings used
up the human overlap target."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("annotation", "0002_lookup_indexes")]
AFTER = [("annotation", "0003_human_ranking_count_and_synthetic_target")]


def test_backfill_counts_humans_and_synthetic_raters_apart(django_user_model):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Project, Item, Rater, Ranking = (apps.get_model("annotation", n) for n in ("Project", "Item", "Rater", "Ranking"))
    user = apps.get_model("auth", "User").objects.create(username="old-annotator")
    project = Project.objects.create(name="old", owner_id=user.pk)
    item, _ = (Item.objects.create(project=project, external_id=x, prompt="?") for x in ("a", "b"))
    human = Rater.objects.create(kind="human", user_id=user.pk, key="user:1")
    bots = [Rater.objects.create(kind="synthetic", key=f"persona:{n}@m", persona={"id": n}) for n in range(3)]
    Ranking.objects.create(item=item, rater=human, order=[["r1"]], shown_order=["r1"], is_current=False)
    Ranking.objects.create(item=item, rater=human, order=[["r1"]], shown_order=["r1"], version=2)
    for bot in bots:
        Ranking.objects.create(item=item, rater=bot, order=[["r1"]], shown_order=["r1"])
    Item.objects.filter(pk=item.pk).update(ranking_count=4)  # the old count: everyone's current rankings

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    counts = dict(apps.get_model("annotation", "Item").objects.values_list("external_id", "ranking_count"))
    synthetic = dict(apps.get_model("annotation", "Item").objects.values_list("external_id", "synthetic_count"))
    assert counts == {"a": 1, "b": 0} and synthetic == {"a": 3, "b": 0}
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
