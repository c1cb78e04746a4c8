"""The campaign page's dashboard, drawn from campaigns.dashboard's reads."""

from django.urls import reverse

from campaigns.dashboard import (
    HourlySeries,
    campaign_dashboard,
    campaign_hourly_from_logs,
)
from campaigns.models import Campaign
from messaging import reporting
from messaging.charts import bar_chart, funnel


def dashboard_context(
    campaign: Campaign, hourly_series: HourlySeries = campaign_hourly_from_logs
) -> dict | None:
    """Progress, counters, funnel, hourly chart and top failure codes, once
    launched, with links to the campaign's messages and chunks."""
    data = campaign_dashboard(campaign=campaign, hourly_series=hourly_series)
    if data is None:
        return None
    hourly = data.pop("hourly")
    return {
        **data,
        "funnel": funnel(steps=data["funnel"]),
        "hourly_chart": bar_chart(
            labels=[row["bucket"].strftime("%m-%d %H:00") for row in hourly],
            series={s: [row[s] for row in hourly] for s in reporting.STAGES},
            title="Messages per hour",
        ),
        "logs_url": reverse("admin:messaging_communicationlog_changelist")
        + f"?dispatch={campaign.dispatch_id}",
        "chunks_url": reverse("admin:campaigns_campaignchunk_changelist")
        + f"?campaign__id__exact={campaign.pk}",
    }
