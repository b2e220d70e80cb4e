"""The review pages under a chosen pool: the numbers are the pool's (equal to `aggregation.services`
on the same pool), the CSV exports follow the choice, per-group views keep the size threshold among
the pool's raters, another project's pool is a 404 and an unusable pool a clear message."""
from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

import socialchoice
from aggregation import review, services
from aggregation.models import Pool
from aggregation.pools import ALL_POOL, PoolSpec
from annotation.models import Membership, Ranking, Rater
from annotation.services import add_member
from socialchoice.agreement import rater_distances

from .factories import add_human, make_project
from .test_review_views import item_url, small_world, url

pytestmark = pytest.mark.django_db

RULES = ("borda", "copeland", "schulze", "ranked_pairs", "kemeny")


@pytest.fixture
def world(owner):
    return small_world(owner)


def _pool(world, name: str, **data) -> Pool:
    return services.save_pool(project=world.project, user=world.owner, data={"name": name, **data})


def _rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content[:300]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _weighted(world) -> Pool:
    """Personas count three times, one woman not at all, the rest once."""
    return _pool(world, "weighted", synthetic_weight=3.0, rater_weights={world.humans[1].key: 0.0})


def test_item_page_collectives_and_distances_equal_the_service_on_the_same_pool(client, world, owner):
    pools = [_pool(world, "humans", kinds="humans"), _weighted(world)]
    client.force_login(owner)
    changed = 0
    for pool in pools:
        spec = PoolSpec.from_pool(pool)
        expected = {rule: services.collective(world.project, pool=spec, rule=rule) for rule in RULES}
        everyone = {rule: services.collective(world.project, rule=rule) for rule in RULES}
        for i, item in enumerate(world.items):
            response = client.get(item_url(world, item) + f"?pool={pool.name}&rule=schulze")
            assert response.status_code == 200
            shown = {c["rule"]: c["order"] for c in response.context["collectives"]}
            for rule in RULES:
                assert shown[rule] == expected[rule].order(i), (pool.name, item.external_id, rule)
                changed += shown[rule] != everyone[rule].order(i)
            # The farthest raters: the pool's ballots and weights against its collective.
            ballots = expected["schulze"].ballots
            profile = ballots.profile(i)
            dist = rater_distances(profile, expected["schulze"].order(i)).distance
            farthest = response.context["farthest"]
            assert len(farthest) == min(5, len(dist))
            assert [f["distance"] for f in farthest] == pytest.approx(sorted(dist, reverse=True)[: len(farthest)])
            if pool.name == "weighted":
                assert "human1" not in {f["rater"] for f in farthest}  # weight 0: not a rater of this pool
                assert {f["weight"] for f in farthest} <= {1.0, 3.0}
    assert changed > 0  # the pool changes what the page shows


def test_item_page_marks_the_rankings_the_pool_does_not_count(client, world, owner):
    _pool(world, "humans", kinds="humans")
    client.force_login(owner)
    response = client.get(item_url(world) + "?pool=humans")
    rows = response.context["rows"]
    assert len(rows) == 16  # every ranking is listed ...
    assert [r["weight"] for r in rows if r["human"]] == [1.0] * 9
    assert [r["weight"] for r in rows if not r["human"]] == [None] * 7  # ... but personas do not count
    assert {k["name"]: k["raters"] for k in response.context["by_kind"]} == {"the pool": 9, "its humans": 9}
    assert "not counted" in response.content.decode()


def test_rule_matrix_csv_is_the_disagreement_of_the_services_collectives(client, world, owner):
    pool = _weighted(world)
    client.force_login(owner)
    rows = _rows(client.get(url(world, pool=pool.name, csv="rules")))
    spec = PoolSpec.from_pool(pool)
    levels = {}
    for rule in {r["rule_a"] for r in rows} | {r["rule_b"] for r in rows}:
        levels[rule] = services.collective(world.project, pool=spec, rule=rule).levels
    assert len(levels) >= 5
    for row in rows:
        top_a, top_b = review.top_groups(levels[row["rule_a"]]), review.top_groups(levels[row["rule_b"]])
        share = (top_a != top_b).any(axis=1).mean()
        assert float(row["share_of_items_differ"]) == pytest.approx(share, abs=1e-3), row


