// Part 3 of 4: the charts, drawn at the width they are shown (so their text keeps its size on a
// phone): the learning curve (linear or log scale, ticks, a readout under the pointer or the
// arrow keys) and, for two inputs, what the model learned over them.
let logScale = false;

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}
function logTicks(lo, hi) {
  // Powers of ten, every `step` decades so that about six fit; 2 and 5 too over a decade or two.
  const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi)), step = Math.max(1, Math.ceil((b - a) / 6));
  const out = [];
  for (let e = a; e <= b; e += step) for (const m of b - a <= 2 ? [1, 2, 5] : [1]) { const v = m * Math.pow(10, e); if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v); }
  return out.length >= 2 ? out : [lo, hi];
}
function textWidth(s) { return 7.6 * String(s).length; } // 13px digits, generously

function curve() {
  const box = $("curve");
  box.textContent = "";
  const h = D.history;
  if (!h || !h.train.length) {
    $("log-scale").hidden = true;
    box.append(el("p", { class: "hint" }, D.live ? "Waiting for the first epoch…" : "Not trained yet: this page was made from a spec, with its initial parameters. Train it (treegrad train) and make the page from the model file to see its learning curve."));
    return;
  }
  $("log-scale").hidden = false;
  const series = [["training", h.train, "#2457c5"], ["validation", h.validation || [], "#b3470f"]].filter((s) => s[1].length);
  const positive = series.every((s) => s[1].every((v) => !Number.isFinite(v) || v > 0));
  const useLog = logScale && positive;
  const all = series.flatMap((s) => s[1]).filter(Number.isFinite);
  let lo = Math.min(...all), hi = Math.max(...all);
  if (!(hi > lo)) { lo = useLog ? lo / 2 : lo - 1; hi = useLog ? hi * 2 : hi + 1; }
  const f = useLog ? Math.log10 : (v) => v;
  const ticks = useLog ? logTicks(lo, hi) : niceTicks(lo, hi, 5);
  const labels = ticks.map(fmt);
  const Wc = Math.max(280, Math.min(720, box.clientWidth || 600)), Hc = Math.round(Math.max(200, Math.min(320, Wc * 0.55)));
  const l = 14 + Math.max(...labels.map(textWidth)), r = 16, t = 12, b = 40;
  const n = Math.max(...series.map((s) => s[1].length));
  const X = (k) => l + (n > 1 ? (k * (Wc - l - r)) / (n - 1) : (Wc - l - r) / 2);
  const Y = (v) => t + ((f(hi) - f(v)) * (Hc - t - b)) / (f(hi) - f(lo));
  const chart = sv("svg", { class: "chart", width: Wc, height: Hc, viewBox: `0 0 ${Wc} ${Hc}`, role: "img", tabindex: "0",
    "aria-label": "loss by epoch" + (useLog ? ", log scale" : "") + "; arrow keys read it epoch by epoch" });
  ticks.forEach((v, k) => {
    const y = Y(v).toFixed(1);
    chart.append(sv("line", { class: "grid", x1: l, y1: y, x2: Wc - r, y2: y }), sv("text", { x: l - 6, y: Number(y) + 4, "text-anchor": "end" }, labels[k]));
  });
  niceTicks(1, n, Math.max(2, Math.floor((Wc - l) / 90))).filter((e) => Number.isInteger(e) && e >= 1).forEach((e) => {
    const x = X(e - 1).toFixed(1);
    chart.append(sv("line", { class: "axis", x1: x, y1: Hc - b, x2: x, y2: Hc - b + 5 }), sv("text", { x, y: Hc - b + 19, "text-anchor": "middle" }, String(e)));
  });
  chart.append(sv("line", { class: "axis", x1: l, y1: Hc - b, x2: Wc - r, y2: Hc - b }), sv("line", { class: "axis", x1: l, y1: t, x2: l, y2: Hc - b }),
    sv("text", { x: (Wc + l) / 2, y: Hc - 4, "text-anchor": "middle" }, "epoch"));
  for (const [, v, color] of series) {
    const pts = v.map((y, k) => (Number.isFinite(y) && (!useLog || y > 0) ? X(k).toFixed(1) + "," + Y(y).toFixed(1) : null)).filter(Boolean).join(" ");
    chart.append(sv("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2 }));
  }
  const cursor = sv("line", { class: "cursor", y1: t, y2: Hc - b, visibility: "hidden" });
  const dots = series.map(([, , color]) => sv("circle", { r: 4, fill: color, visibility: "hidden" }));
  chart.append(cursor, ...dots);
  const readout = el("p", { class: "readout", id: "curve-readout" });
  let at = n - 1;
  const read = (k) => {
    at = Math.max(0, Math.min(n - 1, k));
    cursor.setAttribute("x1", X(at)); cursor.setAttribute("x2", X(at)); cursor.setAttribute("visibility", "visible");
    series.forEach(([, v], s) => {
      const ok = Number.isFinite(v[at]) && (!useLog || v[at] > 0);
      dots[s].setAttribute("visibility", ok ? "visible" : "hidden");
      if (ok) { dots[s].setAttribute("cx", X(at)); dots[s].setAttribute("cy", Y(v[at])); }
    });
    readout.textContent = "epoch " + (at + 1) + ": " + series.map(([name, v]) => name + " loss " + (at < v.length ? fmt(v[at]) : "—")).join(", ");
  };
  chart.addEventListener("pointermove", (e) => {
    const rect = chart.getBoundingClientRect();
    const x = ((e.clientX - rect.left) * Wc) / rect.width;
    read(Math.round(n > 1 ? ((x - l) * (n - 1)) / (Wc - l - r) : 0));
  });
  chart.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") { e.preventDefault(); e.stopPropagation(); read(at + (e.key === "ArrowRight" ? 1 : -1)); }
  });
  chart.addEventListener("focus", () => read(at));
  const legend = el("div", { class: "legend" }, ...series.map(([name, v, color]) => legendItem(color, name + " loss (last " + fmt(v[v.length - 1]) + ")")));
  box.append(chart, readout, legend);
  if (logScale && !positive) box.append(el("p", { class: "hint" }, "A loss at or below zero has no logarithm: shown on a linear scale."));
}
function legendItem(color, text) {
  const sw = el("span", { class: "swatch" });
  sw.style.background = color;
  return el("span", {}, sw, text);
}
$("log-scale").addEventListener("click", () => {
  logScale = !logScale;
  $("log-scale").setAttribute("aria-pressed", String(logScale));
  curve();
});

