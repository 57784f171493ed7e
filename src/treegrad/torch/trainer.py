"""Training by PyTorch (`train --engine torch`): one process, or data-parallel under `torchrun`.

The same tables as treegrad's own engines, carried out on tensors: the model is the module of
module.py; the loss table's array statements give the loss per sample and d loss / d output,
which is sent back through the module with `output.backward(grad)`, so that clamps and
reductions are treegrad's own; and each step runs the optimizer table's statements
(optim.py) and the penalties' (penalties.py) on one flat tensor of all parameters, as the
NumPy trainer does on its flat array. The loop over epochs, the order of the samples, the
schedule, validation and early stopping are fit.py's (`run_epochs`), so the per-epoch losses
agree with treegrad's engine to rounding.

Data-parallel training uses DistributedDataParallel: every process walks the same shuffled
order (fit's), and of each global mini-batch takes the samples it holds: those of its part of
the data (`shares`, run.prepare with a `parts.Part`), or without parts every index % world
size == rank. Each process scales its gradient by world size / global batch size, so DDP's
average over processes is the mean over the whole batch, as in one process. `data_parallel`
joins torchrun's process group and gives the Part.

torch is imported only when one of these functions runs, never when treegrad is imported.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..core.nodes import Graph, Node
from ..data.parts import WHOLE, Part, launched
from ..engine.fit import History, Samples, check_samples, resolve_loss, run_epochs, step_rules
from ..engine.losses import Loss, array_clamps
from ..engine.optim import OPTIMIZERS, Optimizer
from ..engine.penalties import StepRules
from ..engine.settings import Training, with_keywords
from ..errors import TrainingError
from ..outputs.torchsource import ARRAY_BINDINGS, require_torch, reserved_names, torch_names
from ..run.modelfile import Opened
from .module import torch_module

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
    "weight_column",  # before training (run.prepare), the same for every engine
    "missing",
    "text_inputs",
    "dtype",
}


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
    (run.prepare) and trains on it (`fit` with shares), as one process on all of it."""
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


def trainer(settings: Training, device: str = "cpu") -> Callable[..., History]:
    """`fit` on `device`, for run.train, once torch is found and the settings checked."""
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


def _namespace(torch: Any) -> dict[str, Any]:
    """The names the tables' array statements use, bound to torch's functions."""
    ns: dict[str, Any] = {name: eval(expr, {"torch": torch}) for name, expr in ARRAY_BINDINGS.items()}  # noqa: S307
    ns["cat"] = torch.cat
    return ns


def step_source(opt: Optimizer, rules: StepRules) -> str:
    """The source of `step(F, G, S, STEP, lr, H)`: one step on the flat tensor F of every parameter,
    the weights first (as `rules.weights` says), given their gradient G.

    As vectorized.py writes it for its flat array: the penalties' statements on the gradient (of
    the weights, Gw, and of the others, Go), the optimizer's statements once on F (in place) with
    its state S (one tensor per state variable) and step count STEP, then the penalties' steps
    on the updated weights. H is (l1, l2, clip), as the other engines take it.
    """
    weights = [i for i, w in enumerate(rules.weights) if w]
    others = [i for i, w in enumerate(rules.weights) if not w]
    nw = len(weights)
    state = [f"{s}_F" for s in opt.state]
    body = ["step = STEP[0]", *rules.unpack(), *([f"{', '.join(state)}, = S"] if state else [])]
    before = rules.code([("Fw", "Gw", weights, True), ("Fo", "Go", others, True)])
    if before:
        body += [f"Fw, Fo, Gw, Go = F[:{nw}], F[{nw}:], G[:{nw}], G[{nw}:]", *before, "G = cat((Gw, Go))"]
    update = opt.update("F", "G", state)
    assert not any(line.startswith("F = ") for line in update), "an update must change F in place"
    body += [*opt.prelude, *update]
    after = rules.after([("_qw", "Gw", weights, True)]) if weights else []
    if after:
        body += [f"_qw = F[:{nw}]", *after, f"F[:{nw}] = _qw"]
    body += [*([f"S[:] = [{', '.join(state)}]"] if state else []), "STEP[0] = step"]
    return "def step(F, G, S, STEP, lr, H):\n" + "".join(f"    {line}\n" for line in body)


