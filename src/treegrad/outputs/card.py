"""A model file as a Markdown model card: what the model does and how well, what it was
trained on, how, by what software, and the command that trains it again.

Everything comes from the model file; nothing is recomputed but the formula. Text from the
file (names, labels, paths, the command line) is escaped for Markdown, so that a label like
`<script>` or `|` shows as written and cannot break a table or inject HTML.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ..core.printers import funcify, show_full
from ..errors import escaped
from ..files import CARD, CARD_MARK, write_atomic
from ..limits import MAX_SHOWN_FORMULA
from ..run.modelfile import Lineage, Loaded, load
from ..run.provenance import FAR, Provenance, Step, quoted

MAX_LISTED_INPUTS = 16  # inputs listed one per row; the rest are counted
TASKS = {"regression": "regression", "binary": "binary classification", "classes": "classification"}


def _plain(text: str) -> str:
    """Text from the file on one line, unprintable characters as escapes."""
    return escaped(text).replace("\n", "\\n").replace("\t", "\\t")


def md(text: str) -> str:
    """Text as Markdown shows it literally: markup characters escaped, HTML as entities."""
    text = _plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~])", r"\\\1", text)


def code(text: str, *, cell: bool = True) -> str:
    """Text as an inline code span (a fence longer than any run of backticks in it); in a
    table `cell`, where a `|` would end the cell even inside code, `|` is written `\\|`."""
    text = _plain(text)
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|') if cell else text}{pad}{fence}"


def block(text: str, info: str = "") -> str:
    """Text as a fenced code block (a fence longer than any run of backticks in it)."""
    fence = "`" * max(3, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{info}\n{escaped(text)}\n{fence}"


def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _description(loaded: Loaded) -> str | None:
    from ..spec.models import parse_spec

    try:  # the spec validated when the model was loaded; this only reads its description back
        return parse_spec(loaded.record.spec_text, filename=loaded.record.spec_file).description
    except Exception:
        return None


def _task(loaded: Loaded) -> str:
    rec = loaded.record
    what = TASKS[rec.task]
    if rec.classes:
        what += f" of {len(rec.classes)} classes (" + ", ".join(code(c) for c in rec.classes[:20])
        what += ", ...)" if len(rec.classes) > 20 else ")"
    return f"{what}, trained with loss {code(rec.loss)}"


def _inputs(loaded: Loaded, model: str) -> list[str]:
    rec = loaded.record
    ranges = rec.input_ranges or {}
    stats = rec.normalization or {}
    n = len(rec.inputs)
    lines = ["## Inputs", ""]
    about = f"{n} input{'s' if n != 1 else ''}, in the order `predict` takes them."
    if ranges:
        about += (
            f" The range is the smallest and largest value over the {rec.data.train_rows} training rows, in the "
            f"data's units; `predict` warns about a value beyond it by more than {FAR:.0%} of its width."
        )
    if stats:
        about += " Training standardised each input with the mean and standard deviation shown."
    lines += [about, ""]
    header = ["input"] + (["min", "max"] if ranges else []) + (["mean", "std"] if stats else [])
    rows = []
    for name in rec.inputs[:MAX_LISTED_INPUTS]:
        row = [code(name)]
        if ranges:
            row += [_num(ranges[name][0]), _num(ranges[name][1])]
        if stats:
            row += [_num(stats[name][0]), _num(stats[name][1])]
        rows.append(row)
    lines += _table(header, rows)
    if n > MAX_LISTED_INPUTS:
        lines += ["", f"... and {n - MAX_LISTED_INPUTS} more ({n} in all: `inputs` in {code(model, cell=False)})."]
    recoded = []
    if rec.renamed:
        recoded.append(f"{len(rec.renamed)} column names made usable as input names (`renamed` in the model file)")
    if rec.encodings:
        cols = ", ".join(code(c, cell=False) for c in list(rec.encodings)[:5]) + (
            ", ..." if len(rec.encodings) > 5 else ""
        )
        recoded.append(f"text columns one-hot encoded: {cols} (`predict` takes their text)")
    if recoded:
        lines += ["", "From the CSV: " + "; ".join(recoded) + "."]
    return lines


def _formula(loaded: Loaded, model: str) -> list[str]:
    lines = ["## Formula", ""]
    text = funcify(loaded.root, precision=4, format="text")
    latex = funcify(loaded.root, precision=4, format="latex")
    if len(text) <= MAX_SHOWN_FORMULA and len(latex) <= MAX_SHOWN_FORMULA:
        return lines + [block(text, "text"), "", "As LaTeX:", "", block(latex, "math")]
    return lines + [
        f"The formula is {len(text):,} characters as text and {len(latex):,} as LaTeX, too long for this card "
        f"(it shows up to {MAX_SHOWN_FORMULA:,}): {code(show_full(model), cell=False)} prints it, "
        f"{code(show_full(model, 'latex'), cell=False)} as LaTeX, and {code('--format python', cell=False)} "
        "as a Python module."
    ]


def _data(loaded: Loaded) -> list[str]:
    rec = loaded.record
    d = rec.data
    origin = rec.provenance.data if rec.provenance else None
    rows: list[list[str]] = []
    if origin is not None and origin.generator is not None:
        rows.append(["source", f"the built-in dataset {code(origin.generator)}, generated"])
        rows.append(["generated", f"{origin.rows} rows with seed {origin.seed}"])
    else:
        rows.append(["source", code(d.source)])
        if origin is not None and origin.sha256 is not None:
            rows.append(["SHA-256", code(origin.sha256)])
            rows.append(["rows in the file", str(origin.rows)])
    rows.append(["target", code(d.target)])
    used = f"{d.rows}"
    if origin is not None and origin.rows != d.rows:
        used += f" ({origin.rows - d.rows} left out: training.missing is drop)"
    rows.append(["rows used", used])
    if origin is not None and origin.parts:
        shares = " + ".join(str(n) for n in origin.parts)
        rows.append(["read in parts", f"by {len(origin.parts)} processes under torchrun, {shares} rows"])
    split = rec.training.validation_split
    rows.append(
        [
            "split",
            f"{d.train_rows} training, {d.validation_rows} validation"
            + (f" (validation_split {split:g}, seed {rec.training.seed})" if split else ""),
        ]
    )
    if origin is None:
        rows.append(["checksum", "not recorded (a model file written before treegrad recorded provenance)"])
    return ["## Data", "", *_table(["", ""], rows)]


def _metric_cell(key: str, value: Any) -> str:
    if not isinstance(value, float) or not math.isfinite(value):
        return "-" if value is None else str(value)
    return f"{value:.2%}" if "accuracy" in key else f"{value:.6g}"


def _metrics(loaded: Loaded) -> list[str]:
    rec = loaded.record
    splits = [s for s in ("train", "validation") if isinstance(rec.metrics.get(s), dict)]
    if not splits:
        return ["## Metrics", "", "Not recorded."]
    keys = [
        k
        for k in ("loss", "weighted_loss", "accuracy", "weighted_accuracy", "mse", "mae", "r2")
        if any(k in rec.metrics[s] for s in splits)
    ]
    names = {"loss": f"loss ({md(rec.loss)})", "r2": "R²", "mse": "MSE", "mae": "MAE"}
    rows = [
        [names.get(k, k.replace("_", " "))] + [_metric_cell(k, rec.metrics[s].get(k)) for s in splits] for k in keys
    ]
    rows.append(["rows"] + [str(rec.metrics[s].get("rows", "-")) for s in splits])
    return ["## Metrics", "", *_table(["", *("training" if s == "train" else s for s in splits)], rows)]


def _training(loaded: Loaded) -> list[str]:
    settings = loaded.record.training.model_dump(mode="json")
    rows = [[code(k), code(json.dumps(v, separators=(", ", ": ")))] for k, v in settings.items()]
    return ["## Training", "", *_table(["setting", "value"], rows)]


def _history(loaded: Loaded) -> list[str]:
    h = loaded.record.history
    if not h.train:
        return ["## History", "", "No epochs recorded."]
    n = len(h.train)
    text = f"{n} epoch{'s' if n != 1 else ''}"
    text += " (stopped early)" if h.stopped_early else ""
    text += f". Training loss {h.train[0]:.6g} after epoch 1, {h.train[-1]:.6g} after the last"
    if h.validation:
        best = min(range(len(h.validation)), key=h.validation.__getitem__)
        text += (
            f"; validation loss {h.validation[0]:.6g} after epoch 1, {h.validation[-1]:.6g} after the last, "
            f"lowest {h.validation[best]:.6g} after epoch {best + 1}"
        )
    if h.best_epoch is not None:
        text += f"; the parameters are those of epoch {h.best_epoch}"
    if h.learning_rates:
        text += f"; learning rate {h.learning_rates[0]:.6g} at first, {h.learning_rates[-1]:.6g} at the end"
    return ["## History", "", text + "."]


def _provenance(loaded: Loaded) -> list[str]:
    rec = loaded.record
    p = rec.provenance
    if p is None:
        return [
            "## Provenance",
            "",
            f"treegrad {md(rec.treegrad_version or 'version not recorded')}; nothing more recorded (a model "
            "file written before treegrad recorded provenance).",
        ]
    rows = [["treegrad", code(rec.treegrad_version or "?")], ["Python", code(p.python)]]
    if p.numpy:
        rows.append(["NumPy", code(p.numpy)])
    rows.append(["platform", code(p.platform)])
    if p.command is not None:
        rows.append(["command", code(quoted(p.command))])
    if p.cwd is not None:
        rows.append(["in the folder", code(p.cwd)])
    lineage = rec.lineage
    if lineage is not None and lineage.continues:
        earlier = [_command(leg) for leg in lineage.continues]
        cells = [code(c) if c is not None else "a run with no recorded command line" for c in earlier]
        rows.append(["continues", ", then ".join(cells)])
    if lineage is not None and lineage.init_from is not None:
        rows.append(["started from", _started_from(lineage)])
    if p.derived_by:
        rows.append(["then changed by", ", then ".join(code(step) for step in p.derived_by)])
    return ["## Provenance", "", *_table(["", ""], rows)]


def _command(p: Provenance | None, again: bool = False) -> str | None:
    """A recorded command line as the shell runs it again, from its folder; None if none was recorded.
    `again`: as the card's Reproduce runs it, without --log-dir, whose folder holds the recorded run
    (train refuses a folder that holds a run), so the command trains again as it stands."""
    if p is None or p.command is None:
        return None
    argv = list(p.command)
    if again:
        argv = _without_log_dir(argv)
    parts = p.data.parts if p.data is not None else None
    if parts and argv[:1] == ["treegrad"]:  # data-parallel: as many processes again, each reading its part
        argv = ["torchrun", "--nproc_per_node", str(len(parts)), "-m", *argv]
    command = quoted(argv)
    return command if p.cwd is None else f"cd {quoted([p.cwd])} && {command}"


def _without_log_dir(argv: list[str]) -> list[str]:
    """A train command line without its --log-dir DIR (or --log-dir=DIR)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--log-dir":
            skip = True
        elif not arg.startswith("--log-dir="):
            out.append(arg)
    return out


