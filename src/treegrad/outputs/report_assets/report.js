// Part 4 of 4: the stepper, the panel of what is selected, the step's sample and updates, and
// the live view of a training run.
let pos = start(0, "forward");
const range = $("pos");
const stepsel = $("stepsel");
function steps() {
  range.max = String(total() - 1);
  stepsel.textContent = "";
  D.steps.forEach((st, s) => stepsel.append(el("option", { value: String(s) }, String(st.step))));
}

function paint() {
  const where = at(pos);
  paintGraph(where);
  range.value = String(pos);
  stepsel.value = String(where.s);
  $("phase").textContent = phaseText(where);
  for (const btn of document.querySelectorAll(".jump")) btn.classList.toggle("active", btn.dataset.phase === where.phase);
  renderStep(where);
  renderDetail(true);
}
function go(p) { pos = Math.max(0, Math.min(total() - 1, p)); paint(); }

// ------------------------------------------------------------ why a gradient is (nearly) zero
const TINY = 1e-6;
const largest = new WeakMap(); // step -> its largest |gradient|
function tinyGrad(st, i) {
  if (!largest.has(st)) largest.set(st, [].concat(...st.grad).reduce((a, x) => Math.max(a, Math.abs(val(x)) || 0), 0));
  return [].concat(st.grad[i]).every((x) => Math.abs(val(x)) <= TINY * Math.max(1, largest.get(st)));
}
// Breadth first up from node i, to the nearest place where the gradient stops: a parent whose
// local slope is ~0 (a ReLU that is off, a saturated sigmoid or tanh, a product by zero), or the loss.
function whyZero(st, i) {
  const seen = new Set([i]), queue = [i];
  while (queue.length) {
    const c = queue.shift();
    if (c === N - 1 && [].concat(st.lossGrad).every((x) => Math.abs(val(x)) <= TINY)) {
      return "dL/doutput is ≈ 0: the model already fits this sample (loss " + st.loss + "), so nothing below the output moves at this step.";
    }
    for (const p of parents[c]) {
      if (tinyGrad(st, p)) { if (!seen.has(p)) { seen.add(p); queue.push(p); } continue; }
      const k = nodes[p].children.indexOf(c), slope = st.local[p] ? val(st.local[p][k]) : NaN;
      if (!(Math.abs(slope) <= TINY)) continue;
      const op = nodes[p].op;
      if (op === "relu") return label(p) + " is off: its input " + st.value[c] + " is ≤ 0, where ReLU's slope is 0, so no gradient passes below it.";
      if (op === "sigmoid" || op === "tanh") return label(p) + " is saturated (output " + st.value[p] + "): its slope " + st.local[p][k] + " is ≈ 0.";
      return "d " + label(p) + " / d " + label(c) + " is ≈ 0 at this step (" + st.local[p][k] + "), so almost no gradient passes.";
    }
  }
  return "the gradients reaching it are ≈ 0 or cancel on every path from the loss at this step.";
}
function zeroNote(st, i) {
  return tinyGrad(st, i) ? el("p", { class: "why" }, "Why is the gradient ≈ 0? ", whyZero(st, i)) : null;
}

// ------------------------------------------------------------ the panel of what is selected
function nodeLink(i) {
  const b = el("button", { type: "button", class: "link" }, label(i));
  b.addEventListener("click", () => show({ t: "n", i }));
  return b;
}
function select(item) {
  selected = item;
  paintGraph(at(pos));
  renderDetail();
}
function announce(text) { $("announce").textContent = text; }

function renderDetail(quiet) {
  const body = $("detail-body");
  if (selected === null) return;
  const where = at(pos);
  body.textContent = "";
  if (selected.t === "n") nodeDetail(body, selected.i, where);
  else if (selected.t === "g") groupDetail(body, selected.k, where);
  else lossDetail(body, where);
  if (!quiet) announce(body.querySelector("h3") ? body.querySelector("h3").textContent + ": " + (body.querySelector("dl") || body).textContent.slice(0, 200) : "");
}

