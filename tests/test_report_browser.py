"""The report page in a real browser: headless Chromium (the system's, driven by Playwright),
the page opened from file:// with every network request refused and recorded.

Checked: every example model renders with no console error and no request but the page
itself, at phone and desktop widths (a screenshot of each goes to test-artifacts/ for a person
to look at); clicking a node shows the trace's numbers for the step shown, and only what the
pass has reached; the step control walks to the last update; labels made of markup stay text;
a 64-input MLP opens by its layers, keeps focus when a layer opens, and is searched and
zoomed; a layer opens all the way (Shift), the view pans by dragging, a node is found by its
number; edges carry the gradient's sign and size in the legend's colours, and a gradient of 0
says why; the learning curve has a log scale, ticks and a readout; the page reads without
JavaScript; axe-core finds no serious violation; `train --live` serves a page, on 127.0.0.1
alone, whose curve, metrics and layers follow the run, and refuses requests without its token.

Without Playwright (pip install -e '.[browser]') or a Chromium (apt-get install chromium,
or TREEGRAD_CHROMIUM=/path/to/chrome), these tests skip and say why; without axe-core (the
browser extra's axe-playwright-python ships it) the accessibility test skips.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad.cli import app
from treegrad.core.printers import number
from treegrad.outputs.mathml import fill
from treegrad.outputs.report import page, page_data, render
from treegrad.outputs.trace import trace
from treegrad.run.setups import trace_setup

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
ARTIFACTS = ROOT / "test-artifacts"
WIDTHS = (390, 1920)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    given = os.environ.get("TREEGRAD_CHROMIUM")
    if given:
        return given
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session (a launch takes about a second)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("browser tests: Playwright is not installed (pip install -e '.[browser]')")
    executable = _chromium()
    if executable is None:
        pytest.skip("browser tests: no Chromium found (apt-get install chromium, or set TREEGRAD_CHROMIUM)")
    with sync_playwright() as p:
        try:  # Playwright gives the browser a fresh, empty profile of its own
            b = p.chromium.launch(executable_path=executable, args=FLAGS)
        except Error as e:
            pytest.skip(f"browser tests: {executable} does not start headless: {str(e).splitlines()[0]}")
        yield b
        b.close()


@dataclass
class Opened:
    """A page opened from disk, with what it logged and what it asked the network for."""

    page: Any
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # the pages it may load (from disk)


def open_page(browser: Any, path: Path, width: int = 1920, *, scripts: bool = True) -> Opened:
    height = 844 if width < 700 else 1080
    context = browser.new_context(
        viewport={"width": width, "height": height}, offline=True, java_script_enabled=scripts
    )
    tab = context.new_page()
    opened = Opened(tab)
    tab.on(
        "console",
        lambda m: opened.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    tab.on("pageerror", lambda e: opened.problems.append(f"page error: {e}"))
    tab.on("dialog", lambda d: (opened.problems.append(f"dialog: {d.message}"), d.dismiss()))

    def refuse(route: Any) -> None:
        opened.requests.append(route.request.url)
        if route.request.url in opened.allowed:
            route.continue_()
        else:
            route.abort()

    opened.allowed.append(path.as_uri())
    tab.route("**/*", refuse)
    tab.goto(path.as_uri())
    if scripts:
        tab.wait_for_selector("body[data-ready]", timeout=30_000)
    return opened


def check_clean(opened: Opened, path: Path) -> None:
    assert opened.problems == []
    assert opened.requests == [path.as_uri()]


def screenshot(opened: Opened, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    opened.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def expected_steps(spec: Path, steps: int) -> tuple[list[Any], float]:
    """`treegrad trace SPEC --steps N` as data (what the page must show), and its learning rate."""
    setup = trace_setup(spec, None, None, rows=steps)
    lr = setup.learning_rate
    return trace(setup.root, setup.inputs, setup.targets, loss=setup.loss, learning_rate=lr, steps=steps), lr


def fmt(v: Any) -> str:
    return "[" + ", ".join(number(x, 4) for x in v) + "]" if isinstance(v, list) else number(v, 4)


def pick(tab: Any, i: int) -> None:
    """Click node i's box, wherever the view is (a box may be panned out of it)."""
    tab.dispatch_event(f'g.node[data-node="{i}"]', "click")


