/* optbench dashboard: the loss landscape of a 2-D problem — shaded log(f − min f) with contour
 * lines (marching squares over the server's grid), a colour bar, the known minimisers, and
 * trajectories clipped at the frame. Drawn through a small painter so that the same code makes
 * the canvas and the SVG export. */
(function () {
  "use strict";
  const OB = (window.OB = window.OB || {});

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

  /* The part of segment a→b inside the box [x0, x1] × [y0, y1] (Liang–Barsky), or null. A
   * diverged trajectory's jump to 1e20 becomes a short piece ending at the frame. */
  OB.clipSegment = function (a, b, box) {
    const [x0, y0, x1, y1] = box;
    const dx = b[0] - a[0], dy = b[1] - a[1];
    let t0 = 0, t1 = 1;
    const edges = [[-dx, a[0] - x0], [dx, x1 - a[0]], [-dy, a[1] - y0], [dy, y1 - a[1]]];
    for (const [p, q] of edges) {
      if (p === 0) {
        if (q < 0) return null;
      } else {
        const r = q / p;
        if (p < 0) { if (r > t1) return null; if (r > t0) t0 = r; }
        else { if (r < t0) return null; if (r < t1) t1 = r; }
      }
    }
    return [[a[0] + t0 * dx, a[1] + t0 * dy], [a[0] + t1 * dx, a[1] + t1 * dy], t1 < 1];
  };

  function viridisRGB(t) {
    const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
    const p = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
    const k = Math.min(Math.floor(p), stops.length - 2);
    const f = p - k;
    return stops[k].map((a, n) => Math.round(a + f * (stops[k + 1][n] - a)));
  }
  const viridis = (t) => `rgb(${viridisRGB(t).join(",")})`;

  /* Viridis at t faded into the background (opaque, so adjacent cells never show seams). */
  function shade(t, bg, alpha) {
    const c = viridisRGB(t).map((v, n) => Math.round(alpha * v + (1 - alpha) * bg[n]));
    return `rgb(${c.join(",")})`;
  }

  function rgbOf(color) {
    const m = /^#([0-9a-f]{6})$/i.exec(color);
    if (!m) return [255, 255, 255];
    const n = parseInt(m[1], 16);
    return [n >> 16, (n >> 8) & 255, n & 255];
  }

  /* ------------------------------------------------------------------ painters */

  function canvasPainter(ctx) {
    return {
      cell(x, y, w, h, color) { ctx.fillStyle = color; ctx.fillRect(x, y, w, h); },
      lines(segs, color, width, dash) {
        ctx.strokeStyle = color; ctx.lineWidth = width; ctx.setLineDash(dash || []);
        ctx.beginPath();
        segs.forEach(([a, b]) => { ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); });
        ctx.stroke(); ctx.setLineDash([]);
      },
      text(x, y, s, o = {}) {
        ctx.save(); ctx.translate(x, y); if (o.rotate) ctx.rotate(o.rotate);
        ctx.fillStyle = o.color; ctx.font = `${o.size || 11}px system-ui, sans-serif`;
        ctx.textAlign = o.anchor || "center"; ctx.textBaseline = "middle"; ctx.fillText(s, 0, 0); ctx.restore();
      },
      marker(x, y, kind, color, size) {
        ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2;
        ctx.beginPath();
        if (kind === "dot") { ctx.arc(x, y, size, 0, 2 * Math.PI); ctx.fill(); return; }
        if (kind === "square") { ctx.strokeRect(x - size, y - size, 2 * size, 2 * size); return; }
        if (kind === "cross") { ctx.moveTo(x - size, y - size); ctx.lineTo(x + size, y + size); ctx.moveTo(x + size, y - size); ctx.lineTo(x - size, y + size); ctx.stroke(); return; }
        for (let k = 0; k < 10; k++) {
          const r = k % 2 ? size * 0.45 : size, a = -Math.PI / 2 + (k * Math.PI) / 5;
          ctx[k ? "lineTo" : "moveTo"](x + r * Math.cos(a), y + r * Math.sin(a));
        }
        ctx.closePath(); ctx.fill(); ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.stroke();
      },
      frame(x, y, w, h, color) { ctx.strokeStyle = color; ctx.lineWidth = 1; ctx.strokeRect(x, y, w, h); },
    };
  }

  function svgPainter(parts) {
    const f = (v) => v.toFixed(1);
    return {
      cell(x, y, w, h, color) { parts.push(`<rect x="${f(x)}" y="${f(y)}" width="${f(w)}" height="${f(h)}" fill="${color}"/>`); },
      lines(segs, color, width, dash) {
        if (!segs.length) return;
        const d = segs.map(([a, b]) => `M${f(a[0])} ${f(a[1])}L${f(b[0])} ${f(b[1])}`).join("");
        parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash.join(" ")}"` : ""}/>`);
      },
      text(x, y, s, o = {}) {
        const anchor = { center: "middle", left: "start", right: "end" }[o.anchor || "center"];
        const rot = o.rotate ? ` transform="rotate(${(o.rotate * 180) / Math.PI} ${f(x)} ${f(y)})"` : "";
        parts.push(`<text x="${f(x)}" y="${f(y)}" dy="0.35em" text-anchor="${anchor}" font-size="${o.size || 11}" fill="${o.color}"${rot}>${String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;")}</text>`);
      },
      marker(x, y, kind, color, size) {
        if (kind === "dot") parts.push(`<circle cx="${f(x)}" cy="${f(y)}" r="${size}" fill="${color}"/>`);
        else if (kind === "square") parts.push(`<rect x="${f(x - size)}" y="${f(y - size)}" width="${2 * size}" height="${2 * size}" fill="none" stroke="${color}" stroke-width="2"/>`);
        else if (kind === "cross") parts.push(`<path d="M${f(x - size)} ${f(y - size)}L${f(x + size)} ${f(y + size)}M${f(x + size)} ${f(y - size)}L${f(x - size)} ${f(y + size)}" stroke="${color}" stroke-width="2"/>`);
        else {
          const pts = [];
          for (let k = 0; k < 10; k++) {
            const r = k % 2 ? size * 0.45 : size, a = -Math.PI / 2 + (k * Math.PI) / 5;
            pts.push(`${f(x + r * Math.cos(a))} ${f(y + r * Math.sin(a))}`);
          }
          parts.push(`<path d="M${pts.join("L")}Z" fill="${color}" stroke="#000"/>`);
        }
      },
      frame(x, y, w, h, color) { parts.push(`<rect x="${f(x)}" y="${f(y)}" width="${f(w)}" height="${f(h)}" fill="none" stroke="${color}"/>`); },
    };
  }

  /* ------------------------------------------------------------------ the plot */

  /* spec: {x: [], y: [], z: [[...]], minimizers?: [[x, y]], trajectories: [{label, color, x, y,
   * seed?, faint?}]}. Faint trajectories (other seeds) are drawn thin, without start/end marks. */
  OB.contourPlot = function (el, spec) {
    el.classList.add("plot", "contour");
    const canvas = document.createElement("canvas");
    const legendEl = document.createElement("div");
    el.replaceChildren(canvas, legendEl);
    const hidden = new Set();
    let size = 480;
    const BAR = 64;

    function paint(p, theme) {
      const pad = 66, top = 10;
      const bg = rgbOf(theme.bg);
      const plotW = size - pad - 10, plotH = size - pad - top;
      const xs = spec.x, ys = spec.y;
      const box = [xs[0], ys[0], xs[xs.length - 1], ys[ys.length - 1]];
      const px = (x) => pad + ((x - box[0]) / (box[2] - box[0])) * plotW;
      const py = (y) => top + plotH - ((y - box[1]) / (box[3] - box[1])) * plotH;
      let zmin = Infinity;
      spec.z.forEach((row) => row.forEach((v) => { if (Number.isFinite(v)) zmin = Math.min(zmin, v); }));
      let zmax = -Infinity;
      spec.z.forEach((row) => row.forEach((v) => { if (Number.isFinite(v)) zmax = Math.max(zmax, v); }));
      const eps = Math.max((zmax - zmin) * 1e-9, 1e-300);
      const lz = spec.z.map((row) => row.map((v) => (Number.isFinite(v) ? Math.log10(v - zmin + eps) : NaN)));
      const sorted = lz.flat().filter(Number.isFinite).sort((a, b) => a - b);
      const hi = sorted.length ? sorted[sorted.length - 1] : 0;
      const floor = sorted.length ? sorted[Math.floor(0.02 * (sorted.length - 1))] : 0;
      const norm = (t) => (t - floor) / (hi - floor || 1);
      for (let j = 0; j < ys.length; j++) {
        for (let i = 0; i < xs.length; i++) {
          const t = lz[j][i];
          if (!Number.isFinite(t)) continue;
          const xa = px(i ? (xs[i - 1] + xs[i]) / 2 : xs[0]);
          const xb = px(i + 1 < xs.length ? (xs[i] + xs[i + 1]) / 2 : xs[i]);
          const ya = py(j ? (ys[j - 1] + ys[j]) / 2 : ys[0]);
          const yb = py(j + 1 < ys.length ? (ys[j] + ys[j + 1]) / 2 : ys[j]);
          p.cell(Math.min(xa, xb), Math.min(ya, yb), Math.abs(xb - xa) + 0.6, Math.abs(yb - ya) + 0.6, shade(norm(t), bg, 0.4));
        }
      }
      const nLevels = 14;
      for (let k = 1; k <= nLevels; k++) {
        const level = floor + ((hi - floor) * k) / (nLevels + 1);
        const segs = OB.marchingSquares(xs, ys, lz, level).map(([a, b]) => [[px(a[0]), py(a[1])], [px(b[0]), py(b[1])]]);
        p.lines(segs, viridis(norm(level)), 1);
      }
      p.frame(pad, top, plotW, plotH, theme.muted);
      [0, 0.5, 1].forEach((f) => {
        const xv = box[0] + f * (box[2] - box[0]);
        const yv = box[1] + f * (box[3] - box[1]);
        p.text(px(xv), top + plotH + 13, OB.tick(Number(xv.toPrecision(3))), { color: theme.fg });
        p.text(pad - 5, py(yv), OB.tick(Number(yv.toPrecision(3))), { color: theme.fg, anchor: "right" });
      });
      p.text(pad + plotW / 2, size - 10, "x₀", { color: theme.fg, size: 12 });
      p.text(10, top + plotH / 2, "x₁", { color: theme.fg, size: 12 });
      // colour bar: f − min f on the grid, log scale
      const bx = size + 14, bw = 14;
      const steps = 48;
      for (let k = 0; k < steps; k++) {
        const t = k / (steps - 1);
        p.cell(bx, top + plotH - ((k + 1) * plotH) / steps, bw, plotH / steps + 0.6, shade(t, bg, 0.9));
      }
      p.frame(bx, top, bw, plotH, theme.muted);
      for (let k = 0; k <= 4; k++) {
        const t = floor + ((hi - floor) * k) / 4;
        p.text(bx + bw + 4, top + plotH - (k * plotH) / 4, OB.tick(Number(Math.pow(10, t).toPrecision(2))), { color: theme.fg, anchor: "left", size: 10 });
      }
      p.text(bx - 6, top - 2 + plotH / 2, "f − min f (grid)", { color: theme.muted, size: 10, rotate: -Math.PI / 2 });
      // trajectories, each segment clipped at the frame; a run that leaves it gets a ×
      const frame = [box[0], box[1], box[2], box[3]];
      const ordered = spec.trajectories.map((t, n) => [t, n]).sort((a, b) => (b[0].faint ? 1 : 0) - (a[0].faint ? 1 : 0));
      ordered.forEach(([t, n]) => {
        if (hidden.has(n)) return;
        const segs = [];
        let exit = null;
        let prev = null;
        for (let k = 0; k < t.x.length; k++) {
          const pt = [t.x[k], t.y[k]];
          if (!Number.isFinite(pt[0]) || !Number.isFinite(pt[1])) { prev = null; if (k) exit = exit || segs.length && segs[segs.length - 1][1]; continue; }
          if (prev) {
            const c = OB.clipSegment(prev, pt, frame);
            if (c) segs.push([[px(c[0][0]), py(c[0][1])], [px(c[1][0]), py(c[1][1])]]);
            if (c && c[2] && !exit) exit = [px(c[1][0]), py(c[1][1])];
          }
          prev = pt;
        }
        p.lines(segs, t.color, t.faint ? 0.9 : 1.8, t.dash);
        if (exit) p.marker(exit[0], exit[1], "cross", t.color, 5);
        if (!t.faint) {
          const last = t.x.length - 1;
          if (last >= 0 && Number.isFinite(t.x[last]) && Number.isFinite(t.y[last]) && OB.clipSegment([t.x[last], t.y[last]], [t.x[last], t.y[last]], frame)) {
            p.marker(px(t.x[last]), py(t.y[last]), "dot", t.color, 3.5);
          }
        }
      });
      const start = spec.trajectories.find((t) => Number.isFinite(t.x[0]) && Number.isFinite(t.y[0]));
      if (start) p.marker(px(start.x[0]), py(start.y[0]), "square", theme.fg, 4);
      (spec.minimizers || []).forEach(([mx, my]) => {
        if (mx >= box[0] && mx <= box[2] && my >= box[1] && my <= box[3]) p.marker(px(mx), py(my), "star", "#ffd400", 8);
      });
    }

    function draw() {
      size = Math.min(Math.max(280, (el.clientWidth || 480) - BAR), 520);
      const dpr = window.devicePixelRatio || 1;
      canvas.width = (size + BAR) * dpr;
      canvas.height = size * dpr;
      canvas.style.width = size + BAR + "px";
      canvas.style.height = size + "px";
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const theme = OB.theme();
      ctx.fillStyle = theme.bg;
      ctx.fillRect(0, 0, size + BAR, size);
      paint(canvasPainter(ctx), theme);
    }

    function legend() {
      const items = [];
      spec.trajectories.forEach((t, n) => { if (!t.faint) items.push([t, n]); });
      OB.legend(
        legendEl,
        items.map(([t]) => ({ label: t.label, color: t.color, dash: !!t.dash })),
        (i, show) => {
          const group = items[i][0].group;
          spec.trajectories.forEach((t, n) => {
            if (t === items[i][0] || (group && t.group === group)) {
              if (show) hidden.delete(n); else hidden.add(n);
            }
          });
          draw();
        },
      );
    }

    legend();
    draw();
    return {
      update(next) { spec = next; legend(); draw(); },
      png: () => OB.exportPNG(canvas),
      svg: () => {
        const theme = OB.theme();
        const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${size + BAR}" height="${size}" font-family="system-ui, sans-serif">`, `<rect width="100%" height="100%" fill="${theme.bg}"/>`];
        paint(svgPainter(parts), theme);
        parts.push("</svg>");
        return new Blob([parts.join("\n")], { type: "image/svg+xml" });
      },
      csv: () => {
        const lines = ["trajectory,seed,k,x0,x1"];
        spec.trajectories.forEach((t) => t.x.forEach((x, k) => lines.push(`"${t.label.replace(/"/g, '""')}",${t.seed ?? ""},${k},${x ?? ""},${t.y[k] ?? ""}`)));
        return new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
      },
      destroy() {},
    };
  };
})();
