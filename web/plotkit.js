/* optbench dashboard: what every plot shares — theme colours, number formats and ticks, colours
 * grouped by optimizer, and export of a plot as PNG, SVG or CSV. */
(function () {
  "use strict";
  const OB = (window.OB = window.OB || {});

  /* Colours of the current theme (light or dark, from prefers-color-scheme via CSS variables). */
  OB.theme = function () {
    const css = getComputedStyle(document.documentElement);
    const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    return {
      fg: v("--fg", "#1d2330"),
      muted: v("--muted", "#6b7280"),
      grid: v("--grid", "#e6e8ee"),
      bg: v("--panel", "#fff"),
      dark: window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches,
    };
  };

  /* A number for a table or tooltip: integers as they are, 4 significant digits, scientific
   * notation outside [1e-3, 1e5). */
  OB.fmt = function (v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
    if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return sci(v, (digits || 4) - 1);
    return String(Number(v.toPrecision(digits || 4)));
  };

  /* 1.5e-4 rather than 1.500e-4 or 1.5e+22. */
  function sci(v, fraction) {
    const [m, e] = v.toExponential(fraction).split("e");
    const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
    return `${mant}e${e.replace("+", "")}`;
  }

  /* Axis tick labels: short (1e-4, 2.5e6, 0.25, 1200). */
  OB.tick = function (v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a < 1e-3 || a >= 1e4) return sci(v, 2);
    return String(Number(v.toPrecision(4)));
  };

  const measurer = document.createElement("canvas").getContext("2d");

  /* Width of a y axis from its widest tick label, so labels never run into the axis title. */
  OB.axisSize = function (u, values) {
    measurer.font = "11px system-ui, sans-serif";
    const widest = Math.max(0, ...(values || []).map((t) => measurer.measureText(String(t || "")).width));
    return Math.ceil(widest) + 18;
  };

  /* Ticks of a log axis: whole powers of the base, thinned to about eight; a narrow range gets
   * 1-2-5 steps within each decade. */
  OB.logSplits = function (base) {
    return (u, axisIdx, min, max) => {
      const lg = (v) => Math.log(v) / Math.log(base);
      const lo = Math.floor(lg(min) + 1e-9);
      const hi = Math.ceil(lg(max) - 1e-9);
      const step = Math.max(1, Math.ceil((hi - lo) / 8));
      const inside = (v) => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
      const out = [];
      for (let e = lo; e <= hi; e += step) {
        const v = Math.pow(base, e);
        if (inside(v)) out.push(v);
      }
      if (out.length < 3 && base === 10) {
        const fine = [];
        for (let e = lo - 1; e <= hi; e++) {
          [1, 2, 5].forEach((m) => {
            const v = m * Math.pow(10, e);
            if (inside(v)) fine.push(v);
          });
        }
        if (fine.length >= 2) return fine;
      }
      return out.length >= 2 ? out : [min, max];
    };
  };

  /* ------------------------------------------------------------------ colours */

  const HUES = [214, 4, 132, 28, 276, 182, 328, 52, 248, 100];
  const DASHES = [null, [7, 4], [2, 3], [10, 3, 2, 3]];

  /* Order two specs by their values (numbers numerically), so lr=0.001 comes before lr=0.01. */
  function compareSpecs(a, b) {
    const keys = Array.from(new Set([...Object.keys(a || {}), ...Object.keys(b || {})])).sort();
    for (const k of keys) {
      const x = a ? a[k] : undefined;
      const y = b ? b[k] : undefined;
      if (typeof x === "number" && typeof y === "number") {
        if (x !== y) return x - y;
      } else {
        const sx = JSON.stringify(x) || "";
        const sy = JSON.stringify(y) || "";
        if (sx !== sy) return sx < sy ? -1 : 1;
      }
    }
    return 0;
  }

  /* Styles per solver: one hue per optimizer, a shade per hyper-parameter setting (darker = the
   * smaller values), a dash pattern per schedule. solvers: [{id, optimizer: {...}, schedule}]. */
  OB.solverStyles = function (solvers) {
    const dark = OB.theme().dark;
    const byOpt = new Map();
    solvers.forEach((s) => {
      const name = (s.optimizer && s.optimizer.name) || s.label;
      if (!byOpt.has(name)) byOpt.set(name, []);
      byOpt.get(name).push(s);
    });
    const schedules = [];
    solvers.forEach((s) => {
      const key = JSON.stringify(s.schedule || null);
      if (!schedules.includes(key)) schedules.push(key);
    });
    const out = new Map();
    Array.from(byOpt.values()).forEach((list, o) => {
      const hue = HUES[o % HUES.length] + 17 * Math.floor(o / HUES.length);
      const variants = [];
      list.forEach((s) => {
        const key = JSON.stringify(s.optimizer);
        if (!variants.some((v) => JSON.stringify(v) === key)) variants.push(s.optimizer);
      });
      variants.sort(compareSpecs);
      list.forEach((s) => {
        const k = variants.findIndex((v) => JSON.stringify(v) === JSON.stringify(s.optimizer));
        const n = variants.length;
        const [l0, l1] = dark ? [48, 80] : [26, 64];
        const light = n === 1 ? (l0 + l1) / 2 : l0 + ((l1 - l0) * k) / (n - 1);
        const sat = n === 1 ? 70 : 78;
        const dash = schedules.length > 1 ? DASHES[schedules.indexOf(JSON.stringify(s.schedule || null)) % DASHES.length] : null;
        out.set(s.id, {
          color: `hsl(${hue}, ${sat}%, ${light}%)`,
          band: `hsla(${hue}, ${sat}%, ${light}%, 0.12)`,
          dash,
        });
      });
    });
    return out;
  };

  /* ------------------------------------------------------------------ export */

  OB.download = function (blob, filename) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 5000);
  };

  /* The plot's canvas on the theme's background (a transparent PNG is unreadable in a viewer
   * of the other colour scheme). */
  OB.exportPNG = function (canvas) {
    const out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    const ctx = out.getContext("2d");
    ctx.fillStyle = OB.theme().bg;
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.drawImage(canvas, 0, 0);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  };

  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  /* The plot as vector SVG: frame, grid, ticks and labels, bands, lines, cut markers, legend. */
  OB.exportSVG = function (u, spec, built) {
    const t = OB.theme();
    const dpr = window.devicePixelRatio || 1;
    const L = u.bbox.left / dpr, T = u.bbox.top / dpr, W = u.bbox.width / dpr, H = u.bbox.height / dpr;
    const legendRows = Math.ceil(spec.series.length / 3);
    const width = u.width, height = u.height + 18 * legendRows + 8;
    const X = (v) => L + u.valToPos(v, "x");
    const Y = (v) => T + u.valToPos(v, "y");
    const parts = [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
      `<rect width="100%" height="100%" fill="${t.bg}"/>`,
      `<defs><clipPath id="plot"><rect x="${L}" y="${T}" width="${W}" height="${H}"/></clipPath></defs>`,
    ];
    const xs = (u.axes[0]._splits || []).filter((v) => v !== null);
    const ys = (u.axes[1]._splits || []).filter((v) => v !== null);
    const xv = u.axes[0]._values || xs.map(OB.tick);
    const yv = u.axes[1]._values || ys.map(OB.tick);
    xs.forEach((v, i) => {
      const x = X(v).toFixed(1);
      parts.push(`<line x1="${x}" x2="${x}" y1="${T}" y2="${T + H}" stroke="${t.grid}"/>`);
      parts.push(`<text x="${x}" y="${T + H + 15}" text-anchor="middle" fill="${t.fg}">${esc(xv[i] || "")}</text>`);
    });
    ys.forEach((v, i) => {
      const y = Y(v).toFixed(1);
      parts.push(`<line x1="${L}" x2="${L + W}" y1="${y}" y2="${y}" stroke="${t.grid}"/>`);
      parts.push(`<text x="${L - 6}" y="${y}" dy="0.35em" text-anchor="end" fill="${t.fg}">${esc(yv[i] || "")}</text>`);
    });
    parts.push(`<text x="${L + W / 2}" y="${T + H + 34}" text-anchor="middle" font-size="12" fill="${t.fg}">${esc(spec.xLabel || "")}</text>`);
    parts.push(`<text transform="translate(12 ${T + H / 2}) rotate(-90)" text-anchor="middle" font-size="12" fill="${t.fg}">${esc(spec.yLabel || "")}</text>`);
    parts.push(`<g clip-path="url(#plot)">`);
    const x0 = u.data[0];
    const pathOf = (col) => {
      let d = "";
      let pen = false;
      col.forEach((v, i) => {
        if (v === null || v === undefined) return;
        d += `${pen ? "L" : "M"}${X(x0[i]).toFixed(1)} ${Y(v).toFixed(1)}`;
        pen = true;
      });
      return d;
    };
    spec.series.forEach((ser, n) => {
      const k = built.index[n];
      if (!u.series[k].show) return;
      if (ser.lo) {
        const hi = u.data[k + 1], lo = u.data[k + 2];
        const up = [], down = [];
        x0.forEach((x, i) => {
          if (hi[i] !== null && hi[i] !== undefined && lo[i] !== null && lo[i] !== undefined) {
            up.push(`${X(x).toFixed(1)} ${Y(hi[i]).toFixed(1)}`);
            down.unshift(`${X(x).toFixed(1)} ${Y(lo[i]).toFixed(1)}`);
          }
        });
        if (up.length) parts.push(`<path d="M${up.concat(down).join("L")}Z" fill="${ser.bandColor || "rgba(0,0,0,0.08)"}"/>`);
      }
    });
    spec.series.forEach((ser, n) => {
      const k = built.index[n];
      if (!u.series[k].show || ser.noLine) return;
      const dash = ser.dash ? ` stroke-dasharray="${ser.dash.join(" ")}"` : "";
      parts.push(`<path d="${pathOf(u.data[k])}" fill="none" stroke="${ser.color}" stroke-width="${ser.width || 1.6}"${dash}/>`);
    });
    built.cuts.forEach(([x, y, , color]) => {
      const px = X(x), py = Math.max(Y(y), T + 5);
      parts.push(`<path d="M${px - 5} ${py - 5}L${px + 5} ${py + 5}M${px + 5} ${py - 5}L${px - 5} ${py + 5}" stroke="${color}" stroke-width="2"/>`);
    });
    parts.push(`</g><rect x="${L}" y="${T}" width="${W}" height="${H}" fill="none" stroke="${t.muted}"/>`);
    spec.series.forEach((ser, n) => {
      const col = n % 3, row = Math.floor(n / 3);
      const lx = 10 + (col * width) / 3, ly = u.height + 12 + row * 18;
      parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="10" fill="${ser.color}"/>`);
      parts.push(`<text x="${lx + 14}" y="${ly + 1}" fill="${t.fg}">${esc(ser.label)}</text>`);
    });
    parts.push("</svg>");
    return new Blob([parts.join("\n")], { type: "image/svg+xml" });
  };

  /* The plotted data as CSV: one row per x, a column per series (and its band), unsmoothed and
   * uncut. */
  OB.exportCSV = function (u, spec) {
    const xs = new Set();
    spec.series.forEach((s) => s.x.forEach((x) => x !== null && xs.add(x)));
    const order = Array.from(xs).sort((a, b) => a - b);
    const cols = [];
    spec.series.forEach((s) => {
      const at = (arr) => new Map(s.x.map((x, k) => [x, arr[k]]));
      cols.push([s.label, at(s.y)]);
      if (s.lo) cols.push([`${s.label} min`, at(s.lo)], [`${s.label} max`, at(s.hi)]);
    });
    const q = (v) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
    const lines = [[spec.xLabel || "x", ...cols.map((c) => c[0])].map(q).join(",")];
    order.forEach((x) => {
      lines.push([x, ...cols.map(([, m]) => (m.has(x) && m.get(x) !== null ? m.get(x) : ""))].join(","));
    });
    return new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
  };

  /* PNG / SVG / CSV buttons for a plot handle ({png, svg, csv}); name is the file stem. */
  OB.exportButtons = function (getPlot, name) {
    const box = document.createElement("span");
    box.className = "export";
    [["png", "PNG"], ["svg", "SVG"], ["csv", "CSV"]].forEach(([kind, text]) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "mini";
      b.dataset.export = kind;
      b.textContent = text;
      b.title = `Download this plot as ${text}`;
      b.addEventListener("click", async () => {
        const plot = getPlot();
        if (!plot || !plot[kind]) return;
        const blob = await plot[kind]();
        OB.download(blob, `${name}.${kind}`);
      });
      box.appendChild(b);
    });
    return box;
  };
})();
