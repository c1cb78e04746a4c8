"""The admin front page's dashboard as a tag: the index view takes no extra context."""

from django import template
from django.urls import reverse

from automations.dashboard import dashboard
from crm.admin_scoping import request_organization
from messaging.charts import bar_chart
from messaging.reporting import STAGES

register = template.Library()


@register.simple_tag(takes_context=True)
def admin_dashboard(context) -> dict | None:
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return None
    if request.user.is_superuser:
        organization_ids = None
    else:
        organization = request_organization(request)
        if organization is None:
            return None
        organization_ids = [organization.pk]
    data = dashboard(organization_ids=organization_ids)
    series = data["series"]
    data["chart"] = bar_chart(
        labels=[row["bucket"].strftime("%m-%d") for row in series],
        series={stage: [row[stage] for row in series] for stage in STAGES},
        title="Messages per day, last 30 days",
        max_labels=10,
    )
    rate = data["kpis"]["delivery_rate"]
    data["delivery_percent"] = None if rate is None else round(100 * rate, 1)
    user = request.user
    data["links"] = {
        "dead_letters": reverse("admin:campaigns_dead_letter"),
        "campaigns": reverse("admin:campaigns_campaign_changelist"),
    }
    # Schedules and task results are the operators': linked for whoever may see them.
    if user.has_perm("django_celery_beat.view_periodictask"):
        data["links"]["periodic_tasks"] = reverse(
            "admin:django_celery_beat_periodictask_changelist"
        )
    if user.has_perm("django_celery_results.view_taskresult"):
        data["links"]["task_results"] = reverse(
            "admin:django_celery_results_taskresult_changelist"
        )
    return data
