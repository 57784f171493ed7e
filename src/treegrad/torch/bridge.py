"""Scaling out with PyTorch: a model as an `nn.Module`, trained tensors back into a model
file, and training by PyTorch (one process, or data-parallel under `torchrun`).

The module's forward is written from the op table, as the vectorized trainer's is: each
node becomes one statement, the op's array form (`Op.array_value`) over batched tensors,
with the names the table's expressions use (`exp`, `where`, `fpow`, ...) bound to torch's
functions. The losses come from the loss table the same way: its array statements give
the loss per sample and d loss / d output, which is sent back through the module with
`output.backward(grad)`, so clamps and reductions are treegrad's own. Only the optimizers
are torch's (`TORCH_OPTIMIZERS`), one line each, as the same update rules.

Data-parallel training uses DistributedDataParallel and nothing of our own: every process
walks the same shuffled order (fit's), and of each global mini-batch takes the samples it
holds: those of its part of the data (`shares`, workflow.prepare with a `parts.Part`), or
without parts every index % world size == rank. Each process scales its gradient by world
size / global batch size, so DDP's average over processes is the mean over the whole
batch, as in one process. `data_parallel` joins torchrun's process group and gives the Part.

torch is imported only when one of these functions runs, never when treegrad is imported.
Safety, as in export.py: the generated text holds names made here, the table's expressions
and numbers; a user's names reach it only as `repr()` literals or as attribute names that
`torch_names` made plain.
"""

from __future__ import annotations

import contextlib
import functools
import keyword
import math
import os
import random
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.nodes import Graph, Leaf, Node, Output
from ..core.ops import NAMESPACE
from ..data.parts import WHOLE, Part, launched
from ..engine.losses import Loss, array_clamps
from ..errors import ModelFileError, TrainingError, TreegradError
from ..run.modelfile import Opened

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

# Settings of `training:` the torch engine carries out; any other, set away from its
# default, is refused by name rather than ignored.
TORCH_SETTINGS = {
    "epochs",
    "learning_rate",
    "batch_size",
    "optimizer",
    "seed",
    "shuffle",
    "validation_split",
    "early_stopping",
    "normalize",
    "l1",
    "l2",
    "clip_norm",
    "lr_schedule",
    "class_weight",  # class_weight, weight_column, missing and text_inputs shape the data
    "weight_column",  # before training (workflow.prepare), the same for every engine
    "missing",
    "text_inputs",
    "dtype",
}


def require_torch() -> Any:
    """The torch module, or a TreegradError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise TreegradError(f"this needs PyTorch, which is not installed: {INSTALL}") from None
    return torch


# Each treegrad optimizer as the torch optimizer with the same update rule (optim.py).
TORCH_OPTIMIZERS: dict[str, Callable[[Any, Any, float], Any]] = {
    "sgd": lambda torch, params, lr: torch.optim.SGD(params, lr=lr),
    "momentum": lambda torch, params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "adam": lambda torch, params, lr: torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8),
}


# ----------------------------------------------------------------- names


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


def _reserved(torch: Any) -> set[str]:
    """Names an nn.Module already has (forward, training, to, ...)."""
    return set(dir(torch.nn.Module)) | {"training"}


# ----------------------------------------------------------------- the module's source


def _graph(root: Node) -> Graph:
    if root.graph is None:
        root.compile()
    assert root.graph is not None
    return root.graph


def module_source(model: Opened) -> str:
    """A Python module defining `Model(nn.Module)`: the model over batched tensors, with one
    named nn.Parameter per treegrad parameter. It imports torch alone."""
    from ..outputs.export import _class_labels, python_names

    torch = require_torch()
    g = _graph(model.root)
    attrs = torch_names(g.param_names, _reserved(torch))
    names = python_names(g)
    labels = _class_labels(model)
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
    out = [
        '"""A treegrad model as a PyTorch module: `Model()(x)` gives what `treegrad predict` gives.',
        "",
        f"Written by treegrad {__version__}; it needs torch alone. x is a (batch, len(INPUTS))",
        "tensor, the inputs as columns in the order of INPUTS; float64 by default. Train it as",
        "any module, save `model.state_dict()` with torch.save, and read the result back with",
        "`treegrad import-params MODEL.json --from state_dict.pt -o NEW.json`.",
        '"""',
        "",
        "import torch",
        "",
        "# The names treegrad's op table uses, bound to torch's functions.",
        *(f"{name} = {ARRAY_BINDINGS[name]}" for name in sorted(ARRAY_BINDINGS)),
        "",
        f"NAME = {model.name!r}",
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
    ]
    return "\n".join(out) + "\n"