def test_agreement_is_computed_over_the_pools_raters(client, world, owner):
    _pool(world, "humans", kinds="humans")
    _pool(world, "left-personas", kinds="synthetic", persona_filters={"political_leaning": ["left"]})
    client.force_login(owner)
    by_label = {r["raters"]: r for r in _rows(client.get(url(world, pool="humans", csv="agreement")))}
    assert by_label["humans"]["n_raters"] == "9" and by_label["everyone"]["n_raters"] == "9"
    assert by_label["synthetic raters"]["n_raters"] == "0" and by_label["synthetic raters"]["alpha"] == ""
    everyone = {r["raters"]: r for r in _rows(client.get(url(world, csv="agreement")))}
    assert everyone["everyone"]["n_raters"] == "16"
    assert by_label["humans"]["alpha"] == everyone["humans"]["alpha"]  # the same people, the same alpha
    left = {r["raters"]: r for r in _rows(client.get(url(world, pool="left-personas", csv="agreement")))}
    assert left["synthetic raters"]["n_raters"] == "5" and left["everyone"]["n_raters"] == "5"
    assert left["synthetic raters"]["tau_b"] != everyone["synthetic raters"]["tau_b"]


def test_groups_below_the_threshold_among_the_pools_raters_are_hidden(client, world, owner):
    # Five women in the project; this pool leaves one of them out, so women are only four here.
    pool = _weighted(world)
    client.force_login(owner)
    html = client.get(url(world, pool=pool.name)).content.decode()
    assert "gender = woman" not in html and "political_leaning = left" in html
    for key in ("groups", "heatmap", "scorecard"):
        body = client.get(url(world, pool=pool.name, csv=key)).content.decode()
        assert "woman" not in body, key
    assert "gender = woman" in client.get(url(world)).content.decode()  # in `all` they are five


def test_position_bias_counts_only_the_pools_rankings(client, world, owner):
    _pool(world, "humans", kinds="humans")
    client.force_login(owner)
    sources = {r["source"]: r["rankings"] for r in _rows(client.get(url(world, pool="humans", csv="position")))}
    assert sources == {"humans": str(9 * 5)}


def test_pool_by_id_equals_pool_by_name_and_csv_names_the_selection(client, world, owner):
    pool = _pool(world, "humans", kinds="humans")
    client.force_login(owner)
    by_id = client.get(url(world, pool=str(pool.pk), rule="borda", csv="scorecard"))
    by_name = client.get(url(world, pool="humans", rule="borda", csv="scorecard"))
    assert by_id.content == by_name.content
    assert f"review-scorecard-pool{pool.pk}-borda-" in by_id["Content-Disposition"]
    assert "review-scorecard-all-borda-" in client.get(url(world, rule="borda", csv="scorecard"))["Content-Disposition"]
    html = client.get(url(world, pool=str(pool.pk))).content.decode()
    assert '<option value="humans" selected>' in html
    # Links keep the selection: CSV downloads and the contested items.
    assert f"?pool=humans&amp;rule={socialchoice.DEFAULT_RULE}&amp;csv=rules" in html


