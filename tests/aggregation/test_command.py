"""manage.py snapshot create|list|show|diff|delete."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from aggregation.models import Snapshot

from .factories import random_world

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("snapshot", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_list_show_diff_delete(owner, var_dir):
    world = random_world(owner, seed=41, n_items=4)
    p = str(world.project.public_id)
    sid, path = _run("create", "--project", p, "--rule", "borda", "--seed", "3").split()
    snap = Snapshot.objects.get(snapshot_id=sid)
    assert path == str(snap.path) and path.startswith(str(var_dir / "snapshots"))
    assert snap.pool_name == "all" and snap.seed == 3 and snap.pair_strategy == "all"
    assert _run("create", "--project", p, "--rule", "borda", "--seed", "3").split()[0] == sid
    other = _run("create", "--project", p, "--rule", "copeland", "--pairs", "adjacent").split()[0]
    listed = _run("list", "--project", p)
    assert sid in listed and other in listed
    assert f"path: {path}" in _run("show", sid)
    diff = json.loads(_run("diff", sid, other))
    assert diff["from"] == sid and diff["to"] == other
    _run("delete", other)
    assert not Snapshot.objects.filter(snapshot_id=other).exists()


def test_errors_name_the_cause(owner):
    world = random_world(owner, seed=42, n_items=2)
    p = str(world.project.public_id)
    with pytest.raises(CommandError, match="no project"):
        _run("create", "--project", "nope", "--rule", "borda")
    with pytest.raises(CommandError, match="no pool 'ghost'"):
        _run("create", "--project", p, "--pool", "ghost", "--rule", "borda")
    with pytest.raises(CommandError, match="--split"):
        _run("create", "--project", p, "--rule", "borda", "--split", "0.5,0.5")
    with pytest.raises(CommandError, match="no snapshot"):
        _run("show", "0123456789abcdef")
    assert not Snapshot.objects.exists()
