"""A model as a PyTorch `nn.Module`: the source `export --format torch` writes (made through the table
of output formats, outputs/formats.py), run, with the model's current parameters.

torch is imported only when this function runs, never when treegrad is imported.
"""

from __future__ import annotations

from typing import Any

from ..outputs.formats import render
from ..outputs.torchsource import require_torch
from ..run.modelfile import Opened


def torch_module(model: Opened, dtype: Any = None, device: Any = None) -> Any:
    """The model as an `nn.Module` (float64 unless `dtype`), its parameters the model's current values."""
    torch = require_torch()
    source = render(model, "torch")
    assert isinstance(source, str), "the torch format is text"
    ns: dict[str, Any] = {"__name__": "treegrad_torch_model"}
    exec(compile(source, "<treegrad torch module>", "exec"), ns)  # noqa: S102 - treegrad's own text
    return ns["Model"](dtype=dtype or torch.float64, device=device)
