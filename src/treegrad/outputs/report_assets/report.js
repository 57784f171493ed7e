"use strict";
// treegrad's report page. Every number shown was formatted by treegrad (as `treegrad trace`
// prints it); this script only places them. Text from the data goes into the page as text
// nodes (append / textContent), never as markup.
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    e.append(...kids.filter((k) => k !== null && k !== undefined));
    return e;
  }
  function sv(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    e.append(...kids.filter((k) => k !== null && k !== undefined));
    return e;
  }
  function cut(s, n) { return s.length <= n ? s : s.slice(0, n - 1) + "…"; }
  function list(v) { return Array.isArray(v) ? "[" + v.join(", ") + "]" : v; }

  const N = D.nodes.label.length;
  const nodes = D.nodes.label.map((_, i) => ({
    label: D.nodes.label[i], kind: D.nodes.kind[i], op: D.nodes.op[i], expr: D.nodes.expr[i],
    rule: D.nodes.rule[i], children: D.nodes.children[i],
  }));
  const level = D.level;
  const column = D.column;
  const steps = D.steps;
  const isParam = new Map(D.paramNodes.map((n, k) => [n, k]));
  const parents = Array.from({ length: N }, () => []);
  nodes.forEach((n, i) => n.children.forEach((c) => parents[c].push(i)));
  // Distance to the output along the longest path: the backward pass's order by rank.
  const rlevel = new Array(N).fill(0);
  for (let i = N - 1; i >= 0; i--) for (const c of nodes[i].children) rlevel[c] = Math.max(rlevel[c], rlevel[i] + 1);
  const maxLevel = level.reduce((a, b) => Math.max(a, b), 0);
  const maxR = rlevel.reduce((a, b) => Math.max(a, b), 0);

  function label(i) {
    const n = nodes[i];
    if (n.kind === "op") return n.op + " " + n.label;
    if (n.kind === "output" || n.kind === "softmax") return n.op;
    return n.label;
  }

  // ------------------------------------------------------------ header
  document.title = "treegrad · " + D.name;
  $("title").append(D.name);
  $("meta").append(
    (D.trained ? "trained model" : "spec with its initial parameters") +
      " · " + D.task + " · loss " + D.loss + " · learning rate " + D.learningRate +
      " · data " + D.source + " · " + N + " nodes, " + D.paramNodes.length + " parameters · numbers at " +
      D.precision + " significant digits, as `treegrad trace` prints them"
  );

  // ------------------------------------------------------------ positions in the trace
  // Per step: forward by level (children before parents), backward by distance from the
  // loss, then the update.
  const per = maxLevel + 1 + (maxR + 1) + 1;
  const total = steps.length * per;
  function at(p) {
    const s = Math.floor(p / per);
    let r = p % per;
    if (r <= maxLevel) return { s, phase: "forward", r };
    r -= maxLevel + 1;
    if (r <= maxR) return { s, phase: "backward", r };
    return { s, phase: "update", r: 0 };
  }
  function start(s, phase) {
    if (phase === "forward") return s * per;
    if (phase === "backward") return s * per + maxLevel + 1;
    return s * per + per - 1;
  }
  let pos = start(0, "forward");
  let selected = null;

  const range = $("pos");
  range.max = String(total - 1);
  const stepsel = $("stepsel");
  steps.forEach((st, s) => stepsel.append(el("option", { value: String(s) }, String(st.step))));

  function shown(i, where) {
    const st = steps[where.s];
    const value = where.phase !== "forward" || level[i] <= where.r ? list(st.value[i]) : "";
    let grad = "";
    if (where.phase === "update" || (where.phase === "backward" && rlevel[i] <= where.r)) grad = list(st.grad[i]);
    let fresh = where.phase === "forward" ? level[i] === where.r : where.phase === "backward" && rlevel[i] === where.r;
    let v = value;
    if (where.phase === "update" && isParam.has(i)) {
      v = st.params[isParam.get(i)][0] + " → " + st.params[isParam.get(i)][2];
      fresh = true;
    }
    return { v, grad, fresh };
  }

  function phaseText(where) {
    const st = steps[where.s];
    const head = "step " + st.step + " (sample " + (st.sample + 1) + "): ";
    if (where.phase === "forward") return head + "forward, level " + where.r + " of " + maxLevel;
    if (where.phase === "backward") return head + "backward, " + where.r + " of " + maxR + " from the loss";
    return head + "update";
  }

  // ------------------------------------------------------------ the graph, with layers that collapse
  const W = 124, H = 52, COLW = 168, ROWH = 64, PAD = 12, SPLIT = 10, LEAF = 60;
  const sorted = Array.from({ length: N }, (_, i) => i).sort((a, b) => column[a] - column[b] || a - b);
  // An item is a node {n} or a group of consecutive nodes of `sorted` {lo, hi}.
  function split(lo, hi) {
    if (hi - lo <= LEAF) {
      const out = [];
      for (let k = lo; k < hi; k++) out.push({ n: sorted[k] });
      return out;
    }
    const out = [];
    const target = (hi - lo) / SPLIT;
    const first = column[sorted[lo]], last = column[sorted[hi - 1]];
    let a = lo;
    for (let k = lo + 1; k <= hi; k++) {
      const boundary = k === hi || (first !== last ? column[sorted[k]] !== column[sorted[k - 1]] : true);
      if (k === hi || (boundary && k - a >= target)) {
        out.push({ lo: a, hi: k });
        a = k;
      }
    }
    return out.length === 1 ? chunks(lo, hi) : out;
  }
  function chunks(lo, hi) {
    const size = Math.ceil((hi - lo) / SPLIT);
    const out = [];
    for (let a = lo; a < hi; a += size) out.push({ lo: a, hi: Math.min(hi, a + size) });
    return out;
  }
  function allNodes() { return sorted.map((n) => ({ n })); }
  let items = D.collapsed ? split(0, N) : allNodes();

  const svg = $("graph");
  let boxes = new Map(); // node index -> its drawn parts, for the nodes drawn one by one
  let edgesOf = new Map(); // item index -> edge paths touching it

  function draw() {
    svg.textContent = "";
    boxes = new Map();
    edgesOf = new Map();
    const owner = new Int32Array(N);
    items.forEach((it, k) => {
      if (it.n !== undefined) owner[it.n] = k;
      else for (let j = it.lo; j < it.hi; j++) owner[sorted[j]] = k;
    });
    const col = items.map((it) => column[it.n !== undefined ? it.n : sorted[it.lo]]);
    const cols = Array.from(new Set(col)).sort((a, b) => a - b);
    const x = new Map(cols.map((c, k) => [c, k]));
    // Edges between items, once each.
    const edges = new Map();
    for (let p = 0; p < N; p++) {
      for (const c of nodes[p].children) {
        const a = owner[c], b = owner[p];
        if (a !== b) edges.set(a * 1e7 + b, [a, b]);
      }
    }
    const ins = items.map(() => []), outs = items.map(() => []);
    for (const [a, b] of edges.values()) { outs[a].push(b); ins[b].push(a); }
    // Order each column by the mean position of its neighbours (two sweeps of the barycentre rule).
    const byCol = cols.map(() => []);
    items.forEach((_, k) => byCol[x.get(col[k])].push(k));
    const y = new Float64Array(items.length);
    byCol.forEach((ks) => ks.forEach((k, j) => (y[k] = j)));
    const mean = (ks, fallback) => (ks.length ? ks.reduce((s, k) => s + y[k], 0) / ks.length : fallback);
    for (let c = byCol.length - 1; c >= 0; c--) {
      byCol[c].sort((a, b) => mean(outs[a], y[a]) - mean(outs[b], y[b]) || a - b);
      byCol[c].forEach((k, j) => (y[k] = j));
    }
    for (let c = 0; c < byCol.length; c++) {
      byCol[c].sort((a, b) => mean(ins[a], y[a]) - mean(ins[b], y[b]) || a - b);
      byCol[c].forEach((k, j) => (y[k] = j));
    }
    const tallest = Math.max(...byCol.map((ks) => ks.length));
    const px = new Float64Array(items.length), py = new Float64Array(items.length);
    byCol.forEach((ks, c) => {
      const off = ((tallest - ks.length) * ROWH) / 2;
      ks.forEach((k, j) => { px[k] = PAD + c * COLW; py[k] = PAD + off + j * ROWH; });
    });
    const width = PAD * 2 + (cols.length - 1) * COLW + W, height = PAD * 2 + (tallest - 1) * ROWH + H;
    // A small graph is drawn larger on a wide screen; a large one keeps its size and scrolls.
    const wrap = $("graph-wrap");
    const zoom = Math.max(1, Math.min(1.6, (wrap.clientWidth - 4) / width));
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", String(Math.floor(width * zoom)));
    svg.setAttribute("height", String(Math.floor(height * zoom)));
    const edgeLayer = sv("g", {});
    svg.append(edgeLayer);
    for (const [a, b] of edges.values()) {
      const x1 = px[a] + W, y1 = py[a] + H / 2, x2 = px[b], y2 = py[b] + H / 2, m = (x1 + x2) / 2;
      const path = sv("path", { class: "edge", d: `M${x1},${y1} C${m},${y1} ${m},${y2} ${x2},${y2}` });
      edgeLayer.append(path);
      for (const k of [a, b]) { if (!edgesOf.has(k)) edgesOf.set(k, []); edgesOf.get(k).push(path); }
    }
    items.forEach((it, k) => {
      const g = it.n !== undefined ? nodeBox(it.n, k) : groupBox(it, k);
      g.setAttribute("transform", `translate(${px[k]},${py[k]})`);
      svg.append(g);
    });
    const grouped = items.some((it) => it.n === undefined);
    $("collapse").hidden = !D.collapsed;
    $("graph-hint").textContent = grouped
      ? "This model has " + N + " nodes: layers are collapsed into boxes. Click a box (or Enter) to open it."
      : "Inputs on the left, the output on the right. Each box shows the node, its value (v) and dL/dnode (g).";
    paint();
  }

  function nodeBox(i, k) {
    const n = nodes[i];
    const t1 = sv("text", { class: "t1", x: 7, y: 15 }, cut(label(i), 17));
    const t2 = sv("text", { class: "t2", x: 7, y: 31 });
    const t3 = sv("text", { class: "t3 grad-text", x: 7, y: 46 });
    const g = sv(
      "g",
      { class: "node kind-" + n.kind, tabindex: "0", role: "button", "aria-label": n.kind + " " + label(i) },
      sv("title", {}, label(i) + (n.kind === "op" || n.kind === "softmax" ? " = " + n.expr : "")),
      sv("rect", { width: W, height: H, rx: 6 }),
      t1, t2, t3
    );
    g.dataset.node = String(i);
    g.addEventListener("click", () => select(i));
    g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(i); } });
    boxes.set(i, { g, t2, t3, item: k });
    return g;
  }

  function groupBox(it, k) {
    const count = it.hi - it.lo;
    const ops = new Map();
    for (let j = it.lo; j < it.hi; j++) {
      const n = nodes[sorted[j]];
      const key = n.kind === "op" ? n.op : n.kind;
      ops.set(key, (ops.get(key) || 0) + 1);
    }
    const top = Array.from(ops.entries()).sort((a, b) => b[1] - a[1]).slice(0, 2).map(([o, c]) => o + "×" + c).join(" ");
    const a = column[sorted[it.lo]], b = column[sorted[it.hi - 1]];
    const g = sv(
      "g",
      { class: "node kind-group", tabindex: "0", role: "button", "aria-label": "layer of " + count + " nodes, open it" },
      sv("title", {}, count + " nodes; click to open"),
      sv("rect", { width: W, height: H, rx: 6 }),
      sv("text", { class: "t1", x: 7, y: 15 }, "▸ " + count + " nodes"),
      sv("text", { x: 7, y: 31 }, a === b ? "column " + a : "columns " + a + "–" + b),
      sv("text", { x: 7, y: 46 }, cut(top, 16))
    );
    const open = () => {
      items.splice(k, 1, ...split(it.lo, it.hi));
      draw();
    };
    g.addEventListener("click", open);
    g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
    return g;
  }

  function paint() {
    const where = at(pos);
    for (const [i, b] of boxes) {
      const s = shown(i, where);
      b.t2.textContent = s.v === "" ? "v ·" : "v " + cut(String(s.v), 17);
      b.t3.textContent = s.grad === "" ? "g ·" : "g " + cut(String(s.grad), 17);
      b.g.classList.toggle("fresh", s.fresh);
      b.g.classList.toggle("selected", i === selected);
    }
    range.value = String(pos);
    stepsel.value = String(where.s);
    $("phase").textContent = phaseText(where);
    for (const btn of document.querySelectorAll(".jump")) btn.classList.toggle("active", btn.dataset.phase === where.phase);
    renderStep(where);
    if (selected !== null) renderDetail(selected);
  }

  function go(p) {
    pos = Math.max(0, Math.min(total - 1, p));
    paint();
  }

  // ------------------------------------------------------------ the detail of one node
  function nodeLink(i) {
    const b = el("button", { type: "button", class: "link" }, label(i));
    b.addEventListener("click", () => select(i));
    return b;
  }

  function select(i) {
    selected = i;
    for (const [j, b] of boxes) b.g.classList.toggle("selected", j === i);
    for (const paths of edgesOf.values()) for (const p of paths) p.classList.remove("hot");
    const box = boxes.get(i);
    if (box) for (const p of edgesOf.get(box.item) || []) p.classList.add("hot");
    renderDetail(i);
  }

  function renderDetail(i) {
    const where = at(pos);
    const st = steps[where.s];
    const n = nodes[i];
    const body = $("detail-body");
    body.textContent = "";
    body.append(el("h3", { id: "detail-title" }, label(i) + " (" + n.kind + ", node " + i + ")"));
    const facts = el("dl", {});
    const fact = (k, v) => { facts.append(el("dt", {}, k), el("dd", {}, v)); };
    if (n.kind !== "input" && n.kind !== "parameter" && n.kind !== "constant") {
      fact("computes", n.expr);
      const formula = st.formula ? st.formula[i] : null;
      if (formula !== null) fact("formula", formula);
    }
    fact("step", String(st.step) + " (sample " + (st.sample + 1) + ")");
    fact("value", el("span", { class: "v", "data-role": "value" }, String(list(st.value[i]))));
    fact("dL/dnode", el("span", { class: "g", "data-role": "grad" }, String(list(st.grad[i]))));
    body.append(facts);
    const local = st.local[i];
    if (local) {
      body.append(el("h3", {}, "Local derivatives, this step's numbers plugged in"));
      const ul = el("ul", { "data-role": "local" });
      const seen = new Map();
      n.children.forEach((c, k) => {
        const occurrence = seen.get(c) || 0;
        seen.set(c, occurrence + 1);
        const sent = st.arrivals[c].filter((a) => a[0] === i)[occurrence];
        const [expr, value] = local[k];
        const rule = n.rule ? n.rule[k] : expr;
        ul.append(
          el(
            "li", {},
            "d ", label(i), " / d ", nodeLink(c), " = ",
            rule !== expr ? el("code", {}, rule) : null, rule !== expr ? " = " : null, el("code", {}, expr),
            value !== "" ? " = " + value : "",
            sent ? el("div", {}, "sends dL/d", label(c), " += ", el("span", { "data-role": "sent" }, sent[1])) : null
          )
        );
      });
      body.append(ul);
    }
    body.append(el("h3", {}, "Gradient arriving from each parent"));
    const arr = el("ul", { "data-role": "arrivals" });
    if (i === N - 1) arr.append(el("li", {}, "seed from the loss: dL/doutput = " + list(st.lossGrad)));
    for (const [p, gr] of st.arrivals[i]) arr.append(el("li", {}, "from ", nodeLink(p), ": ", el("span", {}, gr)));
    if (!st.arrivals[i].length && i !== N - 1) arr.append(el("li", {}, "none"));
    body.append(arr, el("p", {}, "sum: dL/dnode = " + list(st.grad[i])));
    if (isParam.has(i)) {
      const name = D.paramNames[isParam.get(i)];
      const [old, grad, nw] = st.params[isParam.get(i)];
      body.append(
        el("h3", {}, "Update"),
        el("p", { "data-role": "update" }, name + ": " + old + " − " + D.learningRate + " × " + grad + " = " + nw)
      );
    }
  }

  // ------------------------------------------------------------ the step's sample and updates
  const MAX_ROWS = 200;
  function renderStep(where) {
    const st = steps[where.s];
    const body = $("step-body");
    body.textContent = "";
    const dl = el("dl", {});
    const fact = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
    fact("sample", String(st.sample + 1) + ": " + st.inputs.map(([k, v]) => k + " = " + v).join(", "));
    fact("target", String(st.target));
    fact("output", String(list(st.output)));
    fact("loss (" + D.loss + ")", st.loss);
    fact("dL/doutput", String(list(st.lossGrad)));
    body.append(dl);
    const t = $("updates");
    t.textContent = "";
    t.append(el("tr", {}, el("th", {}, "parameter"), el("th", {}, "old"), el("th", {}, "gradient"), el("th", {}, "new")));
    st.params.slice(0, MAX_ROWS).forEach(([old, grad, nw], k) => {
      const tr = el("tr", where.phase === "update" ? { class: "now" } : {}, el("td", {}, D.paramNames[k]), el("td", {}, old),
        el("td", {}, where.phase === "forward" ? "·" : grad), el("td", {}, where.phase === "update" ? nw : "·"));
      t.append(tr);
    });
    if (st.params.length > MAX_ROWS) t.append(el("tr", {}, el("td", { colspan: "4" }, "… and " + (st.params.length - MAX_ROWS) + " more (treegrad trace prints them all)")));
  }

  // ------------------------------------------------------------ learning curve
  function curve() {
    const box = $("curve");
    const h = D.history;
    if (!h || !h.train.length) {
      box.append(el("p", { class: "hint" }, "Not trained yet: this page was made from a spec, with its initial parameters. Train it (treegrad train) and make the page from the model file to see its learning curve."));
      return;
    }
    const series = [["training", h.train, "#2457c5"], ["validation", h.validation || [], "#d0632b"]].filter((s) => s[1].length);
    const all = series.flatMap((s) => s[1]).filter(Number.isFinite);
    const lo = all.reduce((a, v) => Math.min(a, v), Infinity), hi = all.reduce((a, v) => Math.max(a, v), -Infinity);
    const Wc = 600, Hc = 300, l = 56, r = 12, t = 12, b = 36;
    const X = (k, n) => l + (n > 1 ? (k * (Wc - l - r)) / (n - 1) : 0);
    const Y = (v) => t + (hi > lo ? ((hi - v) * (Hc - t - b)) / (hi - lo) : (Hc - t - b) / 2);
    const chart = sv("svg", { class: "chart", viewBox: `0 0 ${Wc} ${Hc}`, role: "img", "aria-label": "loss by epoch" });
    chart.append(sv("line", { class: "axis", x1: l, y1: Hc - b, x2: Wc - r, y2: Hc - b }), sv("line", { class: "axis", x1: l, y1: t, x2: l, y2: Hc - b }));
    chart.append(sv("text", { x: l - 4, y: t + 10, "text-anchor": "end" }, fmt(hi)), sv("text", { x: l - 4, y: Hc - b, "text-anchor": "end" }, fmt(lo)));
    const n = Math.max(...series.map((s) => s[1].length));
    chart.append(sv("text", { x: l, y: Hc - b + 16 }, "1"), sv("text", { x: Wc - r, y: Hc - b + 16, "text-anchor": "end" }, String(n)), sv("text", { x: (Wc + l) / 2, y: Hc - 4, "text-anchor": "middle" }, "epoch"));
    for (const [, v, color] of series) {
      const pts = v.map((y, k) => (Number.isFinite(y) ? X(k, n).toFixed(1) + "," + Y(y).toFixed(1) : null)).filter(Boolean).join(" ");
      chart.append(sv("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2 }));
    }
    box.append(chart, el("div", { class: "legend" }, ...series.map(([name, v, color]) => legendItem(color, name + " loss (last " + fmt(v[v.length - 1]) + ")"))));
  }
  function fmt(v) { return Number.isFinite(v) ? Number(v.toPrecision(D.precision)).toString() : String(v); }
  function legendItem(color, text) {
    const sw = el("span", { class: "swatch" });
    sw.style.background = color;
    return el("span", {}, sw, text);
  }

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
    const sect = $("surface-section");
    if (!S) {
      sect.hidden = true;
      return;
    }
    const box = $("surface");
    const size = 400, l = 40, b = 34;
    const cw = size / S.n;
    const chart = sv("svg", { class: "chart", viewBox: `0 0 ${size + l + 8} ${size + b + 8}`, role: "img", "aria-label": "the model over the two inputs, with the data" });
    const finite = S.cells.filter((v) => v !== null);
    const lo = Math.min(...finite), hi = Math.max(...finite);
    const color = (v) => {
      if (v === null) return "#ffffff";
      if (S.kind === "binary") return ramp(BLUE_RED, v);
      if (S.kind === "classes") return mix("#ffffff", PALETTE[v % 10], 0.35);
      return ramp(VIRIDIS, hi > lo ? (v - lo) / (hi - lo) : 0.5);
    };
    const grid = sv("g", { transform: `translate(${l},8)` });
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
      sv("text", { x: l + size / 2, y: size + b, "text-anchor": "middle" }, S.inputs[0]),
      sv("text", { x: 12, y: 8 + size / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${8 + size / 2})` }, S.inputs[1]),
      sv("text", { x: l, y: size + 22 }, fmt(S.x[0])), sv("text", { x: l + size, y: size + 22, "text-anchor": "end" }, fmt(S.x[1])),
      sv("text", { x: l - 4, y: size + 8, "text-anchor": "end" }, fmt(S.y[0])), sv("text", { x: l - 4, y: 18, "text-anchor": "end" }, fmt(S.y[1]))
    );
    $("surface-h").textContent = S.kind === "regression" ? "Fitted surface, with the data" : "Decision boundary, with the data";
    const legend = el("div", { class: "legend" });
    if (S.kind === "regression") legend.append(el("span", {}, "colour: prediction from " + fmt(lo) + " (dark) to " + fmt(hi) + " (yellow); points coloured by their target"));
    else if (S.kind === "binary") legend.append(legendItem("#2166ac", (S.labels || ["0"])[0]), legendItem("#b2182b", (S.labels || ["0", "1"])[1]), el("span", {}, "background: P(" + (S.labels || ["0", "1"])[1] + ") from blue (0) to red (1)"));
    else (S.labels || []).forEach((lab, k) => legend.append(legendItem(PALETTE[k % 10], lab)));
    box.append(chart, legend, el("p", { class: "hint" }, "The model as it is before the trace's steps, on " + S.points.length + " points of " + D.source + "."));
  }

  // ------------------------------------------------------------ formula and metrics
  function formula() {
    const f = D.formula;
    if (f.text === null) {
      $("math").hidden = true;
      $("formula-text").textContent = "The formula is " + f.length + " characters long: print it with `treegrad show`.";
      return;
    }
    $("formula-text").textContent = f.text;
  }
  function metrics() {
    const t = $("metrics");
    const keys = ["loss", "accuracy", "mse", "mae", "r2"].filter((k) => D.metrics.some((m) => k in m));
    t.append(el("tr", {}, el("th", {}, "data"), ...keys.map((k) => el("th", {}, k))));
    for (const m of D.metrics) t.append(el("tr", {}, el("td", {}, m.part), ...keys.map((k) => el("td", {}, k in m ? m[k] : "—"))));
  }

  // ------------------------------------------------------------ controls
  $("prev").addEventListener("click", () => go(pos - 1));
  $("next").addEventListener("click", () => go(pos + 1));
  range.addEventListener("input", () => go(Number(range.value)));
  stepsel.addEventListener("change", () => go(start(Number(stepsel.value), at(pos).phase)));
  for (const btn of document.querySelectorAll(".jump")) {
    btn.addEventListener("click", () => {
      const where = at(pos);
      const to = btn.dataset.phase;
      // forward and backward jump to their end (all values, all gradients); update is one position
      go(to === "update" ? start(where.s, "update") : start(where.s, to) + (to === "forward" ? maxLevel : maxR));
    });
  }
  $("collapse").addEventListener("click", () => {
    items = D.collapsed ? split(0, N) : allNodes();
    draw();
  });
  document.addEventListener("keydown", (e) => {
    const tag = e.target && e.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "ArrowRight") { e.preventDefault(); go(pos + 1); }
    else if (e.key === "ArrowLeft") { e.preventDefault(); go(pos - 1); }
    else if (e.key === "Home") { e.preventDefault(); go(0); }
    else if (e.key === "End") { e.preventDefault(); go(total - 1); }
  });

  curve();
  surface();
  formula();
  metrics();
  draw();
  const wrap = $("graph-wrap");
  wrap.scrollTop = (wrap.scrollHeight - wrap.clientHeight) / 2; // the middle of a tall graph, not its empty corner
  document.body.dataset.ready = "1";
})();
