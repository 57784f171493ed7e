"""A model as the source of a PyTorch module (`export --format torch`), and what that source
shares with the torch engine (torch/): the torch spelling of the names the op table's
expressions use, the parameters' attribute names, and how to get torch.

The module's forward is written from the op table, as the vectorized trainer's is: each node
becomes one statement, the op's array form (`Op.array_value`) over batched tensors, with the
names the table's expressions use (`exp`, `where`, `fpow`, ...) bound to torch's functions
(`ARRAY_BINDINGS`, which the torch trainer binds for the loss and optimizer tables too).

torch is imported only when one of these functions runs, never when treegrad is imported.
Safety, as in export.py: the generated text holds names made here, the table's expressions
and numbers; a user's names reach it only as `repr()` literals or as attribute names that
`torch_names` made plain.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..core.nodes import Leaf, Output
from ..core.ops import NAMESPACE
from ..errors import TreegradError
from ..run.modelfile import Opened
from .export import columns, model_labels, python_names

TORCH_VERSION = "2.13.0"
INSTALL = f"pip install torch=={TORCH_VERSION} (or pip install 'treegrad[torch]')"

# The names the op and loss tables' array forms use, as torch expressions. The generated
# module binds each at its top, so that it needs torch alone.
ARRAY_BINDINGS: dict[str, str] = {
    "exp": "torch.exp",
    "log": "torch.log",
    "tanh": "torch.tanh",
    "sqrt": "torch.sqrt",
    "fpow": "torch.pow",
    "where": "torch.where",
    "sign": "torch.sign",
    "stack": "torch.stack",
    # As NumPy's maximum and minimum: a NaN in `a` stays NaN, and the gradient goes to `a` only
    # where it is strictly beyond `b` (relu's slope is 0 at 0, as the op table says).
    "maximum": "lambda a, b: torch.where(a <= b, b, a)",
    "minimum": "lambda a, b: torch.where(a >= b, b, a)",
}
assert set(NAMESPACE) <= set(ARRAY_BINDINGS), "every name of the op expressions needs a torch binding"


def require_torch() -> Any:
    """The torch module, or a TreegradError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise TreegradError(f"this needs PyTorch, which is not installed: {INSTALL}") from None
    return torch


