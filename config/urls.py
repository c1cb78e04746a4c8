"""The project's URLs."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from api.views.metrics import metrics_view
from api.views.operations import HealthView
from api.views.probes import LiveView, ReadyView
from crm.views import unsubscribe_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("u/<str:token>", unsubscribe_view, name="unsubscribe"),
    path("health", HealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("health/live", LiveView.as_view(), name="health-live"),
    path("health/ready", ReadyView.as_view(), name="health-ready"),
    # Browsers ask for /favicon.ico on every page; a 404 there is a console error.
    # Looked up per request: the hashed name exists only once collectstatic ran.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("crm/favicon.svg"))),
]
