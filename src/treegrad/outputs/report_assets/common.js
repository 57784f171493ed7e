// treegrad's report page, part 1 of 4 (common.js, graph.js, charts.js, report.js are joined
// into one function scope, in that order). Every number shown was formatted by treegrad (as
// `treegrad trace` prints it); the script places them, and reads them back as numbers only to
// size and colour what it draws. Text from the data goes into the page as text nodes (append /
// textContent), never as markup.
const D = JSON.parse(document.getElementById("data").textContent);
const SVG = "http://www.w3.org/2000/svg";
const MATHML = "http://www.w3.org/1998/Math/MathML";
const $ = (id) => document.getElementById(id);
document.documentElement.classList.remove("no-js");
document.documentElement.classList.add("js");

function make(ns, tag, attrs, kids) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  e.append(...kids.filter((k) => k !== null && k !== undefined && k !== false));
  return e;
}
const el = (tag, attrs, ...kids) => make(null, tag, attrs, kids);
const sv = (tag, attrs, ...kids) => make(SVG, tag, attrs, kids);
function cut(s, n) { s = String(s); return s.length <= n ? s : s.slice(0, n - 1) + "…"; }
function list(v) { return Array.isArray(v) ? "[" + v.join(", ") + "]" : v; }
// A number treegrad printed, back as a number (NaN for text such as a class label).
function val(s) { return Array.isArray(s) ? NaN : Number(s); }
function fmt(v) { return Number.isFinite(v) ? Number(v.toPrecision(D.precision)).toString() : String(v); }

// A derivative's template (mathml.py): [tag, attributes, child, ...], a child being text, a
// tree, or an argument's slot (-1: the op's output), filled here with names or numbers.
function math(tree, fillSlot) {
  const out = document.createElementNS(MATHML, "math");
  const stack = [[tree, out]];
  while (stack.length) {
    const [t, parent] = stack.pop();
    if (typeof t === "string") { parent.append(t); continue; }
    if (typeof t === "number") { parent.append(...fillSlot(t)); continue; }
    if (t[0] === "mi" && t.length === 3 && typeof t[2] === "number") { parent.append(...fillSlot(t[2])); continue; }
    const e = document.createElementNS(MATHML, t[0]);
    for (const k in t[1]) e.setAttribute(k, t[1][k]);
    parent.append(e);
    for (let k = t.length - 1; k >= 2; k--) stack.push([t[k], e]);
  }
  return out;
}
function mtext(text, tag) { const e = document.createElementNS(MATHML, tag || "mi"); e.append(text); return e; }
// A slot filled with a name, or with a printed number (a negative one in parentheses, as it
// must be after an operator).
function slotName(s) { return [mtext(String(s), "mi")]; }
function slotNumber(s) {
  s = String(s);
  if (!s.startsWith("-")) return [mtext(s, "mn")];
  const row = document.createElementNS(MATHML, "mrow");
  row.append(mtext("(", "mo"), mtext("−", "mo"), mtext(s.slice(1), "mn"), mtext(")", "mo"));
  return [row];
}

// ------------------------------------------------------------ the compiled graph
const N = D.nodes.label.length;
const nodes = D.nodes.label.map((_, i) => ({
  label: D.nodes.label[i], kind: D.nodes.kind[i], op: D.nodes.op[i], expr: D.nodes.expr[i],
  rule: D.nodes.rule[i], children: D.nodes.children[i],
}));
const isParam = new Map(D.paramNodes.map((n, k) => [n, k]));
// Each node's parents in the order their gradients reach it (the trace's arrivals): the
// backward pass visits nodes from the output down, and each node's children left to right.
const parents = Array.from({ length: N }, () => []);
const sentAt = nodes.map((n) => new Array(n.children.length)); // parent i, child k -> place in arrivals[child]
for (let i = N - 1; i >= 0; i--) {
  nodes[i].children.forEach((c, k) => { sentAt[i][k] = parents[c].length; parents[c].push(i); });
}
const level = new Array(N).fill(0); // distance from the leaves: the forward pass's order by rank
for (let i = 0; i < N; i++) for (const c of nodes[i].children) level[i] = Math.max(level[i], level[c] + 1);
const rlevel = new Array(N).fill(0); // distance to the output: the backward pass's order by rank
for (let i = N - 1; i >= 0; i--) for (const c of nodes[i].children) rlevel[c] = Math.max(rlevel[c], rlevel[i] + 1);
const maxLevel = level.reduce((a, b) => Math.max(a, b), 0);
const maxR = rlevel.reduce((a, b) => Math.max(a, b), 0);

