/* optbench dashboard: the experiments list — filters (status, name, tag, archived), cursor
 * pagination, re-run / archive / delete per row, and picking two to compare. */
(function () {
  "use strict";
  const OB = window.OB;
  const h = OB.h;
  const PAGE = 25;

  OB.listView = function (params) {
    const filters = {
      status: params.get("status") || "",
      name: params.get("name") || "",
      tag: params.get("tag") || "",
      archived: params.get("archived") === "true",
    };
    const cursors = [null]; // cursor of each page seen; the last one is the current page
    const picked = new Set();
    const body = h("tbody");
    const msg = h("p", { class: "muted", id: "list-msg" }, "Loading…");
    const prev = h("button", { type: "button", id: "page-prev", onclick: () => go(-1) }, "← Newer");
    const next = h("button", { type: "button", id: "page-next", onclick: () => go(1) }, "Older →");
    const compare = h("button", { type: "button", id: "compare-btn", disabled: true, onclick: () => (location.hash = `#/compare/${[...picked].join("/")}`) }, "Compare 2 selected");
    let nextCursor = null;
    let etag = null;

    const status = h(
      "select",
      { id: "filter-status" },
      ["", "queued", "running", "succeeded", "failed", "cancelled"].map((s) => h("option", { value: s, selected: s === filters.status }, s || "any status")),
    );
    const name = h("input", { id: "filter-name", type: "search", placeholder: "name contains…", value: filters.name });
    const tag = h("input", { id: "filter-tag", type: "search", placeholder: "tag", value: filters.tag });
    const archived = h("input", { id: "filter-archived", type: "checkbox", checked: filters.archived });
    const apply = () => {
      const q = new URLSearchParams();
      if (status.value) q.set("status", status.value);
      if (name.value.trim()) q.set("name", name.value.trim());
      if (tag.value.trim()) q.set("tag", tag.value.trim());
      if (archived.checked) q.set("archived", "true");
      const s = q.toString();
      location.hash = s ? `#/?${s}` : "#/";
    };
    status.addEventListener("change", apply);
    archived.addEventListener("change", apply);
    [name, tag].forEach((el) => el.addEventListener("keydown", (ev) => ev.key === "Enter" && apply()));

    OB.app.replaceChildren(
      h("div", { class: "title-row" }, h("h1", {}, filters.archived ? "Archived experiments" : "Experiments"), h("a", { class: "button primary", href: "#/new" }, "New experiment")),
      h(
        "div",
        { class: "controls filters" },
        status,
        name,
        tag,
        h("label", {}, archived, " archived"),
        h("button", { type: "button", onclick: apply }, "Filter"),
        h("span", { class: "spacer" }),
        compare,
      ),
      msg,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "grid", id: "experiment-list" },
          h("thead", {}, h("tr", {}, ["", "Name", "Id", "Status", "Progress", "Runs", "Created", ""].map((t) => h("th", {}, t)))),
          body,
        ),
      ),
      h("div", { class: "actions pager" }, prev, next),
    );

    async function act(e, what) {
      try {
        if (what === "delete") {
          if (!confirm(`Delete “${e.name}” with all its runs and curves? Running runs stop at their next checkpoint.`)) return;
          await OB.api(`v1/experiments/${e.id}`, { method: "DELETE" });
        } else {
          await OB.api(`v1/experiments/${e.id}`, { method: "PATCH", body: { archived: what === "archive" } });
        }
        etag = null;
        await load();
      } catch (err) {
        msg.textContent = `Cannot ${what}: ` + OB.errorText(err);
      }
    }

    function row(e) {
      const box = h("input", { type: "checkbox", class: "pick", checked: picked.has(e.id), "aria-label": `select ${e.name}` });
      box.addEventListener("change", () => {
        if (box.checked) picked.add(e.id);
        else picked.delete(e.id);
        while (picked.size > 2) picked.delete(picked.values().next().value);
        body.querySelectorAll("input.pick").forEach((b) => (b.checked = picked.has(b.closest("tr").dataset.id)));
        compare.disabled = picked.size !== 2;
      });
      const pct = Math.round((e.progress || 0) * 100);
      return h(
        "tr",
        { "data-id": e.id },
        h("td", {}, box),
        h("td", {}, h("a", { href: `#/experiments/${e.id}` }, e.name), " ", OB.tags(e.tags)),
        h("td", {}, OB.idLink("experiment", e.id, `#/experiments/${e.id}`)),
        h("td", {}, OB.statusBadge(e.status)),
        h("td", { class: "nowrap" }, h("progress", { max: 1, value: e.progress || 0 }), ` ${pct}%`),
        h("td", {}, `${e.total_runs}`, h("span", { class: "muted" }, " " + OB.countsText(e.counts))),
        h("td", { class: "nowrap" }, OB.when(e.created_at)),
        h(
          "td",
          { class: "row-actions" },
          h("a", { class: "button mini", href: `#/new?from=${e.id}`, title: "Open the form with this spec" }, "Re-run"),
          h("button", { type: "button", class: "mini", onclick: () => act(e, e.archived_at ? "restore" : "archive") }, e.archived_at ? "Restore" : "Archive"),
          h("button", { type: "button", class: "mini danger", onclick: () => act(e, "delete") }, "Delete"),
        ),
      );
    }

    async function load() {
      const query = { limit: PAGE, cursor: cursors[cursors.length - 1], status: filters.status, name: filters.name, tag: filters.tag, archived: filters.archived ? "true" : undefined };
      const r = await OB.api("v1/experiments", { etag, query });
      if (r.status === 304) return;
      etag = r.etag;
      const items = r.data.items || [];
      nextCursor = r.data.next_cursor;
      const filtered = filters.status || filters.name || filters.tag;
      msg.textContent = items.length ? "" : filtered ? "Nothing matches these filters." : filters.archived ? "Nothing archived." : "No experiments yet — submit one.";
      body.replaceChildren(...items.map(row));
      prev.disabled = cursors.length === 1;
      next.disabled = !nextCursor;
    }

    function go(step) {
      if (step > 0 && nextCursor) cursors.push(nextCursor);
      if (step < 0 && cursors.length > 1) cursors.pop();
      etag = null;
      load().catch((e) => (msg.textContent = "Cannot load experiments: " + OB.errorText(e)));
    }

    OB.every(3000, async () => {
      try {
        await load();
      } catch (e) {
        msg.textContent = "Cannot load experiments: " + OB.errorText(e);
      }
    });
  };
})();