def local_text(data: dict[str, Any], step: dict[str, Any], i: int, k: int) -> str:
    """What the page prints for d node i / d child k: the rule over names, then over this step's
    numbers (a negative one in parentheses, with a minus sign), then its value."""
    nodes = data["nodes"]
    tree = data["templates"][nodes["rule"][i][k]]
    kids = nodes["children"][i]
    names = fill(tree, [nodes["label"][c] for c in kids], nodes["label"][i])
    signed = [f"(−{v[1:]})" if v.startswith("-") else v for v in [step["value"][c] for c in kids] + [step["value"][i]]]
    return f"{names} = {fill(tree, signed[:-1], signed[-1])} = {step['local'][i][k]}"


@pytest.mark.parametrize("stem", ["line", "iris"])
def test_the_example_models_render_offline_and_show_the_traces_numbers(browser: Any, tmp_path: Path, stem: str) -> None:
    spec = ROOT / "models" / f"{stem}.yaml"
    path = tmp_path / f"{stem}.html"
    data = page_data(spec, steps=3)
    path.write_text(render(data), encoding="utf-8")
    steps, lr = expected_steps(spec, 3)
    for width in WIDTHS:
        opened = open_page(browser, path, width)
        tab = opened.page
        tab.click("#open-all")  # iris opens by its layers; every node, to click each kind
        # Step 2 after its backward pass: click each kind of node and read its numbers.
        tab.select_option("#stepsel", index=1)
        tab.click('button[data-phase="backward"]')
        step = steps[1]
        last = len(step.nodes) - 1
        param = next(n for n in step.nodes if n.kind == "parameter")
        op = next(n for n in step.nodes if n.kind == "op" and n.arrivals)
        for node in (param, op, step.nodes[last]):
            pick(tab, node.index)
            assert tab.text_content('#detail [data-role="value"]') == fmt(node.value)
            assert tab.text_content('#detail [data-role="grad"]') == fmt(node.grad)
            arrivals = tab.locator('#detail [data-role="arrivals"] li').all_text_contents()
            shown = [a for a in arrivals if a.startswith("from ")]
            assert [a.split(": ")[-1] for a in shown] == [number(g, 4) for _, g in node.arrivals]
        tab.click('button[data-phase="update"]')
        pick(tab, param.index)
        update = next(u for u in step.params if u.name == param.label)
        old, grad, new = (number(v, 4) for v in (update.old, update.grad, update.new))
        assert (
            tab.text_content('#detail [data-role="update"]')
            == f"{update.name}: {old} − {number(lr, 4)} × {grad} = {new}"
        )
        # An op's local derivatives: the op table's, printed as math, with step 2's numbers.
        pick(tab, op.index)
        items = tab.locator('#detail [data-role="local"] li').all_text_contents()
        shown_step = data["steps"][1]
        assert len(items) == len(data["nodes"]["children"][op.index])
        for k, text in enumerate(items):
            assert local_text(data, shown_step, op.index, k) in text
        tab.click('button[data-phase="backward"]')  # the picture: step 2 with its values and gradients
        screenshot(opened, f"{stem}-{width}")
        check_clean(opened, path)
        opened.page.context.close()