@functools.cache
def _step_fn(torch: Any, opt: Optimizer, rules: StepRules) -> Callable[..., None]:
    ns = _namespace(torch)
    exec(step_source(opt, rules), ns)  # noqa: S102 - treegrad's own text
    return ns["step"]  # type: ignore[no-any-return]


class _TorchRun:
    """PyTorch's epochs of one run (`fit.Epochs`): the module (in DDP under torchrun), its
    parameters also as one flat tensor F that the step updates and copies into the module."""

    def __init__(
        self,
        torch: Any,
        device: str,
        graph: Graph,
        root: Node,
        loss: Loss,
        settings: Training,
        samples: Samples,
        shares: tuple[Sequence[int] | None, int, int] | None,
    ) -> None:
        self.torch, self.graph, self.settings = torch, graph, settings
        dev = _device(torch, device)
        alone = (None, len(samples.X), len(samples.validation[0]) if samples.validation else 0)
        positions, self.n_train, n_val = shares or alone
        self.rank, self.world = launched()
        fdtype = getattr(torch, settings.dtype)
        self.module = torch_module(Opened(root, "model"), dtype=fdtype, device=dev)
        self.net = self.module
        if self.world > 1:
            ids = [dev] if device == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        self.rules = step_rules(settings, graph)
        by_attr = dict(self.module.named_parameters())
        attrs = torch_names(graph.param_names, reserved_names(torch))
        mask = self.rules.weights
        perm = [k for k, w in enumerate(mask) if w] + [k for k, w in enumerate(mask) if not w]
        self.flat = [by_attr[attrs[k]] for k in perm]  # the module's parameters in F's order
        self.where = {k: j for j, k in enumerate(perm)}  # each graph parameter's place in F
        self.F = torch.stack([p.detach() for p in self.flat]) if self.flat else torch.zeros(0, dtype=fdtype)
        opt = OPTIMIZERS[settings.optimizer]
        self.S = [torch.zeros_like(self.F) for _ in opt.state]
        self.STEP = [0]
        self.step = _step_fn(torch, opt, self.rules)
        self.k = len(graph.elements)
        self.loss_fn = _loss_fn(loss, self.k, torch, dev, settings.dtype)
        tdtype = torch.long if graph.is_softmax else fdtype

        def tensors(rows: Sequence[Sequence[float]], ts: Sequence[Any]) -> tuple[Any, Any]:
            xa = torch.tensor(rows, dtype=fdtype, device=dev).reshape(len(rows), len(graph.input_names))
            return xa, torch.tensor(ts, dtype=tdtype, device=dev)

        self.X, self.T = tensors(samples.X, samples.T)
        self.W = None if samples.W is None else torch.tensor(samples.W, dtype=fdtype, device=dev)
        self.val = tensors(*samples.validation) if samples.validation is not None and n_val else None
        self.validating, self.n_val = self.val is not None, n_val
        # Whose each sample of the training order is: with shares, the holder's; else every process
        # holds all and takes those whose index is its rank modulo the world size.
        self.here = None if positions is None else {p: i for i, p in enumerate(positions)}
        self.dev = dev

    def columns(self, out: Any) -> list[Any]:
        """The module's output as one tensor per output element."""
        return [out[:, j] for j in range(self.k)] if self.graph.is_list else [out]

    def targets_of(self, ta: Any) -> Any:
        """Targets as the loss statements take them: a list output's, one row per element."""
        return ta.T if self.graph.is_list and not self.graph.is_softmax else ta

    def params(self) -> list[float]:
        """The parameters now, in the graph's order."""
        values = self.F.tolist()
        return [float(values[self.where[k]]) for k in range(len(self.flat))]

    def set_params(self, values: list[float]) -> None:
        """Set the module's parameters (graph order)."""
        with self.torch.no_grad():
            for k, v in enumerate(values):
                self.flat[self.where[k]].fill_(v)

    def batch(self, batch: list[int], lr: float, H: list[float]) -> Any:
        """One step over a global mini-batch (this process's samples of it); its summed loss."""
        torch = self.torch
        if self.here is None:
            taken = [i for i in batch if i % self.world == self.rank]
        else:
            taken = [self.here[p] for p in batch if p in self.here]
        mine = torch.tensor(taken, dtype=torch.long, device=self.dev)
        out = self.net(self.X[mine])
        with torch.no_grad():
            L, grads = self.loss_fn(self.columns(out.detach()), self.targets_of(self.T[mine]))
            if self.W is not None:
                L, grads = L * self.W[mine], [g * self.W[mine] for g in grads]
            # The mean over the global batch once DDP averages the processes' gradients.
            seed_grad = (torch.stack(grads, 1) if self.graph.is_list else grads[0]) * (self.world / len(batch))
        for p in self.flat:
            p.grad = None
        out.backward(seed_grad)
        with torch.no_grad():
            zero = torch.zeros((), dtype=self.F.dtype, device=self.dev)
            G = torch.stack([zero if p.grad is None else p.grad for p in self.flat]) if self.flat else self.F
            self.step(self.F, G, self.S, self.STEP, lr, H)
            for p, v in zip(self.flat, self.F):
                p.copy_(v)
        return L.sum()

    def epoch(self, epoch: int, order: list[int], lr: float) -> float:
        """One epoch over the samples in `order`; its mean loss (of every process's samples)."""
        torch, b = self.torch, self.settings.batch_size
        H = self.rules.values
        total = torch.zeros((), dtype=torch.float64, device=self.dev)
        for start in range(0, len(order), b):
            total += self.batch(order[start : start + b], lr, H)
        if self.world > 1:
            torch.distributed.all_reduce(total)
        mean = float(total) / self.n_train
        if not (math.isfinite(mean) and bool(torch.isfinite(self.F).all())):
            raise TrainingError(
                f"training diverged in epoch {epoch}: the loss became NaN or infinite. "
                "Try a smaller learning rate, or normalize the inputs (training.normalize: true)."
            )
        return mean

    def validation_loss(self, params: list[float]) -> float:
        """The mean validation loss of the module now (of every process's part); inf if not finite."""
        torch = self.torch
        assert self.val is not None
        with torch.no_grad():
            vl, _grads = self.loss_fn(self.columns(self.module(self.val[0])), self.targets_of(self.val[1]))
            vsum = vl.sum().to(torch.float64)
            if self.here is not None:  # each process holds its part of the validation samples
                torch.distributed.all_reduce(vsum)
        v = float(vsum) / self.n_val
        return v if math.isfinite(v) else math.inf


