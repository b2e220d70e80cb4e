"""PostgreSQL functions for the annotation loop's fast path (annotation.fast_submit).

`annotation_lease` leases a rater's next item as services.next_assignment does once the rater is
known to hold no live lease (loop_sql's candidate walks, the overlap check with the item locked,
lapsed leases closed, the lease inserted and counted), and `annotation_submit` stores a rater's
first ranking of an item (loop_sql.store_first_ranking) and then leases the next one. Each runs
as one statement: one round trip instead of five to seven, and every statement inside still
reads what the ones before it wrote. SQLite never serves the fast path, so it gets nothing.
"""
from __future__ import annotations

from django.db import migrations

LEASE = """
CREATE OR REPLACE FUNCTION annotation_lease(
    p_project bigint, p_target integer, p_rater bigint, p_now timestamptz, p_public_id uuid,
    p_expires timestamptz)
RETURNS TABLE (prompt text, context jsonb, shown text[], texts text[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_passed bigint[] := '{}';
    v_item bigint;
    v_ranked integer;
    v_recount boolean;
    v_live bigint;
    v_lapsed bigint;
BEGIN
    FOR attempt IN 1..50 LOOP  -- services.MAX_CANDIDATE_TRIES
        -- loop_sql.next_candidate
        SELECT i.id, i.prompt, i.context, i.ranking_count INTO v_item, prompt, context, v_ranked
          FROM annotation_item i
         WHERE i.project_id = p_project AND i.ranking_count + i.lease_count < p_target
           AND NOT EXISTS (SELECT 1 FROM annotation_assignment s WHERE s.item_id = i.id
                              AND s.rater_id = p_rater AND s.status = 'skipped')
           AND NOT EXISTS (SELECT 1 FROM annotation_ranking r
                            WHERE r.item_id = i.id AND r.rater_id = p_rater)
           AND i.id <> ALL (v_passed)
         ORDER BY i.ranking_count + i.lease_count, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED;
        v_recount := NOT FOUND;
        IF v_recount THEN
            -- loop_sql.lapsed_candidate
            SELECT i.id, i.prompt, i.context, i.ranking_count INTO v_item, prompt, context, v_ranked
              FROM annotation_item i
             WHERE i.project_id = p_project AND i.ranking_count < p_target
               AND i.ranking_count + i.lease_count >= p_target
               AND i.ranking_count + (SELECT COUNT(*) FROM annotation_assignment a
                                       WHERE a.item_id = i.id AND a.status = 'leased'
                                         AND a.expires_at > p_now) < p_target
               AND NOT EXISTS (SELECT 1 FROM annotation_assignment s WHERE s.item_id = i.id
                                  AND s.rater_id = p_rater AND s.status = 'skipped')
               AND NOT EXISTS (SELECT 1 FROM annotation_ranking r
                                WHERE r.item_id = i.id AND r.rater_id = p_rater)
               AND i.id <> ALL (v_passed)
             ORDER BY i.ranking_count, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED;
            IF NOT FOUND THEN
                RETURN;
            END IF;
        END IF;
        -- loop_sql.lease_state_and_responses, with the item locked: authoritative
        SELECT COALESCE(SUM(CASE WHEN a.expires_at > p_now THEN 1 ELSE 0 END), 0),
               COALESCE(SUM(CASE WHEN a.expires_at > p_now THEN 0 ELSE 1 END), 0)
          INTO v_live, v_lapsed
          FROM annotation_assignment a WHERE a.item_id = v_item AND a.status = 'leased';
        IF v_ranked + v_live >= p_target THEN
            v_passed := v_passed || v_item;
            CONTINUE;
        END IF;
        IF v_lapsed > 0 OR v_recount THEN
            -- loop_sql.close_lapsed_leases and recount_leases
            UPDATE annotation_assignment SET status = 'expired', finished_at = p_now
             WHERE item_id = v_item AND status = 'leased' AND expires_at <= p_now;
            UPDATE annotation_item
               SET lease_count = (SELECT COUNT(*) FROM annotation_assignment a
                                   WHERE a.item_id = v_item AND a.status = 'leased')
             WHERE id = v_item;
        END IF;
        -- The responses in a random order, each beside its text.
        SELECT array_agg(x.response_id ORDER BY x.k), array_agg(x.text ORDER BY x.k)
          INTO shown, texts
          FROM (SELECT response_id, text, random() AS k FROM annotation_response
                 WHERE item_id = v_item) x;
        -- loop_sql.insert_lease and count_lease
        INSERT INTO annotation_assignment (public_id, item_id, rater_id, status, shown_order,
                                           leased_at, expires_at)
        VALUES (p_public_id, v_item, p_rater, 'leased', to_jsonb(shown), p_now, p_expires);
        UPDATE annotation_item SET lease_count = lease_count + 1 WHERE id = v_item;
        RETURN NEXT;
        RETURN;
    END LOOP;
    RETURN;
END
$$;
"""