function label(i) {
  const n = nodes[i];
  if (n.kind === "op") return n.op + " " + n.label;
  if (n.kind === "output" || n.kind === "softmax") return n.op;
  return n.label;
}

// ------------------------------------------------------------ groups (structure.py)
const G = D.groups;
const NG = G.name.length;
const owner = G.owner;
const kidGroups = Array.from({ length: NG }, () => []);
const kidNodes = Array.from({ length: NG }, () => []);
const topGroups = [];
G.parent.forEach((p, k) => (p === -1 ? topGroups : kidGroups[p]).push(k));
owner.forEach((k, i) => kidNodes[k].push(i));
const groupSize = new Array(NG).fill(0); // nodes inside, at any depth
const lastIndex = new Array(NG).fill(-1); // the highest node inside: groups sort by it
for (let i = 0; i < N; i++) {
  for (let k = owner[i]; k !== -1; k = G.parent[k]) { groupSize[k]++; lastIndex[k] = Math.max(lastIndex[k], i); }
}
function ancestors(k) { const out = []; for (; k !== -1; k = G.parent[k]) out.push(k); return out; }
function describeGroup(k) {
  const kind = G.kind[k], units = G.units[k], act = G.activation[k];
  if (kind === "inputs") return D.inputs.length + (D.inputs.length === 1 ? " input" : " inputs");
  if (kind === "layer") return units + (units === 1 ? " unit" : " units") + (act && act !== "none" ? " · " + act : "");
  if (kind === "input") return "scaled input";
  if (kind === "unit") return (G.activation[G.parent[k]] || "none") === "none" ? "a weighted sum" : G.activation[G.parent[k]] + " of a weighted sum";
  const top = G.tops[k][0];
  if (top === N - 1 && D.classes && nodes[top].op === "softmax") return "softmax over " + D.classes.length + " classes";
  return top !== undefined ? (nodes[top].op || kind) : kind;
}

// ------------------------------------------------------------ positions in the trace
// Per step: forward by level (children before parents), backward by distance from the loss,
// then the update.
const per = maxLevel + 1 + (maxR + 1) + 1;
function total() { return D.steps.length * per; }
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
// Has the forward pass computed node i's value, has the backward pass given it its gradient?
function reached(i, where) { return where.phase !== "forward" || level[i] <= where.r; }
function gradReached(i, where) { return where.phase === "update" || (where.phase === "backward" && rlevel[i] <= where.r); }
function outputReached(where) { return reached(N - 1, where); }
function lossGradReached(where) { return where.phase !== "forward"; }

function shown(i, where) {
  const st = D.steps[where.s];
  const value = reached(i, where) ? list(st.value[i]) : "";
  const grad = gradReached(i, where) ? list(st.grad[i]) : "";
  let fresh = where.phase === "forward" ? level[i] === where.r : where.phase === "backward" && rlevel[i] === where.r;
  let v = value;
  if (where.phase === "update" && isParam.has(i)) {
    v = st.value[i] + " → " + st.params[isParam.get(i)];
    fresh = true;
  }
  return { v, grad, fresh };
}
function paramGrad(st, k) { return st.paramGrad[k] !== undefined ? st.paramGrad[k] : st.grad[D.paramNodes[k]]; }

function phaseText(where) {
  const st = D.steps[where.s];
  const head = "step " + st.step + " (sample " + (st.sample + 1) + "): ";
  if (where.phase === "forward") return head + "forward, level " + where.r + " of " + maxLevel;
  if (where.phase === "backward") return head + "backward, " + where.r + " of " + maxR + " from the loss";
  return head + "update";
}
