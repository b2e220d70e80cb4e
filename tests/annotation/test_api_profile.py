"""The requester's own demographic profile: values only for consented fields."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import AnnotatorProfile

pytestmark = pytest.mark.django_db
URL = "/api/v1/profile/"


@pytest.fixture
def annie(annotator) -> APIClient:
    client = APIClient()
    client.force_authenticate(annotator)
    return client


def test_reading_an_empty_profile_writes_nothing(annie):
    body = annie.get(URL).json()
    assert body["consented_fields"] == [] and body["country"] == "" and body["consented_at"] is None
    assert not AnnotatorProfile.objects.exists()


def test_put_stores_consented_values(annie, annotator):
    response = annie.put(URL, {"consented_fields": ["country", "age_band"], "country": "Chile", "age_band": "30-39"},
                         format="json")
    assert response.status_code == 200
    profile = AnnotatorProfile.objects.get(user=annotator)
    assert profile.consented_values() == {"country": "Chile", "age_band": "30-39"}
    assert profile.consented_at is not None
    assert annie.get(URL).json()["country"] == "Chile"


def test_value_without_consent_is_refused_and_nothing_changes(annie, annotator):
    annie.put(URL, {"consented_fields": ["country"], "country": "Chile"}, format="json")
    response = annie.patch(URL, {"country": "Peru", "religion": "none"}, format="json")
    assert response.status_code == 400
    assert "not consented to share religion" in response.json()["religion"][0]
    profile = AnnotatorProfile.objects.get(user=annotator)
    assert (profile.country, profile.religion) == ("Chile", "")


def test_withdrawing_consent_erases_the_value(annie, annotator):
    annie.put(URL, {"consented_fields": ["country", "gender"], "country": "Chile", "gender": "f"}, format="json")
    response = annie.patch(URL, {"consented_fields": ["gender"]}, format="json")
    assert response.status_code == 200
    profile = AnnotatorProfile.objects.get(user=annotator)
    assert (profile.country, profile.gender) == ("", "f")


def test_withdrawing_all_consent_clears_the_date(annie, annotator):
    annie.put(URL, {"consented_fields": ["country"], "country": "Chile"}, format="json")
    annie.put(URL, {"consented_fields": []}, format="json")
    profile = AnnotatorProfile.objects.get(user=annotator)
    assert profile.consented_at is None and profile.country == ""


@pytest.mark.parametrize(
    "body,field",
    [({"consented_fields": ["shoe_size"]}, "consented_fields"), ({"shoe_size": "44"}, "shoe_size"),
     ({"consented_fields": ["country"], "country": "x" * 101}, "country"), ({"consented_fields": "country"}, "consented_fields")],
)
def test_bad_profile_input_names_the_field(annie, body, field):
    response = annie.patch(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not AnnotatorProfile.objects.exclude(consented_fields=[]).exists()


def test_a_profile_read_back_can_be_written_back(annie):
    annie.put(URL, {"consented_fields": ["country"], "country": "Chile"}, format="json")
    body = annie.get(URL).json()
    assert annie.put(URL, body, format="json").status_code == 200  # read-only fields are ignored


def test_each_user_sees_only_their_own_profile(annie, annotator, annotator2):
    AnnotatorProfile.objects.create(user=annotator2, country="Norway", consented_fields=["country"])
    assert b"Norway" not in annie.get(URL).content
