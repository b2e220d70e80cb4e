"""Shared fixtures: named users created in code (an owner, an annotator member, an outsider)."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    # PBKDF2's deliberate slowness costs seconds per test that creates users. Pure-library test
    # runs (-p no:django) have no Django settings and skip this.
    if config.pluginmanager.has_plugin("django"):
        from django.conf import settings

        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        # One live progress event per ranking, so tests see each at once (coalescing has its own tests).
        settings.LIVE_PROGRESS_INTERVAL = 0


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", password="owner-pass-123")


@pytest.fixture
def annotator(django_user_model):
    return django_user_model.objects.create_user("annie", password="annie-pass-123")


@pytest.fixture
def annotator2(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("mallory", password="mallory-pass-123")


@pytest.fixture
def project(owner, annotator, annotator2):
    from annotation.models import Membership, Project
    from annotation.services import add_member, create_item, create_project

    project = create_project(
        owner=owner, name="Demo", guidelines="Rank **helpfulness**.", overlap_target=2, status=Project.Status.ACTIVE
    )
    add_member(project=project, user=annotator, role=Membership.Role.ANNOTATOR)
    add_member(project=project, user=annotator2, role=Membership.Role.ANNOTATOR)
    for n in range(3):
        create_item(
            project=project,
            external_id=f"item-{n}",
            prompt=f"Question {n}?",
            responses=[{"id": f"r{k}", "text": f"Answer {k} to {n}", "source": "demo"} for k in range(1, 5)],
        )
    return project
