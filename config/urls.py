from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("annotation.api_urls")),
    path("api/v1/", include("aggregation.api_urls")),
    path("api/v1/", include("training.api_urls")),
    path("api/v1/", include("evaluation.api_urls")),
    path("api/v1/", include("jobs.api_urls")),
    path("jobs/", include("jobs.urls")),
    path("synthetic/", include("synthetic.urls")),
    path("aggregation/", include("aggregation.urls")),
    path("training/", include("training.urls")),
    path("evaluation/", include("evaluation.urls")),
    path("", include("annotation.urls")),
]
