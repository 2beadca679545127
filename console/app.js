// The shortener console. Plain JavaScript, no build step.
//
// Rules kept here: the admin token lives in sessionStorage only and goes out
// as a Bearer header (never in a URL or a cookie); every text that comes from
// the API (slugs, target URLs, referrers, browsers) is put in the page with
// textContent, never parsed as HTML; no inline script or style (the CSP
// forbids both).
"use strict";

(function () {
  const TOKEN_KEY = "shortener.admin_token";
  const API = new URL("../api/", location.href);
  const PAGE_SIZE = 20;
  const DAY_MS = 86400000;

  // A sentence for every error code the API (or the network) can produce.
  const MESSAGES = {
    unauthorized: "The admin token or key was refused (wrong, expired or revoked). Check it and sign in again.",
    forbidden: "This key's role cannot do that; ask an admin for a key with more rights.",
    invalid_name: "A key name must be 1 to 64 printable characters.",
    invalid_role: "A key's role must be viewer, editor or admin.",
    api_disabled: "The API is switched off on this server: its admin_token is missing or refused; the server's log says why.",
    invalid_url: "That target URL is not accepted.",
    self_referencing_url: "That URL points back at this shortener; a short link cannot lead to a short link.",
    invalid_slug: "A slug is 3 to 64 characters from A–Z, a–z, 0–9, _ and -.",
    reserved_slug: "That slug is reserved for the app's own pages; pick another.",
    invalid_timestamp: "The expiry is not a valid date and time.",
    invalid_expiry: "The expiry must be in the future.",
    invalid_json: "The request was malformed.",
    empty_patch: "Nothing to save: change a field first.",
    slug_taken: "That slug is already taken; pick another.",
    not_found: "No such link: it may have been deleted.",
    link_expired: "This link has expired.",
    payload_too_large: "The request is too large.",
    unsupported_media_type: "The request was not sent as JSON.",
    invalid_limit: "The page size is not valid.",
    invalid_cursor: "That page position is no longer valid; showing the first page.",
    invalid_query: "The request's query string is not valid.",
    invalid_search: "The search text is too long (256 characters at most).",
    invalid_date: "Dates must be full days (YYYY-MM-DD).",
    invalid_date_range: "The first day must not be after the last day.",
    method_not_allowed: "The server does not allow that action.",
    misconfigured: "The server is misconfigured; its log says which setting.",
    internal: "Something went wrong on the server; it has been logged. Try again.",
    corrupt_record: "This link's stored record is damaged; it has been logged. Delete the link and create it again.",
    store_unavailable: "A store the server needs is unavailable; try again shortly.",
    // Redirect options and rules (console/rules.js).
    invalid_rule: "A redirect rule is not valid.",
    invalid_max_clicks: "The click limit must be a whole number of at least 1, or empty.",
    link_exhausted: "This link has reached its click limit.",
    network: "The server could not be reached. Check the connection and try again.",
    // Export and import.
    invalid_format: "An export is CSV or JSON.",
    invalid_source: "Pick the tool the file comes from: Shlink, YOURLS, Kutt, Bitly or CSV.",
    invalid_import: "The file is not an export of the tool picked; check the source and the file.",
    // tags and sorted lists
    invalid_tag: "A link has at most 10 tags, each 1 to 32 characters from a–z, 0–9 and -.",
    invalid_sort: "The list cannot be sorted that way.",
    invalid_order: "The list order must be ascending or descending.",
    cursor_expired: "The list changed too much while paging; showing the first page again.",
    tag_taken: "A tag with that name exists already; pick another name.",
  };
  window.shortenerMessages = MESSAGES;

  class ApiError extends Error {
    constructor(code, status, detail) {
      super(MESSAGES[code] || `The request failed (HTTP ${status}).`);
      this.code = code;
      this.status = status;
      this.detail = detail || "";
    }
  }

  const $ = (id) => document.getElementById(id);
  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // ------------------------------------------------------------- messages

  function showError(err) {
    const box = $("error");
    let text = err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
    if (err instanceof ApiError && err.detail && err.detail !== err.message) {
      text += ` (${err.detail})`;
    }
    box.textContent = text;
    box.dataset.code = err instanceof ApiError ? err.code : "client";
    box.hidden = false;
    $("notice").hidden = true;
  }

  function showNotice(text) {
    $("notice").textContent = text;
    $("notice").hidden = false;
    $("error").hidden = true;
  }

  function clearMessages() {
    $("error").hidden = true;
    $("notice").hidden = true;
  }

  // ------------------------------------------------------------------ API

  async function api(method, path, body, accept) {
    const headers = { Authorization: `Bearer ${token() || ""}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(new URL(path, API), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
      });
    } catch (e) {
      throw new ApiError("network", 0, "");
    }
    const type = response.headers.get("content-type") || "";
    if (!response.ok) {
      let code = `http_${response.status}`;
      let detail = "";
      if (type.includes("json")) {
        try {
          const data = await response.json();
          code = (data.error && data.error.code) || code;
          detail = (data.error && data.error.message) || "";
        } catch (e) {
          // Not the API's error body: keep the status.
        }
      }
      const err = new ApiError(code, response.status, detail);
      if (response.status === 401 && code === "unauthorized" && token()) {
        forget(err);
      }
      throw err;
    }
    if (response.status === 204) return null;
    if (accept === "blob") return response.blob();
    return response.json();
  }

  function forget(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.signedOut = reason;
    location.hash = "#/signin";
  }

  // --------------------------------------------------------------- helpers

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function when(iso) {
    if (!iso) return "never";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  // datetime-local value (local time) -> RFC 3339 UTC.
  function localToIso(value) {
    if (!value) return null;
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) throw new ApiError("invalid_timestamp", 0, "");
    return d.toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  // RFC 3339 -> datetime-local value (local time).
  function isoToLocal(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  const utcDay = (ms) => new Date(ms).toISOString().slice(0, 10);

  async function copyFrom(inputId, button) {
    const input = $(inputId);
    let ok = false;
    try {
      await navigator.clipboard.writeText(input.value);
      ok = true;
    } catch (e) {
      input.focus();
      input.select();
      try {
        ok = document.execCommand("copy");
      } catch (e2) {
        ok = false;
      }
    }
    const label = button.textContent;
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    setTimeout(() => {
      button.textContent = label;
    }, 1500);
  }

  // ---------------------------------------------------------------- views

  const state = {
    q: "",
    cursors: [""], // cursor of each page visited; the last is the current one
    next: null,
    link: null,
    chart: null,
    blobs: [],
    signedOut: null,
  };

  // Redirect options, rules and orphan visits live in rules.js.
  const ext = window.ShortenerRules;

  function show(view) {
    for (const id of ["view-signin", "view-links", "view-link", "view-keys", "view-import", "view-orphans"]) {
      $(id).hidden = id !== view;
    }
    $("nav").hidden = view === "view-signin";
  }

  function focusTitle(id) {
    const h = $(id);
    if (h) h.focus({ preventScroll: false });
  }

  async function route() {
    const hash = location.hash || "#/links";
    if (!token()) {
      show("view-signin");
      if (state.signedOut) {
        showError(state.signedOut);
        state.signedOut = null;
      }
      focusTitle("signin-title");
      $("token").focus();
      return;
    }
    const m = hash.match(/^#\/links\/([A-Za-z0-9_-]{3,64})$/);
    // The role-aware pages are transfer.js's (window.shortenerViews).
    const views = window.shortenerViews;
    try {
      if (views) await views.role().catch(() => null);
      if (views && (hash === "#/keys" || hash === "#/import")) {
        await views.route(hash, show);
      } else if (m) {
        await showLink(m[1]);
      } else if (hash === "#/orphans") {
        show("view-orphans");
        focusTitle("orphans-title");
        await ext.showOrphans(api);
      } else {
        if (hash !== "#/links") history.replaceState(null, "", "#/links");
        await showLinks();
      }
    } catch (err) {
      showError(err);
    }
  }

  // -------------------------------------------------------------- sign in

  async function signIn(event) {
    event.preventDefault();
    clearMessages();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      await api("GET", "links?limit=1");
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.signedOut = null;
      showError(err);
      $("token").select();
      return;
    }
    $("token").value = "";
    showNotice("Signed in.");
    location.hash = "#/links";
    if (location.hash === "#/links") await route();
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.cursors = [""];
    state.q = "";
    showNotice("Signed out: the token is forgotten.");
    location.hash = "#/signin";
  }

  // ---------------------------------------------------------------- links

  async function showLinks() {
    show("view-links");
    $("search").value = state.q;
    if (window.ConsoleTags) ConsoleTags.loadTags(api);
    await loadPage();
    focusTitle("links-title");
  }

  async function loadPage() {
    const cursor = state.cursors[state.cursors.length - 1];
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor) params.set("cursor", cursor);
    if (state.q) params.set("q", state.q);
    if (window.ConsoleTags) ConsoleTags.listParams(params); // tags.js: tag filter, sort
    let page;
    try {
      page = await api("GET", `links?${params}`);
    } catch (err) {
      if (err.code === "invalid_cursor" || err.code === "cursor_expired") state.cursors = [""];
      throw err;
    }
    state.next = page.next_cursor;
    renderLinks(page.links);
  }

  function renderLinks(links) {
    const body = $("links-body");
    body.replaceChildren();
    for (const link of links) {
      const tr = document.createElement("tr");
      const slugCell = el("td", null, "slug");
      slugCell.dataset.label = "Slug";
      const a = el("a", link.slug);
      a.href = `#/links/${encodeURIComponent(link.slug)}`;
      slugCell.append(a);
      const target = el("td", link.url, "url");
      target.dataset.label = "Target";
      const created = el("td", when(link.created_at));
      created.dataset.label = "Created";
      const expires = el("td", when(link.expires_at));
      expires.dataset.label = "Expires";
      const actions = el("td", null, "actions");
      const open = el("a", "Stats and edit");
      open.href = a.href;
      open.setAttribute("aria-label", `Stats and edit ${link.slug}`);
      const del = el("button", "Delete", "danger small");
      del.type = "button";
      del.dataset.needs = "editor";
      del.setAttribute("aria-label", `Delete ${link.slug}`);
      del.addEventListener("click", () => confirmDelete(link.slug, del));
      actions.append(open, del);
      tr.append(slugCell, target, created, expires, actions);
      if (window.ConsoleTags) ConsoleTags.row(tr, link, actions); // tags.js: clicks, tags
      body.append(tr);
    }
    $("links-empty").hidden = links.length > 0;
    $("links-empty").textContent = state.q ? "No link on this page matches the search." : "No links here.";
    const caption = state.q ? `Links matching “${state.q}”` : "All links";
    $("links-caption").textContent = window.ConsoleTags ? ConsoleTags.caption(caption) : caption;
    $("page-prev").disabled = state.cursors.length <= 1;
    $("page-next").disabled = !state.next;
    $("page-no").textContent = `Page ${state.cursors.length}`;
  }

  async function createLink(event) {
    event.preventDefault();
    clearMessages();
    const body = { url: $("create-url").value.trim() };
    const slug = $("create-slug").value.trim();
    if (slug) body.slug = slug;
    if (window.ConsoleTags) ConsoleTags.createBody(body); // tags.js
    try {
      const expires = localToIso($("create-expiry").value);
      if (expires) body.expires_at = expires;
      Object.assign(body, ext.read("create"));
      const link = await api("POST", "links", body);
      $("created").hidden = false;
      $("created-url").value = link.short_url;
      $("created-open").href = `#/links/${encodeURIComponent(link.slug)}`;
      $("create-form").reset();
      ext.fill("create", null);
      showNotice(`Created ${link.short_url}`);
      $("created-url").focus();
      $("created-url").select();
      await loadPage();
    } catch (err) {
      showError(err);
    }
  }

  async function search(event) {
    event.preventDefault();
    clearMessages();
    state.q = $("search").value.trim();
    state.cursors = [""];
    try {
      await loadPage();
    } catch (err) {
      showError(err);
    }
  }

  async function page(delta) {
    clearMessages();
    if (delta > 0 && state.next) state.cursors.push(state.next);
    if (delta < 0 && state.cursors.length > 1) state.cursors.pop();
    try {
      await loadPage();
    } catch (err) {
      showError(err);
    }
  }

  // --------------------------------------------------------------- delete

  function confirmDelete(slug, opener) {
    const dialog = $("confirm-delete");
    $("confirm-slug").textContent = slug;
    dialog.returnValue = "";
    dialog.addEventListener(
      "close",
      async () => {
        if (opener && document.body.contains(opener)) opener.focus();
        if (dialog.returnValue !== "delete") return;
        try {
          await api("DELETE", `links/${encodeURIComponent(slug)}`);
          showNotice(`Deleted ${slug}.`);
          if (location.hash === "#/links") {
            await loadPage();
          } else {
            location.hash = "#/links";
          }
        } catch (err) {
          showError(err);
        }
      },
      { once: true },
    );
    dialog.showModal();
    $("confirm-cancel").focus();
  }

  // ----------------------------------------------------------- link page

  function revokeBlobs() {
    for (const url of state.blobs) URL.revokeObjectURL(url);
    state.blobs = [];
  }

  async function showLink(slug) {
    show("view-link");
    revokeBlobs();
    const link = await api("GET", `links/${encodeURIComponent(slug)}`);
    state.link = link;
    $("link-title").textContent = link.slug;
    $("link-short").value = link.short_url;
    $("link-target").textContent = link.url;
    $("link-created").textContent = when(link.created_at);
    $("link-expires").textContent = when(link.expires_at);
    $("edit-url").value = link.url;
    $("edit-expiry").value = isoToLocal(link.expires_at);
    $("edit-no-expiry").checked = !link.expires_at;
    $("edit-expiry").disabled = !link.expires_at;
    ext.fill("edit", link);
    ext.showFacts(link);
    if (window.ConsoleTags) ConsoleTags.showLink(link); // tags.js
    if (!$("range-from").value || !$("range-to").value) {
      const now = Date.now();
      $("range-to").value = utcDay(now);
      $("range-from").value = utcDay(now - 29 * DAY_MS);
    }
    focusTitle("link-title");
    await Promise.all([loadStats(), loadQr()]);
  }

  // The SVG comes from the API; the PNG is drawn from it here, at twice its
  // size, so the component carries no PNG encoder.
  async function loadQr() {
    const slug = state.link.slug;
    const svg = await api("GET", `links/${encodeURIComponent(slug)}/qr`, undefined, "blob");
    const svgUrl = URL.createObjectURL(svg);
    state.blobs.push(svgUrl);
    const img = $("qr-img");
    $("qr-png").hidden = true;
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("The QR code could not be shown."));
      img.src = svgUrl;
    });
    $("qr-svg").href = svgUrl;
    $("qr-svg").download = `${slug}-qr.svg`;
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth * 2;
    canvas.height = img.naturalHeight * 2;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const png = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    if (!png || state.link.slug !== slug) return;
    const pngUrl = URL.createObjectURL(png);
    state.blobs.push(pngUrl);
    $("qr-png").href = pngUrl;
    $("qr-png").download = `${slug}-qr.png`;
    $("qr-png").hidden = false;
  }

  async function loadStats() {
    const from = $("range-from").value;
    const to = $("range-to").value;
    const params = new URLSearchParams({ from, to });
    const stats = await api("GET", `links/${encodeURIComponent(state.link.slug)}/stats?${params}`);
    $("t-total").textContent = stats.total;
    $("t-humans").textContent = stats.humans;
    $("t-bots").textContent = stats.bots;
    $("t-visitors").textContent = stats.unique_visitors;
    renderTop("top-referrers", stats.referrers, (r) => r.host || "(direct or hidden)");
    renderTop("top-browsers", stats.browsers, (b) => b.name);
    renderTop("top-os", stats.operating_systems, (o) => o.name);
    renderDaily(from, to, stats.daily);
    ext.renderRuleStats(stats.rules);
  }

  function renderTop(id, rows, name) {
    const list = $(id);
    list.replaceChildren();
    for (const row of rows.slice(0, 10)) {
      const li = el("li");
      li.append(el("span", name(row), "name"), el("span", row.clicks, "n"));
      list.append(li);
    }
    if (!rows.length) list.append(el("li", "No clicks in these days.", "none"));
  }

  function renderDaily(from, to, daily) {
    const byDay = new Map(daily.map((d) => [d.date, d]));
    const xs = [];
    const humans = [];
    const bots = [];
    const start = Date.parse(`${from}T00:00:00Z`);
    const end = Date.parse(`${to}T00:00:00Z`);
    const body = $("daily-body");
    body.replaceChildren();
    for (let t = start; t <= end && xs.length < 3660; t += DAY_MS) {
      const day = utcDay(t);
      const row = byDay.get(day);
      xs.push(t / 1000);
      humans.push(row ? row.humans : 0);
      bots.push(row ? row.bots : 0);
      if (row) {
        const tr = el("tr");
        tr.append(el("td", day), el("td", row.humans), el("td", row.bots));
        body.append(tr);
      }
    }
    if (!body.children.length) {
      const tr = el("tr");
      const td = el("td", "No clicks in these days.");
      td.colSpan = 3;
      tr.append(td);
      body.append(tr);
    }
    drawChart([xs, humans, bots]);
  }

  function chartWidth() {
    return Math.max(280, $("chart").clientWidth || 600);
  }

  function drawChart(data) {
    const xs = data[0];
    if (state.chart) {
      state.chart.destroy();
      state.chart = null;
    }
    if (typeof uPlot === "undefined" || !xs.length) return;
    const opts = {
      width: chartWidth(),
      height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: {
        // The chosen days, half a day either side (uPlot alone widens a
        // single day to years).
        x: { time: true, range: () => [xs[0] - 43200, xs[xs.length - 1] + 43200] },
        y: { range: (u, min, max) => [0, Math.max(1, max)] },
      },
      axes: [
        {
          // Whole days only: ticks are days, weeks, months or years apart.
          incrs: [1, 2, 7, 14, 30, 91, 182, 365].map((d) => d * 86400),
          values: (u, vals) => {
            const sameYear = utcDay(xs[0] * 1000).slice(0, 4) === utcDay(xs[xs.length - 1] * 1000).slice(0, 4);
            return vals.map((v) => (sameYear ? utcDay(v * 1000).slice(5) : utcDay(v * 1000)));
          },
        },
        { values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? v : "")) },
      ],
      series: [
        { label: "Day", value: (u, ts) => (ts == null ? "" : utcDay(ts * 1000)) },
        { label: "Humans", stroke: "#1f4e8c", fill: "rgba(31,78,140,0.12)", width: 2 },
        { label: "Bots", stroke: "#b5591b", width: 2, dash: [6, 4] },
      ],
    };
    state.chart = new uPlot(opts, data, $("chart"));
  }

  // ----------------------------------------------------------------- edit

  async function saveEdit(event) {
    event.preventDefault();
    clearMessages();
    const link = state.link;
    const patch = {};
    const url = $("edit-url").value.trim();
    if (url !== link.url) patch.url = url;
    try {
      const expires = $("edit-no-expiry").checked ? null : localToIso($("edit-expiry").value);
      if ($("edit-no-expiry").checked) {
        if (link.expires_at) patch.expires_at = null;
      } else if (!expires) {
        throw new ApiError("invalid_timestamp", 0, "Pick a date and time, or tick “Never expires”.");
      } else if (!link.expires_at || Date.parse(expires) !== Date.parse(link.expires_at)) {
        patch.expires_at = expires;
      }
      Object.assign(patch, ext.changes("edit", link));
      if (window.ConsoleTags) ConsoleTags.patch(patch, link); // tags.js
      if (!Object.keys(patch).length) throw new ApiError("empty_patch", 0, "");
      const updated = await api("PATCH", `links/${encodeURIComponent(link.slug)}`, patch);
      state.link = Object.assign({}, link, updated);
      $("link-target").textContent = updated.url;
      $("link-expires").textContent = when(updated.expires_at);
      $("edit-url").value = updated.url;
      $("edit-expiry").value = isoToLocal(updated.expires_at);
      ext.fill("edit", updated);
      ext.showFacts(updated);
      if (window.ConsoleTags) ConsoleTags.showLink(updated);
      showNotice(`Saved: ${updated.short_url} now leads to ${updated.url}`);
    } catch (err) {
      showError(err);
    }
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("create-form").addEventListener("submit", createLink);
    $("search-form").addEventListener("submit", search);
    $("search-clear").addEventListener("click", (e) => {
      $("search").value = "";
      search(e);
    });
    if (window.ConsoleTags) {
      ConsoleTags.wire(async () => {
        clearMessages();
        state.cursors = [""];
        try {
          await loadPage();
        } catch (err) {
          showError(err);
        }
      });
    }
    $("page-prev").addEventListener("click", () => page(-1));
    $("page-next").addEventListener("click", () => page(1));
    $("range-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      clearMessages();
      try {
        await loadStats();
      } catch (err) {
        showError(err);
      }
    });
    $("edit-form").addEventListener("submit", saveEdit);
    $("edit-no-expiry").addEventListener("change", () => {
      $("edit-expiry").disabled = $("edit-no-expiry").checked;
    });
    ext.wire(api, showError);
    $("delete-link").addEventListener("click", () => confirmDelete(state.link.slug, $("delete-link")));
    for (const button of document.querySelectorAll("button.copy")) {
      button.addEventListener("click", () => copyFrom(button.dataset.copy, button));
    }
    $("skip").addEventListener("click", (e) => {
      e.preventDefault();
      $("main").focus();
    });
    let resize = null;
    window.addEventListener("resize", () => {
      clearTimeout(resize);
      resize = setTimeout(() => {
        if (state.chart) state.chart.setSize({ width: chartWidth(), height: 240 });
      }, 150);
    });
    window.addEventListener("hashchange", () => {
      if (location.hash !== "#/signin" || !token()) route();
    });
  }

  wire();
  route();
})();
