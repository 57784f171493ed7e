// Part 2 of 4: the graph. It opens as the spec's structure (inputs, each layer, the output,
// the loss); a group opens one level (click, Enter) or all the way (Shift); it zooms, pans,
// fits, has a minimap and is searched by name.
const SMALL = 40; // a model of at most this many nodes opens with every node shown
const NW = 150, NH = 66, COLW = 196, ROWH = 84, VCOLW = 172, VROWH = 112, PAD = 16;
const openSet = new Set();
let selected = null; // { t: "n", i } | { t: "g", k } | { t: "loss" }
let L = null; // the layout drawn: items, positions, edges
let view = { x: 0, y: 0, z: 1 };
const svg = $("graph"), wrap = $("graph-wrap"), mini = $("minimap");
const viewport = sv("g", {});
svg.append(viewport);

function openStart() {
  openSet.clear();
  if (N <= SMALL) for (let k = 0; k < NG; k++) openSet.add(k);
}
function openDeep(k) { openSet.add(k); for (const c of kidGroups[k]) openDeep(c); }

function visibleItems() {
  const out = [];
  const visit = (k) => {
    if (!openSet.has(k)) { out.push({ t: "g", k }); return; }
    const kids = kidGroups[k].map((g) => ({ t: "g", k: g, key: lastIndex[g] }))
      .concat(kidNodes[k].map((i) => ({ t: "n", i, key: i })))
      .sort((a, b) => a.key - b.key);
    for (const c of kids) { if (c.t === "g") visit(c.k); else out.push({ t: "n", i: c.i }); }
  };
  for (const k of topGroups) visit(k);
  out.push({ t: "loss" });
  return out;
}
function sortKey(it) { return it.t === "n" ? it.i : it.t === "g" ? lastIndex[it.k] : Infinity; }
function sameItem(a, b) { return a && b && a.t === b.t && a.i === b.i && a.k === b.k; }

function layoutItems() {
  const items = visibleItems();
  const itemOf = new Int32Array(N).fill(-1);
  const groupItem = new Map();
  items.forEach((it, j) => { if (it.t === "n") itemOf[it.i] = j; else if (it.t === "g") groupItem.set(it.k, j); });
  for (let i = 0; i < N; i++) {
    if (itemOf[i] !== -1) continue;
    for (let k = owner[i]; k !== -1; k = G.parent[k]) if (groupItem.has(k)) { itemOf[i] = groupItem.get(k); break; }
  }
  const lossItem = items.length - 1;
  const edges = new Map(); // "a b" -> { a, b, via: [[parent, child position]] }
  nodes.forEach((n, p) => n.children.forEach((c, k) => {
    const a = itemOf[c], b = itemOf[p];
    if (a === b) return;
    const key = a * 1e7 + b;
    if (!edges.has(key)) edges.set(key, { a, b, via: [] });
    edges.get(key).via.push([p, k]);
  }));
  edges.set(-1, { a: itemOf[N - 1], b: lossItem, via: [] });
  const ins = items.map(() => []), outs = items.map(() => []);
  for (const e of edges.values()) { outs[e.a].push(e.b); ins[e.b].push(e.a); }
  // Rank: the longest path from the inputs; a leaf (parameter, constant) just before its first user.
  const keys = items.map(sortKey);
  const leaf = items.map((it) => it.t === "n" && nodes[it.i].children.length === 0);
  const rank = new Array(items.length).fill(0);
  const byKey = items.map((_, j) => j).sort((a, b) => keys[a] - keys[b]);
  for (const j of byKey) if (!leaf[j]) for (const a of ins[j]) if (!leaf[a] && keys[a] < keys[j]) rank[j] = Math.max(rank[j], rank[a] + 1);
  for (const j of byKey) if (leaf[j] && outs[j].length) rank[j] = Math.max(0, Math.min(...outs[j].map((b) => rank[b])) - 1);
  const ranks = Math.max(...rank) + 1;
  // Order each rank by the mean position of its neighbours (two sweeps of the barycentre rule).
  const byRank = Array.from({ length: ranks }, () => []);
  items.forEach((_, j) => byRank[rank[j]].push(j));
  const pos = new Float64Array(items.length);
  byRank.forEach((js) => js.forEach((j, q) => (pos[j] = q)));
  const mean = (js, fallback) => (js.length ? js.reduce((s, j) => s + pos[j], 0) / js.length : fallback);
  for (let r = ranks - 1; r >= 0; r--) { byRank[r].sort((a, b) => mean(outs[a], pos[a]) - mean(outs[b], pos[b]) || a - b); byRank[r].forEach((j, q) => (pos[j] = q)); }
  for (let r = 0; r < ranks; r++) { byRank[r].sort((a, b) => mean(ins[a], pos[a]) - mean(ins[b], pos[b]) || a - b); byRank[r].forEach((j, q) => (pos[j] = q)); }
  const widest = Math.max(...byRank.map((js) => js.length));
  // A narrow screen reads the graph top to bottom, a wide one left to right.
  const vertical = wrap.clientWidth < 700;
  const px = new Float64Array(items.length), py = new Float64Array(items.length);
  byRank.forEach((js, r) => {
    const across = vertical ? VCOLW : ROWH;
    const off = ((widest - js.length) * across) / 2;
    js.forEach((j, q) => {
      if (vertical) { px[j] = PAD + off + q * VCOLW; py[j] = PAD + r * VROWH; }
      else { px[j] = PAD + r * COLW; py[j] = PAD + off + q * ROWH; }
    });
  });
  const width = vertical ? PAD * 2 + (widest - 1) * VCOLW + NW : PAD * 2 + (ranks - 1) * COLW + NW;
  const height = vertical ? PAD * 2 + (ranks - 1) * VROWH + NH : PAD * 2 + (widest - 1) * ROWH + NH;
  return { items, itemOf, edges: Array.from(edges.values()), px, py, width, height, vertical };
}