def fit(
    root: Node,
    inputs: Sequence[Sequence[float]],
    targets: Sequence[Any],
    settings: Training | None = None,
    *,
    loss: str | Loss = "mse",
    validation: tuple[Sequence[Sequence[float]], Sequence[Any]] | None = None,
    callback: Any = None,
    device: str = "cpu",
    describe_sample: Any = None,  # fit's signature; PyTorch does not say which sample a NaN came from
    sample_weight: Sequence[float] | None = None,
    history: History | None = None,
    shares: tuple[Sequence[int] | None, int, int] | None = None,
    **keywords: Any,
) -> History:
    """`engine.fit.fit`, trained by PyTorch: the same settings record (or keywords), order of
    samples and steps, so the per-epoch losses agree with treegrad's engine to rounding. Under
    torchrun (WORLD_SIZE > 1) the processes train together with DistributedDataParallel.

    A step does what penalties.py says, in its order: the data loss's gradient (each sample's
    loss and gradient times its `sample_weight`, the sum over the batch divided by the batch's
    size) is clipped to the global norm `clip_norm`, L2 adds `l2 * w` to the weights' gradient,
    the optimizer's statements update the parameters, and L1 is the proximal step after the
    update. `dtype`: the precision of the module, the data, the loss and the step (float32 as
    treegrad's NumPy trainer, clamps included).

    `shares` (data-parallel, run.prepare): (the place of each of this process's training
    samples in the training order of all processes, the training and validation samples of
    all). Without it every process holds all samples and takes every world-size-th.
    """
    settings = with_keywords(settings, keywords)
    torch = require_torch()
    graph = root.compiled_graph
    lossobj = resolve_loss(graph, loss)
    _device(torch, device)
    samples = check_samples(graph, lossobj, inputs, targets, validation, sample_weight, part=shares is not None)
    if shares is not None and not shares[1]:
        raise TrainingError("no training samples")
    hist = History() if history is None else history
    started = _start_group(torch, device)
    try:
        run = _TorchRun(torch, device, graph, root, lossobj, settings, samples, shares)
        final = run_epochs(settings, run.n_train, run, hist, callback)
        run.set_params(final)
        graph.set_param_values(final)
        return hist
    finally:
        if started:
            with contextlib.suppress(Exception):
                torch.distributed.destroy_process_group()