function nodeDetail(body, i, where) {
  const st = D.steps[where.s], n = nodes[i];
  body.append(el("h3", { id: "detail-title" }, label(i) + " (" + n.kind + ", node " + i + ")"));
  const facts = el("dl", {});
  const fact = (k, v) => facts.append(el("dt", {}, k), el("dd", {}, v));
  const group = owner[i] >= 0 ? ancestors(owner[i]).reverse().map((k) => G.name[k]).join(" › ") : "";
  if (group) fact("in", group);
  if (n.kind !== "input" && n.kind !== "parameter" && n.kind !== "constant") {
    fact("computes", n.expr);
    const formula = st.formula ? st.formula[i] : null;
    if (formula !== null && formula !== undefined) fact("formula", formula);
  }
  fact("step", String(st.step) + " (sample " + (st.sample + 1) + ")");
  const value = reached(i, where) ? String(list(st.value[i])) : "· (the forward pass reaches it at level " + level[i] + ")";
  const grad = gradReached(i, where) ? String(list(st.grad[i])) : "· (the backward pass reaches it " + rlevel[i] + " from the loss)";
  fact("value", el("span", { class: "v", "data-role": "value" }, value));
  fact("dL/dnode", el("span", { class: "g", "data-role": "grad" }, grad));
  body.append(facts);
  if (gradReached(i, where)) { const note = zeroNote(st, i); if (note) body.append(note); }
  const local = st.local[i];
  if (n.kind === "op" && n.rule) {
    body.append(el("h3", {}, "Local derivatives" + (reached(i, where) ? ", this step's numbers plugged in" : "")));
    const ul = el("ul", { "data-role": "local" });
    n.children.forEach((c, k) => {
      const tree = D.templates[n.rule[k]];
      const item = el("li", {}, "d ", label(i), " / d ", nodeLink(c), " = ");
      if (tree === null) item.append("0 (a constant argument)");
      else {
        item.append(math(tree, (s) => slotName(s === -1 ? n.label : nodes[n.children[s]].label)));
        if (reached(i, where)) {
          item.append(" = ", math(tree, (s) => slotNumber(s === -1 ? st.value[i] : st.value[n.children[s]])), " = ", el("span", { "data-role": "local-value" }, local[k]));
        }
      }
      if (gradReached(i, where)) item.append(el("div", {}, "sends dL/d", label(c), " += ", el("span", { "data-role": "sent" }, st.arrivals[c][sentAt[i][k]])));
      ul.append(item);
    });
    body.append(ul);
  } else if (n.kind === "softmax" || n.kind === "output") {
    body.append(el("h3", {}, "Local derivatives"), el("p", {}, n.kind === "softmax"
      ? "p_i (g_i − Σ p_j g_j): the softmax's Jacobian times its incoming gradients"
      : "1: the output passes each element's gradient through"));
  }
  body.append(el("h3", {}, "Gradient arriving from each parent"));
  const arr = el("ul", { "data-role": "arrivals" });
  if (!gradReached(i, where)) arr.append(el("li", {}, "· (not yet: the backward pass has not reached it)"));
  else {
    if (i === N - 1) arr.append(el("li", {}, "seed from the loss: dL/doutput = " + list(st.lossGrad)));
    parents[i].forEach((p, k) => arr.append(el("li", {}, "from ", nodeLink(p), ": ", el("span", {}, st.arrivals[i][k]))));
    if (!parents[i].length && i !== N - 1) arr.append(el("li", {}, "none"));
  }
  body.append(arr, el("p", {}, "sum: dL/dnode = " + (gradReached(i, where) ? list(st.grad[i]) : "·")));
  if (isParam.has(i)) {
    const k = isParam.get(i);
    body.append(el("h3", {}, "Update"), el("p", { "data-role": "update" }, where.phase === "update"
      ? D.paramNames[k] + ": " + st.value[i] + " − " + D.learningRate + " × " + paramGrad(st, k) + " = " + st.params[k]
      : D.paramNames[k] + ": after the backward pass, new = old − " + D.learningRate + " × gradient"));
  }
}

