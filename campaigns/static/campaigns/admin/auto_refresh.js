/* Reload a running campaign's page every few seconds so its counters move; the page
   is read-only while the campaign runs, so nothing typed is lost. */
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const dashboard = document.getElementById("campaign-dashboard");
  if (dashboard && dashboard.dataset.campaignStatus === "running") {
    window.setTimeout(function () { window.location.reload(); }, 5000);
  }
});