// ------------------------------------------------------------ decision boundary or fitted surface
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
function mix(a, b, t) {
  const p = (h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16));
  const [x, y] = [p(a), p(b)];
  return "rgb(" + x.map((v, k) => Math.round(v + (y[k] - v) * t)).join(",") + ")";
}
function ramp(stops, t) {
  t = Math.max(0, Math.min(1, t));
  const k = Math.min(stops.length - 2, Math.floor(t * (stops.length - 1)));
  return mix(stops[k], stops[k + 1], t * (stops.length - 1) - k);
}
const VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
const BLUE_RED = ["#2166ac", "#f7f7f7", "#b2182b"];

function surface() {
  const S = D.surface;
  if (!S) { $("surface-section").hidden = true; return; }
  const box = $("surface");
  box.textContent = "";
  const avail = Math.max(260, Math.min(520, box.clientWidth || 440));
  const l = 18 + Math.max(textWidth(fmt(S.y[0])), textWidth(fmt(S.y[1]))), b = 44, top = 10, right = 12;
  const size = Math.max(160, avail - l - right);
  const cw = size / S.n;
  const chart = sv("svg", { class: "chart", width: size + l + right, height: size + b + top, viewBox: `0 0 ${size + l + right} ${size + b + top}`, role: "img", "aria-label": "the model over the two inputs, with the data" });
  const finite = S.cells.filter((v) => v !== null);
  const lo = Math.min(...finite), hi = Math.max(...finite);
  const color = (v) => {
    if (v === null) return "#ffffff";
    if (S.kind === "binary") return ramp(BLUE_RED, v);
    if (S.kind === "classes") return mix("#ffffff", PALETTE[v % 10], 0.35);
    return ramp(VIRIDIS, hi > lo ? (v - lo) / (hi - lo) : 0.5);
  };
  const grid = sv("g", { transform: `translate(${l},${top})` });
  S.cells.forEach((v, k) => {
    const i = k % S.n, j = Math.floor(k / S.n);
    grid.append(sv("rect", { x: (i * cw).toFixed(2), y: (size - (j + 1) * cw).toFixed(2), width: (cw + 0.5).toFixed(2), height: (cw + 0.5).toFixed(2), fill: color(v) }));
  });
  const X = (v) => ((v - S.x[0]) / (S.x[1] - S.x[0])) * size;
  const Y = (v) => size - ((v - S.y[0]) / (S.y[1] - S.y[0])) * size;
  for (const [px, py, t] of S.points) {
    const fill = S.kind === "regression" ? ramp(VIRIDIS, hi > lo ? (t - lo) / (hi - lo) : 0.5) : S.kind === "binary" ? (t >= 0.5 ? "#b2182b" : "#2166ac") : PALETTE[t % 10];
    grid.append(sv("circle", { cx: X(px).toFixed(1), cy: Y(py).toFixed(1), r: 3.2, fill, stroke: "#fff", "stroke-width": 0.8 }));
  }
  chart.append(grid);
  chart.append(
    sv("text", { x: l + size / 2, y: top + size + 38, "text-anchor": "middle" }, S.inputs[0]),
    sv("text", { x: 12, y: top + size / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${top + size / 2})` }, S.inputs[1]),
    sv("text", { x: l, y: top + size + 18 }, fmt(S.x[0])), sv("text", { x: l + size, y: top + size + 18, "text-anchor": "end" }, fmt(S.x[1])),
    sv("text", { x: l - 5, y: top + size, "text-anchor": "end" }, fmt(S.y[0])), sv("text", { x: l - 5, y: top + 12, "text-anchor": "end" }, fmt(S.y[1]))
  );
  $("surface-h").textContent = S.kind === "regression" ? "Fitted surface, with the data" : "Decision boundary, with the data";
  const legend = el("div", { class: "legend" });
  if (S.kind === "regression") legend.append(el("span", {}, "colour: prediction from " + fmt(lo) + " (dark) to " + fmt(hi) + " (yellow); points coloured by their target"));
  else if (S.kind === "binary") legend.append(legendItem("#2166ac", (S.labels || ["0"])[0]), legendItem("#b2182b", (S.labels || ["0", "1"])[1]), el("span", {}, "background: P(" + (S.labels || ["0", "1"])[1] + ") from blue (0) to red (1)"));
  else (S.labels || []).forEach((lab, k) => legend.append(legendItem(PALETTE[k % 10], lab)));
  box.append(chart, legend, el("p", { class: "hint" }, "The model as it is before the trace's steps, on " + S.points.length + " points of " + D.source + "."));
}
