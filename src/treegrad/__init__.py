"""treegrad: small neural networks as readable graphs of elementary nodes, trained by
the chain rule run backwards through them."""

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
