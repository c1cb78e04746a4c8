"""The project's URLs."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from api.views.metrics import metrics_view
from api.views.operations import HealthView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("health", HealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
    # Browsers ask for /favicon.ico on every page; a 404 there is a console error.
    path("favicon.ico", RedirectView.as_view(url=static("crm/favicon.svg"))),
]