def _step(step: Step) -> str | None:
    """A command that changed the model, as the shell runs it again from its folder; None if not recorded."""
    if step.command is None:
        return None
    return quoted(step.command) if step.cwd is None else f"cd {quoted([step.cwd])} && {quoted(step.command)}"


def _started_from(lineage: Lineage, cell: bool = True) -> str:
    assert lineage.init_from is not None
    sha = f" (SHA-256 {code(lineage.init_sha256, cell=cell)})" if lineage.init_sha256 else ""
    return f"the parameters of {code(lineage.init_from, cell=cell)}{sha}"


def _reproduce(loaded: Loaded) -> list[str]:
    rec = loaded.record
    p = rec.provenance
    lineage = rec.lineage or Lineage()
    lines = ["## Reproduce", ""]
    # A resumed run is its first run, then each resume: every one must have its command line.
    legs = [*lineage.continues, p]
    commands = [_command(leg, again=True) for leg in legs]
    sha = p.data.sha256 if p is not None and p.data is not None else None
    data = f"the data still has the SHA-256 {code(sha, cell=False)} and " if sha else ""
    start = (
        f" {'Its first run' if lineage.continues else 'It'} started from {_started_from(lineage, cell=False)}, "
        "which must still be there as it was."
        if lineage.init_from is not None
        else ""
    )
    if None in commands:
        missing = "the run it continues" if lineage.continues and commands[-1] is not None else "it"
        text = (
            f"No command line was recorded for {missing} (trained from Python, or by a treegrad that did not record "
            f"it). It was trained from {code(rec.spec_file, cell=False)} (its text is `spec_text` in the model file) "
            f"on {code(rec.data.source, cell=False)} with the settings above."
        )
        if lineage.continues:
            text += f" It is a resumed run: its history above is that of {len(legs)} commands together."
        known = [c for c in commands if c is not None]
        if known:
            return lines + [text + " The commands recorded:" + start, "", block("\n".join(known), "sh")]
        return lines + [text + start]
    command = "\n".join(c for c in commands if c is not None)
    if p is not None and p.derived_by:
        steps = ", then ".join(code(step, cell=False) for step in p.derived_by)
        changed = [_step(step) for step in p.derived_steps]
        if len(changed) == len(p.derived_by) and None not in changed:
            return lines + [
                f"This model was made by {steps} from a trained model: the commands below train that model, "
                f"then change it. Run again in order, they make this model, provided {data}its spec file is "
                f"unchanged and the files they read are still there as they were; they write their model files "
                f"again.{start}",
                "",
                block("\n".join([command, *(c for c in changed if c is not None)]), "sh"),
            ]
        what = "these commands trained, in order" if lineage.continues else "this command trained"
        return lines + [
            f"This model was made by {steps} from a trained model, which {what} (run again, "
            f"{'they train' if lineage.continues else 'it trains'} that model's parameters, provided {data}its spec "
            f"file is unchanged).{start}",
            "",
            block(command, "sh"),
        ]
    if lineage.continues:
        return lines + [
            "The commands that trained the model: its first run, then each `--resume` that continued it, reading "
            "the model file the command before wrote. Run again in order, they train the same parameters, provided "
            f"{data}the spec file still reads as the spec embedded in the model file (`spec_text`); they write "
            f"their model files again.{start}",
            "",
            block(command, "sh"),
        ]
    return lines + [
        f"The command that trained the model. Run again, it trains the same parameters, provided {data}the spec "
        "file still reads as the spec embedded in the model file (`spec_text`); it writes the model file again "
        f"(add `--out OTHER.json` to keep this one).{start}",
        "",
        block(command, "sh"),
    ]


