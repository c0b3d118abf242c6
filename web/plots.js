/* optbench dashboard: line plots on uPlot (vendored) with robust y-limits, hover values, EMA
 * smoothing and PNG/SVG/CSV export. Colours, number formats and export live in plotkit.js; the
 * loss landscape is in contour.js. */
(function () {
  "use strict";
  const OB = (window.OB = window.OB || {});

  /* ------------------------------------------------------------------ robust limits */

  /* Quantile q of sorted values (linear interpolation between order statistics). */
  function quantile(sorted, q) {
    if (!sorted.length) return NaN;
    const p = (sorted.length - 1) * q;
    const k = Math.floor(p);
    return k + 1 < sorted.length ? sorted[k] + (p - k) * (sorted[k + 1] - sorted[k]) : sorted[k];
  }
  OB.quantile = quantile;

  /* y-limits that ignore blow-ups: Tukey's fences from the quartiles of the finite values of the
   * series that did not diverge (all series when every one diverged), in log space on a log axis;
   * the limits are the smallest and largest value inside [Q1 − 3·IQR, Q3 + 3·IQR], padded by 4 %
   * of the span. Legitimate extremes (a start value, a fast descent) stay inside; a diverged run's
   * climb to 1e13 is cut at the edge. */
  OB.robustRange = function (series, log) {
    const pool = (list) => {
      const out = [];
      list.forEach((s) =>
        [s.y, s.lo, s.hi].forEach((arr) =>
          (arr || []).forEach((v) => {
            if (v !== null && Number.isFinite(v) && (!log || v > 0)) out.push(log ? Math.log10(v) : v);
          }),
        ),
      );
      return out.sort((a, b) => a - b);
    };
    let vals = pool(series.filter((s) => !s.diverged));
    if (vals.length < 2) vals = pool(series);
    if (vals.length < 2) return null;
    const q1 = quantile(vals, 0.25);
    const q3 = quantile(vals, 0.75);
    const fence = 3 * Math.max(q3 - q1, log ? 0.5 : Math.abs(q3) * 0.01);
    const inside = vals.filter((v) => v >= q1 - fence && v <= q3 + fence);
    let lo = inside[0];
    let hi = inside[inside.length - 1];
    if (hi - lo < 1e-12) {
      lo -= log ? 0.5 : Math.abs(lo) * 0.1 + 1e-12;
      hi += log ? 0.5 : Math.abs(hi) * 0.1 + 1e-12;
    }
    const pad = 0.04 * (hi - lo);
    lo -= pad;
    hi += pad;
    return log ? [Math.pow(10, lo), Math.pow(10, hi)] : [lo, hi];
  };

  /* Exponential moving average with TensorBoard's debiasing: s_k = a·s_{k−1} + (1−a)·y_k,
   * reported as s_k / (1 − a^(k+1)); on a log axis it averages log10(y). Gaps stay gaps. */
  OB.ema = function (ys, alpha, log) {
    if (!alpha) return ys;
    let s = 0;
    let n = 0;
    return ys.map((v) => {
      if (v === null || !Number.isFinite(v) || (log && v <= 0)) return v;
      const t = log ? Math.log10(v) : v;
      s = alpha * s + (1 - alpha) * t;
      n += 1;
      const out = s / (1 - Math.pow(alpha, n));
      return log ? Math.pow(10, out) : out;
    });
  };

  /* ------------------------------------------------------------------ legend */

  /* A legend of coloured swatches; clicking an item toggles its series. */
  OB.legend = function (container, items, onToggle) {
    container.replaceChildren();
    container.className = "legend";
    items.forEach((item, i) => {
      const el = document.createElement("button");
      el.type = "button";
      el.className = "legend-item";
      const sw = document.createElement("span");
      sw.className = "swatch" + (item.dash ? " dashed" : "");
      sw.style.background = item.color;
      el.append(sw, document.createTextNode(item.label));
      el.title = item.title || item.label;
      el.addEventListener("click", () => {
        el.classList.toggle("off");
        if (onToggle) onToggle(i, !el.classList.contains("off"));
      });
      container.appendChild(el);
    });
  };

  /* ------------------------------------------------------------------ line plot */

  /* Line plot with optional min–max bands, step paths, robust limits and hover values.
   * spec: {xLabel, yLabel, logX, logY, logBase, stepped, height, yRange, xRange, robust, smooth,
   *        title, series: [{label, color, dash?, x, y, lo?, hi?, points?, diverged?, width?}]}
   * Each series has its own x; they are joined on the union of x values (gaps spanned). */
  OB.linePlot = function (el, spec) {
    el.classList.add("plot");
    const holder = document.createElement("div");
    holder.className = "plot-canvas";
    const legendEl = document.createElement("div");
    el.replaceChildren(holder, legendEl);
    let u = null;
    let layout = null;
    let current = spec;
    let built = null;
    const tip = document.createElement("div");
    tip.className = "plot-tip";
    tip.hidden = true;

    function clean(v, log) {
      if (v === null || v === undefined || !Number.isFinite(v)) return null;
      return log && v <= 0 ? null : v;
    }

    function build(s) {
      const theme = OB.theme();
      const tables = [];
      const uSeries = [{}];
      const bands = [];
      const index = [];
      const range = s.robust ? OB.robustRange(s.series, s.logY) : null;
      const cuts = []; // [x, y, label] where a series leaves the robust range or diverges
      s.series.forEach((ser) => {
        const xs = [];
        const cols = [[], [], []];
        const hasBand = Array.isArray(ser.lo) && Array.isArray(ser.hi);
        const ys = OB.ema(ser.y, s.smooth, s.logY);
        let cut = false;
        const clamp = (v) => {
          if (v === null || !range) return v;
          return Math.min(Math.max(v, range[0]), range[1]);
        };
        ser.x.forEach((x, k) => {
          const xv = clean(x, s.logX);
          if (xv === null) return;
          if (xs.length && xv <= xs[xs.length - 1]) return; // keep x strictly increasing
          xs.push(xv);
          let yv = clean(ys[k], s.logY);
          if (range && yv !== null && yv > range[1] && !cut) {
            cut = true;
            cuts.push([xv, range[1], ser.label, ser.color]);
          }
          cols[0].push(clamp(yv));
          if (hasBand) {
            cols[1].push(clamp(clean(ser.hi[k], s.logY)));
            cols[2].push(clamp(clean(ser.lo[k], s.logY)));
          }
        });
        if (ser.diverged && !cut && xs.length && range) {
          // diverged without leaving the view (e.g. NaN): mark its last point
          const last = cols[0].length - 1;
          if (cols[0][last] !== null) cuts.push([xs[last], cols[0][last], ser.label, ser.color]);
        }
        tables.push(hasBand ? [xs, cols[0], cols[1], cols[2]] : [xs, cols[0]]);
        const base = uSeries.length;
        index.push(base);
        uSeries.push({
          label: ser.label,
          stroke: ser.color,
          width: ser.width || 1.6,
          dash: ser.dash || undefined,
          spanGaps: true,
          points: { show: !!ser.points, size: ser.pointSize || 6, fill: ser.color },
          paths: ser.points && ser.noLine ? () => null : s.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
        });
        if (hasBand) {
          const faint = { stroke: "transparent", width: 0, spanGaps: true, points: { show: false } };
          uSeries.push({ ...faint, label: ser.label + " max" });
          uSeries.push({ ...faint, label: ser.label + " min" });
          bands.push({ series: [base + 1, base + 2], fill: ser.bandColor || "rgba(0,0,0,0.08)" });
        }
      });
      const data = tables.length ? uPlot.join(tables) : [[]];
      const width = Math.max(280, el.clientWidth || 600);
      const yScale = s.logY ? { distr: 3, log: 10 } : { auto: true };
      if (s.yRange) yScale.range = s.yRange;
      else if (range) yScale.range = () => range;
      const xScale = s.logX ? { time: false, distr: 3, log: s.logBase || 10 } : { time: false };
      if (s.xRange) xScale.range = (u, min, max) => [Math.min(s.xRange[0], min), Math.max(s.xRange[1], max)];
      const axis = (label, log, base, side) => ({
        label: label || "",
        labelFont: "12px system-ui, sans-serif",
        font: "11px system-ui, sans-serif",
        stroke: theme.fg,
        grid: { stroke: theme.grid, width: 1 },
        ticks: { stroke: theme.grid, width: 1 },
        values: (u, splits) => splits.map((v) => (v === null ? "" : OB.tick(v))),
        splits: log ? OB.logSplits(base || 10) : undefined,
        filter: log ? (u, splits) => splits : undefined,
        size: side === "y" ? OB.axisSize : 44,
        labelSize: 18,
        gap: 4,
      });
      const opts = {
        width,
        height: s.height || 300,
        legend: { show: false },
        cursor: { drag: { x: true, y: false }, points: { size: 6 } },
        scales: { x: xScale, y: yScale },
        axes: [axis(s.xLabel, s.logX, s.logBase, "x"), axis(s.yLabel, s.logY, 10, "y")],
        series: uSeries,
        bands,
        hooks: {
          draw: [(u) => drawCuts(u, cuts)],
          setCursor: [(u) => showTip(u)],
        },
      };
      return {
        opts,
        data,
        index,
        cuts,
        key: JSON.stringify([s.logX, s.logY, s.stepped, s.xLabel, s.yLabel, s.robust, range, s.xRange, s.series.map((x) => [x.label, x.color, x.dash, !!x.lo])]),
      };
    }

    /* A × where a series leaves the view (diverged): drawn on the edge, in the series' colour. */
    function drawCuts(u, cuts) {
      const ctx = u.ctx;
      const dpr = window.devicePixelRatio || 1;
      ctx.save();
      ctx.lineWidth = 2 * dpr;
      cuts.forEach(([x, y, , color]) => {
        const px = u.valToPos(x, "x", true);
        const py = Math.max(u.valToPos(y, "y", true), u.bbox.top + 5 * dpr);
        if (!Number.isFinite(px) || !Number.isFinite(py)) return;
        const r = 5 * dpr;
        ctx.strokeStyle = color;
        ctx.beginPath();
        ctx.moveTo(px - r, py - r);
        ctx.lineTo(px + r, py + r);
        ctx.moveTo(px + r, py - r);
        ctx.lineTo(px - r, py + r);
        ctx.stroke();
      });
      ctx.restore();
    }

    /* Hover values: every visible series' value at the cursor, largest first. */
    function showTip(u) {
      const i = u.cursor.idx;
      if (i === null || i === undefined || u.cursor.left < 0) {
        tip.hidden = true;
        return;
      }
      const x = u.data[0][i];
      const rows = [];
      current.series.forEach((ser, n) => {
        const k = built.index[n];
        if (!u.series[k].show) return;
        const raw = nearest(u.data[k], i);
        if (raw === null) return;
        rows.push([raw, ser]);
      });
      rows.sort((a, b) => b[0] - a[0]);
      const head = document.createElement("div");
      head.className = "tip-head";
      head.textContent = `${current.xLabel || "x"} = ${OB.fmt(x)}`;
      const fit = Math.max(6, Math.floor((u.height - 40) / 17)); // rows that fit the plot
      const list = rows.slice(0, fit).map(([v, ser]) => {
        const row = document.createElement("div");
        row.className = "tip-row";
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = ser.color;
        const val = document.createElement("b");
        val.textContent = OB.fmt(v);
        row.append(sw, val, document.createTextNode(" " + ser.label));
        return row;
      });
      if (rows.length > fit) list.push(document.createTextNode(`… ${rows.length - fit} more`));
      tip.replaceChildren(head, ...list);
      tip.hidden = false;
      const left = u.cursor.left + u.bbox.left / (window.devicePixelRatio || 1);
      const flip = left > u.width * 0.55;
      tip.style.left = flip ? "" : `${left + 14}px`;
      tip.style.right = flip ? `${u.width - left + 14}px` : "";
      tip.style.top = "8px";
    }

    /* The series' value at index i, or at the nearest index with a value (series joined on the
     * union of x values have gaps at the other series' points). */
    function nearest(col, i) {
      if (col[i] !== null && col[i] !== undefined) return col[i];
      for (let d = 1; d < 6; d++) {
        if (col[i - d] !== null && col[i - d] !== undefined) return col[i - d];
        if (col[i + d] !== null && col[i + d] !== undefined) return col[i + d];
      }
      return null;
    }

    function render(s) {
      current = s;
      built = build(s);
      holder.setAttribute("role", "img");
      holder.setAttribute("aria-label", `${s.yLabel || "y"} vs ${s.xLabel || "x"}`);
      if (u && layout === built.key) {
        u.hooks.draw = [(uu) => drawCuts(uu, built.cuts)];
        u.setData(built.data);
        return;
      }
      const hidden = new Set(
        Array.from(legendEl.querySelectorAll(".legend-item.off")).map((b) => b.textContent),
      );
      if (u) u.destroy();
      u = new uPlot(built.opts, built.data, holder);
      u.over.appendChild(tip);
      layout = built.key;
      const items = s.series.filter((x) => !x.noLegend);
      const toggle = (i, show) => {
        const main = built.index[i];
        u.setSeries(main, { show });
        if (s.series[i].lo) {
          u.setSeries(main + 1, { show });
          u.setSeries(main + 2, { show });
        }
      };
      OB.legend(
        legendEl,
        items.map((x) => ({ label: x.label, color: x.color, title: x.title, dash: !!x.dash })),
        toggle,
      );
      legendEl.querySelectorAll(".legend-item").forEach((b, i) => {
        if (hidden.has(b.textContent)) {
          b.classList.add("off");
          toggle(i, false);
        }
      });
    }

    render(spec);
    // the live uPlot instance on the element: what export and the browser tests measure
    Object.defineProperty(el, "uplot", { get: () => u, configurable: true });
    const ro = new ResizeObserver(() => {
      if (u && el.clientWidth && Math.abs(u.width - el.clientWidth) > 4) {
        u.setSize({ width: el.clientWidth, height: u.height });
      }
    });
    ro.observe(el);
    return {
      update: render,
      get spec() {
        return current;
      },
      get uplot() {
        return u;
      },
      png: () => OB.exportPNG(u.ctx.canvas),
      svg: () => OB.exportSVG(u, current, built),
      csv: () => OB.exportCSV(u, current, built),
      destroy() {
        ro.disconnect();
        if (u) u.destroy();
      },
    };
  };
})();
