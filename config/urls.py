"""The project's URLs."""

from django.contrib import admin
from django.urls import include, path

from api.views.operations import HealthView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("health", HealthView.as_view(), name="health"),
]
