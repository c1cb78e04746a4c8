/* The segment builder: the rule tree as rows of field, operator and value in AND /
   OR groups that nest, each row or group negatable (NOT). The JSON textarea stays
   the form's field: a change in the rows rewrites it, an edit of it redraws the
   rows. The server checks the tree as it changes (debounced) and answers the
   audience's count and a sample, or the path of the node it refuses and why, which
   is marked on that row. The fields, their operators and value kinds come from the
   server (crm.rules.rule_catalog) in a json_script. */
"use strict";
(function () {
  const DEBOUNCE_MS = 400;
  const ATTRIBUTE = "attributes.";
  const OP_LABELS = {
    eq: "is", ne: "is not", gt: "greater than", gte: "at least", lt: "less than",
    lte: "at most", in: "is any of", between: "is between", contains: "contains",
    exists: "exists", within_last_days: "within the last (days)",
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => child && node.appendChild(child));
    return node;
  }

  // The tree as the rows show it: groups {kind, connector, negated, children} and
  // rules {kind, field, op, value, negated}; null when JSON has no such shape.
  function fromJSON(rule) {
    let negated = false;
    const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
    while (isObject(rule) && Object.keys(rule).length === 1 && "not" in rule) {
      negated = !negated;
      rule = rule.not;
    }
    if (!isObject(rule)) return null;
    const keys = Object.keys(rule);
    for (const connector of ["and", "or"]) {
      if (keys.length === 1 && Array.isArray(rule[connector])) {
        const children = rule[connector].map(fromJSON);
        if (children.includes(null)) return null;
        return { kind: "group", connector, negated, children };
      }
    }
    if (typeof rule.field === "string" && typeof rule.op === "string") {
      return { kind: "rule", field: rule.field, op: rule.op, value: rule.value, negated };
    }
    return null;
  }

  function toJSON(node) {
    const inner = node.kind === "group"
      ? { [node.connector]: node.children.map(toJSON) }
      : { field: node.field, op: node.op, value: node.value === undefined ? null : node.value };
    return node.negated ? { not: inner } : inner;
  }

  function parseOne(kind, text) {
    text = text.trim();
    if (kind === "number") return text === "" ? null : Number(text);
    if (kind === "boolean") return text === "true";
    if (kind === "scalar") {
      if (text === "true" || text === "false") return text === "true";
      if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
    }
    return text;
  }

  function shown(value) {
    return value === null || value === undefined ? "" : String(value);
  }

  function init() {
    const textarea = document.getElementById("id_rules");
    const root = document.getElementById("segment-builder");
    const data = document.getElementById("rule-catalog-data");
    if (!textarea || !root || !data) return;
    const catalog = JSON.parse(data.textContent);
    const specs = Object.fromEntries(catalog.map((spec) => [spec.field, spec]));
    const attributeSpec = specs[ATTRIBUTE + "<key>"];
    const fieldNames = catalog.map((spec) => spec.field).filter((name) => name !== ATTRIBUTE + "<key>");
    const rowsBox = root.querySelector(".builder-rows");
    const status = root.querySelector(".builder-status");
    const countBox = root.querySelector(".builder-count");
    const sampleBody = root.querySelector("#builder-sample tbody");
    // The rules row of the form: the builder sits just above the JSON.
    const rulesRow = textarea.closest(".form-row");
    if (rulesRow) rulesRow.parentNode.insertBefore(root, rulesRow);
    root.hidden = false;

    let tree = null;
    let marked = [];
    let timer = null;
    let sequence = 0;

    function specOf(field) {
      return field.startsWith(ATTRIBUTE) ? attributeSpec : specs[field];
    }

    function defaultValue(kind, op) {
      if (op === "in") return [];
      if (op === "between") return kind === "number" ? [0, 0] : ["", ""];
      if (kind === "boolean") return true;
      if (kind === "number") return op === "within_last_days" ? 30 : 0;
      return "";
    }

    function newRule() {
      const spec = specs[fieldNames[0]];
      const op = Object.keys(spec.ops)[0];
      return { kind: "rule", field: spec.field, op, value: defaultValue(spec.inputs[op], op), negated: false };
    }

    // A row changed in the rows: the JSON follows, then the server is asked.
    function changed(redraw) {
      textarea.value = JSON.stringify(toJSON(tree), null, 2);
      if (redraw) draw();
      schedule();
    }

    function valueInput(kind, text, onText) {
      if (kind === "boolean") {
        const select = el("select", { class: "rule-value", onchange: () => onText(select.value) }, [
          el("option", { value: "true", text: "true" }),
          el("option", { value: "false", text: "false" }),
        ]);
        select.value = text === "false" ? "false" : "true";
        return select;
      }
      let type = "text";
      if (kind === "number") type = "number";
      if (kind === "date" && (text === "" || /^\d{4}-\d{2}-\d{2}$/.test(text))) type = "date";
      const attrs = { class: "rule-value", type, value: text, oninput: () => onText(input.value) };
      if (type === "number") attrs.step = "any";
      const input = el("input", attrs);
      return input;
    }

    function valueInputs(node) {
      const spec = specOf(node.field);
      if (!spec || !(node.op in spec.ops)) return [];
      const kind = spec.inputs[node.op];
      if (node.op === "in") {
        const items = Array.isArray(node.value) ? node.value : [];
        const input = el("input", {
          class: "rule-value", type: "text", value: items.map(shown).join(", "),
          placeholder: "comma-separated",
          oninput: () => {
            node.value = input.value.split(",").map((item) => item.trim()).filter((item) => item !== "")
              .map((item) => parseOne(kind, item));
            changed(false);
          },
        });
        return [input];
      }
      if (node.op === "between") {
        const pair = Array.isArray(node.value) && node.value.length === 2 ? node.value : [null, null];
        node.value = pair;
        return [0, 1].map((index) =>
          valueInput(kind, shown(pair[index]), (text) => {
            node.value[index] = parseOne(kind, text);
            changed(false);
          })
        ).flatMap((input, index) => (index ? [el("span", { text: "and" }), input] : [input]));
      }
      return [valueInput(kind, shown(node.value), (text) => {
        node.value = parseOne(kind, text);
        changed(false);
      })];
    }

    function notToggle(node) {
      const box = el("input", { type: "checkbox", class: "rule-not", onchange: () => {
        node.negated = box.checked;
        changed(false);
      } });
      box.checked = node.negated;
      return el("label", { class: "rule-not-label", title: "Match what this does not" }, [box, document.createTextNode(" NOT")]);
    }

    function drawRule(node, parent, path) {
      const spec = specOf(node.field);
      const isAttribute = node.field.startsWith(ATTRIBUTE);
      const fieldSelect = el("select", { class: "rule-field", onchange: () => {
        const name = fieldSelect.value === "attributes" ? ATTRIBUTE + "key" : fieldSelect.value;
        const next = specOf(name);
        node.field = name;
        if (!(node.op in next.ops)) node.op = Object.keys(next.ops)[0];
        node.value = defaultValue(next.inputs[node.op], node.op);
        changed(true);
      } }, [
        // The description up to its first ":" or ";" names the field; all of it is the tooltip.
        ...fieldNames.map((name) => el("option", { value: name, text: specs[name].description.split(/[:;]/)[0], title: specs[name].description })),
        el("option", { value: "attributes", text: "Attribute…" }),
      ]);
      fieldSelect.value = isAttribute ? "attributes" : node.field;
      const row = el("div", { class: "builder-rule", "data-path": path }, [notToggle(node), fieldSelect]);
      if (isAttribute) {
        const key = el("input", { class: "rule-key", type: "text", placeholder: "key",
          value: node.field.slice(ATTRIBUTE.length),
          oninput: () => { node.field = ATTRIBUTE + key.value; changed(false); } });
        row.appendChild(key);
      }
      if (spec) {
        const opSelect = el("select", { class: "rule-op", onchange: () => {
          const before = spec.inputs[node.op];
          const wasList = node.op === "in" || node.op === "between";
          node.op = opSelect.value;
          const isList = node.op === "in" || node.op === "between";
          if (before !== spec.inputs[node.op] || wasList !== isList) {
            node.value = defaultValue(spec.inputs[node.op], node.op);
          }
          changed(true);
        } }, Object.keys(spec.ops).map((op) => el("option", { value: op, text: OP_LABELS[op] || op, title: spec.ops[op] })));
        if (!(node.op in spec.ops)) opSelect.appendChild(el("option", { value: node.op, text: node.op }));
        opSelect.value = node.op;
        row.appendChild(opSelect);
        valueInputs(node).forEach((input) => row.appendChild(input));
      }
      row.appendChild(el("button", { type: "button", class: "rule-remove", title: "Remove this rule", text: "✕",
        onclick: () => { removeFrom(node); changed(true); } }));
      row.appendChild(el("span", { class: "rule-error" }));
      parent.appendChild(row);
      return [{ paths: [path, node.negated ? path + ".not" : path], row }];
    }

    function removeFrom(target, group = tree) {
      const index = group.children.indexOf(target);
      if (index >= 0) {
        group.children.splice(index, 1);
        return true;
      }
      return group.children.some((child) => child.kind === "group" && removeFrom(target, child));
    }

    function drawGroup(node, parent, path, isRoot) {
      const inner = node.negated ? path + ".not" : path;
      const body = inner + "." + node.connector;
      const connector = el("select", { class: "group-connector", onchange: () => {
        node.connector = connector.value;
        changed(true);
      } }, [
        el("option", { value: "and", text: "ALL of these (AND)" }),
        el("option", { value: "or", text: "ANY of these (OR)" }),
      ]);
      connector.value = node.connector;
      const head = el("div", { class: "builder-group-head" }, [notToggle(node), el("span", { text: "Match " }), connector]);
      if (!isRoot) {
        head.appendChild(el("button", { type: "button", class: "group-remove", text: "Remove group",
          onclick: () => { removeFrom(node); changed(true); } }));
      }
      head.appendChild(el("span", { class: "rule-error" }));
      const box = el("div", { class: "builder-group", "data-path": path }, [head]);
      const children = el("div", { class: "builder-children" });
      box.appendChild(children);
      let marks = [{ paths: [path, inner, body], row: head }];
      node.children.forEach((child, index) => {
        const childPath = `${body}[${index}]`;
        marks = marks.concat(child.kind === "group"
          ? drawGroup(child, children, childPath, false)
          : drawRule(child, children, childPath));
      });
      box.appendChild(el("div", { class: "builder-add" }, [
        el("button", { type: "button", class: "add-rule", text: "+ Rule",
          onclick: () => { node.children.push(newRule()); changed(true); } }),
        el("button", { type: "button", class: "add-group", text: "+ Group",
          onclick: () => {
            node.children.push({ kind: "group", connector: node.connector === "and" ? "or" : "and", negated: false, children: [newRule()] });
            changed(true);
          } }),
      ]));
      parent.appendChild(box);
      return marks;
    }

    function draw() {
      rowsBox.replaceChildren();
      marked = drawGroup(tree, rowsBox, "rules", true);
    }

    // The JSON was edited (or the page opened): the rows follow when they can.
    function readJSON() {
      const text = textarea.value.trim();
      let parsed = null;
      if (text !== "" && text !== "null") {
        try {
          parsed = JSON.parse(text);
        } catch (error) {
          showStatus(`The JSON is not valid: ${error.message}`, true);
          return false;
        }
      }
      let node = parsed === null ? { kind: "group", connector: "and", negated: false, children: [] } : fromJSON(parsed);
      if (node === null) {
        showStatus("These rules cannot be shown as rows; edit the JSON below.", true);
        return false;
      }
      if (node.kind === "rule") node = { kind: "group", connector: "and", negated: false, children: [node] };
      tree = node;
      draw();
      return parsed !== null;
    }

    function showStatus(text, isError) {
      status.textContent = text;
      status.classList.toggle("errornote", Boolean(isError));
    }

    function clearMarks() {
      root.querySelectorAll(".rule-invalid").forEach((row) => row.classList.remove("rule-invalid"));
      root.querySelectorAll(".rule-error").forEach((span) => { span.textContent = ""; });
    }

    function markError(error) {
      const covers = (prefix) => error.path === prefix || error.path.startsWith(prefix + ".") || error.path.startsWith(prefix + "[");
      let best = null, bestLength = -1;
      marked.forEach((mark) => mark.paths.forEach((prefix) => {
        if (covers(prefix) && prefix.length > bestLength) {
          best = mark;
          bestLength = prefix.length;
        }
      }));
      if (best) {
        best.row.classList.add("rule-invalid");
        best.row.querySelector(".rule-error").textContent = error.reason;
      }
      showStatus(`Not usable: ${error.reason}` + (error.path ? ` (at ${error.path})` : ""), true);
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(check, DEBOUNCE_MS);
    }

    async function check() {
      let rules;
      try {
        rules = JSON.parse(textarea.value);
      } catch (error) {
        return;
      }
      const organization = document.getElementById("id_organization");
      if (organization && !organization.value) {
        showStatus("Choose an organization to count its leads.", false);
        return;
      }
      const mine = ++sequence;
      root.classList.add("builder-checking");
      const response = await fetch(root.dataset.audienceUrl, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "X-CSRFToken": document.querySelector("[name=csrfmiddlewaretoken]").value,
        },
        body: JSON.stringify({ organization: organization ? organization.value : root.dataset.organization, rules }),
      });
      const answer = await response.json();
      if (mine !== sequence) return;
      root.classList.remove("builder-checking");
      clearMarks();
      if (answer.error) {
        markError(answer.error);
        countBox.textContent = "–";
        sampleBody.replaceChildren();
        return;
      }
      showStatus("", false);
      countBox.textContent = answer.count;
      sampleBody.replaceChildren(...answer.sample.map((lead) => el("tr", {}, [
        el("td", {}, [el("a", { href: lead.url, text: lead.name })]),
        el("td", { text: lead.phone }),
        el("td", { text: lead.email }),
      ])));
    }

    textarea.addEventListener("input", () => {
      if (readJSON()) schedule();
    });
    const organization = document.getElementById("id_organization");
    if (organization) organization.addEventListener("change", schedule);
    if (readJSON()) schedule();
  }
  document.addEventListener("DOMContentLoaded", init);
})();
