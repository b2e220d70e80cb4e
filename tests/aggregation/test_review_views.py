"""The review pages: who may open them, the group-size threshold, the rule switcher, CSV data."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from django.urls import reverse

from aggregation import review
from aggregation.ballots import load_ballots
from annotation.models import Membership, Ranking
from annotation.services import add_member
from synthetic.models import Persona, PersonaPanel
from tests.html import EXTERNAL_ASSET

from .factories import World, add_human, add_persona, make_project, rank_all

pytestmark = pytest.mark.django_db


def small_world(owner, *, women: int = 5, men: int = 4) -> World:
    """Humans: `women` women and `men` men (consented); personas: 5 left, 2 right, one the twin of
    the first woman; every rater ranks every item."""
    project, items = make_project(owner, n_items=5, ks=(3, 4))
    world = World(project, owner, items)
    for n in range(women + men):
        world.humans.append(add_human(project, f"human{n}", {"gender": "woman" if n < women else "man"}))
    for n in range(7):
        world.synthetic.append(add_persona(f"p{n}", {"political_leaning": "left" if n < 5 else "right"}))
    panel = PersonaPanel.objects.create(name="twins", owner=owner, project=project, source=PersonaPanel.Source.TWINS)
    Persona.objects.create(panel=panel, persona_id="p0", description="persona p0",
                           attributes={"political_leaning": "left", "twin_of": str(world.humans[0].user_id)})
    rank_all(world, world.humans + world.synthetic, seed=3, ties=False)
    return world


def url(world: World, **params: str) -> str:
    base = reverse("aggregation-project-review", args=[world.project.public_id])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def item_url(world: World, item=None) -> str:
    return reverse("aggregation-item-review", args=[world.project.public_id, (item or world.items[0]).pk])


@pytest.fixture
def world(owner):
    return small_world(owner)


def test_outsiders_and_annotators_get_404_researchers_200(client, world, django_user_model, owner):
    outsider = django_user_model.objects.create_user("outsider", password="x")
    annotator = world.humans[0].user
    colleague = django_user_model.objects.create_user("colleague", password="x")
    add_member(project=world.project, user=colleague, role=Membership.Role.RESEARCHER)
    for target in (url(world), url(world, csv="rules"), item_url(world)):
        client.logout()
        assert client.get(target).status_code == 302  # anonymous: to the login page
        for user in (outsider, annotator):
            client.force_login(user)
            assert client.get(target).status_code == 404, (user, target)
        for user in (owner, colleague):
            client.force_login(user)
            assert client.get(target).status_code == 200, (user, target)


def test_wrong_method_is_refused(client, world, owner):
    client.force_login(owner)
    assert client.post(url(world)).status_code == 405
    assert client.post(item_url(world)).status_code == 405


def test_page_shows_every_section_and_serves_plotly_locally(client, world, owner):
    client.force_login(owner)
    html = client.get(url(world)).content.decode()
    for section in ("scorecard", "agreement", "rules", "groups", "twins", "position"):
        assert f'id="{section}"' in html
    assert "vendor/plotly.min.js" in html and not EXTERNAL_ASSET.search(html)
    assert "Krippendorff" in html and "split-half" in html


def test_small_groups_are_hidden_in_the_page_and_every_csv(client, world, owner):
    client.force_login(owner)
    html = client.get(url(world)).content.decode()
    assert "gender = woman" in html
    assert "gender = man" not in html and "political_leaning = right" not in html
    for key in ("groups", "heatmap", "scorecard"):
        body = client.get(url(world, csv=key)).content.decode()
        assert "woman" in body or key == "scorecard"
        assert ",man," not in body and "right" not in body, key


def test_threshold_is_a_setting(client, world, owner, settings):
    settings.AGGREGATE_MIN_GROUP = 4
    client.force_login(owner)
    assert "gender = man" in client.get(url(world)).content.decode()
    settings.AGGREGATE_MIN_GROUP = 6
    html = client.get(url(world)).content.decode()
    assert "gender = woman" not in html and "political_leaning = left" not in html


def test_rule_switch_changes_the_scorecard_rule_and_csv_matches_the_computation(client, world, owner):
    client.force_login(owner)
    response = client.get(url(world, rule="borda", csv="heatmap"))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Type"].startswith("text/csv")
    [row] = rows  # one human group (women) x one persona group (left)
    ballots = load_ballots(world.project, drop_cannot_judge=True).ranked_items()
    women = np.array(sorted(h.pk for h in world.humans[:5]))
    left = np.array(sorted(p.pk for p in world.synthetic[:5]))
    expected = review.group_heatmap(ballots, "borda", {("gender", "woman"): women},
                                    {("political_leaning", "left"): left})[0, 0]
    assert float(row["tau_b"]) == pytest.approx(expected, abs=1e-3)
    html = client.get(url(world, rule="copeland"), HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="review-body">') and "<html" not in html
    assert 'value="copeland" selected' in html


def test_bad_rule_and_bad_chart_are_named(client, world, owner):
    client.force_login(owner)
    response = client.get(url(world, rule="dictator"))
    assert response.status_code == 400 and "dictator" in response.content.decode()
    response = client.get(url(world, csv="nope"))
    assert response.status_code == 400 and "nope" in response.content.decode()


def test_twin_csv_compares_the_annotator_with_their_twin(client, world, owner):
    client.force_login(owner)
    rows = list(csv.DictReader(io.StringIO(client.get(url(world, csv="twins")).content.decode())))
    assert [r["annotator"] for r in rows] == ["human0"]
    ballots = load_ballots(world.project)
    tau, n = review.rater_pair_tau(ballots, world.humans[0].pk, world.synthetic[0].pk)
    assert float(rows[0]["twin_tau_b"]) == pytest.approx(tau, abs=1e-3) and int(rows[0]["twin_items"]) == n == 5


def test_a_revision_shows_at_once(client, world, owner):
    client.force_login(owner)
    before = client.get(url(world, csv="position")).content.decode()
    ranking = Ranking.objects.filter(rater=world.humans[1]).first()
    Ranking.objects.filter(pk=ranking.pk).update(shown_order=list(reversed(ranking.shown_order)))
    assert client.get(url(world, csv="position")).content.decode() != before


def test_empty_project_says_there_is_nothing_to_review(client, owner):
    project, _ = make_project(owner, name="Empty")
    client.force_login(owner)
    response = client.get(reverse("aggregation-project-review", args=[project.public_id]))
    assert response.status_code == 200 and "No rankings yet" in response.content.decode()


def test_item_page_lists_rankings_rules_condorcet_and_farthest(client, world, owner):
    client.force_login(owner)
    html = client.get(item_url(world) + "?rule=schulze").content.decode()
    assert html.count("<tr") >= 16  # 16 rankings plus the rule and raters tables
    for rule in ("borda", "copeland", "schulze", "kemeny", "ranked_pairs"):
        assert f"<td>{rule}</td>" in html
    assert "Condorcet" in html and "farthest" in html
    # Consented group shown only where the group is large enough (demographics export: aggregate).
    assert "gender: woman" in html and "gender: man" not in html


def test_item_of_another_project_is_404(client, world, owner, django_user_model):
    other, items = make_project(owner, name="Other")
    client.force_login(owner)
    assert client.get(reverse("aggregation-item-review", args=[world.project.public_id, items[0].pk])).status_code == 404


def test_plotly_js_is_found_in_the_installed_wheel_for_collectstatic():
    from django.contrib.staticfiles import finders

    from aggregation.staticfiles import PLOTLY_PATH, PlotlyFinder

    found = finders.find(PLOTLY_PATH)
    assert found and found.endswith("plotly.min.js")
    [(name, storage)] = list(PlotlyFinder().list(None))
    assert f"{storage.prefix}/{name}" == PLOTLY_PATH and storage.exists(name)
    assert PlotlyFinder().find("vendor/other.js") == []
    assert finders.find("vendor/other.js") is None  # no match reads as no match
