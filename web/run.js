/* optbench dashboard: one run — the per-seed loss curves of its group, its gradient norm, update
 * norm and learning rate, its metrics and resolved spec, and its trajectory on the landscape.
 * While it runs, only new points are fetched (since_step). */
(function () {
  "use strict";
  const OB = window.OB;
  const h = OB.h;
  const MAX_POINTS = 600;

  let catalog = null;
  /* The catalog's defaults by kind and name (fetched once), to label a run by what differs. */
  const defaults = () => {
    catalog = catalog || OB.api("v1/catalog").then((r) => r.data).catch(() => ({}));
    return catalog;
  };
  /* "adam(lr=0.01) / cosine(T_max=100)": the hyper-parameters that differ from the defaults. */
  const label = (spec, cat) => {
    const part = (kind, o) => {
      const entry = ((cat && cat[kind]) || []).find((e) => e.name === o.name);
      const d = (entry && entry.defaults) || {};
      const params = Object.entries(o).filter(([k, v]) => k !== "name" && JSON.stringify(d[k]) !== JSON.stringify(v)).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
      return params.length ? `${o.name}(${params.join(", ")})` : o.name;
    };
    return `${part("optimizers", spec.optimizer)} / ${part("schedules", spec.schedule)}`;
  };
  const withoutSeed = (spec) => JSON.stringify({ ...spec, seed: null });

  /* #/experiments/{eid}/run/{spec hash}: find the run's API id, then show it. */
  OB.runByHash = async function (experimentId, hash) {
    let cursor = null;
    try {
      do {
        const r = await OB.api(`v1/experiments/${experimentId}/runs`, { query: { limit: 1000, cursor } });
        const hit = r.data.items.find((x) => x.spec_hash === hash);
        if (hit) {
          location.replace(`#/runs/${hit.id}`);
          return;
        }
        cursor = r.data.next_cursor;
      } while (cursor);
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    OB.notFound("run", hash);
  };

  OB.runView = function (id) {
    const st = { run: null, etag: null, curves: null, siblings: [], sibCurves: new Map(), plots: {} };
    const el = {
      title: h("h1", { id: "run-title" }, `Run ${id}`),
      status: h("span", { id: "run-status" }),
      back: h("p", { class: "crumbs" }),
      seeds: h("div", { class: "chips", id: "run-seeds" }),
      msg: h("p", { class: "error" }),
      seedPlot: h("div", { id: "seed-curves" }),
      norms: h("div", { id: "run-norms", class: "plots" }),
      metrics: h("table", { class: "grid small", id: "run-metrics" }),
      spec: h("pre", { class: "json", id: "run-spec" }),
      contour: h("div", { id: "run-contour" }),
    };
    OB.app.replaceChildren(
      el.back,
      h("div", { class: "exp-head" }, el.title, el.status),
      h("div", { class: "controls" }, h("span", { class: "muted" }, "seeds of this group:"), el.seeds),
      el.msg,
      h("section", {}, h("h2", {}, "Loss per seed"), el.seedPlot),
      h("section", {}, h("h2", {}, "Gradient norm, update norm and learning rate of this run"), el.norms),
      h("section", { class: "two-col" }, h("div", {}, h("h2", {}, "Metrics"), el.metrics), h("div", {}, h("h2", {}, "Resolved spec"), el.spec)),
      h("section", {}, h("h2", {}, "Trajectory"), el.contour),
    );

    const plot = (key, slot, spec) => {
      if (st.plots[key]) st.plots[key].update(spec);
      else st.plots[key] = OB.track(OB.linePlot(slot, spec));
    };

    /* Append points after the last step of each curve group (the update group and the eval group
     * have their own x). */
    function merge(tail) {
      if (!st.curves) {
        st.curves = tail;
        return;
      }
      const groups = [["eval_steps", ["losses", "wall_times", "params_x", "params_y"]], ["update_steps", ["lrs", "grad_norms", "update_norms"]]];
      groups.forEach(([xKey, keys]) => {
        const xs = st.curves[xKey];
        const last = xs.length ? xs[xs.length - 1] : -1;
        (tail[xKey] || []).forEach((x, k) => {
          if (x <= last) return;
          xs.push(x);
          keys.forEach((name) => {
            if (tail[name]) (st.curves[name] = st.curves[name] || []).push(tail[name][k]);
          });
        });
      });
    }

    function sinceStep() {
      const c = st.curves;
      const last = (a) => (a && a.length ? a[a.length - 1] : -1);
      return Math.min(last(c.eval_steps), last(c.update_steps)) + 1;
    }

    async function load() {
      const query = st.curves ? { since_step: sinceStep() } : { max_points: MAX_POINTS };
      const r = await OB.api(`v1/runs/${id}`, { etag: st.etag, query });
      if (r.status === 304) return false;
      st.etag = r.etag; // a poll that finds no new points (same since_step) is a 304
      const run = r.data;
      const first = !st.run;
      st.run = run;
      merge(run.curves);
      if (first) {
        st.catalog = await defaults();
        await loadSiblings();
      }
      render();
      return true;
    }

    async function loadSiblings() {
      const spec = st.run.spec;
      const eid = st.run.experiment_id;
      const q = { problem: spec.problem.name, optimizer: spec.optimizer.name, schedule: spec.schedule.name, limit: 1000 };
      let exp = null;
      try {
        const [runs, e] = await Promise.all([OB.api(`v1/experiments/${eid}/runs`, { query: q }), OB.api(`v1/experiments/${eid}`)]);
        exp = e.data;
        st.siblings = runs.data.items.filter((x) => withoutSeed(x.spec) === withoutSeed(spec)).sort((a, b) => a.spec.seed - b.spec.seed);
      } catch (err) {
        st.siblings = [st.run];
      }
      el.back.replaceChildren(
        h("a", { href: "#/" }, "Experiments"),
        " › ",
        h("a", { href: `#/experiments/${eid}`, id: "run-experiment" }, exp ? exp.name : eid),
        " › ",
        `${spec.problem.name} · ${label(spec, st.catalog)}`,
      );
      el.seeds.replaceChildren(
        ...st.siblings.map((x) => h("a", { class: `chip seed${x.id === id ? " current" : ""}${x.metrics.diverged ? " diverged" : ""}`, href: `#/runs/${x.id}`, title: `run ${x.id} (${x.status})` }, `seed ${x.spec.seed}`)),
      );
      await Promise.all(
        st.siblings.filter((x) => x.id !== id).map(async (x) => {
          const r = await OB.api(`v1/runs/${x.id}`, { query: { max_points: MAX_POINTS } });
          st.sibCurves.set(x.id, r.data.curves);
        }),
      );
      await loadContour(eid);
    }

    async function loadContour(eid) {
      if (!st.curves.params_x || !st.curves.params_x.length) {
        el.contour.replaceChildren(h("p", { class: "muted" }, "Only 2-D problems have a landscape to draw."));
        return;
      }
      try {
        const r = await OB.api(`v1/experiments/${eid}/summary`, { query: { max_points: 50 } });
        const problem = r.data.problems.find((p) => JSON.stringify(p.spec) === JSON.stringify(st.run.spec.problem) && p.contour);
        st.landscape = problem ? problem.contour : null;
      } catch (e) {
        st.landscape = null;
      }
    }

    function render() {
      const run = st.run;
      const spec = run.spec;
      document.title = `Run ${id.slice(0, 8)} · optbench`;
      el.title.textContent = `${label(spec, st.catalog)} · seed ${spec.seed}`;
      el.status.replaceChildren(OB.statusBadge(run.status), " ", h("code", { class: "muted", title: "run id" }, id));
      // the whole budget while it runs (how far along it is), the data once it stopped
      const steps = OB.TERMINAL.includes(run.status) ? null : spec.steps;
      const xRange = steps ? [0, steps] : null;
      const colors = OB.solverStyles(st.siblings.map((x) => ({ id: x.id, optimizer: { name: "seed", seed: x.spec.seed } })));
      const series = st.siblings.map((x) => {
        const c = x.id === id ? st.curves : st.sibCurves.get(x.id);
        if (!c) return null;
        return { label: `seed ${x.spec.seed}${x.id === id ? " (this run)" : ""}`, color: colors.get(x.id).color, width: x.id === id ? 2.6 : 1.2, x: c.eval_steps, y: c.losses, diverged: !!(x.metrics && x.metrics.diverged) };
      }).filter(Boolean);
      if (!series.length) series.push({ label: "this run", color: "hsl(214, 70%, 45%)", x: st.curves.eval_steps, y: st.curves.losses });
      if (!el.seedPlot.firstChild) {
        const [box, slot] = OB.plotBox("loss", `loss-${id}`, () => st.plots.seeds);
        el.seedPlot.appendChild(box);
        el.seedSlot = slot;
      }
      plot("seeds", el.seedSlot, { xLabel: "step", yLabel: "loss", logY: true, robust: true, xRange, series });
      const c = st.curves;
      const one = [
        ["grad", "gradient norm ‖g‖", c.grad_norms, true],
        ["update", "update norm ‖Δθ‖", c.update_norms, true],
        ["lr", "learning rate", c.lrs, false],
      ];
      if (!el.norms.firstChild) {
        el.normSlots = {};
        one.forEach(([key, title]) => {
          const [box, slot] = OB.plotBox(title, `${key}-${id}`, () => st.plots[key]);
          box.id = `plot-${key}`;
          el.norms.appendChild(box);
          el.normSlots[key] = slot;
        });
      }
      one.forEach(([key, title, ys, log]) => {
        plot(key, el.normSlots[key], { xLabel: "update", yLabel: title, logY: log, robust: log, height: 240, xRange, series: [{ label: title, color: "hsl(214, 70%, 45%)", x: c.update_steps, y: ys || [], diverged: !!run.metrics.diverged }] });
      });
      const m = run.metrics;
      el.metrics.replaceChildren(
        h("tbody", {}, [
          ["status", run.status], ["steps done", `${run.steps_done} / ${spec.steps}`], ["attempts", run.attempts],
          ...Object.entries(m).filter(([k]) => k !== "steps_done").map(([k, v]) => [k, typeof v === "boolean" ? String(v) : OB.fmt(v)]),
          ["started", OB.when(run.started_at)], ["finished", OB.when(run.finished_at)],
          run.error ? ["error", run.error] : null,
        ].filter(Boolean).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
      );
      el.spec.textContent = JSON.stringify(spec, null, 2);
      renderContour();
    }

    function renderContour() {
      const L = st.landscape;
      if (!L) {
        if (st.curves.params_x && st.curves.params_x.length && !el.contour.firstChild) el.contour.appendChild(h("p", { class: "muted" }, "No landscape yet."));
        return;
      }
      const colors = OB.solverStyles(st.siblings.map((x) => ({ id: x.id, optimizer: { name: "seed", seed: x.spec.seed } })));
      const trajectories = st.siblings.map((x) => {
        const c = x.id === id ? st.curves : st.sibCurves.get(x.id);
        if (!c || !c.params_x) return null;
        return { label: `seed ${x.spec.seed}`, color: colors.get(x.id).color, x: c.params_x, y: c.params_y, seed: x.spec.seed, faint: x.id !== id };
      }).filter(Boolean);
      if (st.plots.contour) {
        st.plots.contour.update({ x: L.x, y: L.y, z: L.z, minimizers: L.minimizers, trajectories });
        return;
      }
      const [box, slot] = OB.plotBox("this run (bold) and the other seeds; ★ minimiser, □ start", `trajectory-${id}`, () => st.plots.contour);
      el.contour.replaceChildren(box);
      st.plots.contour = OB.track(OB.contourPlot(slot, { x: L.x, y: L.y, z: L.z, minimizers: L.minimizers, trajectories }));
    }

    OB.every(1000, async () => {
      try {
        await load();
        return st.run && OB.TERMINAL.includes(st.run.status) ? "stop" : undefined;
      } catch (e) {
        if (e.status === 404) {
          OB.notFound("run", id);
          return "stop";
        }
        el.msg.textContent = "Cannot load: " + OB.errorText(e);
        return undefined;
      }
    });
  };
})();