SUBMIT = """
CREATE OR REPLACE FUNCTION annotation_submit(
    p_item bigint, p_rater bigint, p_assignment bigint, p_order jsonb, p_shown jsonb,
    p_partial boolean, p_rationale text, p_flags jsonb, p_seconds double precision,
    p_submission uuid, p_now timestamptz, p_project bigint, p_target integer,
    p_public_id uuid, p_expires timestamptz)
RETURNS TABLE (ranking_id bigint, prompt text, context jsonb, shown text[], texts text[])
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- loop_sql.lock_item; then what the caller read before is read again under the lock: a
    -- ranking of the item by this rater, or under this submission id (a twin of this request
    -- committed meanwhile), or another live lease of theirs in the project (a second tab). Either
    -- way nothing is written and no row comes back: the request is Django's to answer.
    PERFORM 1 FROM annotation_item WHERE id = p_item FOR UPDATE;
    IF EXISTS (SELECT 1 FROM annotation_ranking k
                WHERE (k.item_id = p_item AND k.rater_id = p_rater AND k.is_current)
                   OR k.submission_id = p_submission)
       OR EXISTS (SELECT 1 FROM annotation_assignment o JOIN annotation_item oi ON oi.id = o.item_id
                   WHERE o.rater_id = p_rater AND o.status = 'leased' AND o.expires_at > p_now
                     AND oi.project_id = p_project AND o.id <> p_assignment) THEN
        RETURN;
    END IF;
    -- loop_sql.store_first_ranking
    WITH counted AS (
        UPDATE annotation_item SET ranking_count = ranking_count + 1, lease_count = lease_count
               - (SELECT COUNT(*) FROM annotation_assignment
                   WHERE id = p_assignment AND status = 'leased')
         WHERE id = p_item),
    closed AS (
        UPDATE annotation_assignment SET status = 'submitted', finished_at = p_now
         WHERE id = p_assignment)
    INSERT INTO annotation_ranking (item_id, rater_id, assignment_id, "order", shown_order,
                                    is_partial, rationale, flags, seconds, submission_id, version,
                                    is_current, created_at)
    VALUES (p_item, p_rater, p_assignment, p_order, p_shown, p_partial, p_rationale, p_flags,
            p_seconds, p_submission, 1, TRUE, p_now)
    RETURNING id INTO ranking_id;
    SELECT l.prompt, l.context, l.shown, l.texts INTO prompt, context, shown, texts
      FROM annotation_lease(p_project, p_target, p_rater, p_now, p_public_id, p_expires) l;
    RETURN NEXT;
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS annotation_submit(bigint, bigint, bigint, jsonb, jsonb, boolean, text,
    jsonb, double precision, uuid, timestamptz, bigint, integer, uuid, timestamptz);
DROP FUNCTION IF EXISTS annotation_lease(bigint, integer, bigint, timestamptz, uuid, timestamptz);
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LEASE)
        schema_editor.execute(SUBMIT)


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0004_item_lease_count'),
    ]

    operations = [
        migrations.RunPython(create_functions, drop_functions),
    ]
