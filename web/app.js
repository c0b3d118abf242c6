/* optbench dashboard: the submit form (catalog-driven, prefilled for a re-run), side-by-side
 * comparison of two experiments, and the hash router. */
(function () {
  "use strict";
  const OB = window.OB;
  const h = OB.h;
  const EXAMPLE = {
    name: "adam-vs-momentum",
    description: "Adam at two learning rates against SGD with momentum on the 2-D Rosenbrock valley.",
    tags: ["demo"],
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
  const SPEC_LISTS = ["problems", "optimizers", "schedules"];

  /* ------------------------------------------------------------------ new experiment */

  function newView(params) {
    const from = params.get("from");
    const text = h("textarea", { id: "spec-text", spellcheck: "false", rows: 26 });
    text.value = JSON.stringify(EXAMPLE, null, 2);
    const msg = h("pre", { id: "form-msg", class: "message" });
    const catalogEl = h("div", { id: "catalog" }, h("p", { class: "muted" }, "Loading catalog…"));
    const heading = h("h1", {}, "New experiment");

    const parsed = () => {
      try {
        return JSON.parse(text.value);
      } catch (e) {
        msg.className = "message error";
        msg.textContent = "The spec is not valid JSON: " + e.message;
        return undefined;
      }
    };

    async function send(dry) {
      const spec = parsed();
      if (spec === undefined) return;
      try {
        const r = await OB.api("v1/experiments", { method: "POST", body: spec, query: dry ? { dry_run: "true" } : undefined });
        if (dry) {
          msg.className = "message ok";
          msg.textContent = `Valid: ${r.data.run_count} runs.`;
        } else location.hash = `#/experiments/${r.data.id}`;
      } catch (e) {
        msg.className = "message error";
        msg.textContent = OB.errorText(e);
      }
    }

    OB.app.replaceChildren(
      heading,
      h(
        "div",
        { class: "two-col" },
        h(
          "div",
          {},
          h("p", { class: "muted" }, "Lists of problems, optimizers, schedules and seeds; a list where one hyper-parameter value is expected is a grid. ", h("code", {}, "tags"), " and ", h("code", {}, "description"), " help you find it later."),
          text,
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", id: "dry-run", onclick: () => send(true) }, "Validate (dry run)"),
            h("button", { type: "button", id: "submit-spec", class: "primary", onclick: () => send(false) }, "Submit"),
          ),
          msg,
        ),
        h("aside", {}, h("h2", {}, "Catalog"), catalogEl),
      ),
    );

    if (from) {
      heading.textContent = "Re-run an experiment";
      OB.api(`v1/experiments/${from}`)
        .then((r) => {
          const spec = { ...r.data.spec };
          spec.name = spec.name.endsWith(" (re-run)") ? spec.name : `${spec.name} (re-run)`.slice(0, 200);
          text.value = JSON.stringify(spec, null, 2);
          msg.className = "message";
          msg.textContent = `Prefilled from “${r.data.name}”; change anything, then submit.`;
        })
        .catch((e) => {
          msg.className = "message error";
          msg.textContent = `Cannot load experiment ${from}: ${OB.errorText(e)}`;
        });
    }

    OB.api("v1/catalog")
      .then((r) => renderCatalog(catalogEl, r.data, text, msg))
      .catch((e) => (catalogEl.textContent = "Cannot load the catalog: " + OB.errorText(e)));
  }

  /* Every list in the catalog (problems, optimizers, schedules, and whatever else it offers,
   * e.g. transforms for a chain) as chips; an entry shows its fields and can be added with all
   * its defaults — to the spec's list of that kind, or as JSON to paste where it belongs. */
  function renderCatalog(el, catalog, text, msg) {
    const detail = h("div", { class: "catalog-detail" });
    const kinds = Object.entries(catalog).filter(([, v]) => Array.isArray(v) && v.length && v[0] && v[0].name);
    const lists = kinds.map(([kind, entries]) =>
      h("div", {}, h("h3", {}, kind), h("div", { class: "chips" }, entries.map((entry) => h("button", { type: "button", class: "chip", onclick: () => showEntry(kind, entry) }, entry.name)))),
    );

    function item(entry) {
      const out = { name: entry.name };
      Object.entries(entry.defaults || {}).forEach(([k, v]) => {
        if (k !== "name") out[k] = v;
      });
      (entry.required || []).forEach((k) => {
        if (!(k in out)) out[k] = null;
      });
      return out;
    }

    function showEntry(kind, entry) {
      const props = (entry.schema && entry.schema.properties) || {};
      const rows = Object.entries(props)
        .filter(([k]) => k !== "name")
        .map(([k, p]) =>
          h(
            "tr",
            {},
            h("td", {}, h("code", {}, k), (entry.required || []).includes(k) ? h("span", { class: "req" }, " *") : null),
            h("td", { class: "nowrap" }, JSON.stringify(entry.defaults ? entry.defaults[k] : undefined) ?? "–"),
            h("td", { class: "muted" }, p.description || constraints(p)),
          ),
        );
      const snippet = h("pre", { class: "json" }, JSON.stringify(item(entry), null, 2));
      const add = () => {
        try {
          const spec = JSON.parse(text.value);
          spec[kind] = (spec[kind] || []).concat([item(entry)]);
          text.value = JSON.stringify(spec, null, 2);
          msg.className = "message ok";
          msg.textContent = `Added ${entry.name} to ${kind}; missing required values are null.`;
        } catch (e) {
          msg.className = "message error";
          msg.textContent = "Fix the spec's JSON first.";
        }
      };
      /* A transform goes into the spec's last chain optimizer (a new chain if there is none). */
      const addToChain = () => {
        try {
          const spec = JSON.parse(text.value);
          const optimizers = (spec.optimizers = spec.optimizers || []);
          let chain = [...optimizers].reverse().find((o) => o && o.name === "chain");
          if (!chain) {
            chain = { name: "chain", transforms: [] };
            optimizers.push(chain);
          }
          chain.transforms = (chain.transforms || []).concat([item(entry)]);
          text.value = JSON.stringify(spec, null, 2);
          msg.className = "message ok";
          msg.textContent = `Added ${entry.name} to the chain (${chain.transforms.length} transforms; a chain needs exactly one scale_by_learning_rate).`;
        } catch (e) {
          msg.className = "message error";
          msg.textContent = "Fix the spec's JSON first.";
        }
      };
      detail.replaceChildren(
        h("h3", {}, entry.name),
        h("p", {}, entry.summary || ""),
        h("div", { class: "scroll" }, h("table", { class: "grid small" }, h("thead", {}, h("tr", {}, h("th", {}, "field"), h("th", {}, "default"), h("th", {}, "notes"))), h("tbody", {}, rows))),
        SPEC_LISTS.includes(kind)
          ? h("button", { type: "button", id: "catalog-add", onclick: add }, `Add to ${kind}`)
          : kind === "transforms"
            ? h("button", { type: "button", id: "catalog-add-chain", onclick: addToChain }, "Add to chain")
            : h("div", {}, h("p", { class: "muted" }, `Paste where a ${kind.replace(/s$/, "")} goes:`), snippet),
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

  /* ------------------------------------------------------------------ compare */

  /* Two experiments' summaries side by side: one row per (problem, solver) label found in either,
   * the chosen metric's mean [CI] and success rate in each, and which is lower. */
  function compareView(a, b) {
    const metric = h("select", { id: "compare-metric" });
    const table = h("table", { class: "grid", id: "compare-table" });
    const msg = h("p", { class: "muted" }, "Loading…");
    const heads = [h("span"), h("span")];
    OB.app.replaceChildren(
      h("h1", {}, "Compare experiments"),
      h("div", { class: "controls" }, h("span", {}, "A: ", heads[0]), h("span", {}, "B: ", heads[1]), h("label", {}, "metric ", metric)),
      msg,
      h("div", { class: "scroll" }, table),
    );
    let chosen = "final_loss";
    async function load() {
      let exps, sums;
      try {
        exps = await Promise.all([a, b].map((x) => OB.api(`v1/experiments/${x}`)));
        sums = await Promise.all([a, b].map((x) => OB.api(`v1/experiments/${x}/summary`, { query: { metric: chosen, max_points: 2, curve_groups: 1 } })));
      } catch (e) {
        if (e.status === 404) OB.notFound("experiment", e.body && e.body.instance ? e.body.instance.split("/")[3] : `${a} or ${b}`);
        else msg.textContent = OB.errorText(e);
        return;
      }
      exps.forEach((r, i) => heads[i].replaceChildren(h("a", { href: `#/experiments/${r.data.id}` }, r.data.name), " ", OB.statusBadge(r.data.status)));
      const s = sums.map((r) => r.data);
      const metrics = Array.from(new Set(s.flatMap((x) => x.metrics || [])));
      metric.replaceChildren(...metrics.map((m) => h("option", { value: m, selected: m === chosen }, m)));
      const keys = [];
      const rows = new Map();
      s.forEach((sum, side) =>
        sum.groups.forEach((g) => {
          const key = `${g.problem}\u0000${g.solver}`;
          if (!rows.has(key)) {
            rows.set(key, [null, null]);
            keys.push(key);
          }
          rows.get(key)[side] = g;
        }),
      );
      const cell = (g) => {
        if (!g) return h("td", { class: "muted" }, "—");
        const m = g.metrics[chosen] || {};
        return h("td", { class: "num" }, `${OB.fmt(m.mean)} [${OB.fmt(m.ci_low, 3)}, ${OB.fmt(m.ci_high, 3)}]`);
      };
      const lower = chosen === "test_accuracy" ? -1 : 1;
      table.replaceChildren(
        h("thead", {}, h("tr", {}, ["problem", "solver", `A: ${chosen} mean [95% CI]`, `B: ${chosen} mean [95% CI]`, "B − A", "better"].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          keys.map((key) => {
            const [ga, gb] = rows.get(key);
            const [problem, solver] = key.split("\u0000");
            const ma = ga && ga.metrics[chosen] ? ga.metrics[chosen].mean : null;
            const mb = gb && gb.metrics[chosen] ? gb.metrics[chosen].mean : null;
            const both = ma !== null && mb !== null;
            const better = !both || ma === mb ? "–" : (mb - ma) * lower < 0 ? "B" : "A";
            return h("tr", {}, h("td", {}, problem), h("td", {}, solver), cell(ga), cell(gb), h("td", { class: "num" }, both ? OB.fmt(mb - ma) : "–"), h("td", {}, better));
          }),
        ),
      );
      msg.textContent = `${keys.length} groups; a group is matched by its problem and solver labels.`;
    }
    metric.addEventListener("change", () => {
      chosen = metric.value;
      load();
    });
    load();
  }

  /* ------------------------------------------------------------------ router */

  function route() {
    OB.leave();
    const hash = location.hash || "#/";
    const [path, query] = hash.slice(1).split("?");
    const params = new URLSearchParams(query || "");
    const idRe = "([A-Za-z0-9_-]{1,64})";
    let m;
    document.title = "optbench";
    if ((m = path.match(new RegExp(`^/experiments/${idRe}$`)))) OB.experimentView(m[1]);
    else if ((m = path.match(new RegExp(`^/experiments/${idRe}/run/${idRe}$`)))) OB.runByHash(m[1], m[2]);
    else if ((m = path.match(new RegExp(`^/runs/${idRe}$`)))) OB.runView(m[1]);
    else if ((m = path.match(new RegExp(`^/compare/${idRe}/${idRe}$`)))) compareView(m[1], m[2]);
    else if (path === "/new") newView(params);
    else OB.listView(params);
    window.scrollTo(0, 0);
  }

  window.addEventListener("hashchange", route);
  route();
})();
