/* optbench dashboard: the JSON API client (conditional GETs, bearer token on 401), DOM helpers,
 * and the per-view lifecycle (timers and plots torn down when the view changes). */
(function () {
  "use strict";
  const OB = (window.OB = window.OB || {});
  const TOKEN_KEY = "optbench-token";
  OB.TERMINAL = ["succeeded", "failed", "cancelled"];
  OB.app = document.getElementById("app");

  class ApiError extends Error {
    constructor(status, body) {
      const detail = body && typeof body === "object" ? body.detail || body.title : body;
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }
  OB.ApiError = ApiError;

  /* ------------------------------------------------------------------ auth */

  let asking = null;

  /* Ask for an API token (once for all requests waiting on a 401); kept in sessionStorage, so it
   * lives as long as the tab. */
  function askToken(message) {
    if (asking) return asking;
    asking = new Promise((resolve) => {
      const input = OB.h("input", { type: "password", id: "token-input", autocomplete: "off", placeholder: "API token" });
      const dialog = OB.h(
        "form",
        { class: "token-dialog", id: "token-dialog" },
        OB.h("h2", {}, "This service needs an API token"),
        OB.h("p", { class: "muted" }, message || "Paste a token; it is kept for this tab only."),
        input,
        OB.h("div", { class: "actions" }, OB.h("button", { type: "submit", class: "primary" }, "Use token")),
      );
      const veil = OB.h("div", { class: "veil" }, dialog);
      dialog.addEventListener("submit", (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        veil.remove();
        asking = null;
        resolve();
      });
      document.body.appendChild(veil);
      input.focus();
    });
    return asking;
  }

  function authHeaders() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  /* fetch with the token; a 401 asks for one and retries. */
  async function authed(url, init) {
    for (let attempt = 0; ; attempt++) {
      const r = await fetch(url, { ...init, headers: { ...init.headers, ...authHeaders() } });
      if (r.status !== 401 || attempt > 3) return r;
      const had = !!sessionStorage.getItem(TOKEN_KEY);
      sessionStorage.removeItem(TOKEN_KEY);
      await askToken(had ? "That token was refused; paste another." : undefined);
    }
  }

  /* A JSON API call: {status, etag, data}; a 304 (matching etag) has no data. */
  OB.api = async function (path, { method = "GET", body, etag, query } = {}) {
    const headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const entries = Object.entries(query || {}).filter(([, v]) => v !== undefined && v !== null && v !== "");
    const qs = entries.length ? "?" + new URLSearchParams(entries).toString() : "";
    const r = await authed(path + qs, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      cache: "no-store",
    });
    if (r.status === 304) return { status: 304, etag };
    const text = await r.text();
    let data = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = text;
    }
    if (!r.ok) throw new ApiError(r.status, data);
    return { status: r.status, etag: r.headers.get("ETag"), data };
  };

  /* Download a file from the API (with the token) under a file name. */
  OB.fetchFile = async function (path, filename) {
    const r = await authed(path, { headers: {}, cache: "no-store" });
    if (!r.ok) throw new ApiError(r.status, await r.text());
    OB.download(await r.blob(), filename);
  };

  /* ------------------------------------------------------------------ DOM */

  OB.h = function (tag, attrs, ...children) {
    const el = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === null || v === undefined || v === false) return;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "color") el.style.background = v;
      else el.setAttribute(k, v === true ? "" : v);
    });
    children.flat().forEach((c) => {
      if (c === null || c === undefined || c === false) return;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return el;
  };
  const h = OB.h;

  OB.errorText = function (e) {
    if (e instanceof ApiError && e.body && Array.isArray(e.body.errors) && e.body.errors.length) {
      return e.message + "\n" + e.body.errors.map((x) => `• ${x.path}: ${x.message}`).join("\n");
    }
    return e.message || String(e);
  };

  OB.statusBadge = (status) => h("span", { class: `badge status-${status}` }, status);

  OB.countsText = function (counts) {
    return ["succeeded", "running", "queued", "failed", "cancelled"]
      .filter((k) => counts && counts[k])
      .map((k) => `${counts[k]} ${k}`)
      .join(" · ");
  };

  OB.when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

  /* A short id that links to its view, the full id in the tooltip. */
  OB.idLink = (kind, id, href) => h("a", { class: "id", href, title: `${kind} ${id}` }, `…${id.slice(-8)}`);

  OB.tags = (tags) => h("span", { class: "tags" }, (tags || []).map((t) => h("a", { class: "tag", href: `#/?tag=${encodeURIComponent(t)}` }, t)));

  /* A titled box around a plot, with its export buttons; returns [box, slot]. */
  OB.plotBox = function (title, name, getPlot, extra) {
    const slot = h("div", { class: "plot-slot" });
    const box = h(
      "div",
      { class: "plot-box" },
      h("div", { class: "plot-head" }, h("h3", {}, title), OB.exportButtons(getPlot, name)),
      slot,
      extra || null,
    );
    return [box, slot];
  };

  OB.notFound = function (what, id) {
    document.title = "Not found · optbench";
    OB.app.replaceChildren(
      h(
        "div",
        { class: "not-found", id: "not-found" },
        h("h1", {}, `No ${what} ${id}`),
        h("p", { class: "muted" }, `There is no ${what} with this id here: it may have been deleted, or the link is wrong.`),
        h("a", { class: "button", href: "#/" }, "All experiments"),
      ),
    );
  };

  /* ------------------------------------------------------------------ view lifecycle */

  let view = { timers: [], plots: [] };
  OB.view = () => view;

  /* Run fn now and every ms after it settles, until the view changes or fn returns "stop". */
  OB.every = function (ms, fn) {
    const state = { stopped: false };
    const tick = async () => {
      if (state.stopped) return;
      let result;
      try {
        result = await fn();
      } catch (e) {
        result = undefined;
      }
      if (result === "stop") state.stopped = true;
      if (!state.stopped) view.timers.push(setTimeout(tick, ms));
    };
    view.timers.push({ stop: () => (state.stopped = true) });
    tick();
    return state;
  };

  OB.track = function (plot) {
    view.plots.push(plot);
    return plot;
  };

  OB.leave = function () {
    view.timers.forEach((t) => (t && t.stop ? t.stop() : clearTimeout(t)));
    view.plots.forEach((p) => p.destroy());
    view = { timers: [], plots: [] };
  };
})();
