/* optbench dashboard: plots. Line/band/step plots are uPlot (vendored); the loss landscape is a
 * canvas with contour lines from a marching-squares pass over the server's loss grid. */
(function () {
  "use strict";
  const OB = (window.OB = window.OB || {});

  const PALETTE = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
  ];

  OB.color = function (i, alpha) {
    const hex = PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
    if (alpha === undefined) return hex;
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
  };

  OB.fmt = function (v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential((digits || 4) - 1);
    return String(Number(v.toPrecision(digits || 4)));
  };

  /* Ticks of a log axis: whole powers of the base, thinned to about eight (uPlot's own log
   * splits enumerate every decade's multiples, which breaks down over dozens of decades). */
  function logSplits(base) {
    return (u, axisIdx, min, max) => {
      const lg = (v) => Math.log(v) / Math.log(base);
      const lo = Math.floor(lg(min) + 1e-9), hi = Math.ceil(lg(max) - 1e-9);
      const step = Math.max(1, Math.ceil((hi - lo) / 8));
      const inside = (v) => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
      const out = [];
      for (let e = lo; e <= hi; e += step) {
        const v = Math.pow(base, e);
        if (inside(v)) out.push(v);
      }
      if (out.length < 3 && base === 10) {
        // a narrow range: 1-2-5 steps within each decade
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
  }

  function axisValues(log) {
    return (u, splits) => splits.map((v) => (v === null ? "" : log ? OB.fmt(v, 2) : OB.fmt(v, 4)));
  }

  /* A legend of coloured swatches; clicking an item toggles its series. */
  OB.legend = function (container, items, onToggle) {
    container.innerHTML = "";
    container.className = "legend";
    items.forEach((item, i) => {
      const el = document.createElement("button");
      el.type = "button";
      el.className = "legend-item";
      el.innerHTML = `<span class="swatch" style="background:${item.color}"></span>`;
      el.appendChild(document.createTextNode(item.label));
      el.title = item.title || item.label;
      el.addEventListener("click", () => {
        el.classList.toggle("off");
        if (onToggle) onToggle(i, !el.classList.contains("off"));
      });
      container.appendChild(el);
    });
  };

  /* Line plot with optional min–max bands and step paths.
   * spec: {xLabel, yLabel, logX, logY, logBase, stepped, height, yRange,
   *        series: [{label, color, x: [], y: [], lo?: [], hi?: [], points?: bool, width?: n}]}
   * Each series has its own x; they are joined on the union of x values (gaps spanned). */
  OB.linePlot = function (el, spec) {
    el.classList.add("plot");
    const holder = document.createElement("div");
    const legendEl = document.createElement("div");
    el.innerHTML = "";
    el.appendChild(holder);
    el.appendChild(legendEl);
    let u = null;
    let layout = null;
    let current = spec;

    function clean(v, log) {
      if (v === null || v === undefined || !Number.isFinite(v)) return null;
      return log && v <= 0 ? null : v;
    }

    function build(s) {
      const tables = [];
      const uSeries = [{}];
      const bands = [];
      const index = []; // series index in uPlot per spec series (its main line)
      s.series.forEach((ser) => {
        const xs = [];
        const cols = [[], [], []];
        const hasBand = Array.isArray(ser.lo) && Array.isArray(ser.hi);
        ser.x.forEach((x, k) => {
          const xv = clean(x, s.logX);
          if (xv === null) return;
          if (xs.length && xv <= xs[xs.length - 1]) return; // keep x strictly increasing
          xs.push(xv);
          cols[0].push(clean(ser.y[k], s.logY));
          if (hasBand) {
            cols[1].push(clean(ser.hi[k], s.logY));
            cols[2].push(clean(ser.lo[k], s.logY));
          }
        });
        tables.push(hasBand ? [xs, cols[0], cols[1], cols[2]] : [xs, cols[0]]);
        const base = uSeries.length;
        index.push(base);
        uSeries.push({
          label: ser.label,
          stroke: ser.color,
          width: ser.width || 1.75,
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
      const opts = {
        width,
        height: s.height || 300,
        legend: { show: false },
        cursor: { drag: { x: true, y: false }, points: { size: 5 } },
        scales: {
          x: s.logX ? { time: false, distr: 3, log: s.logBase || 10 } : { time: false },
          y: yScale,
        },
        axes: [
          {
            label: s.xLabel || "",
            values: axisValues(s.logX),
            splits: s.logX ? logSplits(s.logBase || 10) : undefined,
            filter: s.logX ? (u, splits) => splits : undefined,
            size: 40,
          },
          {
            label: s.yLabel || "",
            values: axisValues(s.logY),
            splits: s.logY ? logSplits(10) : undefined,
            filter: s.logY ? (u, splits) => splits : undefined,
            size: 64,
          },
        ],
        series: uSeries,
        bands,
      };
      return { opts, data, index, key: JSON.stringify([s.logX, s.logY, s.stepped, s.xLabel, s.yLabel, s.series.map((x) => [x.label, x.color, !!x.lo])]) };
    }

    function render(s) {
      current = s;
      const built = build(s);
      holder.setAttribute("role", "img");
      holder.setAttribute("aria-label", `${s.yLabel || "y"} vs ${s.xLabel || "x"}`);
      if (u && layout === built.key) {
        u.setData(built.data);
      } else {
        if (u) u.destroy();
        u = new uPlot(built.opts, built.data, holder);
        layout = built.key;
        OB.legend(
          legendEl,
          s.series.filter((x) => !x.noLegend).map((x) => ({ label: x.label, color: x.color, title: x.title })),
          (i, show) => {
            const main = built.index[i];
            u.setSeries(main, { show });
            if (s.series[i].lo) {
              u.setSeries(main + 1, { show });
              u.setSeries(main + 2, { show });
            }
          },
        );
      }
    }

    render(spec);
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
      destroy() {
        ro.disconnect();
        if (u) u.destroy();
      },
    };
  };

  /* ---------------------------------------------------------------- contours */

  /* Segments of the level set z = level over a grid z[j][i] (x along i, y along j), by marching
   * squares with linear interpolation on cell edges; a saddle is split by the cell's mean. */
  OB.marchingSquares = function (xs, ys, z, level) {
    const segs = [];
    const lerp = (a, b, za, zb) => a + ((level - za) / (zb - za)) * (b - a);
    for (let j = 0; j + 1 < ys.length; j++) {
      for (let i = 0; i + 1 < xs.length; i++) {
        const z00 = z[j][i], z10 = z[j][i + 1], z11 = z[j + 1][i + 1], z01 = z[j + 1][i];
        if (![z00, z10, z11, z01].every(Number.isFinite)) continue;
        const c = (z00 > level ? 1 : 0) | (z10 > level ? 2 : 0) | (z11 > level ? 4 : 0) | (z01 > level ? 8 : 0);
        if (c === 0 || c === 15) continue;
        const x0 = xs[i], x1 = xs[i + 1], y0 = ys[j], y1 = ys[j + 1];
        const bottom = [lerp(x0, x1, z00, z10), y0];
        const right = [x1, lerp(y0, y1, z10, z11)];
        const top = [lerp(x0, x1, z01, z11), y1];
        const left = [x0, lerp(y0, y1, z00, z01)];
        const centre = (z00 + z10 + z11 + z01) / 4 > level;
        switch (c) {
          case 1: case 14: segs.push([left, bottom]); break;
          case 2: case 13: segs.push([bottom, right]); break;
          case 3: case 12: segs.push([left, right]); break;
          case 4: case 11: segs.push([right, top]); break;
          case 6: case 9: segs.push([bottom, top]); break;
          case 7: case 8: segs.push([left, top]); break;
          case 5:
            if (centre) { segs.push([left, top]); segs.push([bottom, right]); }
            else { segs.push([left, bottom]); segs.push([right, top]); }
            break;
          case 10:
            if (centre) { segs.push([left, bottom]); segs.push([right, top]); }
            else { segs.push([left, top]); segs.push([bottom, right]); }
            break;
        }
      }
    }
    return segs;
  };

  function viridis(t) {
    const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
    const p = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
    const k = Math.min(Math.floor(p), stops.length - 2);
    const f = p - k;
    const c = stops[k].map((a, n) => Math.round(a + f * (stops[k + 1][n] - a)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  /* Loss landscape of a 2-D problem: shaded log(f − min f), contour lines, and trajectories.
   * spec: {x: [], y: [], z: [[...]], trajectories: [{label, color, x: [], y: []}]} */
  OB.contourPlot = function (el, spec) {
    el.classList.add("plot", "contour");
    el.innerHTML = "";
    const canvas = document.createElement("canvas");
    const legendEl = document.createElement("div");
    el.appendChild(canvas);
    el.appendChild(legendEl);
    const hidden = new Set();

    function draw() {
      const size = Math.min(Math.max(280, el.clientWidth || 480), 560);
      const dpr = window.devicePixelRatio || 1;
      canvas.width = size * dpr;
      canvas.height = size * dpr;
      canvas.style.width = size + "px";
      canvas.style.height = size + "px";
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const pad = 44;
      const xs = spec.x, ys = spec.y;
      const px = (x) => pad + ((x - xs[0]) / (xs[xs.length - 1] - xs[0])) * (size - pad - 8);
      const py = (y) => size - pad - ((y - ys[0]) / (ys[ys.length - 1] - ys[0])) * (size - pad - 8);
      let zmin = Infinity, zmax = -Infinity;
      spec.z.forEach((row) => row.forEach((v) => {
        if (Number.isFinite(v)) { zmin = Math.min(zmin, v); zmax = Math.max(zmax, v); }
      }));
      const eps = Math.max((zmax - zmin) * 1e-9, 1e-300);
      const lz = spec.z.map((row) => row.map((v) => (Number.isFinite(v) ? Math.log10(v - zmin + eps) : NaN)));
      // levels span the 2nd percentile of log(f − min f) to its maximum
      const sorted = lz.flat().filter(Number.isFinite).sort((a, b) => a - b);
      const hi = sorted.length ? sorted[sorted.length - 1] : 0;
      const floor = sorted.length ? sorted[Math.floor(0.02 * (sorted.length - 1))] : 0;
      const norm = (t) => (t - floor) / (hi - floor || 1);
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, size, size);
      // shaded cells
      for (let j = 0; j < ys.length; j++) {
        for (let i = 0; i < xs.length; i++) {
          const t = lz[j][i];
          if (!Number.isFinite(t)) continue;
          const xa = px(i ? (xs[i - 1] + xs[i]) / 2 : xs[0]);
          const xb = px(i + 1 < xs.length ? (xs[i] + xs[i + 1]) / 2 : xs[i]);
          const ya = py(j ? (ys[j - 1] + ys[j]) / 2 : ys[0]);
          const yb = py(j + 1 < ys.length ? (ys[j] + ys[j + 1]) / 2 : ys[j]);
          ctx.fillStyle = viridis(norm(t));
          ctx.globalAlpha = 0.35;
          ctx.fillRect(Math.min(xa, xb), Math.min(ya, yb), Math.abs(xb - xa) + 0.6, Math.abs(yb - ya) + 0.6);
        }
      }
      ctx.globalAlpha = 1;
      // contour lines at evenly spaced log levels
      const nLevels = 14;
      ctx.lineWidth = 1;
      for (let k = 1; k <= nLevels; k++) {
        const level = floor + ((hi - floor) * k) / (nLevels + 1);
        ctx.strokeStyle = viridis(norm(level));
        ctx.beginPath();
        OB.marchingSquares(xs, ys, lz, level).forEach(([a, b]) => {
          ctx.moveTo(px(a[0]), py(a[1]));
          ctx.lineTo(px(b[0]), py(b[1]));
        });
        ctx.stroke();
      }
      // axes
      ctx.strokeStyle = "#444";
      ctx.strokeRect(pad, 8, size - pad - 8, size - pad - 8);
      ctx.fillStyle = "#333";
      ctx.font = "11px sans-serif";
      ctx.textAlign = "center";
      [0, 0.5, 1].forEach((f) => {
        const xv = xs[0] + f * (xs[xs.length - 1] - xs[0]);
        const yv = ys[0] + f * (ys[ys.length - 1] - ys[0]);
        ctx.fillText(OB.fmt(xv, 3), px(xv), size - pad + 14);
        ctx.save();
        ctx.translate(pad - 14, py(yv));
        ctx.rotate(-Math.PI / 2);
        ctx.fillText(OB.fmt(yv, 3), 0, 0);
        ctx.restore();
      });
      ctx.fillText("x₀", pad + (size - pad) / 2, size - 8);
      ctx.save();
      ctx.translate(12, (size - pad) / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText("x₁", 0, 0);
      ctx.restore();
      // trajectories, clipped to the plot
      ctx.save();
      ctx.beginPath();
      ctx.rect(pad, 8, size - pad - 8, size - pad - 8);
      ctx.clip();
      spec.trajectories.forEach((t, n) => {
        if (hidden.has(n)) return;
        ctx.strokeStyle = t.color;
        ctx.fillStyle = t.color;
        ctx.lineWidth = 1.6;
        ctx.beginPath();
        let started = false;
        t.x.forEach((x, k) => {
          const y = t.y[k];
          if (!Number.isFinite(x) || !Number.isFinite(y)) { started = false; return; }
          if (!started) { ctx.moveTo(px(x), py(y)); started = true; } else ctx.lineTo(px(x), py(y));
        });
        ctx.stroke();
        const last = t.x.length - 1;
        if (last >= 0 && Number.isFinite(t.x[last]) && Number.isFinite(t.y[last])) {
          ctx.beginPath();
          ctx.arc(px(t.x[last]), py(t.y[last]), 3.5, 0, 2 * Math.PI);
          ctx.fill();
        }
      });
      if (spec.trajectories.length && Number.isFinite(spec.trajectories[0].x[0])) {
        const t = spec.trajectories[0];
        ctx.strokeStyle = "#000";
        ctx.lineWidth = 1.5;
        ctx.strokeRect(px(t.x[0]) - 4, py(t.y[0]) - 4, 8, 8);
      }
      ctx.restore();
    }

    OB.legend(
      legendEl,
      spec.trajectories.map((t) => ({ label: t.label, color: t.color })),
      (i, show) => {
        if (show) hidden.delete(i); else hidden.add(i);
        draw();
      },
    );
    draw();
    return { update(next) { spec = next; draw(); }, destroy() {} };
  };
})();
