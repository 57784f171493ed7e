"""A model as a PyTorch `nn.Module`: the source outputs/torchsource.py writes from the op table
(what `export --format torch` writes), run, with the model's current parameters.

torch is imported only when this function runs, never when treegrad is imported.
"""

from __future__ import annotations

from typing import Any

from ..outputs.torchsource import module_source, require_torch
from ..run.modelfile import Opened


def torch_module(model: Opened, dtype: Any = None, device: Any = None) -> Any:
    """The model as an `nn.Module` (float64 unless `dtype`), its parameters the model's current values."""
    torch = require_torch()
    ns: dict[str, Any] = {"__name__": "treegrad_torch_model"}
    exec(compile(module_source(model), "<treegrad torch module>", "exec"), ns)  # noqa: S102 - treegrad's own text
    return ns["Model"](dtype=dtype or torch.float64, device=device)
