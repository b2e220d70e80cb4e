"""No page shows template source: a multi-line `{# #}` comment (Django's are single-line) or a
broken tag would put `{#`, `#}`, `{%` or `%}` on screen."""
from __future__ import annotations

import pytest

from tests.pages.conftest import pages_of

pytestmark = pytest.mark.django_db

LEAKS = ("{#", "#}", "{%", "%}", "{{", "}}")


def assert_clean(html: str, where: str) -> None:
    for leak in LEAKS:
        at = html.find(leak)
        assert at < 0, f"{where} shows template text {leak!r}: ...{html[max(at - 80, 0):at + 80]}..."


@pytest.mark.parametrize("role", ["owner", "annotator"])
def test_every_page_is_free_of_template_text(client, site, owner, annotator, role):
    client.force_login(owner if role == "owner" else annotator)
    pages = pages_of(site, role)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        assert_clean(response.content.decode(), url)
    assert len(pages) >= (20 if role == "owner" else 6)


def test_htmx_fragments_are_free_of_template_text(client, site, annotator):
    """Submit and skip answer htmx with the next item's fragment, error or not."""
    from annotation.models import Assignment

    client.force_login(annotator)
    lease = Assignment.objects.get(rater__user=annotator, status=Assignment.Status.LEASED)
    refused = client.post(f"/assignments/{lease.public_id}/submit/", {"ranking": "[[\"nope\"]]"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 200 and b"Not saved" in refused.content
    assert_clean(refused.content.decode(), "refused submit")
    skipped = client.post(f"/assignments/{lease.public_id}/skip/", HTTP_HX_REQUEST="true")
    assert skipped.status_code == 200
    assert_clean(skipped.content.decode(), "skip")
