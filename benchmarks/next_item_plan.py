"""EXPLAIN ANALYZE of the next-item statement on PostgreSQL, with 50 and with 200 annotators
holding leases on the items at the front of the queue (target 3, 20,000 items).

    .venv/bin/python benchmarks/next_item_plan.py [--database-url postgres://...]

Prints, for each number of annotators, the plan of loop_sql.next_candidate (the walk over the
item_next_open index, which skips fully leased items) and of loop_sql.lapsed_candidate (the
row-by-row walk that every request used before, counting live leases per item; now only the
fallback when the first finds nothing), with the rows each visited and its execution time.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/rlchf_plan")
    parser.add_argument("--items", type=int, default=20000)
    args = parser.parse_args()
    os.environ.update({"DATABASE_URL": args.database_url, "DJANGO_SETTINGS_MODULE": "config.settings"})
    import psycopg

    base, name = args.database_url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from annotation import loop_sql as sql
    from annotation.models import Assignment, Item, Membership, Project, Rater
    from annotation.services import create_project

    call_command("migrate", verbosity=0)
    users = get_user_model()
    for annotators in (50, 200):
        owner = users.objects.create_user(f"owner{annotators}")
        project = create_project(owner=owner, name=f"plan {annotators}", overlap_target=3, status=Project.Status.ACTIVE)
        items = Item.objects.bulk_create(Item(project=project, external_id=f"i{n}", prompt="p") for n in range(args.items))
        people = users.objects.bulk_create(users(username=f"p{annotators}-{n}") for n in range(annotators + 1))
        Membership.objects.bulk_create(Membership(project=project, user=u) for u in people)
        raters = Rater.objects.bulk_create(Rater(kind=Rater.Kind.HUMAN, user=u, key=f"user:{u.pk}") for u in people)
        expires = timezone.now() + timedelta(hours=1)
        Assignment.objects.bulk_create(Assignment(item=items[n // 3], rater=r, shown_order=[], expires_at=expires)
                                       for n, r in enumerate(raters[:-1]))
        Item.objects.filter(pk__in=[i.pk for i in items[: (annotators + 2) // 3]]).update(lease_count=3)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            for label, statement in (("next_candidate (counted walk, now)", sql.next_candidate),
                                     ("lapsed_candidate (row-by-row walk, before; now the fallback)", sql.lapsed_candidate)):
                query, params = statement(project.pk, 3, raters[-1].pk, timezone.now(), [])
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                print(f"== {annotators} annotators holding leases: {label}")
                print(re.sub(r"\n\s*Buffers:[^\n]*", "", plan))
                print()


if __name__ == "__main__":
    main()