def model_card(loaded: Loaded, model: str | None = None) -> str:
    """The Markdown model card of a loaded model file; `model` is its path as the user gave it."""
    rec = loaded.record
    model = model if model is not None else str(loaded.path)
    graph = loaded.root.compiled_graph
    lines = [f"# {md(rec.name)}", ""]
    description = _description(loaded)
    if description:
        lines += [md(description), ""]
    lines += _table(
        ["", ""],
        [
            ["task", _task(loaded)],
            ["inputs", str(len(rec.inputs))],
            ["parameters", str(len(graph.params))],
            ["model file", code(model)],
        ],
    )
    for section in (_inputs(loaded, model), _formula(loaded, model), _data(loaded), _metrics(loaded)):
        lines += ["", *section]
    for section in (_training(loaded), _history(loaded), _provenance(loaded), _reproduce(loaded)):
        lines += ["", *section]
    lines += ["", CARD_MARK]  # how card -o knows a file it may write again (files.CARD)
    return "\n".join(lines) + "\n"


def card_file(model: Path, out: Path | None = None, *, force: bool = False) -> str:
    """`treegrad card`: the card of the model file `model`; written to `out` when given (over an
    existing file only if it is a card, or with `force`)."""
    text = model_card(load(model), str(model))
    if out is not None:
        write_atomic(out, text, force=force, kind=CARD)
    return text