def torch_module(model: Opened, dtype: Any = None, device: Any = None) -> Any:
    """The model as an `nn.Module` (float64 unless `dtype`), its parameters the model's current values."""
    torch = require_torch()
    ns: dict[str, Any] = {"__name__": "treegrad_torch_model"}
    exec(compile(module_source(model), "<treegrad torch module>", "exec"), ns)  # noqa: S102 - treegrad's own text
    return ns["Model"](dtype=dtype or torch.float64, device=device)


# ----------------------------------------------------------------- trained tensors back


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
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several kinds for a damaged or foreign file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(
            f"{path} is not a state dict torch can read safely ({first[:200]}); "
            "save one with torch.save(model.state_dict(), path)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ModelFileError(f"{path} holds a {type(state).__name__}, not a state dict: save model.state_dict()")
    return state


def imported_parameters(model: Opened, state: dict[str, Any]) -> dict[str, float]:
    """treegrad's parameters by name, from a state dict of the exported module (a DDP wrapper's
    `module.` prefix is taken off), checked by name and shape."""
    torch = require_torch()
    g = _graph(model.root)
    attrs = torch_names(g.param_names, _reserved(torch))
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


def import_params(model_path: Path, state_path: Path, out: Path, force: bool = False) -> dict[str, float]:
    """Write `out`: the model file at `model_path` with the parameters of a state dict; return them.

    Everything else is kept; the metrics, measured with the old parameters, and the optimizer
    state of the run (which these parameters did not come from) are dropped.
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
    provenance = derived(rec.provenance, "treegrad import-params")
    update = {"parameters": values, "metrics": {}, "resume": None, "provenance": provenance}
    save(out, rec.model_copy(update=update), force=force)
    return values


# ----------------------------------------------------------------- training


def _start_group(torch: Any, device: str) -> bool:
    """Join torchrun's process group (gloo on CPU, nccl on GPU) unless joined already; True if joined here."""
    dist = torch.distributed
    if launched()[1] == 1 or dist.is_initialized():
        return False
    if not dist.is_available():
        raise TrainingError("torchrun started several processes but this torch has no torch.distributed")
    dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return True


@contextlib.contextmanager
def data_parallel(device: str = "cpu") -> Iterator[Part]:
    """This process's `Part` of a run under torchrun (alone: `WHOLE`), in torchrun's process
    group for as long as the block runs: each process reads its part of the data
    (workflow.prepare) and trains on it (`fit` with shares), as one process on all of it."""
    torch = require_torch()
    _device(torch, device)
    started = _start_group(torch, device)
    try:
        if launched()[1] == 1:
            yield WHOLE
            return
        dist = torch.distributed

        def exchange(obj: Any) -> list[Any]:
            out: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(out, obj)
            return out

        yield Part(dist.get_rank(), dist.get_world_size(), exchange)
    finally:
        if started:
            with contextlib.suppress(Exception):
                torch.distributed.destroy_process_group()


def check_settings(settings: Any) -> None:
    """Refuse, by name, a `training:` setting the torch engine does not carry out."""
    cls = type(settings)
    unsupported = [
        name
        for name, f in cls.model_fields.items()
        if name not in TORCH_SETTINGS and getattr(settings, name) != f.get_default(call_default_factory=True)
    ]
    if unsupported:
        raise TrainingError(
            f"--engine torch does not support training.{', training.'.join(unsupported)} yet; "
            "remove it or train with the treegrad engine (the default)"
        )


def trainer(settings: Any, device: str = "cpu") -> Callable[..., Any]:
    """`fit` on `device`, for workflow.run, once torch is found and the settings checked."""
    torch = require_torch()
    check_settings(settings)
    _device(torch, device)
    return functools.partial(fit, device=device)


def _device(torch: Any, device: str) -> Any:
    """The torch device for `device` (cpu, or cuda: this process's GPU under torchrun)."""
    if device not in ("cpu", "cuda"):
        raise TrainingError(f"unknown device '{device}'; use cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "torch finds no GPU"
        raise TrainingError(f"--device cuda: CUDA is not available here ({why}); use --device cpu")
    return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if device == "cuda" else "cpu")


def _loss_fn(
    loss: Loss, k: int, torch: Any, device: Any, dtype: str = "float64"
) -> Callable[[list[Any], Any], tuple[Any, list[Any]]]:
    """(outputs, targets) -> (loss per sample, d loss / d output per element), from the loss table,
    its clamps numbers of `dtype` as in the NumPy trainer."""
    import numpy as np

    p, g = [f"o{i}" for i in range(k)], [f"go{i}" for i in range(k)]
    body = loss.code(p, "Tb", "L", g, "_l", vectorized=True)
    src = f"def loss(O, Tb):\n {', '.join(p)}, = O\n " + "\n ".join(body) + f"\n return L, [{', '.join(g)}]"

    ns: dict[str, Any] = {name: eval(expr, {"torch": torch}) for name, expr in ARRAY_BINDINGS.items()}  # noqa: S307
    ns.update(arange=lambda n: torch.arange(n, device=device), **array_clamps(getattr(np, dtype)))
    exec(src, ns)  # noqa: S102 - treegrad's own text
    return ns["loss"]  # type: ignore[no-any-return]


def _clip(torch: Any, params: list[Any], clip: float) -> None:
    """Scale the gradients so that their global norm is at most `clip`, as penalties.py does.

    Not torch's clip_grad_norm_, which divides by the norm + 1e-6 and so would step
    differently from treegrad's engine at the 1e-6 level."""
    with torch.no_grad():
        norm = float(torch.sqrt(torch.stack([p.grad * p.grad for p in params]).sum()))
        if norm > clip:
            scale = clip / norm
            for p in params:
                p.grad.mul_(scale)


def _l1_step(torch: Any, weights: list[Any], shrink: float) -> None:
    """L1's proximal step (penalties.py): each weight moves `shrink` towards 0 and stops at 0."""
    with torch.no_grad():
        for w in weights:
            w.copy_(torch.sign(w) * torch.clamp(torch.abs(w) - shrink, min=0.0))


def fit(
    root: Node,
    inputs: Sequence[Sequence[float]],
    targets: Sequence[Any],
    *,
    loss: str | Loss = "mse",
    epochs: int = 100,
    learning_rate: float = 0.01,
    batch_size: int = 1,
    optimizer: str = "sgd",
    shuffle: bool = False,
    seed: int = 0,
    validation: tuple[Sequence[Sequence[float]], Sequence[Any]] | None = None,
    patience: int | None = None,
    callback: Any = None,
    device: str = "cpu",
    describe_sample: Any = None,  # fit's signature; PyTorch does not say which sample a NaN came from
    l1: float = 0.0,
    l2: float = 0.0,
    clip_norm: float | None = None,
    lr_schedule: Any = None,
    sample_weight: Sequence[float] | None = None,
    history: Any = None,
    dtype: str = "float64",
    shares: tuple[Sequence[int] | None, int, int] | None = None,
) -> Any:
    """`fit.fit`, trained by PyTorch: the same arguments, order of samples and mean-gradient
    steps, so the per-epoch losses agree with treegrad's engine to rounding. Under torchrun
    (WORLD_SIZE > 1) the processes train together with DistributedDataParallel.

    A step does what penalties.py says, in its order: the data loss's gradient (each sample's
    loss and gradient times its `sample_weight`, the sum over the batch divided by the batch's
    size) is clipped to the global norm `clip_norm`, L2 enters as the optimizer's
    `weight_decay` on the weights (`g + l2 * w` before the update, as in penalties.py), and
    L1 is the proximal step after the update. The learning rate of each epoch is the
    Scheduler's (schedules.py), the one treegrad's engine uses. `dtype`: the precision of the
    module, the data and the loss (float32 as treegrad's NumPy trainer, clamps included).

    `shares` (data-parallel, workflow.Prepared): (the place of each of this process's training
    samples in the training order of all processes, the training and validation samples of
    all). Without it every process holds all samples and takes every world-size-th.
    """
    from ..engine.vectorized import DTYPES

    if dtype not in DTYPES:
        raise TrainingError(f"unknown dtype '{dtype}'; use {' or '.join(DTYPES)}")
    from ..engine.fit import History, _check_rows, _check_weights, check_targets, resolve_loss
    from ..engine.optim import OPTIMIZERS
    from ..engine.penalties import StepRules, weight_mask
    from ..engine.schedules import Scheduler

    torch = require_torch()
    graph = _graph(root)
    lossobj = resolve_loss(graph, loss)
    if optimizer not in OPTIMIZERS:
        raise TrainingError(f"unknown optimizer '{optimizer}'; use one of {', '.join(OPTIMIZERS)}")
    dev = _device(torch, device)
    X = _check_rows(graph, inputs)
    T = check_targets(graph, lossobj, targets)
    positions, n_train, n_val = shares or (None, len(X), len(validation[0]) if validation is not None else 0)
    if not n_train or len(X) != len(T):
        raise TrainingError(f"{len(X)} input rows but {len(T)} targets" if n_train else "no training samples")
    for name, value in (("l1", l1), ("l2", l2)):
        if not (math.isfinite(value) and value >= 0):
            raise TrainingError(f"{name} must be a number >= 0, got {value!r}")
    if clip_norm is not None and not (math.isfinite(clip_norm) and clip_norm > 0):
        raise TrainingError(f"clip_norm must be a positive number, got {clip_norm!r}")
    W = None
    if sample_weight is not None:  # a part's weights may all be 0 (or none): workflow.run checks all parts'
        W = _check_weights(sample_weight, len(X)) if shares is None else [float(w) for w in sample_weight]
    rules = StepRules(l1, l2, clip_norm, weight_mask(graph))
    scheduler = Scheduler(lr_schedule, learning_rate, epochs)

    rank, world = launched()
    dist = torch.distributed
    started = _start_group(torch, device)
    try:
        fdtype = getattr(torch, dtype)
        module = torch_module(Opened(root, "model"), dtype=fdtype, device=dev)
        net = module
        if world > 1:
            net = torch.nn.parallel.DistributedDataParallel(module, device_ids=[dev] if device == "cuda" else None)
        params = list(module.parameters())  # in graph.params order, as rules.weights
        weights = [p for p, w in zip(params, rules.weights, strict=True) if w]
        others = [p for p, w in zip(params, rules.weights, strict=True) if not w]
        # L2 is torch's weight_decay, on the weights only: it adds l2 * w to the gradient before
        # the update, after clipping, as penalties.py does.
        groups = [{"params": weights, "weight_decay": l2}, {"params": others, "weight_decay": 0.0}]
        opt = TORCH_OPTIMIZERS[optimizer](torch, [g for g in groups if g["params"]], learning_rate)
        k = len(graph.elements)
        loss_fn = _loss_fn(lossobj, k, torch, dev, dtype)
        tdtype = torch.long if graph.is_softmax else fdtype

        def tensors(rows: Sequence[Sequence[float]], ts: Sequence[Any]) -> tuple[Any, Any]:
            xa = torch.tensor(rows, dtype=fdtype, device=dev).reshape(len(rows), len(graph.input_names))
            return xa, torch.tensor(ts, dtype=tdtype, device=dev)

        def columns(out: Any) -> list[Any]:
            return [out[:, j] for j in range(k)] if graph.is_list else [out]

        def targets_of(ta: Any) -> Any:
            return ta.T if graph.is_list and not graph.is_softmax else ta

        Xa, Ta = tensors(X, T)
        Wa = None if W is None else torch.tensor(W, dtype=fdtype, device=dev)
        val = tensors(*validation) if validation is not None and n_val else None
        # Whose each sample of the training order is: with shares, the holder's; else every process
        # holds all and takes those whose index is its rank modulo the world size.
        here = None if positions is None else {p: i for i, p in enumerate(positions)}

        def values() -> list[float]:
            by_attr = dict(module.named_parameters())
            return [float(by_attr[a].detach()) for a in module_attrs]

        module_attrs = torch_names(graph.param_names, _reserved(torch))

        def set_values(vs: list[float]) -> None:
            with torch.no_grad():
                for a, v in zip(module_attrs, vs):
                    getattr(module, a).fill_(v)

        rng = random.Random(seed)
        order = list(range(n_train))
        hist = History() if history is None else history
        best: tuple[float, list[float]] = (math.inf, values())
        since_best = 0
        last = values()
        try:
            for epoch in range(1, epochs + 1):
                if shuffle:
                    rng.shuffle(order)
                lr = scheduler.rate(epoch)
                for group in opt.param_groups:
                    group["lr"] = lr
                total = torch.zeros((), dtype=torch.float64, device=dev)
                for start in range(0, len(order), batch_size):
                    batch = order[start : start + batch_size]
                    if here is None:
                        taken = [i for i in batch if i % world == rank]
                    else:
                        taken = [here[p] for p in batch if p in here]
                    mine = torch.tensor(taken, dtype=torch.long, device=dev)
                    out = net(Xa[mine])
                    with torch.no_grad():
                        L, grads = loss_fn(columns(out.detach()), targets_of(Ta[mine]))
                        if Wa is not None:
                            L, grads = L * Wa[mine], [g * Wa[mine] for g in grads]
                        total += L.sum()
                        # The mean over the global batch once DDP averages the processes' gradients.
                        seed_grad = (torch.stack(grads, 1) if graph.is_list else grads[0]) * (world / len(batch))
                    opt.zero_grad(set_to_none=False)
                    out.backward(seed_grad)
                    if rules.clip is not None:
                        _clip(torch, params, rules.clip)
                    opt.step()
                    if rules.l1 > 0.0 and weights:
                        _l1_step(torch, weights, lr * rules.l1)
                if world > 1:
                    dist.all_reduce(total)
                mean = float(total) / n_train
                if not (math.isfinite(mean) and all(math.isfinite(v) for v in values())):
                    raise TrainingError(
                        f"training diverged in epoch {epoch}: the loss became NaN or infinite. "
                        "Try a smaller learning rate, or normalize the inputs (training.normalize: true)."
                    )
                last = values()
                hist.learning_rates.append(lr)
                if rules.active and (l1 or l2):
                    hist.penalty.append(rules.penalty(last))
                hist.append(mean)
                v = None
                if val is not None:
                    with torch.no_grad():
                        vl, _grads = loss_fn(columns(module(val[0])), targets_of(val[1]))
                        vsum = vl.sum().to(torch.float64)
                        if here is not None:  # each process holds its part of the validation samples
                            dist.all_reduce(vsum)
                    v = float(vsum) / n_val
                    v = v if math.isfinite(v) else math.inf
                    hist.validation.append(v)
                    if v < best[0]:
                        best, since_best, hist.best_epoch = (v, last), 0, epoch
                    else:
                        since_best += 1
                scheduler.observe(mean if v is None else v)
                if callback is not None and callback(epoch, mean, v, last) is False:
                    break
                if patience is not None and val is not None and since_best >= patience:
                    hist.stopped_early = True
                    break
        except KeyboardInterrupt:
            hist.interrupted = True
        final = best[1] if patience is not None and val is not None and hist.best_epoch is not None else last
        set_values(final)
        graph.set_param_values(final)
        return hist
    finally:
        if started:
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
