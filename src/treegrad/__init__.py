"""treegrad: small neural networks as readable graphs of elementary nodes, trained by
the chain rule run backwards through them.

The public names are imported on first use (PEP 562), so that `treegrad --help` and
`treegrad predict` do not pay for the training engine: `import treegrad` alone imports
nothing of ours.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Abs",
    "Add",
    "Constant",
    "DataError",
    "Divide",
    "Exp",
    "History",
    "Input",
    "LOSSES",
    "Linear",
    "Log",
    "Macro",
    "ModelError",
    "ModelFileError",
    "Multiply",
    "Negate",
    "Node",
    "OPS",
    "Output",
    "Parameter",
    "Power",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "SpecError",
    "Subtract",
    "Tanh",
    "TrainingError",
    "TreegradError",
    "__version__",
    "fit",
    "funcify",
    "seed",
]

# The module that defines each public name; the names not listed are node classes (nodes.py).
_HOME = {
    "DataError": "errors",
    "ModelError": "errors",
    "ModelFileError": "errors",
    "SpecError": "errors",
    "TrainingError": "errors",
    "TreegradError": "errors",
    "History": "engine.fit",
    "fit": "engine.fit",
    "LOSSES": "engine.losses",
    "OPS": "core.ops",
    "funcify": "core.printers",
}

if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from .core.nodes import (
        Abs,
        Add,
        Constant,
        Divide,
        Exp,
        Input,
        Linear,
        Log,
        Macro,
        Multiply,
        Negate,
        Node,
        Output,
        Parameter,
        Power,
        ReLU,
        Sigmoid,
        Softmax,
        Subtract,
        Tanh,
        seed,
    )
    from .core.ops import OPS
    from .core.printers import funcify
    from .engine.fit import History, fit
    from .engine.losses import LOSSES
    from .errors import DataError, ModelError, ModelFileError, SpecError, TrainingError, TreegradError


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and keep the name (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'treegrad' has no attribute '{name}'")
    home = _HOME.get(name, "core.nodes")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
