from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import AnnotatorProfile, Project

pytestmark = pytest.mark.django_db

URL = "/profile/"


def profile_post(**values: str) -> dict[str, str]:
    data = {field: "" for field in AnnotatorProfile.FIELDS}
    data.update(values)
    return data


def test_url_name():
    assert reverse("annotation-profile") == URL


def test_needs_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_wrong_method_is_405(client, annotator):
    client.force_login(annotator)
    assert client.put(URL).status_code == 405
    assert client.delete(URL).status_code == 405


def test_page_shows_every_field_with_its_own_consent_box_and_project_consent_texts(client, project, annotator):
    project.consent_text = "We use **country** only in aggregate. <script>x()</script>"
    project.demographics_export = Project.DemographicsExport.AGGREGATE
    project.save(update_fields=["consent_text", "demographics_export"])
    client.force_login(annotator)
    response = client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    for field in AnnotatorProfile.FIELDS:
        assert f'name="{field}"' in page
        assert f'name="consent_{field}"' in page
    assert "We use <strong>country</strong> only in aggregate." in page
    assert "<script>x()" not in page
    assert "Only in aggregate" in page
    assert not AnnotatorProfile.objects.exists()  # looking creates nothing


def test_consented_values_are_kept_and_unconsented_ones_dropped(client, annotator):
    client.force_login(annotator)
    data = profile_post(country="Chile", gender="woman", religion="none", consent_country="on", consent_religion="on")
    response = client.post(URL, data, follow=True)
    assert response.status_code == 200
    profile = AnnotatorProfile.objects.get(user=annotator)
    assert profile.consented_fields == ["country", "religion"]
    assert profile.consented_values() == {"country": "Chile", "religion": "none"}
    assert profile.gender == ""
    assert profile.consented_at is not None
    page = response.content.decode()
    assert "Not kept, because you did not tick its consent box: gender" in page
    assert 'value="Chile"' in page and 'value="woman"' not in page


def test_withdrawing_consent_deletes_the_value(client, annotator):
    client.force_login(annotator)
    client.post(URL, profile_post(country="Chile", consent_country="on"))
    client.post(URL, profile_post(country="Chile"))
    profile = AnnotatorProfile.objects.get(user=annotator)
    assert profile.country == "" and profile.consented_fields == [] and profile.consented_at is None


def test_too_long_value_is_named_and_changes_nothing(client, annotator):
    client.force_login(annotator)
    client.post(URL, profile_post(country="Chile", consent_country="on"))
    response = client.post(URL, profile_post(country="Peru", age_band="x" * 30, consent_country="on",
                                             consent_age_band="on"))
    assert response.status_code == 422
    assert "Age band: Ensure this value has at most 20 characters" in response.content.decode()
    profile = AnnotatorProfile.objects.get(user=annotator)
    assert profile.country == "Chile" and profile.age_band == ""


def test_each_user_sees_only_their_own_profile(client, annotator, annotator2):
    client.force_login(annotator)
    client.post(URL, profile_post(country="Chile", consent_country="on"))
    client.force_login(annotator2)
    page = client.get(URL).content.decode()
    assert "Chile" not in page
    client.post(URL, profile_post(country="Kenya", consent_country="on"))
    assert AnnotatorProfile.objects.get(user=annotator).country == "Chile"
    assert AnnotatorProfile.objects.get(user=annotator2).country == "Kenya"
