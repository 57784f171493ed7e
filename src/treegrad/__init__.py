"""treegrad: small neural networks as readable graphs of elementary nodes, trained by
the chain rule run backwards through them.

The public names are imported on first use (PEP 562), so that `treegrad --help` and
`treegrad predict` do not pay for the training engine: `import treegrad` alone imports
nothing of ours.
"""

from __future__ import annotations

import importlib
import sys
import types
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
    "History": "fit",
    "fit": "fit",
    "LOSSES": "losses",
    "OPS": "ops",
    "funcify": "printers",
}

if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from .errors import DataError, ModelError, ModelFileError, SpecError, TrainingError, TreegradError
    from .fit import History, fit
    from .losses import LOSSES
    from .nodes import (
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
    from .ops import OPS
    from .printers import funcify


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and keep the name (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'treegrad' has no attribute '{name}'")
    home = _HOME.get(name, "nodes")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package module, keeping `treegrad.fit` the function.

    `fit` names both a submodule and the function it defines. Importing the submodule
    (`import treegrad.fit`, or any module's `from .fit import ...`) makes Python set the
    package's attribute `fit` to the submodule; the function stays in its place instead, as
    it did when this file imported it eagerly.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "fit" and isinstance(value, types.ModuleType):
            value = value.fit
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