function draw(focusGroup) {
  L = layoutItems();
  sizeView(); // before the boxes are added: reading the size after would lay them all out first
  viewport.textContent = "";
  const edgeLayer = sv("g", {}), itemLayer = sv("g", {});
  viewport.append(edgeLayer, itemLayer);
  for (const e of L.edges) {
    let x1, y1, x2, y2, d;
    if (L.vertical) {
      x1 = L.px[e.a] + NW / 2; y1 = L.py[e.a] + NH; x2 = L.px[e.b] + NW / 2; y2 = L.py[e.b];
      const m = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${m} ${x2},${m} ${x2},${y2}`;
    } else {
      x1 = L.px[e.a] + NW; y1 = L.py[e.a] + NH / 2; x2 = L.px[e.b]; y2 = L.py[e.b] + NH / 2;
      const m = (x1 + x2) / 2;
      d = `M${x1},${y1} C${m},${y1} ${m},${y2} ${x2},${y2}`;
    }
    e.path = sv("path", { class: "edge", d });
    edgeLayer.append(e.path);
  }
  L.boxes = L.items.map((it, j) => {
    const b = it.t === "n" ? nodeBox(it.i) : it.t === "g" ? groupBox(it.k) : lossBox();
    b.g.setAttribute("transform", `translate(${L.px[j]},${L.py[j]})`);
    itemLayer.append(b.g);
    return b;
  });
  const grouped = L.items.some((it) => it.t === "g");
  $("graph-hint").textContent = (grouped
    ? "Layers and groups are dashed boxes: click one (or Enter) to open it one level, Shift+click (Shift+Enter) to open it all the way. "
    : "Each box shows a node, its value (v) and dL/dnode (g). ") +
    "Drag to move, Ctrl+wheel or the buttons to zoom.";
  drawMinimap();
  paint();
  if (focusGroup !== undefined) {
    // Focus stays where it was: on the first box of the group just opened.
    const j = L.items.findIndex((it) => (it.t === "n" ? ancestors(owner[it.i]) : it.t === "g" ? ancestors(it.k) : []).includes(focusGroup));
    if (j >= 0) { reveal(j); L.boxes[j].g.focus(); }
  }
}

function box(kind, aria, lines) {
  const g = sv("g", { class: "node kind-" + kind, tabindex: "0", role: "button", "aria-label": aria },
    sv("rect", { width: NW, height: NH, rx: 6 }));
  const texts = lines.map((t, k) => {
    const e = sv("text", { x: 8, y: 15 + 16 * k, class: k === 0 ? "t1" : "" }, t);
    g.append(e);
    return e;
  });
  return { g, texts };
}
function activateOn(g, fn) {
  g.addEventListener("click", (e) => { if (!dragged) fn(e.shiftKey); });
  g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fn(e.shiftKey); } });
}
function nodeBox(i) {
  const n = nodes[i];
  const b = box(n.kind, n.kind + " " + label(i), [cut(label(i), 20), "v ·", "g ·"]);
  b.texts[2].classList.add("grad-text");
  b.g.append(sv("title", {}, label(i) + (n.kind === "op" || n.kind === "softmax" ? " = " + n.expr : "")));
  b.g.dataset.node = String(i);
  activateOn(b.g, () => select({ t: "n", i }));
  return b;
}
function groupBox(k) {
  const b = box("group", G.name[k] + ", " + describeGroup(k) + ", closed: press Enter to open", ["▸ " + cut(G.name[k], 18), cut(describeGroup(k), 22), "v ·", "g ·"]);
  b.texts[3].classList.add("grad-text");
  b.g.dataset.group = String(k);
  activateOn(b.g, (deep) => openGroup(k, deep));
  return b;
}
function lossBox() {
  const b = box("loss", "the loss, " + D.loss, ["loss", cut(D.loss, 20), "L ·", "dL/dout ·"]);
  b.texts[3].classList.add("grad-text");
  b.g.dataset.loss = "1";
  activateOn(b.g, () => select({ t: "loss" }));
  return b;
}

function openGroup(k, deep) {
  if (deep) openDeep(k); else openSet.add(k);
  selected = { t: "g", k };
  draw(k);
  renderDetail();
}
function closeGroup(k) {
  for (const c of kidGroups[k]) closeGroup(c);
  openSet.delete(k);
}

// ------------------------------------------------------------ what each box and edge shows now
function groupSummary(k, where) {
  const st = D.steps[where.s], tops = G.tops[k];
  const row = st.groups[k];
  const v = tops.length && tops.every((i) => reached(i, where)) && row[0] !== "" ? (row[0] === row[1] ? row[0] : row[0] + " … " + row[1]) : "";
  const g = tops.length && tops.every((i) => gradReached(i, where)) && row[2] !== "" ? (row[2] === row[3] ? row[2] : row[2] + " … " + row[3]) : "";
  return { v, g, off: Number(row[5]), pmax: row[4] };
}
function edgeNumber(e, mode, where) {
  const st = D.steps[where.s];
  if (e.via.length === 0) { // the output to the loss
    if (mode === "grad") return lossGradReached(where) ? Math.max(...[].concat(st.lossGrad).map((x) => Math.abs(val(x)))) * Math.sign([].concat(st.lossGrad).map(val).reduce((a, b) => a + b, 0) || 1) : NaN;
    return outputReached(where) ? [].concat(st.output).map(val).reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0) : NaN;
  }
  let best = NaN;
  for (const [p, k] of e.via) {
    const c = nodes[p].children[k];
    let x = NaN;
    if (mode === "grad") { if (gradReached(p, where)) x = val(st.arrivals[c][sentAt[p][k]]); }
    else if (reached(c, where)) x = val(st.value[c]);
    if (Number.isFinite(x) && !(Math.abs(best) >= Math.abs(x))) best = x;
  }
  return best;
}
function paintEdges(where) {
  let mode = $("edge-mode").value;
  if (mode === "auto") mode = where.phase === "forward" ? "value" : "grad";
  const nums = L.edges.map((e) => (mode === "plain" ? NaN : edgeNumber(e, mode, where)));
  const most = nums.reduce((a, x) => (Number.isFinite(x) ? Math.max(a, Math.abs(x)) : a), 0);
  L.edges.forEach((e, k) => {
    const x = nums[k];
    const known = Number.isFinite(x) && x !== 0;
    e.path.setAttribute("class", "edge" + (known ? (x > 0 ? " pos" : " neg") : "") + (selected && (sameItem(L.items[e.a], selected) || sameItem(L.items[e.b], selected)) ? " hot" : ""));
    e.path.style.strokeWidth = known && most > 0 ? (1.2 + 4.8 * Math.sqrt(Math.abs(x) / most)).toFixed(2) : "";
  });
}
function paintGraph(where) {
  const st = D.steps[where.s];
  L.items.forEach((it, j) => {
    const b = L.boxes[j];
    let fresh = false;
    if (it.t === "n") {
      const s = shown(it.i, where);
      b.texts[1].textContent = s.v === "" ? "v ·" : "v " + cut(s.v, 19);
      b.texts[2].textContent = s.grad === "" ? "g ·" : "g " + cut(s.grad, 19);
      fresh = s.fresh;
    } else if (it.t === "g") {
      const s = groupSummary(it.k, where);
      b.texts[2].textContent = s.v === "" ? "v ·" : "v " + cut(s.v, 19);
      b.texts[3].textContent = s.g === "" ? "g ·" : "g " + cut(s.g, 19);
    } else {
      b.texts[2].textContent = outputReached(where) ? "L " + cut(st.loss, 17) : "L ·";
      b.texts[3].textContent = lossGradReached(where) ? "dL/dout " + cut(list(st.lossGrad), 12) : "dL/dout ·";
      fresh = where.phase === "forward" && where.r === maxLevel;
    }
    b.g.classList.toggle("fresh", fresh);
    b.g.classList.toggle("selected", sameItem(it, selected));
  });
  paintEdges(where);
}

// ------------------------------------------------------------ zoom, pan, fit, minimap
function applyView() {
  viewport.setAttribute("transform", `translate(${view.x.toFixed(1)},${view.y.toFixed(1)}) scale(${view.z.toFixed(4)})`);
  drawViewRect();
}
function zoomAt(factor, sx, sy) {
  const z = Math.max(0.05, Math.min(3, view.z * factor));
  view.x = sx - ((sx - view.x) * z) / view.z;
  view.y = sy - ((sy - view.y) * z) / view.z;
  view.z = z;
  applyView();
}
// The view's size, read once a drawing (reading it later makes the browser lay out every box first).
let viewW = 0, viewH = 0;
function sizeView() {
  // As tall as the graph needs at the width's scale, within 16rem and 70% of the window.
  viewW = wrap.clientWidth;
  const byWidth = Math.min(1.4, (viewW - 8) / L.width);
  viewH = Math.round(Math.max(256, Math.min(0.7 * window.innerHeight, L.height * byWidth + 24)));
  wrap.style.height = viewH + "px";
  viewH -= 2; // its border
}
function fit() {
  const w = viewW, h = viewH;
  view.z = Math.max(0.05, Math.min(1.4, (w - 8) / L.width, (h - 8) / L.height));
  view.x = (w - L.width * view.z) / 2;
  view.y = Math.max(0, (h - L.height * view.z) / 2);
  applyView();
}
function reveal(j) { // bring item j into view, keeping the zoom
  const w = viewW, h = viewH;
  const x = view.x + L.px[j] * view.z, y = view.y + L.py[j] * view.z;
  if (x < 0 || y < 0 || x + NW * view.z > w || y + NH * view.z > h) {
    view.x = w / 2 - (L.px[j] + NW / 2) * view.z;
    view.y = h / 2 - (L.py[j] + NH / 2) * view.z;
    applyView();
  }
}
let viewRect = null, miniScale = 1;
function drawMinimap() {
  mini.textContent = "";
  const mw = 160, mh = 110;
  miniScale = Math.min(mw / L.width, mh / L.height);
  mini.setAttribute("viewBox", `0 0 ${mw} ${mh}`);
  const g = sv("g", { transform: `scale(${miniScale})` });
  // Every box as one path: thousands of elements here cost more than the graph itself.
  g.append(sv("path", { class: "mm-item", d: L.items.map((_, j) => `M${L.px[j]},${L.py[j]}h${NW}v${NH}h-${NW}z`).join("") }));
  viewRect = sv("rect", { class: "mm-view" });
  g.append(viewRect);
  mini.append(g);
}
function drawViewRect() {
  if (!viewRect) return;
  const w = viewW, h = viewH;
  viewRect.setAttribute("x", (-view.x / view.z).toFixed(1));
  viewRect.setAttribute("y", (-view.y / view.z).toFixed(1));
  viewRect.setAttribute("width", (w / view.z).toFixed(1));
  viewRect.setAttribute("height", (h / view.z).toFixed(1));
  mini.style.display = L.width * view.z > w + 1 || L.height * view.z > h + 1 ? "" : "none";
}
function miniMove(e) {
  const r = mini.getBoundingClientRect();
  const x = ((e.clientX - r.left) * (160 / r.width)) / miniScale, y = ((e.clientY - r.top) * (110 / r.height)) / miniScale;
  view.x = viewW / 2 - x * view.z;
  view.y = viewH / 2 - y * view.z;
  applyView();
}
mini.addEventListener("pointerdown", (e) => { e.stopPropagation(); miniMove(e); mini.setPointerCapture(e.pointerId); });
mini.addEventListener("pointermove", (e) => { if (e.buttons) miniMove(e); });

const pointers = new Map();
let dragged = false, pinch = 0;
svg.addEventListener("pointerdown", (e) => {
  pointers.set(e.pointerId, { x: e.clientX, y: e.clientY, x0: e.clientX, y0: e.clientY });
  dragged = false;
  if (pointers.size === 2) { const [a, b] = [...pointers.values()]; pinch = Math.hypot(a.x - b.x, a.y - b.y); }
});
svg.addEventListener("pointermove", (e) => {
  const p = pointers.get(e.pointerId);
  if (!p) return;
  if (pointers.size === 2) {
    p.x = e.clientX; p.y = e.clientY;
    const [a, b] = [...pointers.values()];
    const d = Math.hypot(a.x - b.x, a.y - b.y), r = svg.getBoundingClientRect();
    if (pinch > 0) zoomAt(d / pinch, (a.x + b.x) / 2 - r.left, (a.y + b.y) / 2 - r.top);
    pinch = d;
    dragged = true;
    return;
  }
  if (!dragged && Math.hypot(e.clientX - p.x0, e.clientY - p.y0) < 5) return;
  if (!dragged) { dragged = true; svg.setPointerCapture(e.pointerId); svg.classList.add("dragging"); }
  view.x += e.clientX - p.x; view.y += e.clientY - p.y;
  p.x = e.clientX; p.y = e.clientY;
  applyView();
});
function pointerEnd(e) {
  pointers.delete(e.pointerId);
  svg.classList.remove("dragging");
  setTimeout(() => { if (!pointers.size) dragged = false; }, 0);
}
svg.addEventListener("pointerup", pointerEnd);
svg.addEventListener("pointercancel", pointerEnd);
svg.addEventListener("wheel", (e) => {
  const r = svg.getBoundingClientRect();
  if (e.ctrlKey || e.metaKey) { e.preventDefault(); zoomAt(Math.exp(-e.deltaY / 300), e.clientX - r.left, e.clientY - r.top); return; }
  const bigger = L.width * view.z > r.width + 1 || L.height * view.z > r.height + 1;
  if (!bigger) return; // nothing to pan: the page scrolls
  e.preventDefault();
  view.x -= e.deltaX; view.y -= e.deltaY;
  applyView();
}, { passive: false });
$("zoom-in").addEventListener("click", () => zoomAt(1.25, viewW / 2, viewH / 2));
$("zoom-out").addEventListener("click", () => zoomAt(0.8, viewW / 2, viewH / 2));
$("fit").addEventListener("click", fit);
$("open-all").addEventListener("click", () => { for (const k of topGroups) openDeep(k); draw(); fit(); });
$("close-all").addEventListener("click", () => { openSet.clear(); draw(); fit(); });
$("edge-mode").addEventListener("change", () => paint());

// ------------------------------------------------------------ search by name
let found = { q: "", hits: [], at: -1 };
function searchHits(q) {
  const low = q.toLowerCase(), exact = [], starts = [], inside = [];
  const consider = (text, hit) => {
    const t = String(text).toLowerCase();
    if (t === low) exact.push(hit); else if (t.startsWith(low)) starts.push(hit); else if (t.includes(low)) inside.push(hit);
  };
  for (let k = 0; k < NG; k++) consider(G.name[k], { t: "g", k, text: G.name[k] });
  for (let i = 0; i < N; i++) {
    const n = nodes[i];
    if (n.kind === "constant") continue;
    consider(n.kind === "op" ? label(i) : n.label, { t: "n", i, text: label(i) });
    if (n.kind === "op" && n.label !== label(i)) { const t = n.label.toLowerCase(); if (t === low) exact.push({ t: "n", i, text: label(i) }); }
  }
  return exact.concat(starts, inside);
}
function show(hit) {
  const chain = hit.t === "n" ? ancestors(owner[hit.i]) : ancestors(G.parent[hit.k]);
  for (const k of chain) openSet.add(k);
  selected = hit.t === "n" ? { t: "n", i: hit.i } : { t: "g", k: hit.k };
  draw();
  const j = L.items.findIndex((it) => sameItem(it, selected));
  if (j >= 0) {
    if (view.z < 0.6) { view.z = 0.9; }
    view.x = viewW / 2 - (L.px[j] + NW / 2) * view.z;
    view.y = viewH / 2 - (L.py[j] + NH / 2) * view.z;
    applyView();
    L.boxes[j].g.classList.add("found");
    L.boxes[j].g.focus({ preventScroll: true });
  }
  renderDetail();
}
$("find").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("search").value.trim();
  const status = $("search-status");
  if (!q) { status.textContent = ""; return; }
  if (q !== found.q) found = { q, hits: searchHits(q), at: -1 };
  if (!found.hits.length) { status.textContent = "Nothing is called “" + q + "”: try a layer's name, an input, a parameter (p12) or a node (#40)."; return; }
  found.at = (found.at + 1) % found.hits.length;
  const hit = found.hits[found.at];
  status.textContent = hit.text + " (" + (found.at + 1) + " of " + found.hits.length + " for “" + q + "”" + (found.hits.length > 1 ? "; find again for the next)" : ")");
  show(hit);
});
