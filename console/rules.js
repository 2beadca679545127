// The console's redirect options (forward_query, max_clicks, valid_from,
// rules) on the create and edit forms, the rules' clicks in a link's stats,
// and the orphan-visits page. app.js calls these through
// window.ShortenerRules; the same rules as app.js hold here: API text goes
// in with textContent only, no inline script or style.
"use strict";

window.ShortenerRules = (function () {
  const $ = (id) => document.getElementById(id);
  const DEVICES = [
    ["", "Any device"],
    ["android", "Android"],
    ["ios", "iOS"],
    ["mobile", "Any phone"],
    ["desktop", "Desktop"],
  ];
  const MAX_RULES = 10;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // datetime-local (local time) <-> RFC 3339 UTC.
  function localToIso(value) {
    if (!value) return null;
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return value; // the API names the field
    return d.toISOString().replace(/\.\d{3}Z$/, "Z");
  }
  function isoToLocal(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  // "a=1&b=2" <-> {"a": "1", "b": "2"}.
  function parseQuery(text) {
    const out = {};
    for (const [k, v] of new URLSearchParams(text.trim())) out[k] = v;
    return out;
  }
  function formatQuery(query) {
    return new URLSearchParams(query || {}).toString();
  }

  // ----------------------------------------------------------- rules editor

  function addRule(prefix, rule) {
    const list = $(`${prefix}-rules`);
    const n = list.children.length;
    if (n >= MAX_RULES) return;
    const li = el("li", null, "rule");
    const id = `${prefix}-rule-${Date.now().toString(36)}-${n}`;
    const field = (labelText, input) => {
      const box = el("div", null, "field");
      input.id = `${id}-${input.name}`;
      const label = el("label", labelText);
      label.htmlFor = input.id;
      box.append(label, input);
      return box;
    };
    const url = el("input");
    url.type = "url";
    url.name = "url";
    url.required = true;
    url.spellcheck = false;
    url.placeholder = "https://example.com/for-these-visitors";
    url.value = (rule && rule.url) || "";
    const device = el("select");
    device.name = "device";
    for (const [value, text] of DEVICES) {
      const option = el("option", text);
      option.value = value;
      device.append(option);
    }
    device.value = (rule && rule.device) || "";
    const language = el("input");
    language.name = "language";
    language.placeholder = "de";
    language.maxLength = 8;
    language.value = (rule && rule.language) || "";
    const query = el("input");
    query.name = "query";
    query.placeholder = "src=mail&v=2";
    query.spellcheck = false;
    query.value = formatQuery(rule && rule.query);
    const remove = el("button", "Remove rule", "small");
    remove.type = "button";
    remove.addEventListener("click", () => {
      li.remove();
      renumber(prefix);
    });
    li.append(
      el("span", "", "rule-no"),
      field("Then go to", url),
      field("Device", device),
      field("Language", language),
      field("Query (key=value&…)", query),
      remove,
    );
    list.append(li);
    renumber(prefix);
  }

  function renumber(prefix) {
    const list = $(`${prefix}-rules`);
    [...list.children].forEach((li, i) => {
      li.querySelector(".rule-no").textContent = `Rule ${i + 1}`;
      li.querySelector("button").setAttribute("aria-label", `Remove rule ${i + 1}`);
    });
    $(`${prefix}-add-rule`).disabled = list.children.length >= MAX_RULES;
  }

  function readRules(prefix) {
    return [...$(`${prefix}-rules`).children].map((li) => {
      const value = (name) => li.querySelector(`[name="${name}"]`).value.trim();
      const rule = { url: value("url") };
      if (value("device")) rule.device = value("device");
      if (value("language")) rule.language = value("language");
      const query = parseQuery(value("query"));
      if (Object.keys(query).length) rule.query = query;
      return rule;
    });
  }

  // --------------------------------------------------------------- options

  // The options a create sends (only what differs from the defaults).
  function read(prefix) {
    const out = {};
    if (!$(`${prefix}-forward-query`).checked) out.forward_query = false;
    const max = $(`${prefix}-max-clicks`).value.trim();
    if (max) out.max_clicks = Number(max);
    const from = localToIso($(`${prefix}-valid-from`).value);
    if (from) out.valid_from = from;
    const rules = readRules(prefix);
    if (rules.length) out.rules = rules;
    return out;
  }

  // What an edit changes against `link`.
  function changes(prefix, link) {
    const out = {};
    const forward = $(`${prefix}-forward-query`).checked;
    if (forward !== link.forward_query) out.forward_query = forward;
    const raw = $(`${prefix}-max-clicks`).value.trim();
    const max = raw ? Number(raw) : null;
    if (max !== link.max_clicks) out.max_clicks = max;
    const from = localToIso($(`${prefix}-valid-from`).value);
    if ((from || null) !== (link.valid_from || null) && !(from && link.valid_from && Date.parse(from) === Date.parse(link.valid_from))) {
      out.valid_from = from || null;
    }
    const rules = readRules(prefix);
    if (JSON.stringify(rules) !== JSON.stringify(link.rules || [])) out.rules = rules;
    return out;
  }

  function fill(prefix, link) {
    $(`${prefix}-forward-query`).checked = link ? link.forward_query !== false : true;
    $(`${prefix}-max-clicks`).value = link && link.max_clicks ? String(link.max_clicks) : "";
    $(`${prefix}-valid-from`).value = link ? isoToLocal(link.valid_from) : "";
    $(`${prefix}-rules`).replaceChildren();
    for (const rule of (link && link.rules) || []) addRule(prefix, rule);
    renumber(prefix);
  }

  // The facts on a link's page.
  function showFacts(link) {
    $("link-forward").textContent = link.forward_query ? "yes" : "no";
    $("link-max-clicks").textContent = link.max_clicks ? String(link.max_clicks) : "no limit";
    $("link-valid-from").textContent = link.valid_from ? new Date(link.valid_from).toLocaleString() : "from its creation";
    $("link-rules").textContent = link.rules && link.rules.length ? String(link.rules.length) : "none";
  }

  function renderRuleStats(rules) {
    const list = $("top-rules");
    list.replaceChildren();
    for (const row of rules || []) {
      const li = el("li");
      li.append(el("span", `Rule ${row.index + 1}`, "name"), el("span", row.clicks, "n"));
      list.append(li);
    }
    if (!rules || !rules.length) list.append(el("li", "No clicks served by a rule in these days.", "none"));
  }

  // ---------------------------------------------------------- orphan visits

  async function showOrphans(api) {
    if (!$("orphans-from").value || !$("orphans-to").value) {
      const now = Date.now();
      $("orphans-to").value = new Date(now).toISOString().slice(0, 10);
      $("orphans-from").value = new Date(now - 29 * 86400000).toISOString().slice(0, 10);
    }
    const params = new URLSearchParams({ from: $("orphans-from").value, to: $("orphans-to").value });
    const report = await api("GET", `orphans?${params}`);
    $("o-total").textContent = report.total;
    const daily = $("orphans-daily");
    daily.replaceChildren();
    for (const d of report.daily) {
      const tr = el("tr");
      tr.append(el("td", d.date), el("td", d.visits));
      daily.append(tr);
    }
    if (!report.daily.length) {
      const tr = el("tr");
      const td = el("td", "No orphan visits in these days.");
      td.colSpan = 2;
      tr.append(td);
      daily.append(tr);
    }
    const paths = $("orphans-paths");
    paths.replaceChildren();
    for (const p of report.paths) {
      const li = el("li");
      li.append(el("span", p.path, "name"), el("span", p.visits, "n"));
      paths.append(li);
    }
    if (!report.paths.length) paths.append(el("li", "No orphan visits in these days.", "none"));
  }

  function wire(api, showError) {
    for (const prefix of ["create", "edit"]) {
      $(`${prefix}-add-rule`).addEventListener("click", () => addRule(prefix));
    }
    $("orphans-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await showOrphans(api);
      } catch (err) {
        showError(err);
      }
    });
  }

  return { read, changes, fill, showFacts, renderRuleStats, showOrphans, wire };
})();
