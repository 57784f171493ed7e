"""The report page's HTML: the template with its style, script and data inlined, and what shows
without scripts (the title, the metrics, the formula and a picture of the model's structure).

Text from files (labels, names) reaches the page only as JSON data that the script puts in
text nodes, or escaped here. The JSON inside <script> cannot close it: every <, > and & in
it is a \\u escape. A Content-Security-Policy lets only this page's own script and style run
(and, on a live page, fetch from the server that sent it).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources
from typing import Any

# The script's parts, joined into one function scope in this order (each file under the size rule).
SCRIPTS = ("common.js", "graph.js", "charts.js", "report.js")
METRICS = ("loss", "accuracy", "mse", "mae", "r2")
BOX_W, BOX_H, GAP_X, GAP_Y = 220, 50, 24, 34  # the structure picture's boxes and gaps, in px


def _asset(name: str) -> str:
    return (resources.files("treegrad.outputs") / "report_assets" / name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def script() -> str:
    """The page's script: its parts in one strict function scope."""
    return '"use strict";\n(function () {\n' + "\n".join(_asset(name) for name in SCRIPTS) + "\n})();\n"


def render(data: dict[str, Any]) -> str:
    """The page: the template with its style, script, data and script-free parts inlined."""
    style, code = _asset("report.css"), script()
    mathml = data["formula"]["mathml"] or ""
    data = {**data, "formula": {**data["formula"], "mathml": bool(mathml)}}  # the MathML is in the body, once
    payload = as_json(data)
    live = "; connect-src 'self'" if data.get("live") else ""
    csp = (
        f"default-src 'none'; script-src {_csp_hash(code)}; style-src {_csp_hash(style)}; "
        f"img-src data:; base-uri 'none'; form-action 'none'{live}"
    )
    fill = {
        "csp": html.escape(csp, quote=False),  # our own text, with no double quote
        "title": html.escape(f"treegrad · {data['name']}"),
        "name": html.escape(data["name"]),
        "meta": html.escape(meta(data)),
        "style": style,
        "picture": picture(data),
        "metrics": metrics_table(data["metrics"]),
        "formula": html.escape(
            data["formula"]["text"]
            or data["formula"].get("note")
            or f"The formula is {data['formula'].get('length', 0):,} characters long: print it with `treegrad show`."
        ),
        "mathml": mathml,
        "data": payload,
        "script": code,
    }
    # One pass, so that text filled in (a label reading "{{script}}") is never filled again.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fill[m.group(1)], _asset("report.html"))


def as_json(data: Any) -> str:
    """`data` as the page holds it: compact JSON that cannot close its script element."""
    return (
        json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def meta(data: dict[str, Any]) -> str:
    """The line under the title: what the page shows and how its numbers are printed."""
    nodes = len(data["nodes"]["kind"])
    if data.get("live"):
        shown = "the model as it trains, at its latest epoch"
    else:
        shown = "trained model" if data["trained"] else "spec with its initial parameters"
    return (
        f"{shown} · {data['task']} · "
        f"loss {data['loss']} · learning rate {data['learningRate']} · data {data['source']} · "
        f"{nodes:,} nodes, {len(data['paramNodes']):,} parameters · numbers at {data['precision']} "
        "significant digits, as `treegrad trace` prints them"
        + (
            f" · {len(data['steps'])} of the {data['stepsAsked']} steps asked for, as a page stays under 5 MB "
            "(`treegrad trace` prints them all)"
            if len(data["steps"]) < data.get("stepsAsked", 0)
            else ""
        )
    )


def metrics_table(rows: list[dict[str, str]]) -> str:
    """The metrics as an HTML table (every cell escaped)."""
    keys = [k for k in METRICS if any(k in m for m in rows)]
    head = "<tr><th>data</th>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>"
    body = "".join(
        "<tr><td>"
        + html.escape(m["part"])
        + "</td>"
        + "".join(f"<td>{html.escape(m.get(k, '—'))}</td>" for k in keys)
        + "</tr>"
        for m in rows
    )
    return head + body


def top_groups(data: dict[str, Any]) -> tuple[list[int], list[int], set[tuple[int, int]]]:
    """(the top-level groups, each node's top-level group, the edges between them)."""
    groups = data["groups"]
    parent = groups["parent"]
    tops = [k for k, p in enumerate(parent) if p == -1]
    top_of = []
    for k in groups["owner"]:
        while parent[k] != -1:
            k = parent[k]
        top_of.append(k)
    edges = {
        (top_of[c], top_of[p])
        for p, kids in enumerate(data["nodes"]["children"])
        for c in kids
        if top_of[c] != top_of[p]
    }
    return tops, top_of, edges


def describe(data: dict[str, Any], k: int) -> str:
    """A group in a few words: what it is and its size."""
    g = data["groups"]
    kind, units, act = g["kind"][k], g["units"][k], g["activation"][k]
    if kind == "inputs":
        n = len(data["inputs"])
        return f"{n} input{'s' * (n != 1)}"
    if kind == "layer":
        return f"{units} unit{'s' * (units != 1)}" + (f" · {act}" if act and act != "none" else "")
    last = g["owner"][-1]
    op = data["nodes"]["op"][g["tops"][k][0]] if g["tops"][k] else ""
    if k == last and data["classes"] and op == "softmax":
        return f"softmax over {len(data['classes'])} classes"
    return op or kind


def picture(data: dict[str, Any]) -> str:
    """The model's structure as an SVG drawing, top to bottom: what the page shows without scripts."""
    tops, top_of, edges = top_groups(data)
    rank = {k: 0 for k in tops}
    for k in sorted(tops, key=lambda k: min(data["groups"]["tops"][k] or [0])):
        for a, b in sorted(edges):
            if b == k and a != b:
                rank[k] = max(rank[k], rank[a] + 1)
    loss = ("loss", f"loss: {data['loss']}")
    rows: dict[int, list[tuple[str, str]]] = {}
    for k in tops:
        rows.setdefault(rank[k], []).append((data["groups"]["name"][k], describe(data, k)))
    rows[max(rows) + 1 if rows else 0] = [loss]
    width = max(len(r) for r in rows.values()) * (BOX_W + GAP_X) - GAP_X + 4
    height = len(rows) * (BOX_H + GAP_Y) - GAP_Y + 4
    parts, words = [], []
    for r, boxes in sorted(rows.items()):
        y = 2 + r * (BOX_H + GAP_Y)
        x0 = 2 + (width - 4 - (len(boxes) * (BOX_W + GAP_X) - GAP_X)) / 2
        for j, (name, what) in enumerate(boxes):
            x = x0 + j * (BOX_W + GAP_X)
            parts.append(
                f'<g transform="translate({x:.0f},{y})"><rect width="{BOX_W}" height="{BOX_H}" rx="6"/>'
                f'<text x="10" y="21" class="t1">{html.escape(name[:28])}</text>'
                f'<text x="10" y="40">{html.escape(what[:32])}</text></g>'
            )
            words.append(f"{name}: {what}")
        if r:
            parts.append(f'<path class="edge" d="M{width / 2:.0f},{y - GAP_Y + 2} V{y - 2}" marker-end="url(#arrow)"/>')
    label = html.escape("The model, from its inputs to the loss: " + "; then ".join(words))
    return (
        f'<svg id="structure" class="structure" viewBox="0 0 {width:.0f} {height}" width="{width:.0f}" '
        f'role="img" aria-label="{label}"><defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" '
        'markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>'
        + "".join(parts)
        + "</svg>"
    )
