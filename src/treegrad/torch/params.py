"""Parameters trained by PyTorch back into a model file: a state dict of the exported module
(`treegrad export --format torch`), read safely and checked by name and shape (`treegrad import-params`).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ModelFileError, clip
from ..outputs.torchsource import require_torch, reserved_names, torch_names
from ..run.modelfile import Opened


def read_state_dict(path: Path) -> dict[str, Any]:
    """A state dict saved with torch.save, read with weights_only=True: tensors and plain
    containers only, never arbitrary objects from the file."""
    from ..files import note_read

    torch = require_torch()
    if not path.is_file():
        raise ModelFileError(
            f"{path}: no such file; give the state dict saved with torch.save(model.state_dict(), ...)"
        )
    note_read(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols: its reader's business
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several kinds for a damaged or foreign file
        raise ModelFileError(f"{path} {_unreadable(e)}; save one with torch.save(model.state_dict(), path)") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ModelFileError(f"{path} holds a {type(state).__name__}, not a state dict: save model.state_dict()")
    return state


def _unreadable(e: Exception) -> str:
    """Why torch's safe reader refused a file, in treegrad's words: never torch's advice to read it
    unsafely (weights_only=False runs whatever code the file holds)."""
    found = re.search(r"GLOBAL ([\w.]+)", str(e))
    if found:
        return (
            f"is not a state dict torch can read safely: it names {clip(found.group(1))}, code that unpickling "
            "would run, and treegrad reads only tensors and plain containers (it never runs a file's code)"
        )
    if "Unsupported operand" in str(e):  # an instruction of a newer pickle protocol than torch's safe reader's
        return (
            "is not a state dict torch can read safely: it was pickled with an instruction torch's safe reader "
            "does not take (torch.save with a pickle_protocol other than its default, 2, writes them), or is damaged"
        )
    return "is not a state dict torch can read safely: it is damaged, or not a file torch.save wrote"


def imported_parameters(model: Opened, state: dict[str, Any]) -> dict[str, float]:
    """treegrad's parameters by name, from a state dict of the exported module (a DDP wrapper's
    `module.` prefix is taken off), checked by name and shape."""
    torch = require_torch()
    g = model.root.compiled_graph
    attrs = torch_names(g.param_names, reserved_names(torch))
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    missing = [a for a in attrs if a not in state]
    extra = [k for k in state if k not in set(attrs)]
    if missing or extra:
        raise ModelFileError(
            "the state dict does not match the model's parameters"
            + (f"; missing {', '.join(missing[:10])}" if missing else "")
            + (f"; unexpected {', '.join(repr(k) for k in extra[:10])}" if extra else "")
            + "; export the model with `treegrad export MODEL --format torch` and save that module's state_dict()"
        )
    values: dict[str, float] = {}
    for a, name in zip(attrs, g.param_names):
        t = state[a]
        if not isinstance(t, torch.Tensor) or t.dim() != 0:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ModelFileError(f"parameter {a} has shape {shape}; the model's parameters are scalars, shape ()")
        v = float(t.detach().to("cpu", torch.float64))
        if not math.isfinite(v):
            raise ModelFileError(f"parameter {a} is {v}: a model file holds finite numbers only")
        values[name] = v
    return values


def import_params(
    model_path: Path, state_path: Path, out: Path, force: bool = False, command: Sequence[str] | None = None
) -> dict[str, float]:
    """Write `out`: the model file at `model_path` with the parameters of a state dict; return them.

    Everything else is kept; the metrics, measured with the old parameters, and the optimizer
    state of the run (which these parameters did not come from) are dropped. `command` (argv) is
    the command line recorded in its provenance.
    """
    from ..files import check_output
    from ..run.modelfile import check_replace, load, save
    from ..run.provenance import derived

    loaded = load(model_path)
    rec = loaded.record
    values = imported_parameters(
        Opened(loaded.root, rec.name, rec.task, rec.classes, loaded), read_state_dict(state_path)
    )
    check_output(out, force=force)
    if not force:
        check_replace(out, rec.name)
    provenance = derived(rec.provenance, "treegrad import-params", command)
    update = {"parameters": values, "metrics": {}, "resume": None, "provenance": provenance}
    save(out, rec.model_copy(update=update), force=force)
    return values