def test_only_what_the_pass_has_reached_is_shown(browser: Any, tmp_path: Path) -> None:
    spec = ROOT / "models" / "line.yaml"
    path = tmp_path / "line.html"
    data = page_data(spec, steps=1)
    path.write_text(render(data), encoding="utf-8")
    opened = open_page(browser, path)
    tab = opened.page
    step = data["steps"][0]
    step_panel = lambda: dict(  # noqa: E731 - the "This step" panel as {term: value}
        zip(tab.locator("#step-body dt").all_text_contents(), tab.locator("#step-body dd").all_text_contents())
    )
    out = len(data["nodes"]["label"]) - 1
    pick(tab, out)
    # At the start of the forward pass: no output, no loss, and no value or gradient in the node's panel.
    assert step_panel()["loss (bce)"] == "·" and step_panel()["output"].startswith("·")
    assert tab.text_content('#detail [data-role="value"]').startswith("·")  # type: ignore[union-attr]
    assert tab.text_content('#detail [data-role="grad"]').startswith("·")  # type: ignore[union-attr]
    tab.click('button[data-phase="forward"]')  # the end of the forward pass: the loss, but no gradient yet
    assert step_panel()["loss (bce)"] == step["loss"] and step_panel()["dL/doutput"] == "·"
    assert tab.text_content('#detail [data-role="value"]') == step["value"][out]
    assert tab.text_content('#detail [data-role="grad"]').startswith("·")  # type: ignore[union-attr]
    assert tab.text_content(f'g.node[data-node="{out}"] text.grad-text') == "g ·"
    tab.click('button[data-phase="backward"]')
    assert tab.text_content('#detail [data-role="grad"]') == step["grad"][out]
    assert step_panel()["dL/doutput"] == list_text(step["lossGrad"])
    check_clean(opened, path)
    opened.page.context.close()


def list_text(v: Any) -> str:
    return "[" + ", ".join(v) + "]" if isinstance(v, list) else str(v)


def test_stepping_reaches_the_final_update(browser: Any, tmp_path: Path) -> None:
    spec = ROOT / "models" / "line.yaml"
    path = tmp_path / "line.html"
    path.write_text(page(spec, steps=3), encoding="utf-8")
    steps, _ = expected_steps(spec, 3)
    opened = open_page(browser, path)
    tab = opened.page
    total = int(tab.get_attribute("#pos", "max") or 0) + 1
    tab.click("h1")  # focus the page, not the slider: the arrow keys step the trace
    first = tab.text_content("#phase")
    assert first is not None and "step 1" in first and "forward" in first
    seen = {first}
    for _ in range(total - 1):
        tab.keyboard.press("ArrowRight")
        seen.add(tab.text_content("#phase") or "")
    assert any("backward" in s for s in seen)
    assert tab.text_content("#phase") == "step 3 (sample 3): update"
    rows = tab.locator("#updates tr").all_text_contents()[1:]
    final = steps[-1].params
    assert rows == [f"{u.name}{number(u.old, 4)}{number(u.grad, 4)}{number(u.new, 4)}" for u in final]
    check_clean(opened, path)
    opened.page.context.close()


def test_a_label_made_of_markup_shows_as_text_and_runs_nothing(browser: Any, tmp_path: Path) -> None:
    from test_report import HOSTILE, hostile_spec

    path = tmp_path / "hostile.html"
    path.write_text(page(hostile_spec(tmp_path), steps=2), encoding="utf-8")
    opened = open_page(browser, path)
    tab = opened.page
    screenshot(opened, "hostile-1920")
    legend = tab.text_content("#surface .legend") or ""
    assert HOSTILE[0] in legend and HOSTILE[1] in legend
    assert tab.evaluate("window.pwned") is None
    assert tab.evaluate("document.scripts.length") == 2  # the data block and the page's own script
    check_clean(opened, path)
    opened.page.context.close()


