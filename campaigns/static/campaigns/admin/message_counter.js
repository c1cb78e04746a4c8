/* Live character and SMS-segment count of the campaign template, and placeholder
   buttons that insert at the cursor. The alphabet comes from the server
   (vendors/sms.py) in a json_script; the rules mirror vendors.sms.sms_segments. */
"use strict";
(function () {
  function segments(text, basic, extension) {
    const chars = Array.from(text);
    const inBasic = chars.every((c) => basic.has(c));
    const inGsm = chars.every((c) => basic.has(c) || extension.has(c));
    let units, single, part;
    if (inGsm) {
      units = chars.map((c) => (basic.has(c) ? 1 : 2));
      single = 160;
      part = 153;
    } else {
      units = chars.map((c) => (c.codePointAt(0) > 0xffff ? 2 : 1));
      single = 70;
      part = 67;
    }
    const total = units.reduce((a, b) => a + b, 0);
    if (total <= single) return { count: 1, encoding: inGsm ? "GSM-7" : "Unicode (UCS-2)" };
    if (inBasic) return { count: Math.ceil(total / part), encoding: "GSM-7" };
    let parts = 1, used = 0;
    for (const size of units) {
      if (used + size > part) { parts += 1; used = 0; }
      used += size;
    }
    return { count: parts, encoding: inGsm ? "GSM-7" : "Unicode (UCS-2)" };
  }

  function init() {
    const textarea = document.getElementById("id_template");
    const counter = document.getElementById("message-counter");
    const data = document.getElementById("sms-alphabet");
    if (!textarea || !counter || !data) return;
    const alphabet = JSON.parse(data.textContent);
    const basic = new Set(Array.from(alphabet.basic));
    const extension = new Set(Array.from(alphabet.extension));
    function update() {
      const text = textarea.value;
      const result = segments(text, basic, extension);
      counter.querySelector(".counter-characters").textContent = Array.from(text).length;
      counter.querySelector(".counter-segments").textContent = result.count;
      counter.querySelector(".counter-encoding").textContent = result.encoding;
    }
    textarea.addEventListener("input", update);
    document.querySelectorAll(".placeholder-insert").forEach((button) => {
      button.addEventListener("click", () => {
        const name = button.dataset.placeholder.replace("<key>", "key");
        const token = "{{" + name + "}}";
        const start = textarea.selectionStart, end = textarea.selectionEnd;
        textarea.setRangeText(token, start, end, "end");
        textarea.focus();
        update();
      });
    });
    update();
  }
  document.addEventListener("DOMContentLoaded", init);
})();