def torch_names(param_names: Sequence[str], reserved: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """One attribute name per parameter: the treegrad name where it is a plain identifier that
    no nn.Module attribute uses (`reserved`), else made one (`p_` in front, `_` for other
    characters, a number behind to keep them apart)."""
    out: list[str] = []
    taken: set[str] = set()
    for name in param_names:
        plain = re.sub(r"[^0-9A-Za-z_]", "_", name)
        if not plain[:1].isalpha() or keyword.iskeyword(plain) or plain in reserved:
            plain = f"p_{plain}"
        base, k = plain, 1
        while plain in taken:
            plain, k = f"{base}_{k}", k + 1
        taken.add(plain)
        out.append(plain)
    return out


def reserved_names(torch: Any) -> set[str]:
    """Names an nn.Module already has (forward, training, to, ...)."""
    return set(dir(torch.nn.Module)) | {"training"}


def module_source(model: Opened) -> str:
    """A Python module defining `Model(nn.Module)`: the model over batched tensors, with one
    named nn.Parameter per treegrad parameter. It imports torch alone."""
    torch = require_torch()
    g = model.root.compiled_graph
    attrs = torch_names(g.param_names, reserved_names(torch))
    names = python_names(g)
    labels = model_labels(model)
    body = ["n = x.shape[0]"]
    body += [f"_x{j} = x[:, {j}]" for j in range(len(g.input_names))]
    body += [f"_p{k} = self.{a}" for k, a in enumerate(attrs)]
    body += [f"_c{k} = self.constants_[{k}]" for k in range(len(g.constants))]
    for n in g.order:
        if isinstance(n, (Leaf, Output)):
            continue
        assert n.op is not None
        body.append(f"{names[id(n)]} = {n.op.array_value([names[id(c)] for c in n.children])}")
    # An element that reads no input is one number: broadcast, so that every output has a row per sample.
    elements = [f"torch.broadcast_to({names[id(e)]}, (n,))" for e in g.elements]
    if g.is_softmax:
        body.append(f"return torch.softmax(torch.stack(({', '.join(elements)},), 1), 1)")
    elif g.is_list:
        body.append(f"return torch.stack(({', '.join(elements)},), 1)")
    else:
        body.append(f"return {elements[0]}")
    shape = "(batch,)" if not g.is_list else f"(batch, {len(g.elements)})"
    what = "probabilities, one column per class in CLASSES" if g.is_softmax else "the model's output"
    consts = [float(c.value) for c in g.constants]
    found = columns(model)
    out = [
        '"""A treegrad model as a PyTorch module: `Model()(x)` gives what `treegrad predict` gives.',
        "",
        f"Written by treegrad {__version__}; it needs torch alone. x is a (batch, len(INPUTS))",
        "tensor, the inputs as columns in the order of INPUTS; float64 by default. A tensor holds no",
        "text, so x holds the columns of the data encoded: `encode(rows)` makes it from rows given by",
        "column name (numbers in their own units, text as written; the module standardises them).",
        "Train it as any module, save `model.state_dict()` with torch.save, and read the result back",
        "with `treegrad import-params MODEL.json --from state_dict.pt -o NEW.json`.",
        '"""',
        "",
        "import torch",
        "",
        "# The names treegrad's op table uses, bound to torch's functions.",
        *(f"{name} = {ARRAY_BINDINGS[name]}" for name in sorted(ARRAY_BINDINGS)),
        "",
        f"NAME = {model.name!r}",
        "# The columns of the data, in the order of the inputs they become; a text column in VALUES is",
        "# one 0/1 input per value.",
        f"COLUMNS = {[s.column for s in found]!r}",
        f"VALUES = { ({s.column: s.values for s in found if s.values is not None})!r}",
        f"INPUTS = {list(g.input_names)!r}",
    ]
    if labels is not None:
        out.append(f"CLASSES = {labels!r}")
    out += [
        "# treegrad's name of each parameter, by its attribute name here.",
        f"TREEGRAD_NAMES = {dict(zip(attrs, g.param_names))!r}",
        "",
        "",
        "class Model(torch.nn.Module):",
        '    """The model NAME as a module: one scalar nn.Parameter per treegrad parameter."""',
        "",
        "    def __init__(self, dtype=torch.float64, device=None):",
        "        super().__init__()",
        *(
            f"        self.{a} = torch.nn.Parameter(torch.tensor({float(p.value)!r}, dtype=dtype, device=device))"
            for a, p in zip(attrs, g.params)
        ),
        f"        self.register_buffer('constants_', torch.tensor({consts!r}, dtype=dtype, device=device), "
        "persistent=False)",
        "",
        "    def forward(self, x):",
        f'        """{shape}: {what}."""',
        *(f"        {line}" for line in body),
        *ENCODE,
    ]
    return "\n".join(out) + "\n"


ENCODE = [
    "",
    "",
    "def encode(rows, dtype=torch.float64, device=None):",
    '    """Rows given as dicts by column name (as csv.DictReader reads the data) as the tensor forward',
    "    takes: each number as it is, each text column one-hot (spaces around a text dropped, as",
    '    treegrad reads it; a value the model was not trained on is an error)."""',
    "    encoded = []",
    "    for row in rows:",
    "        x = []",
    "        for column in COLUMNS:",
    "            if column not in VALUES:",
    "                x.append(float(row[column]))",
    "                continue",
    "            text = str(row[column]).strip()",
    "            if text not in VALUES[column]:",
    '                known = "column %r: %r is not one of the values the model was trained on: %r"',
    "                raise ValueError(known % (column, text, VALUES[column]))",
    "            x += [1.0 if text == value else 0.0 for value in VALUES[column]]",
    "        encoded.append(x)",
    "    return torch.tensor(encoded, dtype=dtype, device=device).reshape(len(encoded), len(INPUTS))",
]
