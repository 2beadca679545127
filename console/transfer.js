// The console's role-aware parts: what the signed-in key may do
// (GET /api/whoami), the keys page (admins), the link export buttons, and
// the import page (editors), which shows a dry run before the real import.
//
// Same rules as app.js: the token stays in sessionStorage and goes out as a
// Bearer header only; API text goes in with textContent; no inline script
// or style. app.js routes #/keys and #/import here (window.shortenerViews)
// and shares its error sentences (window.shortenerMessages).
"use strict";

(function () {
  const TOKEN_KEY = "shortener.admin_token";
  const API = new URL("../api/", location.href);
  const $ = (id) => document.getElementById(id);
  const token = () => sessionStorage.getItem(TOKEN_KEY);
  const known = { token: null, role: null };

  function message(code, status) {
    const messages = window.shortenerMessages || {};
    return messages[code] || `The request failed (HTTP ${status}).`;
  }

  function fail(err) {
    const box = $("error");
    box.textContent = err.detail && err.detail !== err.message ? `${err.message} (${err.detail})` : err.message;
    box.dataset.code = err.code || "client";
    box.hidden = false;
    $("notice").hidden = true;
  }

  function notice(text) {
    $("notice").textContent = text;
    $("notice").hidden = false;
    $("error").hidden = true;
  }

  async function call(method, path, options) {
    const opts = options || {};
    const headers = { Authorization: `Bearer ${token() || ""}` };
    let body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    } else if (opts.file !== undefined) {
      headers["Content-Type"] = opts.type || "application/octet-stream";
      body = opts.file;
    }
    let response;
    try {
      response = await fetch(new URL(path, API), {
        method,
        headers,
        body,
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
      });
    } catch (e) {
      throw Object.assign(new Error(message("network", 0)), { code: "network" });
    }
    if (!response.ok) {
      let code = `http_${response.status}`;
      let detail = "";
      try {
        const data = await response.json();
        code = (data.error && data.error.code) || code;
        detail = (data.error && data.error.message) || "";
      } catch (e) {
        // Not the API's error body: keep the status.
      }
      throw Object.assign(new Error(message(code, response.status)), { code, detail });
    }
    if (response.status === 204) return null;
    if (opts.blob) return response.blob();
    return response.json();
  }

  // ----------------------------------------------------------------- role

  // The signed-in key's role, asked once per token; body[data-role] hides
  // what the role cannot do (app.css: [data-needs]).
  async function role() {
    const current = token();
    if (!current) {
      known.token = null;
      known.role = null;
      delete document.body.dataset.role;
      return null;
    }
    if (known.token !== current) {
      const me = await call("GET", "whoami");
      known.token = current;
      known.role = me.role;
      document.body.dataset.role = me.role;
      $("whoami").textContent = me.id ? `${me.role} key ${me.id}` : `${me.role} (admin token)`;
    }
    return known.role;
  }

  const ROLES = ["viewer", "editor", "admin"];
  const may = (needed) => ROLES.indexOf(known.role) >= ROLES.indexOf(needed);

  // --------------------------------------------------------------- export

  async function exportLinks(format, button) {
    try {
      const blob = await call("GET", `export/links?format=${format}`, { blob: true });
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `links.${format}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      notice(`Exported the links as ${format.toUpperCase()}.`);
    } catch (err) {
      fail(err);
      button.focus();
    }
  }

  // ----------------------------------------------------------------- keys

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "never");

  async function loadKeys() {
    const list = await call("GET", "keys");
    const body = $("keys-body");
    body.replaceChildren();
    for (const key of list.keys) {
      const tr = el("tr");
      tr.dataset.id = key.id;
      tr.append(
        el("td", key.name),
        el("td", key.role),
        el("td", key.id, "slug"),
        el("td", when(key.created_at)),
        el("td", when(key.expires_at)),
        el("td", key.last_used_at ? when(key.last_used_at) : "not yet"),
      );
      const actions = el("td", null, "actions");
      const revoke = el("button", "Revoke", "danger small");
      revoke.type = "button";
      revoke.setAttribute("aria-label", `Revoke ${key.name}`);
      revoke.addEventListener("click", () => revokeKey(key));
      actions.append(revoke);
      tr.append(actions);
      body.append(tr);
    }
    $("keys-empty").hidden = list.keys.length > 0;
  }

  async function createKey(event) {
    event.preventDefault();
    const body = { name: $("key-name").value, role: $("key-role").value };
    const expires = $("key-expiry").value;
    if (expires) body.expires_at = new Date(expires).toISOString().replace(/\.\d{3}Z$/, "Z");
    try {
      const made = await call("POST", "keys", { json: body });
      $("key-made").hidden = false;
      $("key-secret").value = made.key;
      $("key-form").reset();
      notice(`Key ${made.name} (${made.role}) created. Copy it now: it is shown only once.`);
      $("key-secret").focus();
      $("key-secret").select();
      await loadKeys();
    } catch (err) {
      fail(err);
    }
  }

  async function revokeKey(key) {
    if (!window.confirm(`Revoke the key ${key.name}? Whatever uses it stops working.`)) return;
    try {
      await call("DELETE", `keys/${encodeURIComponent(key.id)}`);
      notice(`Revoked ${key.name}.`);
      await loadKeys();
    } catch (err) {
      fail(err);
    }
  }

  async function copySecret(button) {
    const input = $("key-secret");
    let ok = false;
    try {
      await navigator.clipboard.writeText(input.value);
      ok = true;
    } catch (e) {
      input.select();
      try {
        ok = document.execCommand("copy");
      } catch (e2) {
        ok = false;
      }
    }
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    setTimeout(() => {
      button.textContent = "Copy";
    }, 1500);
  }

  // --------------------------------------------------------------- import

  // The dry run's file and source: the real import runs only after one.
  const dry = { file: null, source: null };

  function renderReport(report, dryRun) {
    const box = $("import-report");
    box.hidden = false;
    $("import-report-title").textContent = dryRun ? "Dry run: nothing was written" : "Imported";
    const verb = dryRun ? "would be created" : "created";
    $("r-created").textContent = `${report.created} ${verb}`;
    $("r-skipped").textContent = `${report.skipped_existing} already here with the same target`;
    $("r-conflicts").textContent = `${report.conflicts.length} in conflict (left as they are)`;
    $("r-errors").textContent = `${report.errors.length} refused`;
    const list = $("import-problems");
    list.replaceChildren();
    for (const c of report.conflicts.slice(0, 100)) list.append(el("li", `${c.slug}: ${c.reason}`));
    for (const e of report.errors.slice(0, 100)) list.append(el("li", `line ${e.line}: ${e.reason}`));
  }

  async function runImport(dryRun) {
    const file = $("import-file").files[0];
    const source = $("import-source").value;
    if (!file) {
      fail(Object.assign(new Error("Choose a file to import first."), { code: "client" }));
      return;
    }
    const type = source === "csv" ? "text/csv" : "application/json";
    try {
      const report = await call("POST", `import?source=${source}&dry_run=${dryRun}`, { file, type });
      renderReport(report, dryRun);
      if (dryRun) {
        dry.file = file;
        dry.source = source;
        notice("Dry run done: check the report, then import for real.");
      } else {
        dry.file = null;
        notice(`Imported ${report.created} links.`);
      }
    } catch (err) {
      fail(err);
    }
    $("import-run").disabled = !(dry.file && dry.file === $("import-file").files[0] && dry.source === $("import-source").value);
  }

  function resetDryRun() {
    dry.file = null;
    $("import-run").disabled = true;
    $("import-report").hidden = true;
  }

  // ---------------------------------------------------------------- views

  function refuse() {
    fail(Object.assign(new Error(message("forbidden", 403)), { code: "forbidden" }));
    return true;
  }

  // Shows #/keys or #/import through app.js's `show`, or refuses what the
  // role may not do (nothing is shown then).
  async function route(hash, show) {
    await role();
    if (hash === "#/keys") {
      if (!may("admin")) return refuse();
      show("view-keys");
      await loadKeys();
      $("keys-title").focus();
      return true;
    }
    if (hash === "#/import") {
      if (!may("editor")) return refuse();
      show("view-import");
      $("import-title").focus();
      return true;
    }
    return false;
  }

  function wire() {
    $("export-csv").addEventListener("click", (e) => exportLinks("csv", e.target));
    $("export-json").addEventListener("click", (e) => exportLinks("json", e.target));
    $("key-form").addEventListener("submit", createKey);
    $("key-copy").addEventListener("click", (e) => copySecret(e.target));
    $("import-dry").addEventListener("click", () => runImport(true));
    $("import-run").addEventListener("click", () => runImport(false));
    $("import-file").addEventListener("change", resetDryRun);
    $("import-source").addEventListener("change", resetDryRun);
  }

  window.shortenerViews = { route, role };
  wire();
})();
