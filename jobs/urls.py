from __future__ import annotations

from django.urls import path

from jobs import views

urlpatterns = [
    path("runs/", views.run_list, name="jobs-run-list"),
    path("runs/<uuid:public_id>/", views.run_detail, name="jobs-run-detail"),
    path("runs/<uuid:public_id>/cancel/", views.run_cancel, name="jobs-run-cancel"),
    path("runs/<uuid:public_id>/resume/", views.run_resume, name="jobs-run-resume"),
]
