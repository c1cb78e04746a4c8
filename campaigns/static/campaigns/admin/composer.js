/* The campaign composer: the message previewed for a lead the marketer searches
   for, and the whole audience's messages, SMS segments and cost, both asked of the
   server (debounced) as the segment, channel or message change. */
"use strict";
(function () {
  const DEBOUNCE_MS = 400;

  function debounce(fn) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, DEBOUNCE_MS);
    };
  }

  function init() {
    const box = document.getElementById("composer");
    if (!box) return;
    const field = (name) => document.getElementById("id_" + name);
    const search = document.getElementById("preview-search");
    const results = document.getElementById("preview-search-results");
    const preview = document.getElementById("composer-preview");
    const error = box.querySelector(".composer-error");
    const csrf = document.querySelector("[name=csrfmiddlewaretoken]");
    let leadId = null;
    let sequence = 0;

    // Read-only fields (a launched campaign) have no inputs: the page is a record.
    function value(name) {
      const input = field(name);
      return input ? input.value : null;
    }

    function organization() {
      return value("organization") || box.dataset.organization;
    }

    function showError(text) {
      error.textContent = text || "";
      error.hidden = !text;
    }

    async function compose() {
      const template = value("template");
      if (template === null) {
        box.hidden = true;
        return;
      }
      if (!organization() || !value("segment") || !value("channel") || !template) {
        showError("Choose a segment and a channel and write the message to see the preview and estimate.");
        return;
      }
      const mine = ++sequence;
      const response = await fetch(box.dataset.composeUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
        body: JSON.stringify({
          organization: organization(),
          segment: value("segment"),
          channel: value("channel"),
          template,
          lead: leadId,
        }),
      });
      const answer = await response.json();
      if (mine !== sequence) return;
      showError(answer.error);
      const cells = Object.fromEntries(
        Array.from(box.querySelectorAll("[data-estimate]")).map((cell) => [cell.dataset.estimate, cell])
      );
      if (answer.error) {
        Object.values(cells).forEach((cell) => { cell.textContent = "–"; });
        preview.querySelector(".composer-preview-to").textContent = "";
        preview.querySelector(".composer-preview-text").textContent = "";
        preview.querySelector(".composer-preview-size").textContent = "";
        return;
      }
      const estimate = answer.estimate;
      cells.audience.textContent = estimate.audience;
      cells.messages.textContent = estimate.messages;
      cells.segments.textContent = estimate.segments === null ? "–" : estimate.segments;
      cells.cost.textContent = estimate.cost;
      box.querySelector(".estimate-price").textContent = answer.channel === "sms"
        ? `at ${estimate.price} an SMS segment` : `at ${estimate.price} an email`;
      box.querySelector(".estimate-sms").hidden = answer.channel !== "sms";
      const shown = answer.preview;
      preview.querySelector(".composer-preview-to").textContent = shown ? `As ${shown.lead} gets it:` : "No lead to preview for.";
      preview.querySelector(".composer-preview-text").textContent = shown ? shown.text : "";
      preview.querySelector(".composer-preview-size").textContent = shown
        ? `${shown.characters} characters` + (answer.channel === "sms" ? `, ${shown.segments} SMS segment(s), ${shown.encoding}` : "")
        : "";
    }

    async function find() {
      const query = search.value.trim();
      results.replaceChildren();
      if (!query || !organization()) return;
      const url = new URL(box.dataset.searchUrl, window.location.href);
      url.searchParams.set("q", query);
      url.searchParams.set("organization", organization() || "");
      const answer = await (await fetch(url)).json();
      if (answer.error) {
        showError(answer.error);
        return;
      }
      if (search.value.trim() !== query) return;
      results.replaceChildren(...answer.leads.map((lead) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "preview-lead";
        button.textContent = lead.label;
        button.addEventListener("click", () => {
          leadId = lead.id;
          search.value = lead.label;
          results.replaceChildren();
          compose();
        });
        const item = document.createElement("li");
        item.appendChild(button);
        return item;
      }));
      if (!answer.leads.length) {
        const item = document.createElement("li");
        item.textContent = "No lead matches.";
        results.appendChild(item);
      }
    }

    const recompose = debounce(compose);
    ["template", "subject"].forEach((name) => field(name) && field(name).addEventListener("input", recompose));
    ["segment", "channel", "organization"].forEach((name) => field(name) && field(name).addEventListener("change", recompose));
    // Placeholders inserted by click change the template without an input event.
    document.querySelectorAll(".placeholder-insert").forEach((button) => button.addEventListener("click", recompose));
    search.addEventListener("input", debounce(find));
    compose();
  }
  document.addEventListener("DOMContentLoaded", init);
})();
