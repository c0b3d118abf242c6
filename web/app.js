/* optbench dashboard: hash-routed views over the JSON API (/v1). Polls with If-None-Match, so an
 * unchanged experiment costs a 304 and no re-render; curves show partial results while running. */
(function () {
  "use strict";
  const OB = window.OB;
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const app = document.getElementById("app");
  const EXAMPLE = {
    name: "adam-vs-momentum",
    description: "Adam at two learning rates against SGD with momentum on the 2-D Rosenbrock valley.",
    problems: [{ name: "rosenbrock", dim: 2, init: [-1.5, 2.0] }],
    optimizers: [
      { name: "adam", lr: [0.01, 0.1] },
      { name: "sgd", lr: 0.001, momentum: 0.9 },
    ],
    schedules: [{ name: "constant" }],
    seeds: [0, 1, 2],
    steps: 300,
    target_loss: 0.01,
  };

  let view = { timers: [], plots: [] };

  /* ------------------------------------------------------------------ helpers */

  class ApiError extends Error {
    constructor(status, body) {
      const detail = body && typeof body === "object" ? body.detail || body.title : body;
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, { method = "GET", body, etag, query } = {}) {
    const headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const qs = query ? "?" + new URLSearchParams(query).toString() : "";
    const r = await fetch(path + qs, {
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
      /* not JSON: keep the text */
    }
    if (!r.ok) throw new ApiError(r.status, data);
    return { status: r.status, etag: r.headers.get("ETag"), data };
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === null || v === undefined || v === false) return;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else el.setAttribute(k, v === true ? "" : v);
    });
    children.flat().forEach((c) => {
      if (c === null || c === undefined || c === false) return;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return el;
  }

  function errorText(e) {
    if (e instanceof ApiError && e.body && Array.isArray(e.body.errors) && e.body.errors.length) {
      return e.message + "\n" + e.body.errors.map((x) => `• ${x.path}: ${x.message}`).join("\n");
    }
    return e.message || String(e);
  }

  function every(ms, fn) {
    let stopped = false;
    const tick = async () => {
      if (stopped) return;
      try {
        await fn();
      } finally {
        if (!stopped) view.timers.push(setTimeout(tick, ms));
      }
    };
    tick();
    view.timers.push({ stop: () => (stopped = true) });
  }

  function leave() {
    view.timers.forEach((t) => (t && t.stop ? t.stop() : clearTimeout(t)));
    view.plots.forEach((p) => p.destroy());
    view = { timers: [], plots: [] };
  }

  function statusBadge(status) {
    return h("span", { class: `badge status-${status}` }, status);
  }

  function countsText(counts) {
    return ["succeeded", "running", "queued", "failed", "cancelled"]
      .filter((k) => counts && counts[k])
      .map((k) => `${counts[k]} ${k}`)
      .join(" · ");
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "–";
  }

  /* ------------------------------------------------------------------ list */

  function listView() {
    const body = h("tbody");
    const msg = h("p", { class: "muted" }, "Loading…");
    app.replaceChildren(
      h("div", { class: "title-row" }, h("h1", {}, "Experiments"), h("a", { class: "button", href: "#/new" }, "New experiment")),
      msg,
      h(
        "table",
        { class: "grid", id: "experiment-list" },
        h("thead", {}, h("tr", {}, ["Name", "Status", "Progress", "Runs", "Created"].map((t) => h("th", {}, t)))),
        body,
      ),
    );
    let etag = null;
    every(2000, async () => {
      try {
        const r = await api("v1/experiments", { etag, query: { limit: 100 } });
        if (r.status === 304) return;
        etag = r.etag;
        const items = r.data.items || [];
        msg.textContent = items.length ? "" : "No experiments yet — submit one.";
        body.replaceChildren(
          ...items.map((e) =>
            h(
              "tr",
              { "data-id": e.id },
              h("td", {}, h("a", { href: `#/experiments/${e.id}` }, e.name)),
              h("td", {}, statusBadge(e.status)),
              h("td", {}, h("progress", { max: 1, value: e.progress || 0 }), " ", `${Math.round((e.progress || 0) * 100)}%`),
              h("td", {}, `${e.total_runs}`, h("span", { class: "muted" }, " " + countsText(e.counts))),
              h("td", {}, when(e.created_at)),
            ),
          ),
        );
      } catch (e) {
        msg.textContent = "Cannot load experiments: " + errorText(e);
      }
    });
  }

  /* ------------------------------------------------------------------ new experiment */

  function newView() {
    const text = h("textarea", { id: "spec-text", spellcheck: "false", rows: 24 });
    text.value = JSON.stringify(EXAMPLE, null, 2);
    const msg = h("pre", { id: "form-msg", class: "message" });
    const catalogEl = h("div", { id: "catalog" }, h("p", { class: "muted" }, "Loading catalog…"));

    function parsed() {
      try {
        return JSON.parse(text.value);
      } catch (e) {
        msg.className = "message error";
        msg.textContent = "The spec is not valid JSON: " + e.message;
        return undefined;
      }
    }

    async function dryRun() {
      const spec = parsed();
      if (spec === undefined) return;
      try {
        const r = await api("v1/experiments", { method: "POST", body: spec, query: { dry_run: "true" } });
        msg.className = "message ok";
        msg.textContent = `Valid: ${r.data.run_count} runs.`;
      } catch (e) {
        msg.className = "message error";
        msg.textContent = errorText(e);
      }
    }

    async function submit() {
      const spec = parsed();
      if (spec === undefined) return;
      try {
        const r = await api("v1/experiments", { method: "POST", body: spec });
        location.hash = `#/experiments/${r.data.id}`;
      } catch (e) {
        msg.className = "message error";
        msg.textContent = errorText(e);
      }
    }

    app.replaceChildren(
      h("h1", {}, "New experiment"),
      h(
        "div",
        { class: "two-col" },
        h(
          "div",
          {},
          h("p", { class: "muted" }, "Lists of problems, optimizers, schedules and seeds; a list where one hyper-parameter value is expected is a grid."),
          text,
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", id: "dry-run", onclick: dryRun }, "Validate (dry run)"),
            h("button", { type: "button", id: "submit-spec", class: "primary", onclick: submit }, "Submit"),
          ),
          msg,
        ),
        h("aside", {}, h("h2", {}, "Catalog"), catalogEl),
      ),
    );

    api("v1/catalog")
      .then((r) => renderCatalog(catalogEl, r.data, text))
      .catch((e) => (catalogEl.textContent = "Cannot load the catalog: " + errorText(e)));
  }

  function renderCatalog(el, catalog, text) {
    const detail = h("div", { class: "catalog-detail" });
    const lists = ["problems", "optimizers", "schedules"].map((kind) =>
      h(
        "div",
        {},
        h("h3", {}, kind),
        h(
          "div",
          { class: "chips" },
          (catalog[kind] || []).map((entry) =>
            h("button", { type: "button", class: "chip", onclick: () => showEntry(kind, entry) }, entry.name),
          ),
        ),
      ),
    );

    function showEntry(kind, entry) {
      const props = (entry.schema && entry.schema.properties) || {};
      const rows = Object.entries(props)
        .filter(([k]) => k !== "name")
        .map(([k, p]) =>
          h(
            "tr",
            {},
            h("td", {}, h("code", {}, k), (entry.required || []).includes(k) ? h("span", { class: "req" }, " *") : null),
            h("td", {}, JSON.stringify(entry.defaults ? entry.defaults[k] : undefined) ?? "–"),
            h("td", { class: "muted" }, p.description || constraints(p)),
          ),
        );
      detail.replaceChildren(
        h("h3", {}, `${entry.name}`),
        h("p", {}, entry.summary || ""),
        h("table", { class: "grid small" }, h("thead", {}, h("tr", {}, h("th", {}, "field"), h("th", {}, "default"), h("th", {}, "notes"))), h("tbody", {}, rows)),
        h(
          "button",
          {
            type: "button",
            onclick: () => {
              try {
                const spec = JSON.parse(text.value);
                const item = { name: entry.name };
                (entry.required || []).forEach((k) => {
                  if (k !== "name") item[k] = entry.defaults && k in entry.defaults ? entry.defaults[k] : null;
                });
                spec[kind] = (spec[kind] || []).concat([item]);
                text.value = JSON.stringify(spec, null, 2);
              } catch (e) {
                detail.appendChild(h("p", { class: "error" }, "Fix the spec's JSON first."));
              }
            },
          },
          `Add to ${kind}`,
        ),
      );
    }
    el.replaceChildren(...lists, detail);
  }

  function constraints(p) {
    const out = [];
    const walk = (s) => {
      if (!s || typeof s !== "object") return;
      ["exclusiveMinimum", "minimum", "maximum", "exclusiveMaximum", "enum", "minItems"].forEach((k) => {
        if (k in s) out.push(`${k} ${JSON.stringify(s[k])}`);
      });
      if (s.type) out.push(s.type);
      (s.anyOf || []).forEach(walk);
    };
    walk(p);
    return [...new Set(out)].join(", ");
  }

  /* ------------------------------------------------------------------ experiment */

  function experimentView(id) {
    const st = {
      exp: null,
      expEtag: null,
      summary: null,
      sumEtag: null,
      metric: "final_loss",
      baseline: "",
      xAxis: "step",
      logY: true,
      sortKey: "metric_mean",
      sortDir: 1,
      scope: "overall",
    };
    const el = {
      name: h("h1", { id: "exp-name" }, "…"),
      status: h("span", { id: "exp-status" }),
      progress: h("progress", { id: "exp-progress", max: 1, value: 0 }),
      counts: h("span", { id: "exp-counts", class: "muted" }),
      cancel: h("button", { type: "button", id: "cancel-btn", class: "danger", onclick: cancel }, "Cancel"),
      desc: h("p", { class: "muted" }),
      msg: h("p", { class: "error" }),
      curves: h("div", { id: "curves", class: "plots" }),
      lrs: h("div", { id: "lr-curves", class: "plots" }),
      table: h("table", { id: "summary-table", class: "grid sortable" }),
      profile: h("div", { id: "profile-plot" }),
      ecdf: h("div", { id: "ecdf-plot" }),
      compare: h("div", { id: "comparisons" }),
      tuning: h("div", { id: "tuning", class: "plots" }),
      contours: h("div", { id: "contours", class: "plots" }),
      spec: h("pre", { id: "exp-spec" }),
      metricSel: h("select", { id: "metric-select" }),
      baselineSel: h("select", { id: "baseline-select" }),
      scopeSel: h("select", { id: "scope-select" }),
    };
    const toggle = (label, id, options, get, set) =>
      h(
        "label",
        { class: "toggle" },
        label + " ",
        h(
          "select",
          { id, onchange: (ev) => { set(ev.target.value); renderCurves(); } },
          options.map(([v, t]) => h("option", { value: v, selected: get() === v }, t)),
        ),
      );

    el.metricSel.addEventListener("change", () => {
      st.metric = el.metricSel.value;
      refreshSummary(true);
    });
    el.baselineSel.addEventListener("change", () => {
      st.baseline = el.baselineSel.value;
      refreshSummary(true);
    });
    el.scopeSel.addEventListener("change", () => {
      st.scope = el.scopeSel.value;
      renderRankings();
    });

    const section = (id, title, ...children) => h("section", { id }, h("h2", {}, title), ...children);
    app.replaceChildren(
      h(
        "div",
        { class: "exp-head" },
        el.name,
        el.status,
        h("div", { class: "progress-row" }, el.progress, el.counts),
        h(
          "div",
          { class: "actions" },
          el.cancel,
          h("a", { class: "button", href: `v1/experiments/${id}/runs.csv`, download: `${id}.csv` }, "Runs CSV"),
          h("a", { class: "button", href: `v1/experiments/${id}/runs.json`, target: "_blank" }, "Runs JSON"),
        ),
      ),
      el.desc,
      el.msg,
      section(
        "sec-curves",
        "Loss curves",
        h(
          "div",
          { class: "controls" },
          toggle("x axis", "x-axis", [["step", "step"], ["wall", "wall time (s)"]], () => st.xAxis, (v) => (st.xAxis = v)),
          toggle("y axis", "y-axis", [["log", "log"], ["linear", "linear"]], () => (st.logY ? "log" : "linear"), (v) => (st.logY = v === "log")),
          h("span", { class: "muted" }, "mean across seeds, band = min–max"),
        ),
        el.curves,
      ),
      section("sec-lr", "Learning-rate schedules", el.lrs),
      section(
        "sec-summary",
        "Summary",
        h("div", { class: "controls" }, h("label", {}, "metric ", el.metricSel), h("span", { class: "muted" }, "click a column to sort")),
        h("div", { class: "scroll" }, el.table),
      ),
      section(
        "sec-rankings",
        "Rankings",
        h("div", { class: "controls" }, h("label", {}, "scope ", el.scopeSel)),
        h("div", { class: "two-col" }, h("div", {}, h("h3", {}, "Performance profile"), el.profile), h("div", {}, h("h3", {}, "Runtime ECDF (targets reached)"), el.ecdf)),
      ),
      section("sec-compare", "Pairwise comparison", h("div", { class: "controls" }, h("label", {}, "baseline ", el.baselineSel)), el.compare),
      section("sec-tuning", "Tuning", el.tuning),
      section("sec-contours", "Loss landscapes (2-D problems)", el.contours),
      h("details", {}, h("summary", {}, "Spec"), el.spec),
    );

    async function cancel() {
      el.cancel.disabled = true;
      try {
        const r = await api(`v1/experiments/${id}/cancel`, { method: "POST" });
        st.exp = r.data;
        st.expEtag = null;
        renderHead();
      } catch (e) {
        el.msg.textContent = "Cancel failed: " + errorText(e);
        el.cancel.disabled = false;
      }
    }

    function renderHead() {
      const e = st.exp;
      document.title = `${e.name} · optbench`;
      el.name.textContent = e.name;
      el.status.replaceChildren(statusBadge(e.status));
      el.progress.value = e.progress || 0;
      el.counts.textContent = ` ${Math.round((e.progress || 0) * 100)}% — ${e.total_runs} runs: ${countsText(e.counts)}`;
      el.cancel.hidden = TERMINAL.includes(e.status);
      el.cancel.disabled = !!e.cancel_requested_at;
      el.desc.textContent = e.description || "";
      if (e.spec) el.spec.textContent = JSON.stringify(e.spec, null, 2);
    }

    async function refreshSummary(reset) {
      if (reset) st.sumEtag = null;
      const query = { metric: st.metric, max_points: 300 };
      if (st.baseline) query.baseline = st.baseline;
      try {
        const r = await api(`v1/experiments/${id}/summary`, { etag: st.sumEtag, query });
        if (r.status === 304) return;
        st.summary = r.data;
        st.sumEtag = r.etag;
        el.msg.textContent = "";
        renderSummary();
      } catch (e) {
        el.msg.textContent = "Cannot load the summary: " + errorText(e);
      }
    }

    every(1000, async () => {
      if (st.exp && TERMINAL.includes(st.exp.status) && st.summary) return;
      try {
        const r = await api(`v1/experiments/${id}`, { etag: st.expEtag });
        if (r.status !== 304) {
          st.exp = r.data;
          st.expEtag = r.etag;
          renderHead();
          await refreshSummary(false);
        }
      } catch (e) {
        el.msg.textContent = e.status === 404 ? `No experiment ${id}.` : "Cannot load: " + errorText(e);
      }
    });

    /* -------------------------------------------- rendering */

    const solverIndex = () => {
      const m = new Map();
      (st.summary.solvers || []).forEach((s, i) => m.set(s.id, i));
      return m;
    };
    const plot = (container, spec) => {
      const p = OB.linePlot(container, spec);
      view.plots.push(p);
      return p;
    };
    const titled = (title, child) => h("div", { class: "plot-box" }, h("h3", {}, title), child);

    function renderSummary() {
      const s = st.summary;
      el.metricSel.replaceChildren(...(s.metrics || [s.metric]).map((m) => h("option", { value: m, selected: m === st.metric }, m)));
      el.baselineSel.replaceChildren(
        ...(s.solvers || []).map((x) => h("option", { value: x.id, selected: x.id === s.baseline_solver_id }, x.label)),
      );
      const scopes = [["overall", "all problems"], ...(s.problems || []).map((p) => [p.id, p.label])];
      if (!scopes.some(([v]) => v === st.scope)) st.scope = "overall";
      el.scopeSel.replaceChildren(...scopes.map(([v, t]) => h("option", { value: v, selected: v === st.scope }, t)));
      renderCurves();
      renderTable();
      renderRankings();
      renderComparisons();
      renderTuning();
      renderContours();
    }

    function renderCurves() {
      const s = st.summary;
      if (!s) return;
      const idx = solverIndex();
      const byId = new Map(s.groups.map((g) => [g.id, g]));
      const reuse = (container, key, spec) => {
        container._plots = container._plots || {};
        const existing = container._plots[key];
        if (existing) existing.update(spec);
        else container._plots[key] = plot(container.querySelector(`[data-key="${key}"]`), spec);
      };
      const ensureBoxes = (container, problems) => {
        const want = problems.map((p) => p.id).join(",");
        if (container.dataset.problems === want) return;
        container.dataset.problems = want;
        container._plots = {};
        container.replaceChildren(...problems.map((p) => titled(p.label, h("div", { "data-key": p.id, class: "plot-slot" }))));
      };
      ensureBoxes(el.curves, s.problems);
      ensureBoxes(el.lrs, s.problems);
      s.problems.forEach((p) => {
        const groups = p.group_ids.map((g) => byId.get(g)).filter((g) => g && g.curves);
        const wall = st.xAxis === "wall";
        reuse(el.curves, p.id, {
          xLabel: wall ? "wall time (s)" : "step",
          yLabel: "loss",
          logY: st.logY,
          series: groups.map((g) => {
            const c = g.curves.loss;
            const i = idx.get(g.solver_id);
            return {
              label: g.solver,
              color: OB.color(i),
              bandColor: OB.color(i, 0.13),
              x: wall ? c.wall_time : c.x,
              y: c.mean,
              lo: c.lo,
              hi: c.hi,
            };
          }),
        });
        const lrMax = Math.max(...groups.flatMap((g) => g.curves.lr.hi.filter(Number.isFinite)), 0);
        const lrMin = Math.min(...groups.flatMap((g) => g.curves.lr.lo.filter((v) => Number.isFinite(v) && v > 0)), Infinity);
        reuse(el.lrs, p.id, {
          xLabel: "update",
          yLabel: "learning rate",
          logY: lrMin > 0 && lrMax / lrMin > 20,
          height: 220,
          series: groups.map((g) => ({
            label: g.solver,
            color: OB.color(idx.get(g.solver_id)),
            x: g.curves.lr.x,
            y: g.curves.lr.mean,
          })),
        });
      });
    }

    function renderTable() {
      const s = st.summary;
      const m = st.metric;
      const metric = (g, key, stat) => (g.metrics[key] ? g.metrics[key][stat] : null);
      const cols = [
        ["problem", "problem", (g) => g.problem],
        ["solver", "solver", (g) => g.solver],
        ["runs", "runs", (g) => g.n_runs],
        ["success", "success", (g) => g.success_rate],
        ["diverged", "diverged", (g) => g.diverged_rate],
        ["metric_mean", `${m} mean`, (g) => metric(g, m, "mean")],
        ["metric_ci", "95% CI", (g) => metric(g, m, "ci_low"), (g) => `${OB.fmt(metric(g, m, "ci_low"))} … ${OB.fmt(metric(g, m, "ci_high"))}`],
        ["metric_median", "median", (g) => metric(g, m, "median")],
        ["metric_iqr", "IQR", (g) => metric(g, m, "iqr")],
        ["best_loss", "best loss (mean)", (g) => metric(g, "best_loss", "mean")],
        ["steps_to_target", "steps to target (median)", (g) => metric(g, "steps_to_target", "median")],
        ["auc", "AUC log subopt", (g) => metric(g, "auc_log_subopt", "mean")],
        ["wall", "wall s (mean)", (g) => metric(g, "wall_time_s", "mean")],
      ];
      const col = cols.find((c) => c[0] === st.sortKey) || cols[5];
      const rows = [...s.groups].sort((a, b) => {
        const va = col[2](a), vb = col[2](b);
        if (va === vb) return 0;
        if (va === null || va === undefined) return 1;
        if (vb === null || vb === undefined) return -1;
        return (va < vb ? -1 : 1) * st.sortDir;
      });
      const idx = solverIndex();
      const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
      el.table.replaceChildren(
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            cols.map(([key, label]) =>
              h(
                "th",
                {
                  "data-key": key,
                  class: key === st.sortKey ? (st.sortDir > 0 ? "sorted asc" : "sorted desc") : "",
                  onclick: () => {
                    st.sortDir = st.sortKey === key ? -st.sortDir : 1;
                    st.sortKey = key;
                    renderTable();
                  },
                },
                label,
              ),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          rows.map((g) =>
            h(
              "tr",
              { "data-group": g.id },
              cols.map(([key, , get, show]) => {
                const v = get(g);
                let text = show ? show(g) : key === "success" || key === "diverged" ? pct(v) : OB.fmt(v);
                if (key === "solver") {
                  return h("td", { class: "solver" }, h("span", { class: "swatch", style: `background:${OB.color(idx.get(g.solver_id))}` }), text);
                }
                return h("td", { class: typeof v === "number" ? "num" : "" }, text);
              }),
            ),
          ),
        ),
      );
    }

    function renderRankings() {
      const s = st.summary;
      if (!s || !s.rankings) return;
      const idx = solverIndex();
      const prof = s.rankings.profile;
      const ecdf = s.rankings.ecdf;
      const pick = (r) => (st.scope === "overall" ? r.overall : (r.per_problem || []).find((p) => p.problem_id === st.scope));
      const p = prof && pick(prof);
      const e = ecdf && pick(ecdf);
      el.profile.replaceChildren();
      el.ecdf.replaceChildren();
      if (p && p.series.length) {
        const tau = p.tau.concat([Math.max(prof.tau_max, p.tau[p.tau.length - 1] * 1.5)]);
        const box = h("div");
        el.profile.appendChild(box);
        plot(box, {
          xLabel: `τ (cost ≤ τ × best; cost = ${prof.metric})`,
          yLabel: "share of instances",
          logX: true,
          logBase: 2,
          stepped: true,
          yRange: [0, 1.02],
          height: 260,
          series: p.series.map((x) => ({
            label: `${x.solver} (score ${OB.fmt(x.score, 3)})`,
            color: OB.color(idx.get(x.solver_id)),
            x: tau,
            y: x.rho.concat([x.rho[x.rho.length - 1]]),
          })),
        });
        el.profile.appendChild(h("p", { class: "muted" }, `${p.instances} instances; score = ∫₁^${prof.tau_max} ρ(τ) dτ / ${prof.tau_max - 1}`));
      } else {
        el.profile.appendChild(h("p", { class: "muted" }, "No costs yet."));
      }
      if (e && e.series.length && e.x.length) {
        const box = h("div");
        el.ecdf.appendChild(box);
        plot(box, {
          xLabel: "step",
          yLabel: "share of (run, target) pairs",
          stepped: true,
          yRange: [0, 1.02],
          height: 260,
          series: e.series.map((x) => ({ label: x.solver, color: OB.color(idx.get(x.solver_id)), x: e.x, y: x.y })),
        });
        el.ecdf.appendChild(h("p", { class: "muted" }, `${ecdf.n_targets} targets per problem, log-spaced from the start value to the best value reached`));
      } else {
        el.ecdf.appendChild(h("p", { class: "muted" }, "No curves yet."));
      }
    }

    function renderComparisons() {
      const s = st.summary;
      const byId = new Map(s.groups.map((g) => [g.id, g]));
      if (!s.comparisons.length) {
        el.compare.replaceChildren(h("p", { class: "muted" }, "Nothing to compare yet."));
        return;
      }
      el.compare.replaceChildren(
        ...s.comparisons.map((c) => {
          const base = byId.get(c.baseline_group_id);
          const m = base.metrics[s.metric];
          return h(
            "div",
            { class: "comparison" },
            h("h3", {}, `${c.problem} — baseline ${c.baseline}`, h("span", { class: "muted" }, ` (${s.metric} mean ${OB.fmt(m.mean)}, median ${OB.fmt(m.median)})`)),
            h(
              "table",
              { class: "grid small" },
              h("thead", {}, h("tr", {}, ["solver", "pairs", `mean ${s.metric}`, "Δ median vs baseline", "p (Wilcoxon)", "p (Holm)", "effect (rank-biserial)", "verdict"].map((t) => h("th", {}, t)))),
              h(
                "tbody",
                {},
                c.pairs.map((p) =>
                  h(
                    "tr",
                    { class: `verdict-${p.verdict.replace(".", "").replace(".", "")}` },
                    h("td", {}, p.solver),
                    h("td", { class: "num" }, p.n_pairs),
                    h("td", { class: "num" }, OB.fmt(byId.get(p.group_id).metrics[s.metric].mean)),
                    h("td", { class: "num" }, OB.fmt(p.median_diff)),
                    h("td", { class: "num" }, OB.fmt(p.p_value, 3)),
                    h("td", { class: "num" }, OB.fmt(p.p_holm, 3)),
                    h("td", { class: "num" }, OB.fmt(p.effect, 3)),
                    h("td", {}, p.verdict),
                  ),
                ),
              ),
            ),
          );
        }),
        h("p", { class: "muted" }, "Paired by seed; Wilcoxon signed-rank, Holm-corrected within each problem; effect −1 = better than the baseline on every seed."),
      );
    }

    function renderTuning() {
      const s = st.summary;
      el.tuning.replaceChildren();
      if (!s.tuning.length) {
        el.tuning.appendChild(h("p", { class: "muted" }, "No swept hyper-parameter (give a list of values, e.g. \"lr\": [0.001, 0.01, 0.1])."));
        return;
      }
      const byId = new Map(s.groups.map((g) => [g.id, g]));
      s.tuning.forEach((t, n) => {
        const box = h("div", { class: "plot-slot" });
        const positive = t.series.every((ser) => ser.points.every((p) => p.median === null || p.median > 0));
        const series = t.series.map((ser, k) => ({
          label: ser.label || t.optimizer,
          color: OB.color(k),
          points: true,
          x: ser.points.map((p) => p.x),
          y: ser.points.map((p) => p.median),
        }));
        const best = t.best_group_id && byId.get(t.best_group_id);
        if (best) {
          series.push({
            label: `best: ${t.param}=${t.best_x}`,
            color: "#000",
            points: true,
            pointSize: 13,
            noLine: true,
            x: [t.best_x],
            y: [best.metrics[s.metric].median],
          });
        }
        const diverged = t.series.flatMap((ser) => ser.points.filter((p) => p.diverged_rate > 0).map((p) => `${t.param}=${p.x} (${Math.round(p.diverged_rate * 100)}% diverged)`));
        el.tuning.appendChild(
          titled(
            `${t.problem} · ${t.optimizer}: median ${s.metric} vs ${t.param}`,
            h("div", {}, box, diverged.length ? h("p", { class: "muted" }, "Diverged: " + diverged.join(", ")) : null),
          ),
        );
        plot(box, { xLabel: t.param, yLabel: `median ${s.metric}`, logX: t.log_x, logY: positive, height: 240, series });
      });
    }

    function renderContours() {
      const s = st.summary;
      const idx = solverIndex();
      const byId = new Map(s.groups.map((g) => [g.id, g]));
      const withContour = s.problems.filter((p) => p.contour);
      if (!withContour.length) {
        el.contours.replaceChildren(h("p", { class: "muted" }, "No 2-D problem in this experiment."));
        return;
      }
      el.contours.replaceChildren();
      withContour.forEach((p) => {
        const box = h("div");
        el.contours.appendChild(titled(`${p.label} (seed ${p.contour.seed})`, box));
        const spec = {
          x: p.contour.x,
          y: p.contour.y,
          z: p.contour.z,
          trajectories: p.contour.trajectories.map((t) => ({
            label: t.solver,
            color: OB.color(idx.get(byId.get(t.group_id).solver_id)),
            x: t.x,
            y: t.y,
          })),
        };
        view.plots.push(OB.contourPlot(box, spec));
      });
    }
  }

  /* ------------------------------------------------------------------ router */

  function route() {
    leave();
    const hash = location.hash || "#/";
    const m = hash.match(/^#\/experiments\/([A-Za-z0-9_-]{1,64})$/);
    if (m) experimentView(m[1]);
    else if (hash === "#/new") newView();
    else listView();
  }

  window.addEventListener("hashchange", route);
  route();
})();