def test_htmx_switch_answers_the_body_for_the_chosen_pool(client, world, owner):
    _pool(world, "humans", kinds="humans")
    client.force_login(owner)
    html = client.get(url(world, pool="humans", rule="copeland"), HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="review-body">')
    assert '<option value="humans" selected>' in html and 'value="copeland" selected' in html
    assert "Pool <strong>humans</strong>" in html and "0 synthetic raters" in html
    assert "pool humans has no synthetic raters" in html and 'id="chart-scorecard"' not in html


def test_charts_leave_out_what_the_pool_has_none_of(client, world, owner):
    _pool(world, "humans", kinds="humans")
    client.force_login(owner)
    charts = client.get(url(world, pool="humans")).context["charts"]
    assert {tuple(t["x"]) for t in charts["agreement"].figure["data"]} == {("humans", "everyone")}
    assert [r[0] for r in charts["agreement"].rows][:3] == ["humans", "synthetic raters", "everyone"]  # CSV: all
    everyone = client.get(url(world)).context["charts"]
    assert {tuple(t["x"]) for t in everyone["agreement"].figure["data"]} == \
        {("humans", "synthetic raters", "everyone"), ("between",)}


def test_a_pool_of_another_project_is_404(client, world, owner):
    other, _ = make_project(owner, name="Other")
    stranger = add_human(other, "stranger", {"gender": "woman"})
    Ranking.objects.create(item=other.items.first(), rater=stranger, order=[["r0"], ["r1", "r2", "r3"]],
                           shown_order=["r0", "r1", "r2", "r3"])
    foreign = services.save_pool(project=other, user=owner, data={"name": "theirs", "kinds": "humans"})
    client.force_login(owner)
    for target in (url(world, pool=str(foreign.pk)), url(world, pool=str(foreign.pk), csv="rules"),
                   item_url(world) + f"?pool={foreign.pk}", url(world, pool="987654"),
                   url(world, pool="9" * 40)):
        assert client.get(target).status_code == 404, target


def test_an_unknown_pool_name_is_named_and_nothing_is_computed(client, world, owner):
    _pool(world, "humans", kinds="humans")
    client.force_login(owner)
    response = client.get(url(world, pool="nobody"))
    html = response.content.decode()
    assert response.status_code == 400
    assert "nobody" in html and "known: all, humans" in html and 'role="alert"' in html
    assert 'id="scorecard"' not in html and "No rankings yet" not in html
    response = client.get(url(world, pool="nobody", csv="rules"))
    assert response.status_code == 400 and "nobody" in response.content.decode()
    response = client.get(item_url(world) + "?pool=nobody")
    assert response.status_code == 400 and "nobody" in response.content.decode()
    assert "collectives" not in response.context


def test_a_pool_that_no_longer_resolves_says_why(client, world, owner):
    _pool(world, "humans", kinds="humans")
    Ranking.objects.filter(rater__kind=Rater.Kind.HUMAN).update(is_current=False)  # the humans' rankings are gone
    client.force_login(owner)
    for target in (url(world, pool="humans"), item_url(world) + "?pool=humans"):
        response = client.get(target)
        html = response.content.decode()
        assert response.status_code == 400 and "cannot be used now" in html and "no rater" in html, target
    assert client.get(url(world, pool="humans", csv="agreement")).status_code == 400
    assert client.get(url(world)).status_code == 200  # `all` still has the personas


def test_a_bad_rule_in_a_download_is_refused_not_replaced(client, world, owner):
    client.force_login(owner)
    response = client.get(url(world, rule="dictator", csv="rules"))
    assert response.status_code == 400 and "dictator" in response.content.decode()


def test_the_pool_does_not_open_the_page_to_others(client, world, django_user_model):
    pool = _pool(world, "humans", kinds="humans")
    outsider = django_user_model.objects.create_user("outsider", password="x")
    other_researcher = django_user_model.objects.create_user("other", password="x")
    elsewhere, _ = make_project(other_researcher, name="Theirs")
    add_member(project=elsewhere, user=other_researcher, role=Membership.Role.RESEARCHER)
    for user in (outsider, world.humans[0].user, other_researcher):
        client.force_login(user)
        for target in (url(world, pool="humans"), url(world, pool=str(pool.pk), csv="rules"),
                       item_url(world) + "?pool=humans"):
            assert client.get(target).status_code == 404, (user, target)


def test_cannot_judge_rankings_follow_the_pools_setting(client, world, owner):
    flagged = Ranking.objects.filter(rater=world.humans[2])
    flagged.update(flags=[Ranking.Flag.CANNOT_JUDGE.value])
    _pool(world, "careful", drop_cannot_judge=True)
    _pool(world, "everything", drop_cannot_judge=False)
    client.force_login(owner)
    careful = {r["raters"]: r for r in _rows(client.get(url(world, pool="careful", csv="agreement")))}
    everything = {r["raters"]: r for r in _rows(client.get(url(world, pool="everything", csv="agreement")))}
    assert careful["humans"]["n_raters"] == "8" and everything["humans"]["n_raters"] == "9"
    html = client.get(item_url(world) + "?pool=careful").content.decode()
    assert "left out by the pool" in html
    for name, dropped in (("careful", True), ("everything", False), (ALL_POOL, False)):
        spec = services.pool_spec(world.project, name)
        got = client.get(item_url(world) + f"?pool={name}&rule=borda").context["collectives"]
        assert [c["order"] for c in got if c["rule"] == "borda"] == \
            [services.collective(world.project, pool=spec, rule="borda").order(0)], name
        assert spec.drop_cannot_judge is dropped


def test_empty_project_with_a_pool_choice_still_says_nothing_to_review(client, owner):
    project, _ = make_project(owner, name="Empty")
    client.force_login(owner)
    response = client.get(reverse("aggregation-project-review", args=[project.public_id]) + "?pool=all&rule=borda")
    assert response.status_code == 200 and "No rankings yet" in response.content.decode()


def test_refused_downloads_are_plain_text_so_the_request_is_never_read_as_html(client, world, owner):
    client.force_login(owner)
    for params in ({"pool": "<script>x</script>", "csv": "rules"}, {"rule": "<b>x</b>", "csv": "rules"},
                   {"csv": "<img>"}):
        response = client.get(reverse("aggregation-project-review", args=[world.project.public_id]), params)
        assert response.status_code == 400 and response["Content-Type"].startswith("text/plain"), params


def test_the_selector_does_not_pretend_an_unknown_pool_is_all(client, world, owner):
    client.force_login(owner)
    html = client.get(url(world, pool="nobody")).content.decode()
    assert '<option value="" selected disabled>nobody (not a pool here)</option>' in html
    assert '<option value="all">' in html  # choosing `all` is a change, so the page reloads
