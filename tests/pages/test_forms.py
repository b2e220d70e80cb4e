"""Every form control has exactly one label (`<label for=id>` or a label around it), and an invalid
submit shows each error exactly once, inside an element with the error style."""
from __future__ import annotations

import html
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django import forms
from django.conf import settings
from django.urls import reverse

from tests.pages.conftest import pages_of

pytestmark = pytest.mark.django_db

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}
# The classes that carry the error style (static/css): Django's error lists and our own error line.
ERROR_CLASSES = {"errorlist", "form-error"}


class Page(HTMLParser):
    """Controls with their labels, and every text node with the classes of its ancestors."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, set[str]]] = []
        self.controls: list[dict[str, str]] = []
        self.wrapped: Counter[int] = Counter()
        self.label_for: Counter[str] = Counter()
        self.texts: list[tuple[str, set[str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "label" and a.get("for"):
            self.label_for[a["for"]] += 1
        if tag in ("input", "select", "textarea") and a.get("type", "text") not in UNLABELLED_TYPES:
            self.controls.append({"tag": tag, **a})
            if any(t == "label" for t, _ in self.stack):
                self.wrapped[len(self.controls) - 1] += 1
        if tag not in VOID:
            self.stack.append((tag, set(a.get("class", "").split())))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if data.strip() and not any(t in ("script", "style") for t, _ in self.stack):
            self.texts.append((" ".join(data.split()), set().union(*(c for _, c in self.stack))))

    def labels(self, index: int) -> int:
        control = self.controls[index]
        return self.wrapped[index] + (self.label_for[control["id"]] if control.get("id") else 0)


def assert_labelled(text: str, where: str) -> int:
    page = Page(text)
    ids = Counter(c["id"] for c in page.controls if c.get("id"))
    assert not [i for i, n in ids.items() if n > 1], f"{where}: duplicate ids {ids}"
    for index, control in enumerate(page.controls):
        assert page.labels(index) == 1, f"{where}: {control} has {page.labels(index)} labels"
    return len(page.controls)


@pytest.mark.parametrize("role", ["owner", "annotator"])
def test_every_control_on_every_page_has_exactly_one_label(client, site, owner, annotator, role):
    client.force_login(owner if role == "owner" else annotator)
    checked = sum(assert_labelled(client.get(url).content.decode(), url) for url in pages_of(site, role))
    assert checked > (40 if role == "owner" else 10)


def bound_forms(response) -> list[forms.BaseForm]:
    seen: dict[int, forms.BaseForm] = {}
    for context in response.context:
        for value in context.flatten().values():
            if isinstance(value, forms.BaseForm) and value.is_bound and value.errors:
                seen[id(value)] = value
    return list(seen.values())


def assert_errors_once(response, where: str) -> int:
    text = response.content.decode()
    page = Page(text)
    wanted: Counter[str] = Counter()
    for form in bound_forms(response):
        for errors in form.errors.values():
            wanted.update(" ".join(html.unescape(str(e)).split()) for e in errors)
    assert wanted, f"{where}: the bad submit produced no form error"
    for message, times in wanted.items():
        anywhere = [t for t, _ in page.texts if message in t]
        styled = [t for t, classes in page.texts if message in t and classes & ERROR_CLASSES]
        assert len(anywhere) == times, f"{where}: {message!r} shown {len(anywhere)} times, expected {times}"
        assert len(styled) == times, f"{where}: {message!r} is not inside an element with the error style"
        assert assert_labelled(text, where)
    return sum(wanted.values())


def bad_submits(site) -> list[tuple[str, dict[str, object], str]]:
    p = site.project.public_id
    return [
        (reverse("annotation-project-create"), {"name": "", "overlap_target": "0", "lease_seconds": "5"}, "owner"),
        (reverse("annotation-project-edit", args=[p]), {"name": "x", "synthetic_target": "-1"}, "owner"),
        (reverse("annotation-project-members", args=[p]), {"username": "nobody", "role": "boss"}, "owner"),
        (reverse("annotation-import-items", args=[p]), {"format": "yaml"}, "owner"),
        (reverse("synthetic-panel-import", args=[p]), {"name": ""}, "owner"),
        (reverse("synthetic-panel-generate", args=[p]), {"size": "-3"}, "owner"),
        (reverse("synthetic-panel-twins", args=[p]), {"name": ""}, "owner"),
        (reverse("synthetic-run-create", args=[p]), {"items": "list", "item_ids": ""}, "owner"),
        (reverse("synthetic-generation-create", args=[p]), {"k": "1"}, "owner"),
        (reverse("annotation-profile"), {"gender": "x" * 80, "consent_gender": "on", "age_band": "y" * 30}, "annotator"),
    ]


def test_an_invalid_submit_shows_each_error_once_in_the_error_style(client, site, owner, annotator):
    for url, data, role in bad_submits(site):
        client.force_login(owner if role == "owner" else annotator)
        response = client.post(url, data)
        assert response.status_code in (200, 400, 422), f"{url}: {response.status_code}"
        assert_errors_once(response, url)


def test_an_export_with_bad_dates_names_the_field_once(client, site, owner):
    client.force_login(owner)
    url = reverse("annotation-export-rankings", args=[site.project.public_id])
    response = client.get(url, {"format": "jsonl", "since": "yesterday"})
    assert response.status_code == 400
    message = response.context["export_error"]
    assert "since" in message
    page = Page(response.content.decode())
    assert [classes & ERROR_CLASSES for t, classes in page.texts if message in t] == [{"form-error"}]
    assert assert_labelled(response.content.decode(), url)


def test_the_error_classes_have_a_style():
    css = "\n".join(p.read_text() for p in Path(settings.BASE_DIR, "static", "css").glob("*.css"))
    for name in ERROR_CLASSES:
        assert re.search(rf"\.{name}\b[^{{]*\{{[^}}]*color", css), f".{name} has no colour rule"


def test_login_form(client, site):
    url = reverse("login")
    assert assert_labelled(client.get(url).content.decode(), url) == 2
    assert_errors_once(client.post(url, {"username": "annie", "password": "wrong"}), url)