@pytest.fixture(scope="module")
def mlp64(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The page of `treegrad init`'s MLP for 64 inputs and 10 classes (a 64-pixel digits table)."""
    folder = tmp_path_factory.mktemp("mlp64")
    rng = random.Random(0)
    rows = ["".join(f"{rng.randint(0, 16)}," for _ in range(64)) + str(k % 10) for k in range(60)]
    (folder / "digits.csv").write_text(",".join(f"px{i}" for i in range(64)) + ",digit\n" + "\n".join(rows) + "\n")
    result = runner.invoke(
        app, ["init", str(folder / "digits.csv"), "--target", "digit", "-o", str(folder / "mlp.yaml")]
    )
    assert result.exit_code == 0, result.output
    data = page_data(folder / "mlp.yaml", steps=1)
    path = folder / "mlp.html"
    path.write_text(render(data), encoding="utf-8")
    return path, data


@pytest.mark.parametrize("width", WIDTHS)
def test_a_64_input_mlp_opens_by_layers_and_is_searched_and_zoomed(
    browser: Any, mlp64: tuple[Path, dict[str, Any]], width: int
) -> None:
    path, data = mlp64
    opened = open_page(browser, path, width)
    tab = opened.page
    # The spec's structure: inputs, each layer by its name, the output, the loss; no single node.
    tops = tab.locator("g.node").evaluate_all("gs => gs.map(g => g.getAttribute('aria-label'))")
    assert [t.split(",")[0] for t in tops] == ["inputs", "hidden", "output", "softmax", "the loss"]
    assert "32 units · relu" in tops[1] and tab.locator("g.node[data-node]").count() == 0
    # Opening a layer from the keyboard keeps focus in it: on its first unit.
    hidden = tab.locator('g.node[aria-label^="hidden"]')
    hidden.focus()
    tab.keyboard.press("Enter")
    focused = tab.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused.startswith("unit 1,"), focused
    assert tab.locator("g.kind-group").count() == 32 + 3  # its units, beside inputs, output and softmax
    assert "hidden (32 units · relu)" in (tab.text_content("#detail-body h3") or "")
    # Search by a parameter's name: its layer and unit open, it is selected, centred and focused.
    tab.fill("#search", "p2000")
    tab.press("#search", "Enter")
    assert tab.text_content("#detail-title") == f"p2000 (parameter, node {data['paramNodes'][2000]})"
    assert tab.evaluate("document.activeElement.dataset.node") == str(data["paramNodes"][2000])
    assert "1 of 1" in (tab.text_content("#search-status") or "")
    box = tab.locator(f'g.node[data-node="{data["paramNodes"][2000]}"]').bounding_box()
    view = tab.locator("#graph-wrap").bounding_box()
    assert box and view and view["x"] <= box["x"] and box["x"] + box["width"] <= view["x"] + view["width"]
    # Zoom and fit: the view's scale follows the buttons; the minimap shows where the view is.
    scale = lambda: float(tab.get_attribute("#graph > g", "transform").split("scale(")[1].rstrip(")"))  # noqa: E731
    before = scale()
    tab.click("#zoom-in")
    assert scale() > before
    assert tab.locator("#minimap").is_visible()
    tab.click("#fit")
    if width > 1000:  # every node, once: drawing 5,000 boxes takes the browser a few seconds
        tab.click("#open-all")
        assert tab.locator("g.node[data-node]").count() == len(data["nodes"]["label"])
    screenshot(opened, f"mlp64-{width}")
    check_clean(opened, path)
    opened.page.context.close()


EXAMPLES = sorted(p.stem for p in (ROOT / "models").glob("*.yaml"))


def test_every_example_model_renders_at_both_widths(browser: Any, tmp_path: Path) -> None:
    """A screenshot of each example model's page, at the phone's and the desktop's width."""
    paths = []
    for stem in EXAMPLES:
        paths.append(tmp_path / f"{stem}.html")
        paths[-1].write_text(page(ROOT / "models" / f"{stem}.yaml", steps=1), encoding="utf-8")
    for width in WIDTHS:
        opened = open_page(browser, paths[0], width)
        opened.allowed += [p.as_uri() for p in paths]
        tab = opened.page
        for stem, path in zip(EXAMPLES, paths):
            opened.problems.clear()
            opened.requests.clear()
            tab.goto(path.as_uri())  # one tab per width, the pages one after the other
            tab.wait_for_selector("body[data-ready]")
            tab.click('button[data-phase="backward"]')
            # The graph fits the screen: every box drawn lies inside the view (f2c's output was off-screen).
            view = tab.locator("#graph-wrap").bounding_box()
            boxes = tab.locator("#graph g.node").evaluate_all("gs => gs.map(g => g.getBoundingClientRect().toJSON())")
            assert view and boxes
            assert all(
                view["x"] - 1 <= b["x"] and b["x"] + b["width"] <= view["x"] + view["width"] + 1 for b in boxes
            ), stem
            screenshot(opened, f"example-{stem}-{width}")
            check_clean(opened, path)
        opened.page.context.close()


def test_the_learning_curve_has_a_log_scale_ticks_and_a_readout_legible_on_a_phone(
    browser: Any, tmp_path: Path
) -> None:
    model = tmp_path / "f2c.model.json"
    result = runner.invoke(app, ["train", str(ROOT / "models/f2c.yaml"), "--epochs", "60", "-o", str(model), "-q"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "f2c.html"
    path.write_text(page(model, steps=1), encoding="utf-8")
    history = json.loads(model.read_text())["history"]["train"]
    opened = open_page(browser, path, 390)
    tab = opened.page
    linear = tab.locator("#curve svg text").all_text_contents()
    tab.click("#log-scale")
    assert tab.get_attribute("#log-scale", "aria-pressed") == "true"
    ticks = tab.locator("#curve svg text").all_text_contents()
    assert ticks != linear and any(t in ("1", "10", "100", "1000", "0.1", "0.01") for t in ticks)
    # No label is clipped: each lies inside its chart, and is drawn at least 12 px high.
    charts = tab.locator("svg.chart").evaluate_all(
        """svgs => svgs.flatMap(s => { const r = s.getBoundingClientRect();
           return [...s.querySelectorAll('text')].map(t => { const b = t.getBoundingClientRect();
             return [b.left - r.left, r.right - b.right, b.top - r.top, r.bottom - b.bottom,
                     parseFloat(getComputedStyle(t).fontSize) * r.width / s.viewBox.baseVal.width,
                     t.textContent]; }); })"""
    )
    assert charts and all(min(c[:4]) >= -0.5 and c[4] >= 12 for c in charts), charts
    # The readout under the pointer and from the keyboard: the epoch's losses as treegrad printed them.
    tab.locator("#curve svg").focus()
    tab.keyboard.press("ArrowLeft")
    readout = tab.text_content("#curve-readout") or ""
    assert readout.startswith(f"epoch {len(history) - 1}: training loss ")
    box = tab.locator("#curve svg").bounding_box()
    assert box
    tab.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
    assert (tab.text_content("#curve-readout") or "").startswith("epoch ")
    screenshot(opened, "f2c-trained-390")
    check_clean(opened, path)
    opened.page.context.close()


def test_without_javascript_the_page_still_shows_the_model(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "iris.html"
    data = page_data(ROOT / "models" / "iris.yaml", steps=1)
    path.write_text(render(data), encoding="utf-8")
    opened = open_page(browser, path, 390, scripts=False)
    tab = opened.page
    assert tab.is_visible("noscript p") and tab.text_content("h1") == "iris"
    assert tab.is_visible("#structure") and "hidden" in (tab.get_attribute("#structure", "aria-label") or "")
    assert tab.is_visible("#metrics td") and tab.is_visible("#math math") and tab.is_visible("#formula-text")
    # No dead controls: the stepper, the graph's tools and the empty panels are not shown.
    assert not tab.is_visible("#stepper") and not tab.is_visible("#find") and not tab.is_visible("#step-section")
    screenshot(opened, "iris-noscript-390")
    check_clean(opened, path)
    opened.page.context.close()


def until(check: Any, seconds: float) -> None:
    """Wait for `check()` to hold (the page's policy forbids the evaluated strings of wait_for_function)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.05)


def _axe() -> str:
    try:
        from importlib import resources

        return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    except (ImportError, FileNotFoundError):
        pytest.skip("accessibility test: axe-core is not installed (pip install -e '.[browser]')")


def test_axe_core_finds_no_serious_violations(browser: Any, tmp_path: Path, mlp64: tuple[Path, dict[str, Any]]) -> None:
    axe = _axe()
    pages = []
    for stem in ("line", "iris"):
        path = tmp_path / f"{stem}.html"
        path.write_text(page(ROOT / "models" / f"{stem}.yaml", steps=1), encoding="utf-8")
        pages.append(path)
    pages.append(mlp64[0])
    for path, width in zip(pages, (390, 1920, 1920)):  # each page once, both widths seen
        opened = open_page(browser, path, width)
        tab = opened.page
        tab.locator("g.node").first.click()  # a panel filled, a group opened or a node selected
        tab.evaluate(axe)  # loaded by the test, never by the page
        found = tab.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in found["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], (path.name, width, serious)
        opened.page.context.close()


def test_the_node_panel_is_announced_and_a_skip_link_passes_the_graph(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "iris.html"
    path.write_text(page(ROOT / "models" / "iris.yaml", steps=1), encoding="utf-8")
    opened = open_page(browser, path)
    tab = opened.page
    assert tab.get_attribute("#announce", "aria-live") == "polite"
    tab.locator('g.node[aria-label^="hidden"]').click()
    assert (tab.text_content("#announce") or "").startswith("hidden (8 units · tanh)")
    tab.focus("#edge-mode")  # the graph's last tool; the skip link comes next
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.textContent") == "Skip past the graph"
    tab.keyboard.press("Enter")
    assert tab.evaluate("document.activeElement.id") == "detail-h"
    check_clean(opened, path)
    opened.page.context.close()


def listening(port: int) -> list[str]:
    """The local addresses with a socket listening on `port`, from Linux's /proc/net/tcp and tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():  # not Linux: the address cannot be read this way
            return ["127.0.0.1"]
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hexport = local.split(":")
            if int(hexport, 16) == port and state == "0A":  # 0A: LISTEN
                raw = bytes.fromhex(address)
                found.append(".".join(str(b) for b in raw[::-1]) if len(raw) == 4 else raw.hex())
    return found


def test_train_live_serves_a_page_that_updates_and_refuses_requests_without_its_token(
    browser: Any, tmp_path: Path
) -> None:
    out = tmp_path / "xor.model.json"
    command = [sys.executable, "-m", "treegrad", "train", str(ROOT / "models/xor.yaml"), "--live"]
    proc = subprocess.Popen(
        [*command, "--epochs", "800", "-o", str(out), "-q"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split()[-1]
        assert line.startswith("live view") and url.startswith("http://127.0.0.1:") and url.endswith("/")
        base, token = url.rstrip("/").rsplit("/", 1)
        assert len(token) >= 32
        assert listening(int(base.rsplit(":", 1)[1])) == ["127.0.0.1"]  # no other address of this host
        refused = []
        for probe in (base + "/", base + "/state.json", f"{base}/{token[:-1]}x/", f"{base}/{token}x/state.json"):
            try:
                urllib.request.urlopen(probe, timeout=5)
            except urllib.error.HTTPError as e:
                refused.append(e.code)
        assert refused == [403, 403, 403, 403]
        rebinding = urllib.request.Request(url, headers={"Host": "attacker.example:80"})
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(rebinding, timeout=5)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        problems: list[str] = []
        tab.on("pageerror", lambda e: problems.append(str(e)))
        tab.goto(url)
        tab.wait_for_selector("body[data-ready]")
        # The page follows the run: two different epochs while it trains, then the end.
        tab.wait_for_selector("body[data-epoch]", timeout=30_000)
        first = int(tab.get_attribute("body", "data-epoch") or 0)
        until(lambda: int(tab.get_attribute("body", "data-epoch") or 0) > first, 30)
        assert tab.locator("#curve polyline").count() >= 1
        # The metrics and the layers' boxes follow too: the metrics name the epoch shown, and the
        # layers' values and gradients (one trace step with the epoch's parameters) change with it.
        shown = "() => [document.body.dataset.epoch, document.getElementById('metrics').textContent, "
        shown += "[...document.querySelectorAll('#graph g.node')].map(g => g.textContent).join('|')]"
        epoch, metrics, boxes = tab.evaluate(shown)
        assert f"training rows, epoch {epoch}" in metrics
        until(lambda: (tab.text_content("#live") or "").startswith("Training finished"), 60)
        last_epoch, last_metrics, last_boxes = tab.evaluate(shown)
        assert last_epoch == "800" and "training rows, epoch 800" in last_metrics
        assert "hidden" not in boxes and "layer 1" in boxes and "v ·" not in last_boxes and last_boxes != boxes
        assert (
            tab.text_content("#live")
            == f"Training finished after 800 epochs; this page is saved as {out.with_suffix('.html')}."
        )
        screenshot(Opened(tab), "live-xor-1280")
        assert problems == []
        context.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    report = out.with_suffix(".html")
    assert report.is_file() and '"trained":true' in report.read_text()
    with pytest.raises(urllib.error.URLError):  # the server stopped with the command
        urllib.request.urlopen(url, timeout=2)


# A ReLU whose input is about -100 is off for every sample: the weights below it get no gradient.
# The second term (-2 × p × x) sends a negative gradient back, so both edge colours are drawn.
OFF = """name: off
inputs: [x, y]
output:
  sigmoid:
    add:
      - mul: [param, {relu: {add: [{mul: [param, x]}, {mul: [param, y]}, -100]}}]
      - mul: [-2, {mul: [param, x]}]
      - param
loss: bce
data: line
target: label
"""


def test_edges_carry_the_gradient_as_the_legend_says_and_a_zero_gradient_says_why(browser: Any, tmp_path: Path) -> None:
    spec = tmp_path / "off.yaml"
    spec.write_text(OFF)
    data = page_data(spec, steps=1)
    path = tmp_path / "off.html"
    path.write_text(render(data), encoding="utf-8")
    opened = open_page(browser, path)
    tab = opened.page
    tab.click('button[data-phase="backward"]')
    # Each edge is the gradient one node sends another (a model this small shows every node):
    # its colour is the sign, its width grows with the size, and a gradient of 0 has neither.
    step = data["steps"][0]
    loss = step["lossGrad"] if isinstance(step["lossGrad"], list) else [step["lossGrad"]]
    sent = [float(a) for arrivals in step["arrivals"] for a in arrivals] + [max(float(g) for g in loss)]
    most = max(abs(x) for x in sent)
    edges = tab.locator("#graph path.edge").evaluate_all(
        "ps => ps.map(p => [p.classList.contains('pos') - p.classList.contains('neg'), p.style.strokeWidth])"
    )
    assert sorted(sign for sign, _ in edges) == sorted((x > 0) - (x < 0) for x in sent)
    assert {-1, 0, 1} <= {sign for sign, _ in edges}
    widths = sorted(float(w) for sign, w in edges if sign)
    assert widths == sorted(round(1.2 + 4.8 * (abs(x) / most) ** 0.5, 2) for x in sent if x)
    # The legend draws each node kind and edge sign in the colours of the graph's own boxes and edges.
    drawn = tab.evaluate(
        """() => { const s = (q, p) => getComputedStyle(document.querySelector(q))[p];
           const kinds = ['input', 'parameter', 'constant', 'op'].map(k =>
             [s('#legend .key.kind-' + k, 'borderTopColor'), s('#graph g.kind-' + k + ' rect', 'stroke')]);
           return kinds.concat([[s('#legend .line.pos', 'borderTopColor'), s('#graph path.edge.pos', 'stroke')],
                                [s('#legend .line.neg', 'borderTopColor'), s('#graph path.edge.neg', 'stroke')]]); }"""
    )
    assert all(key == graph for key, graph in drawn) and len({key for key, _ in drawn}) == len(drawn), drawn
    # A weight under the ReLU: its gradient is 0, and the panel says which ReLU is off and why.
    relu = data["nodes"]["op"].index("relu")
    below = data["nodes"]["children"][relu][0]
    weight = data["paramNodes"][1]
    pick(tab, weight)
    assert tab.text_content('#detail [data-role="grad"]') == "0"
    why = tab.text_content("#detail .why") or ""
    assert f"relu {data['nodes']['label'][relu]} is off: its input {step['value'][below]} is ≤ 0" in why, why
    pick(tab, len(data["nodes"]["label"]) - 1)  # the output's gradient is not 0: no note
    assert tab.locator("#detail .why").count() == 0
    screenshot(opened, "relu-off-1920")
    check_clean(opened, path)
    opened.page.context.close()


def test_a_layer_opens_all_the_way_the_view_pans_and_a_node_is_found_by_its_number(
    browser: Any, tmp_path: Path
) -> None:
    path = tmp_path / "iris.html"
    data = page_data(ROOT / "models" / "iris.yaml", steps=1)
    path.write_text(render(data), encoding="utf-8")
    opened = open_page(browser, path)
    tab = opened.page
    groups = data["groups"]
    hidden = groups["name"].index("hidden")

    def inside(k: int) -> bool:
        while k != -1 and k != hidden:
            k = groups["parent"][k]
        return k == hidden

    # Shift+Enter opens the layer all the way: every node in it, and focus on the first of them.
    tab.locator('g.node[aria-label^="hidden"]').focus()
    tab.keyboard.press("Shift+Enter")
    shown = tab.locator("#graph g.node[data-node]").evaluate_all("gs => gs.map(g => Number(g.dataset.node))")
    assert sorted(shown) == [i for i, k in enumerate(groups["owner"]) if inside(k)]
    assert tab.evaluate("document.activeElement.dataset.node") == str(min(shown))

    # Dragging pans the view by as much as the pointer moved, at the same zoom.
    def view() -> list[float]:
        t = tab.get_attribute("#graph > g", "transform") or ""
        x, y = t.split("translate(")[1].split(")")[0].split(",")
        return [float(x), float(y), float(t.split("scale(")[1].rstrip(")"))]

    before = view()
    box = tab.locator("#graph-wrap").bounding_box()
    assert box
    x, y = box["x"] + 40, box["y"] + box["height"] - 40
    tab.mouse.move(x, y)
    tab.mouse.down()
    tab.mouse.move(x + 60, y - 30, steps=4)
    tab.mouse.move(x + 120, y - 50, steps=4)
    tab.mouse.up()
    after = view()
    assert [round(after[0] - before[0]), round(after[1] - before[1]), after[2]] == [120, -50, before[2]]
    # Search by a node's number opens what holds it, selects it and moves focus to it.
    kinds = data["nodes"]["kind"]
    target = max(i for i, k in enumerate(groups["owner"]) if kinds[i] == "op" and not inside(k))
    label = data["nodes"]["label"][target]
    assert label == f"#{target}"
    tab.fill("#search", label)
    tab.press("#search", "Enter")
    assert tab.evaluate("document.activeElement.dataset.node") == str(target), label
    assert f"node {target})" in (tab.text_content("#detail-title") or "")
    check_clean(opened, path)
    opened.page.context.close()
