/* optbench dashboard: one experiment. Polls the small status resource with If-None-Match and
 * fetches the summary only when the status changed; keeps polling until the experiment is
 * terminal AND no run is still running, so a cancelled experiment ends on its final counts. */
(function () {
  "use strict";
  const OB = window.OB;
  const h = OB.h;

  /* Where a run id from the summary leads: the run view (24-hex API ids), or a lookup by the
   * engine's spec hash within the experiment. */
  OB.runHref = (experimentId, runId) => (runId && runId.length === 24 ? `#/runs/${runId}` : `#/experiments/${experimentId}/run/${runId}`);

  /* Styles for a summary's solvers, from its groups' optimizer and schedule specs. */
  OB.summaryStyles = function (summary) {
    const seen = new Map();
    summary.groups.forEach((g) => {
      if (!seen.has(g.solver_id)) seen.set(g.solver_id, { id: g.solver_id, label: g.solver, optimizer: g.spec.optimizer, schedule: g.spec.schedule });
    });
    (summary.solvers || []).forEach((s) => {
      if (!seen.has(s.id)) seen.set(s.id, { id: s.id, label: s.label, optimizer: { name: s.label } });
    });
    return OB.solverStyles(Array.from(seen.values()));
  };

  OB.experimentView = function (id) {
    const st = {
      exp: null, expEtag: null, summary: null, sumEtag: null, metric: "final_loss", baseline: "",
      xAxis: "step", logY: true, robust: true, smooth: 0, allSeeds: false,
      sortKey: "metric_mean", sortDir: 1, scope: "overall", plots: {},
      /* groups beyond the summary's curve-bearing ones: how many more to draw per problem, and
       * their curves and trajectories (fetched from …/summary/curves) by group id */
      more: {}, extra: new Map(),
    };
    const el = {
      name: h("h1", { id: "exp-name" }, "…"),
      status: h("span", { id: "exp-status" }),
      ident: h("code", { id: "exp-id", class: "muted", title: "experiment id" }, id),
      tags: h("span", { id: "exp-tags" }),
      progress: h("progress", { id: "exp-progress", max: 1, value: 0 }),
      counts: h("span", { id: "exp-counts", class: "muted" }),
      cancel: h("button", { type: "button", id: "cancel-btn", class: "danger", onclick: cancel }, "Cancel"),
      archive: h("button", { type: "button", id: "archive-btn", onclick: archive }, "Archive"),
      desc: h("p", { class: "description" }),
      msg: h("p", { class: "error", id: "exp-msg" }),
      curves: h("div", { id: "curves", class: "plots" }),
      curvesMore: h("div", { id: "curves-more", class: "controls" }),
      lrs: h("div", { id: "lr-curves", class: "plots" }),
      table: h("table", { id: "summary-table", class: "grid sortable" }),
      profile: h("div", { id: "profile-plot" }),
      ecdf: h("div", { id: "ecdf-plot" }),
      compare: h("div", { id: "comparisons" }),
      tuning: h("div", { id: "tuning", class: "plots" }),
      contours: h("div", { id: "contours", class: "plots" }),
      spec: h("pre", { id: "exp-spec", class: "json" }),
      metricSel: h("select", { id: "metric-select" }),
      baselineSel: h("select", { id: "baseline-select" }),
      scopeSel: h("select", { id: "scope-select" }),
    };
    const select = (label, elId, options, get, set, then) =>
      h(
        "label",
        { class: "toggle" },
        label + " ",
        h(
          "select",
          { id: elId, onchange: (ev) => { set(ev.target.value); (then || renderCurves)(); } },
          options.map(([v, t]) => h("option", { value: v, selected: String(get()) === String(v) }, t)),
        ),
      );
    el.metricSel.addEventListener("change", () => { st.metric = el.metricSel.value; refreshSummary(true); });
    el.baselineSel.addEventListener("change", () => { st.baseline = el.baselineSel.value; refreshSummary(true); });
    el.scopeSel.addEventListener("change", () => { st.scope = el.scopeSel.value; renderRankings(); });

    const section = (sid, title, ...children) => h("section", { id: sid }, h("h2", {}, title), ...children);
    OB.app.replaceChildren(
      h(
        "div",
        { class: "exp-head" },
        el.name,
        el.status,
        el.ident,
        el.tags,
        h("div", { class: "progress-row" }, el.progress, el.counts),
      ),
      h(
        "div",
        { class: "actions" },
        el.cancel,
        h("a", { class: "button", id: "rerun-btn", href: `#/new?from=${id}` }, "Re-run…"),
        el.archive,
        h("button", { type: "button", class: "danger", id: "delete-btn", onclick: remove }, "Delete"),
        h("button", { type: "button", onclick: () => OB.fetchFile(`v1/experiments/${id}/runs.csv`, `optbench-${id}.csv`) }, "Runs CSV"),
        h("button", { type: "button", onclick: () => OB.fetchFile(`v1/experiments/${id}/runs.json`, `optbench-${id}.json`) }, "Runs JSON"),
      ),
      el.desc,
      el.msg,
      section(
        "sec-curves",
        "Loss curves",
        h(
          "div",
          { class: "controls" },
          select("x axis", "x-axis", [["step", "step"], ["wall", "wall time (s)"], ["grad_evals", "gradient evaluations"]], () => st.xAxis, (v) => (st.xAxis = v)),
          select("y axis", "y-axis", [["log", "log"], ["linear", "linear"]], () => (st.logY ? "log" : "linear"), (v) => (st.logY = v === "log")),
          select("y range", "y-range", [["robust", "ignore blow-ups"], ["full", "full range"]], () => (st.robust ? "robust" : "full"), (v) => (st.robust = v === "robust")),
          select("smoothing", "smoothing", [["0", "off"], ["0.6", "EMA 0.6"], ["0.9", "EMA 0.9"], ["0.97", "EMA 0.97"]], () => st.smooth, (v) => (st.smooth = Number(v))),
          h("span", { class: "muted" }, "mean across seeds, band = min–max; × = cut where a run diverged"),
        ),
        el.curves,
        el.curvesMore,
      ),
      section("sec-lr", "Learning-rate schedules", el.lrs),
      section(
        "sec-summary",
        "Summary",
        h("div", { class: "controls" }, h("label", {}, "metric ", el.metricSel), h("span", { class: "muted" }, "click a column to sort, a solver to open its runs")),
        h("div", { class: "scroll" }, el.table),
      ),
      section(
        "sec-rankings",
        "Rankings",
        h("div", { class: "controls" }, h("label", {}, "scope ", el.scopeSel)),
        h("div", { class: "two-col" }, el.profile, el.ecdf),
      ),
      section("sec-compare", "Pairwise comparison", h("div", { class: "controls" }, h("label", {}, "baseline ", el.baselineSel)), el.compare),
      section("sec-tuning", "Tuning", el.tuning),
      section(
        "sec-contours",
        "Loss landscapes (2-D problems)",
        h("div", { class: "controls" }, select("trajectories", "seeds-toggle", [["one", "first seed"], ["all", "all seeds"]], () => (st.allSeeds ? "all" : "one"), (v) => (st.allSeeds = v === "all"), () => renderContours())),
        el.contours,
      ),
      h("details", {}, h("summary", {}, "Spec"), el.spec),
    );

    async function cancel() {
      el.cancel.disabled = true;
      try {
        const r = await OB.api(`v1/experiments/${id}/cancel`, { method: "POST" });
        st.exp = r.data;
        st.expEtag = null;
        renderHead();
      } catch (e) {
        el.msg.textContent = "Cancel failed: " + OB.errorText(e);
        el.cancel.disabled = false;
      }
    }

    async function archive() {
      try {
        const r = await OB.api(`v1/experiments/${id}`, { method: "PATCH", body: { archived: !st.exp.archived_at } });
        st.exp = r.data;
        renderHead();
      } catch (e) {
        el.msg.textContent = "Cannot archive: " + OB.errorText(e);
      }
    }

    async function remove() {
      if (!confirm(`Delete “${st.exp ? st.exp.name : id}” with all its runs and curves?`)) return;
      try {
        await OB.api(`v1/experiments/${id}`, { method: "DELETE" });
        location.hash = "#/";
      } catch (e) {
        el.msg.textContent = "Cannot delete: " + OB.errorText(e);
      }
    }

    /* Terminal and nothing left running: no later write can change what the page shows. */
    const settled = (e) => e && OB.TERMINAL.includes(e.status) && !e.counts.running && !e.counts.queued;

    function renderHead() {
      const e = st.exp;
      document.title = `${e.name} · optbench`;
      el.name.textContent = e.name;
      el.status.replaceChildren(OB.statusBadge(e.status));
      el.tags.replaceChildren(OB.tags(e.tags));
      el.progress.value = e.progress || 0;
      const stopping = e.cancel_requested_at && !settled(e) ? " — stopping running runs…" : "";
      el.counts.textContent = ` ${Math.round((e.progress || 0) * 100)}% — ${e.total_runs} runs: ${OB.countsText(e.counts)}${stopping}`;
      el.cancel.hidden = OB.TERMINAL.includes(e.status) || !!e.cancel_requested_at;
      el.archive.textContent = e.archived_at ? "Restore" : "Archive";
      el.desc.textContent = e.description || "";
      if (e.spec) el.spec.textContent = JSON.stringify(e.spec, null, 2);
    }

    /* A big experiment's summary carries curves for its best groups per problem only: fetch the
     * next ones, best first, as many as asked for (st.more), at the summary's points per curve. */
    async function loadMore() {
      const s = st.summary;
      const extra = new Map();
      try {
        for (const p of s.problems) {
          const want = st.more[p.id] || 0;
          for (let offset = s.curve_groups; offset < s.curve_groups + want; offset += 100) {
            const limit = Math.min(100, s.curve_groups + want - offset);
            const query = { metric: st.metric, problem: p.id, offset, limit, max_points: s.curve_points };
            const r = await OB.api(`v1/experiments/${id}/summary/curves`, { query });
            r.data.groups.forEach((g) => extra.set(g.id, g));
            if (offset + limit >= r.data.total) break;
          }
        }
      } catch (e) {
        el.msg.textContent = "Cannot load more curves: " + OB.errorText(e);
        return;
      }
      if (s !== st.summary) return;
      st.extra = extra;
      renderCurves();
      renderContours();
    }

    async function refreshSummary(reset) {
      if (reset) st.sumEtag = null;
      const query = { metric: st.metric, max_points: 300, baseline: st.baseline };
      if (reset) { st.more = {}; st.extra = new Map(); }
      try {
        const r = await OB.api(`v1/experiments/${id}/summary`, { etag: st.sumEtag, query });
        if (r.status === 304) return;
        st.summary = r.data;
        st.sumEtag = r.etag;
        el.msg.textContent = "";
        renderSummary();
        if (Object.keys(st.more).length) await loadMore();
      } catch (e) {
        el.msg.textContent = "Cannot load the summary: " + OB.errorText(e);
      }
    }

    OB.every(1000, async () => {
      try {
        const r = await OB.api(`v1/experiments/${id}`, { etag: st.expEtag });
        if (r.status !== 304) {
          st.exp = r.data;
          st.expEtag = r.etag;
          renderHead();
          await refreshSummary(false);
        }
        return settled(st.exp) && st.summary ? "stop" : undefined;
      } catch (e) {
        if (e.status === 404) {
          OB.notFound("experiment", id);
          return "stop";
        }
        el.msg.textContent = "Cannot load: " + OB.errorText(e);
        return undefined;
      }
    });

    /* -------------------------------------------- rendering */

    let styles = new Map();
    const style = (sid) => styles.get(sid) || { color: "#888", band: "rgba(0,0,0,0.1)" };
    const keep = (key, make) => {
      if (!st.plots[key]) st.plots[key] = OB.track(make());
      return st.plots[key];
    };

    function renderSummary() {
      const s = st.summary;
      styles = OB.summaryStyles(s);
      el.metricSel.replaceChildren(...(s.metrics || [s.metric]).map((m) => h("option", { value: m, selected: m === st.metric }, m)));
      el.baselineSel.replaceChildren(...(s.solvers || []).map((x) => h("option", { value: x.id, selected: x.id === s.baseline_solver_id }, x.label)));
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

    /* One box per problem in container (rebuilt only when the problems change). */
    function boxes(container, prefix, problems, what) {
      const want = problems.map((p) => p.id).join(",");
      if (container.dataset.problems !== want) {
        container.dataset.problems = want;
        Object.keys(st.plots).filter((k) => k.startsWith(prefix)).forEach((k) => { st.plots[k].destroy(); delete st.plots[k]; });
        container.replaceChildren(
          ...problems.map((p) => {
            const [box, slot] = OB.plotBox(p.label, `${what}-${p.label.replace(/[^\w.-]+/g, "_")}`, () => st.plots[prefix + p.id]);
            slot.dataset.key = p.id;
            return box;
          }),
        );
      }
      return (pid) => container.querySelector(`.plot-slot[data-key="${pid}"]`);
    }

    function renderCurves() {
      const s = st.summary;
      if (!s) return;
      const byId = new Map(s.groups.map((g) => [g.id, g]));
      const lossSlot = boxes(el.curves, "loss:", s.problems, "loss");
      const lrSlot = boxes(el.lrs, "lr:", s.problems, "lr");
      renderMore();
      s.problems.forEach((p) => {
        const groups = p.group_ids
          .map((gid) => byId.get(gid))
          .map((g) => (g && !g.curves && st.extra.has(g.id) ? { ...g, curves: st.extra.get(g.id).curves } : g))
          .filter((g) => g && g.curves);
        const wall = st.xAxis === "wall";
        const evals = st.xAxis === "grad_evals";
        const steps = p.budget && p.budget.steps;
        const spec = {
          xLabel: wall ? "wall time (s)" : evals ? "gradient evaluations" : "step",
          yLabel: "loss",
          logY: st.logY,
          robust: st.robust,
          smooth: st.smooth,
          xRange: !wall && !evals && steps ? [0, steps] : null,
          series: groups.map((g) => {
            const c = g.curves.loss;
            const sty = style(g.solver_id);
            return { label: g.solver, color: sty.color, dash: sty.dash, bandColor: sty.band, x: wall ? c.wall_time : evals ? c.grad_evals : c.x, y: c.mean, lo: c.lo, hi: c.hi, diverged: g.diverged_rate > 0 };
          }),
        };
        const loss = st.plots["loss:" + p.id];
        if (loss) loss.update(spec);
        else keep("loss:" + p.id, () => OB.linePlot(lossSlot(p.id), spec));
        const lrMax = Math.max(...groups.flatMap((g) => g.curves.lr.hi.filter(Number.isFinite)), 0);
        const lrMin = Math.min(...groups.flatMap((g) => g.curves.lr.lo.filter((v) => Number.isFinite(v) && v > 0)), Infinity);
        const lrSpec = {
          xLabel: "update",
          yLabel: "learning rate",
          logY: lrMin > 0 && lrMax / lrMin > 20,
          height: 220,
          xRange: steps ? [0, steps] : null,
          series: groups.map((g) => {
            const sty = style(g.solver_id);
            return { label: g.solver, color: sty.color, dash: sty.dash, x: g.curves.lr.x, y: g.curves.lr.mean };
          }),
        };
        const lr = st.plots["lr:" + p.id];
        if (lr) lr.update(lrSpec);
        else keep("lr:" + p.id, () => OB.linePlot(lrSlot(p.id), lrSpec));
      });
    }

    /* Under the loss plots of a big experiment: how many groups are drawn, and a button for more. */
    function renderMore() {
      const s = st.summary;
      const step = s.curve_groups || 50;
      el.curvesMore.replaceChildren(
        ...s.problems
          .filter((p) => p.curve_group_ids && p.curve_group_ids.length < p.group_ids.length)
          .map((p) => {
            const shown = Math.min(p.group_ids.length, p.curve_group_ids.length + (st.more[p.id] || 0));
            const label = s.problems.length > 1 ? `${p.label}: ` : "";
            return h(
              "span",
              { class: "muted curves-more", "data-problem": p.id },
              `${label}curves of the ${shown} best of ${p.group_ids.length} groups by ${s.metric} (and the baseline) `,
              shown < p.group_ids.length
                ? h("button", { type: "button", class: "more-curves", onclick: () => { st.more[p.id] = (st.more[p.id] || 0) + step; renderMore(); loadMore(); } }, `Show ${Math.min(step, p.group_ids.length - shown)} more`)
                : null,
            );
          }),
      );
    }

    function renderTable() {
      const s = st.summary;
      const m = st.metric;
      const metric = (g, key, stat) => (g.metrics[key] ? g.metrics[key][stat] : null);
      const many = s.problems.length > 1;
      const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
      const cols = [
        many && ["problem", "problem", (g) => g.problem],
        ["solver", "solver", (g) => g.solver],
        ["runs", "seeds", (g) => g.n_runs],
        ["success", "success (no failure, target reached)", (g) => g.success_rate, (g) => pct(g.success_rate)],
        ["diverged", "diverged", (g) => g.diverged_rate, (g) => pct(g.diverged_rate)],
        ["metric_mean", `${m}: mean [95% CI]`, (g) => metric(g, m, "mean"), (g) => `${OB.fmt(metric(g, m, "mean"))} [${OB.fmt(metric(g, m, "ci_low"), 3)}, ${OB.fmt(metric(g, m, "ci_high"), 3)}]`],
        ["metric_median", "median", (g) => metric(g, m, "median")],
        ["steps_to_target", "steps to target (median)", (g) => metric(g, "steps_to_target", "median")],
        ["wall", "wall s", (g) => metric(g, "wall_time_s", "mean")],
      ].filter(Boolean);
      const col = cols.find((c) => c[0] === st.sortKey) || cols.find((c) => c[0] === "metric_mean");
      const rows = [...s.groups].sort((a, b) => {
        const va = col[2](a), vb = col[2](b);
        if (va === vb) return 0;
        // undefined (a mean over failed runs, a failed quantile) sorts as the largest value
        if (va === null || va === undefined) return st.sortDir;
        if (vb === null || vb === undefined) return -st.sortDir;
        return (va < vb ? -1 : 1) * st.sortDir;
      });
      const head = h(
        "tr",
        {},
        cols.map(([key, label]) =>
          h("th", {
            "data-key": key,
            class: key === st.sortKey ? (st.sortDir > 0 ? "sorted asc" : "sorted desc") : "",
            onclick: () => { st.sortDir = st.sortKey === key ? -st.sortDir : 1; st.sortKey = key; renderTable(); },
          }, label),
        ),
        h("th", {}, "runs"),
      );
      el.table.replaceChildren(
        h("thead", {}, head),
        h(
          "tbody",
          {},
          rows.map((g) => {
            const first = g.runs && g.runs[0];
            return h(
              "tr",
              { "data-group": g.id },
              cols.map(([key, , get, show]) => {
                const v = get(g);
                const text = show ? show(g) : OB.fmt(v);
                if (key === "solver") {
                  return h("td", { class: "solver" }, h("span", { class: "swatch", color: style(g.solver_id).color }), first ? h("a", { href: OB.runHref(id, first.run_id), class: "group-link" }, text) : text);
                }
                return h("td", { class: typeof v === "number" ? "num" : "" }, text);
              }),
              h("td", { class: "run-ids" }, (g.runs || []).map((r) => h("a", { href: OB.runHref(id, r.run_id), title: `seed ${r.seed}: run ${r.run_id}`, class: r.diverged ? "diverged" : "" }, `s${r.seed}`))),
            );
          }),
        ),
      );
    }

    function renderRankings() {
      const s = st.summary;
      if (!s || !s.rankings) return;
      const prof = s.rankings.profile;
      const ecdf = s.rankings.ecdf;
      const pick = (r) => (st.scope === "overall" ? r.overall : (r.per_problem || []).find((p) => p.problem_id === st.scope));
      const p = prof && pick(prof);
      const e = ecdf && pick(ecdf);
      ["profile", "ecdf"].forEach((k) => { if (st.plots[k]) { st.plots[k].destroy(); delete st.plots[k]; } });
      const [pbox, pslot] = OB.plotBox("Performance profile", "profile", () => st.plots.profile);
      const [ebox, eslot] = OB.plotBox("Runtime ECDF (targets reached)", "ecdf", () => st.plots.ecdf);
      el.profile.replaceChildren(pbox);
      el.ecdf.replaceChildren(ebox);
      if (p && p.series.length) {
        const tau = p.tau.concat([Math.max(prof.tau_max, p.tau[p.tau.length - 1] * 1.5)]);
        keep("profile", () => OB.linePlot(pslot, {
          xLabel: `τ (cost ≤ τ × best; cost = ${prof.metric})`, yLabel: "share of instances", logX: true, logBase: 2, stepped: true, yRange: [0, 1.02], height: 260,
          series: p.series.map((x) => ({ label: `${x.solver} (score ${OB.fmt(x.score, 3)})`, color: style(x.solver_id).color, dash: style(x.solver_id).dash, x: tau, y: x.rho.concat([x.rho[x.rho.length - 1]]) })),
        }));
        pbox.appendChild(h("p", { class: "muted" }, `${p.instances} instances; score = ∫₁^${prof.tau_max} ρ(τ) dτ / ${prof.tau_max - 1}`));
      } else pslot.appendChild(h("p", { class: "muted" }, "No costs yet."));
      if (e && e.series.length && e.x.length) {
        keep("ecdf", () => OB.linePlot(eslot, {
          xLabel: "step", yLabel: "share of (run, target) pairs", stepped: true, yRange: [0, 1.02], height: 260,
          series: e.series.map((x) => ({ label: x.solver, color: style(x.solver_id).color, dash: style(x.solver_id).dash, x: e.x, y: x.y })),
        }));
        ebox.appendChild(h("p", { class: "muted" }, `${ecdf.n_targets} targets per problem, log-spaced from the start value to the best value reached`));
      } else eslot.appendChild(h("p", { class: "muted" }, "No curves yet."));
    }

    function renderComparisons() {
      const s = st.summary;
      const byId = new Map(s.groups.map((g) => [g.id, g]));
      if (!s.comparisons.length) {
        el.compare.replaceChildren(h("p", { class: "muted" }, "Nothing to compare yet."));
        return;
      }
      const metricOf = (gid) => { const g = byId.get(gid); return g && g.metrics[s.metric] ? g.metrics[s.metric] : {}; };
      el.compare.replaceChildren(
        ...s.comparisons.map((c) =>
          h(
            "div",
            { class: "comparison" },
            h("h3", {}, `${c.problem} — baseline ${c.baseline}`, h("span", { class: "muted" }, ` (${s.metric} mean ${OB.fmt(metricOf(c.baseline_group_id).mean)}, median ${OB.fmt(metricOf(c.baseline_group_id).median)})`)),
            h(
              "div",
              { class: "scroll" },
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
                      { class: `verdict-${String(p.verdict).replace(/\W/g, "")}` },
                      h("td", {}, p.solver),
                      h("td", { class: "num" }, p.n_pairs),
                      h("td", { class: "num" }, OB.fmt(metricOf(p.group_id).mean)),
                      h("td", { class: "num" }, OB.fmt(p.median_diff)),
                      h("td", { class: "num" }, OB.fmt(p.p_value, 3)),
                      h("td", { class: "num" }, OB.fmt(p.p_holm, 3)),
                      h("td", { class: "num" }, OB.fmt(p.effect, 3)),
                      h("td", {}, p.verdict),
                    ),
                  ),
                ),
              ),
            ),
          ),
        ),
        h("p", { class: "muted" }, "Paired by seed; Wilcoxon signed-rank, Holm-corrected within each problem; effect −1 = better than the baseline on every seed."),
      );
    }

    function renderTuning() {
      const s = st.summary;
      Object.keys(st.plots).filter((k) => k.startsWith("tuning:")).forEach((k) => { st.plots[k].destroy(); delete st.plots[k]; });
      el.tuning.replaceChildren();
      if (!s.tuning.length) {
        el.tuning.appendChild(h("p", { class: "muted" }, 'No swept hyper-parameter (give a list of values, e.g. "lr": [0.001, 0.01, 0.1]).'));
        return;
      }
      const byId = new Map(s.groups.map((g) => [g.id, g]));
      s.tuning.forEach((t, n) => {
        const positive = t.series.every((ser) => ser.points.every((p) => p.median === null || p.median > 0));
        // one hue for the optimizer, a shade per series (e.g. per schedule)
        const shades = OB.solverStyles(t.series.map((x, j) => ({ id: j, optimizer: { name: t.optimizer, variant: j } })));
        const series = t.series.map((ser, k) => ({
          label: ser.label || t.optimizer,
          color: shades.get(k).color,
          points: true,
          x: ser.points.map((p) => p.x),
          y: ser.points.map((p) => p.median),
        }));
        const best = t.best_group_id && byId.get(t.best_group_id);
        if (best && best.metrics[s.metric]) {
          series.push({ label: `best: ${t.param}=${t.best_x}`, color: OB.theme().fg, points: true, pointSize: 12, noLine: true, x: [t.best_x], y: [best.metrics[s.metric].median] });
        }
        const diverged = t.series.flatMap((ser) => ser.points.filter((p) => p.diverged_rate > 0).map((p) => `${t.param}=${p.x} (${Math.round(p.diverged_rate * 100)}% diverged)`));
        const [box, slot] = OB.plotBox(`${t.problem} · ${t.optimizer}: median ${s.metric} vs ${t.param}`, `tuning-${n}`, () => st.plots["tuning:" + n], diverged.length ? h("p", { class: "muted" }, "Diverged: " + diverged.join(", ")) : null);
        el.tuning.appendChild(box);
        keep("tuning:" + n, () => OB.linePlot(slot, { xLabel: t.param, yLabel: `median ${s.metric}`, logX: t.log_x, logY: positive, robust: positive, height: 240, series }));
      });
    }

    function renderContours() {
      const s = st.summary;
      if (!s) return;
      const byId = new Map(s.groups.map((g) => [g.id, g]));
      const withContour = s.problems.filter((p) => p.contour);
      Object.keys(st.plots).filter((k) => k.startsWith("contour:")).forEach((k) => { st.plots[k].destroy(); delete st.plots[k]; });
      if (!withContour.length) {
        el.contours.replaceChildren(h("p", { class: "muted" }, "No 2-D problem in this experiment."));
        return;
      }
      el.contours.replaceChildren();
      withContour.forEach((p) => {
        const c = p.contour;
        const more = p.group_ids.filter((gid) => st.extra.has(gid)).flatMap((gid) => st.extra.get(gid).trajectories);
        const trajectories = c.trajectories
          .concat(more.filter((t) => !c.trajectories.some((u) => u.group_id === t.group_id)))
          .filter((t) => st.allSeeds || t.seed === undefined || t.seed === c.seed)
          .map((t) => {
            const g = byId.get(t.group_id);
            const sty = style(g ? g.solver_id : null);
            return { label: t.solver, color: sty.color, dash: sty.dash, x: t.x, y: t.y, seed: t.seed, group: t.group_id, faint: t.seed !== undefined && t.seed !== c.seed };
          });
        const seeds = st.allSeeds ? "all seeds" : `seed ${c.seed}`;
        const [box, slot] = OB.plotBox(`${p.label} (${seeds}; ★ minimiser, □ start)`, `contour-${p.label.replace(/[^\w.-]+/g, "_")}`, () => st.plots["contour:" + p.id]);
        el.contours.appendChild(box);
        keep("contour:" + p.id, () => OB.contourPlot(slot, { x: c.x, y: c.y, z: c.z, minimizers: c.minimizers, trajectories }));
      });
    }
  };
})();