function groupDetail(body, k, where) {
  const st = D.steps[where.s];
  const s = groupSummary(k, where);
  body.append(el("h3", { id: "detail-title" }, G.name[k] + " (" + describeGroup(k) + ")"));
  const facts = el("dl", {});
  const fact = (a, b) => facts.append(el("dt", {}, a), el("dd", {}, b));
  if (G.parent[k] !== -1) fact("in", ancestors(G.parent[k]).reverse().map((g) => G.name[g]).join(" › "));
  fact("nodes", String(groupSize[k]));
  fact("step", String(st.step) + " (sample " + (st.sample + 1) + ")");
  fact(G.tops[k].length > 1 ? "values leaving it" : "value", el("span", { "data-role": "value" }, s.v || "· (not computed yet)"));
  fact(G.tops[k].length > 1 ? "their gradients" : "dL/dvalue", el("span", { "data-role": "grad" }, s.g || "· (not reached yet)"));
  if (s.pmax !== "" && (where.phase !== "forward")) fact("largest |dL/dparameter|", s.pmax);
  body.append(facts);
  if (G.activation[k] === "relu" && s.v) {
    const units = G.tops[k].length;
    if (s.off) body.append(el("p", { class: "why" }, s.off + " of " + units + " ReLU units are off for this sample (their input is ≤ 0): they output 0 and pass no gradient back, so their weights do not move at this step."));
  }
  const actions = el("div", { class: "actions" });
  const button = (text, fn) => { const b = el("button", { type: "button" }, text); b.addEventListener("click", fn); actions.append(b); };
  if (!openSet.has(k)) button("open", () => openGroup(k, false));
  if (kidGroups[k].length) button("open all the way", () => openGroup(k, true));
  if (openSet.has(k)) button("close", () => { closeGroup(k); selected = { t: "g", k }; draw(); renderDetail(); });
  body.append(actions);
  if (G.tops[k].length > 1 && G.tops[k].length <= 64) {
    const t = el("table", {}, el("tr", {}, el("th", {}, G.kind[k] === "inputs" ? "input" : "unit"), el("th", {}, "value"), el("th", {}, "dL/dvalue")));
    G.tops[k].forEach((i, u) => t.append(el("tr", {}, el("td", {}, G.kind[k] === "inputs" ? D.inputs[u] : String(u + 1)),
      el("td", {}, reached(i, where) ? String(list(st.value[i])) : "·"), el("td", {}, gradReached(i, where) ? String(list(st.grad[i])) : "·"))));
    body.append(el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Its " + (G.kind[k] === "inputs" ? "inputs" : "units") }, t));
  }
}

function lossDetail(body, where) {
  const st = D.steps[where.s];
  body.append(el("h3", { id: "detail-title" }, "loss (" + D.loss + ")"));
  const facts = el("dl", {});
  const fact = (a, b) => facts.append(el("dt", {}, a), el("dd", {}, b));
  fact("target", String(list(st.target)));
  fact("output", outputReached(where) ? String(list(st.output)) : "· (not computed yet)");
  fact("loss", el("span", { "data-role": "value" }, outputReached(where) ? st.loss : "·"));
  fact("dL/doutput", el("span", { "data-role": "grad" }, lossGradReached(where) ? String(list(st.lossGrad)) : "· (the backward pass starts here)"));
  body.append(facts);
}

// ------------------------------------------------------------ the step's sample and updates
const MAX_ROWS = 200;
function renderStep(where) {
  const st = D.steps[where.s];
  const body = $("step-body");
  body.textContent = "";
  const dl = el("dl", {});
  const fact = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
  const shownInputs = st.inputs.slice(0, 12).map(([k, v]) => k + " = " + v).join(", ");
  fact("sample", String(st.sample + 1) + ": " + shownInputs + (st.inputs.length > 12 ? ", … (" + st.inputs.length + " inputs)" : ""));
  fact("target", String(list(st.target)));
  // Only what the forward pass has reached: the output and the loss once it gets there.
  fact("output", outputReached(where) ? String(list(st.output)) : "· (the forward pass is at level " + where.r + " of " + maxLevel + ")");
  fact("loss (" + D.loss + ")", outputReached(where) ? st.loss : "·");
  fact("dL/doutput", lossGradReached(where) ? String(list(st.lossGrad)) : "·");
  body.append(dl);
  const t = $("updates");
  t.textContent = "";
  t.append(el("tr", {}, el("th", {}, "parameter"), el("th", {}, "old"), el("th", {}, "gradient"), el("th", {}, "new")));
  st.params.slice(0, MAX_ROWS).forEach((nw, k) => {
    const p = D.paramNodes[k];
    t.append(el("tr", where.phase === "update" ? { class: "now" } : {}, el("td", {}, D.paramNames[k]), el("td", {}, st.value[p]),
      el("td", {}, gradReached(p, where) ? paramGrad(st, k) : "·"), el("td", {}, where.phase === "update" ? nw : "·")));
  });
  if (st.params.length > MAX_ROWS) t.append(el("tr", {}, el("td", { colspan: "4" }, "… and " + (st.params.length - MAX_ROWS) + " more (treegrad trace prints them all)")));
}

function metrics() {
  const t = $("metrics");
  t.textContent = "";
  const keys = ["loss", "accuracy", "mse", "mae", "r2"].filter((k) => D.metrics.some((m) => k in m));
  t.append(el("tr", {}, el("th", {}, "data"), ...keys.map((k) => el("th", {}, k))));
  for (const m of D.metrics) t.append(el("tr", {}, el("td", {}, m.part), ...keys.map((k) => el("td", {}, k in m ? m[k] : "—"))));
}

// ------------------------------------------------------------ a live training run
function live() {
  const note = $("live");
  note.hidden = false;
  note.textContent = "Live: waiting for the first epoch…";
  const poll = () => fetch(D.live.url, { cache: "no-store" }).then((r) => r.json()).then((u) => {
    D.history = u.history;
    D.metrics = u.metrics;
    if (u.step) { D.steps = [u.step]; steps(); pos = start(0, "update"); }
    curve(); metrics(); paint();
    document.body.dataset.epoch = String(u.epoch);
    note.textContent = u.done
      ? "Training finished after " + u.epoch + " epochs" + (u.report ? "; this page is saved as " + u.report : "") + "."
      : "Live: epoch " + u.epoch + " of " + u.epochs + " (the page updates as it trains).";
    if (!u.done) setTimeout(poll, D.live.every);
  }).catch(() => { note.textContent = "The training command has stopped: this page shows its last state."; });
  poll();
}

// ------------------------------------------------------------ controls
$("prev").addEventListener("click", () => go(pos - 1));
$("next").addEventListener("click", () => go(pos + 1));
range.addEventListener("input", () => go(Number(range.value)));
stepsel.addEventListener("change", () => go(start(Number(stepsel.value), at(pos).phase)));
for (const btn of document.querySelectorAll(".jump")) {
  btn.addEventListener("click", () => {
    const where = at(pos), to = btn.dataset.phase;
    // forward and backward jump to their end (all values, all gradients); update is one position
    go(to === "update" ? start(where.s, "update") : start(where.s, to) + (to === "forward" ? maxLevel : maxR));
  });
}
document.addEventListener("keydown", (e) => {
  const tag = e.target && e.target.tagName;
  if (tag === "INPUT" || tag === "SELECT" || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.key === "ArrowRight") { e.preventDefault(); go(pos + 1); }
  else if (e.key === "ArrowLeft") { e.preventDefault(); go(pos - 1); }
  else if (e.key === "Home") { e.preventDefault(); go(0); }
  else if (e.key === "End") { e.preventDefault(); go(total() - 1); }
});
let resized = null;
window.addEventListener("resize", () => { clearTimeout(resized); resized = setTimeout(() => { curve(); surface(); draw(); fit(); }, 150); });

steps();
curve();
surface();
openStart();
draw();
fit();
if (D.live) live();
document.body.dataset.ready = "1";
