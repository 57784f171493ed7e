"""treegrad: small neural networks as readable graphs of elementary nodes, trained by
the chain rule run backwards through them.

The public names are imported on first use (PEP 562), so that `treegrad --help` and
`treegrad predict` do not pay for the training engine: `import treegrad` alone imports
nothing of ours. They are the names below and one node class per entry of the op table
(`Add`, `ReLU`, ...); `__all__` lists both, read from the table when it is first asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Every public name but the op table's node classes, and the module that defines it.
_HOME = {
    "Constant": "core.nodes",
    "Input": "core.nodes",
    "Linear": "core.nodes",
    "Macro": "core.nodes",
    "Node": "core.nodes",
    "Output": "core.nodes",
    "Parameter": "core.nodes",
    "Softmax": "core.nodes",
    "seed": "core.nodes",
    "OPS": "core.ops",
    "funcify": "core.printers",
    "History": "engine.fit",
    "fit": "engine.fit",
    "LOSSES": "engine.losses",
    "DataError": "errors",
    "ModelError": "errors",
    "ModelFileError": "errors",
    "SpecError": "errors",
    "TrainingError": "errors",
    "TreegradError": "errors",
}

if TYPE_CHECKING:  # what type checkers see, as explicit re-exports; other op classes are Any to them
    from .core.nodes import Abs as Abs
    from .core.nodes import Add as Add
    from .core.nodes import Constant as Constant
    from .core.nodes import Divide as Divide
    from .core.nodes import Exp as Exp
    from .core.nodes import Input as Input
    from .core.nodes import Linear as Linear
    from .core.nodes import Log as Log
    from .core.nodes import Macro as Macro
    from .core.nodes import Multiply as Multiply
    from .core.nodes import Negate as Negate
    from .core.nodes import Node as Node
    from .core.nodes import Output as Output
    from .core.nodes import Parameter as Parameter
    from .core.nodes import Power as Power
    from .core.nodes import ReLU as ReLU
    from .core.nodes import Sigmoid as Sigmoid
    from .core.nodes import Softmax as Softmax
    from .core.nodes import Subtract as Subtract
    from .core.nodes import Tanh as Tanh
    from .core.nodes import seed as seed
    from .core.ops import OPS as OPS
    from .core.printers import funcify as funcify
    from .engine.fit import History as History
    from .engine.fit import fit as fit
    from .engine.losses import LOSSES as LOSSES
    from .errors import DataError as DataError
    from .errors import ModelError as ModelError
    from .errors import ModelFileError as ModelFileError
    from .errors import SpecError as SpecError
    from .errors import TrainingError as TrainingError
    from .errors import TreegradError as TreegradError


def _op_classes() -> list[str]:
    """The class name of each entry of the op table (core/ops.py), which core/nodes.py defines."""
    from .core.ops import OPS

    return [op.cls for op in OPS.values()]


def _home(name: str) -> str | None:
    """The module that defines public name `name`, or None if it is none."""
    if name in _HOME:
        return _HOME[name]
    # Node classes are capitalised and submodules are not: `from . import errors` in the package
    # looks its submodules up here first, and need not load the op table to be told no.
    if name[:1].isupper() and name in _op_classes():
        return "core.nodes"
    return None


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and keep the name (PEP 562)."""
    if name == "__all__":  # read by `from treegrad import *`
        value: Any = sorted([*_HOME, *_op_classes(), "__version__"])
    else:
        home = _home(name)
        if home is None:
            raise AttributeError(f"module 'treegrad' has no attribute '{name}'")
        value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__getattr__("__all__")))
