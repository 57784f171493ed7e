"""The report page in a real browser: headless Chromium (the system's, driven by Playwright),
the page opened from file:// with every network request refused and recorded.

Checked: the example models render with no console error and no request but the page
itself; clicking a node shows the trace's numbers for the step shown; the step control
walks to the last update; labels made of markup stay text; a large model opens as
collapsed layers that expand on click. A screenshot of each page at phone and desktop
width goes to test-artifacts/ for a person to look at.

Without Playwright (pip install -e '.[browser]') or a Chromium (apt-get install chromium,
or TREEGRAD_CHROMIUM=/path/to/chrome), these tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from treegrad.core.printers import number
from treegrad.outputs.report import page, page_data, render
from treegrad.outputs.trace import trace
from treegrad.run.setups import trace_setup

ROOT = Path(__file__).resolve().parents[1]
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


def open_page(browser: Any, path: Path, width: int = 1920) -> Opened:
    context = browser.new_context(viewport={"width": width, "height": 900}, offline=True)
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
        if route.request.url == path.as_uri():
            route.continue_()
        else:
            route.abort()

    tab.route("**/*", refuse)
    tab.goto(path.as_uri())
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
        # Step 2: click each kind of node and read its numbers.
        tab.select_option("#stepsel", index=1)
        step = steps[1]
        last = len(step.nodes) - 1
        param = next(n for n in step.nodes if n.kind == "parameter")
        op = next(n for n in step.nodes if n.kind == "op" and n.arrivals)
        for node in (param, op, step.nodes[last]):
            tab.click(f'g.node[data-node="{node.index}"]')
            assert tab.text_content('#detail [data-role="value"]') == fmt(node.value)
            assert tab.text_content('#detail [data-role="grad"]') == fmt(node.grad)
            arrivals = tab.locator('#detail [data-role="arrivals"] li').all_text_contents()
            shown = [a for a in arrivals if a.startswith("from ")]
            assert [a.split(": ")[-1] for a in shown] == [number(g, 4) for _, g in node.arrivals]
        tab.click(f'g.node[data-node="{param.index}"]')
        update = next(u for u in step.params if u.name == param.label)
        old, grad, new = (number(v, 4) for v in (update.old, update.grad, update.new))
        assert (
            tab.text_content('#detail [data-role="update"]')
            == f"{update.name}: {old} − {number(lr, 4)} × {grad} = {new}"
        )
        # An op's local derivatives: the op table's expressions with step 2's numbers (see test_report).
        tab.click(f'g.node[data-node="{op.index}"]')
        items = tab.locator('#detail [data-role="local"] li').all_text_contents()
        local = data["steps"][1]["local"][op.index]
        assert len(items) == len(local) and all(f"{e} = {v}" in text for text, (e, v) in zip(items, local))
        tab.click('button[data-phase="backward"]')  # the picture: step 2 with its values and gradients
        screenshot(opened, f"{stem}-{width}")
        check_clean(opened, path)
        opened.page.context.close()


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


def test_a_large_model_opens_as_layers_that_expand_on_click(browser: Any, tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(
        "inputs: [x, y]\nlayers: [{linear: 40, activation: relu}, {linear: 40, activation: relu}, {linear: 1}]\n"
        "data: xor:16\ntarget: label\n"
    )
    path = tmp_path / "wide.html"
    path.write_text(page(spec, steps=1), encoding="utf-8")
    opened = open_page(browser, path)
    tab = opened.page
    groups = tab.locator("g.kind-group").count()
    assert 1 < groups <= 12 and tab.locator("g.node[data-node]").count() == 0
    tab.locator("g.kind-group").first.focus()
    tab.keyboard.press("Enter")  # keyboard opens it as a click does
    assert tab.locator("g.kind-group").count() + tab.locator("g.node[data-node]").count() > groups
    screenshot(opened, "wide-1920")
    check_clean(opened, path)
    opened.page.context.close()
