""""My rankings" shows each ranking as the annotator saw it: responses by their letter in the shown
order, with the start of their text; the internal response ids never appear."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotation.services import create_item, next_assignment, submit_ranking

pytestmark = pytest.mark.django_db


def test_rankings_are_shown_by_letter_in_shown_order_with_an_excerpt(client, project, annotator):
    project.items.all().delete()
    long_text = "Paris is the capital of France. " * 10
    create_item(project=project, external_id="q", prompt="Capital of France?", responses=[
        {"id": "resp-alpha", "text": long_text}, {"id": "resp-beta", "text": "Lyon."},
        {"id": "resp-gamma", "text": "Marseille,\nmaybe."}, {"id": "resp-delta", "text": "No idea."},
    ])
    lease = next_assignment(project=project, user=annotator, seed=3)
    shown = lease.shown_order
    letter = {rid: "ABCD"[i] for i, rid in enumerate(shown)}
    order = [[shown[2]], [shown[0], shown[3]], [shown[1]]]
    submit_ranking(user=annotator, assignment=lease, order=order)
    client.force_login(annotator)
    page = client.get(reverse("annotation-my-rankings", args=[project.public_id])).content.decode()
    for rid in shown:
        assert rid not in page
    expected = "<strong>C</strong> ≻ <strong>A</strong> = <strong>D</strong> ≻ <strong>B</strong>"
    assert expected in page
    listed = page[page.index('<ol class="ranked-tiers">'):page.index("</ol>")]
    tiers = re.findall(r'<span class="card-label">(\w)</span> ([^<]*)', listed)
    assert [label for label, _ in tiers] == ["C", "A", "D", "B"]
    excerpt = dict(tiers)
    assert excerpt[letter["resp-beta"]] == "Lyon."
    assert excerpt[letter["resp-gamma"]] == "Marseille, maybe."  # whitespace folded onto one line
    assert excerpt[letter["resp-alpha"]].endswith("…") and len(excerpt[letter["resp-alpha"]]) == 80
    assert long_text.startswith(excerpt[letter["resp-alpha"]][:-1].rstrip())
    assert listed.count("tied with") == 1  # the tie of A and D is spelled out


def test_my_rankings_page_costs_a_fixed_number_of_queries(client, project, annotator, django_assert_max_num_queries):
    for _ in range(3):
        lease = next_assignment(project=project, user=annotator)
        submit_ranking(user=annotator, assignment=lease, order=[[r] for r in lease.shown_order])
    client.force_login(annotator)
    with django_assert_max_num_queries(10):
        assert client.get(reverse("annotation-my-rankings", args=[project.public_id])).status_code == 200
