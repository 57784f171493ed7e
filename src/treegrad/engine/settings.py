"""The training settings: one validated record, a spec's `training:` block, that both trainers take.

`Training` is what a spec's `training:` holds, what `--set training.KEY=VALUE` and the train
options change, what a model file records, and what `fit` and the torch trainer read. Each
setting, its default, its bounds and its description are stated here once: `fit`'s keywords
are its keys (`with_keywords`), and their messages are read from its fields. The learning-rate
schedules' own models sit beside their formulas (schedules.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..errors import SpecError, TrainingError, describe, did_you_mean, escaped
from ..limits import MAX_EPOCHS
from .optim import OPTIMIZERS
from .schedules import SCHEDULES, LrSchedule
from .vectorized import Dtype

if TYPE_CHECKING:
    OptimizerName = str
else:
    OptimizerName = Literal[tuple(OPTIMIZERS)]


def custom_error(text: str, *at: str | int, on_key: bool = False) -> PydanticCustomError:
    """A validation error with our own message; `at` is its path below the validated value,
    `on_key` points at that path's key rather than its value."""
    # The text goes in through the context, so braces in it are not read as placeholders.
    return PydanticCustomError("spec", "{message}", {"message": text, "at": at, "on_key": on_key})


class Strict(BaseModel):
    """Base of every spec model: unknown keys, NaN/inf and type coercions are all refused."""

    # Built on first use, not at import (defer_build): built eagerly, the recursive expression
    # models rebuilt each other's schemas, a large part of every command's start-up.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # Checked here rather than by extra='forbid' so the message can suggest the right key.
        if isinstance(data, dict):
            allowed = list(cls.model_fields)
            for key in data:
                if key not in allowed:
                    raise custom_error(
                        f"unknown key '{key}'{did_you_mean(str(key), allowed)} Keys allowed here: {', '.join(allowed)}",
                        key,
                        on_key=True,
                    )
        return data


class EarlyStopping(Strict):
    """Stop when the validation loss has not improved for `patience` epochs (keeping the best)."""

    patience: Annotated[int, Field(ge=1)]


class Training(Strict):
    """How to train; every key has a default."""

    epochs: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 100
    """Passes over the training data."""
    learning_rate: Annotated[float, Field(gt=0)] = 0.01
    """Step size of the optimizer."""
    batch_size: Annotated[int, Field(ge=1)] = 1
    """Samples per step: 1 for per-sample SGD, more for mean-gradient mini-batches."""
    optimizer: OptimizerName = "sgd"
    """The update rule."""
    seed: int = 0
    """Seeds the initial weights, the shuffling and the validation split."""
    shuffle: bool = True
    """Shuffle the samples every epoch."""
    validation_split: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Fraction of the rows held out to measure the model on data it did not train on."""
    early_stopping: EarlyStopping | None = None
    """Stop when the validation loss stops improving (needs validation_split)."""
    normalize: bool = False
    """Standardise each input with the training rows' mean and deviation (built into the graph)."""
    l2: Annotated[float, Field(ge=0)] = 0.0
    """Weight decay: adds l2/2 * sum(w^2) over the weights (factors of products; biases are not penalised)."""
    l1: Annotated[float, Field(ge=0)] = 0.0
    """Adds l1 * sum(|w|) over the weights: weights the data does not need end at exactly 0."""
    clip_norm: Annotated[float, Field(gt=0)] | None = None
    """Scale each step's gradient down to this global norm when it is longer (before the penalties)."""
    lr_schedule: LrSchedule | None = None
    """The learning rate per epoch: {type: step|exponential|cosine|plateau, ...}; none keeps it fixed."""
    class_weight: Literal["balanced"] | dict[str, Annotated[float, Field(ge=0)]] | None = None
    """For classifiers: how much each class counts, {label: weight}, or balanced (n / (classes * count))."""
    weight_column: str | None = None
    """A CSV column of per-row weights (>= 0), multiplied with the class weight."""
    missing: Literal["error", "drop", "fill"] = "error"
    """A missing cell in a column the model reads: error (say where), drop its row, or fill it (mean, most frequent)."""
    text_inputs: Literal["error", "one_hot"] = "error"
    """Input columns holding text: error, or one_hot (one 0/1 input per value, recorded in the model file)."""
    dtype: Dtype = "float64"
    """Training arithmetic: float64 (the reference), or float32 on the NumPy trainer (models with dense layers)."""

    @field_validator("lr_schedule", mode="before")
    @classmethod
    def _schedule_type(cls, v: Any) -> Any:
        # Checked here so that an unknown type or key gets a did-you-mean, not a union's error.
        if not isinstance(v, dict):
            return v
        kind = v.get("type")
        if not isinstance(kind, str) or kind not in SCHEDULES:
            if kind is None:
                found = "the schedule has no type"
            elif isinstance(kind, str):
                found = f"unknown schedule type '{escaped(kind)}'"
            else:
                found = f"the schedule type is {describe(kind)}"
            mean = did_you_mean(kind, list(SCHEDULES)) if isinstance(kind, str) else "."
            raise custom_error(
                f"{found}{mean} A schedule is {{type: {'|'.join(SCHEDULES)}, ...}}",
                *(("type",) if kind is not None else ()),
            )
        allowed = list(SCHEDULES[kind].model_fields)
        for key in v:
            if key not in allowed:
                raise custom_error(
                    f"unknown key '{key}' for a {kind} schedule{did_you_mean(str(key), allowed)} "
                    f"Keys allowed here: {', '.join(allowed)}",
                    key,
                    on_key=True,
                )
        return v


# fit's own defaults where they differ from a spec's `training:`: the library keeps the samples
# in the order given unless asked to shuffle.
FIT_DEFAULTS: dict[str, Any] = {"shuffle": False}


def with_keywords(settings: Training | None, keywords: dict[str, Any]) -> Training:
    """The record `settings` (None: fit's defaults) with `keywords` set, such as epochs=3, validated.

    `patience=N` is early_stopping={patience: N} (None: no early stopping). A bad value or an
    unknown key is a TrainingError that names it and says what it may be.
    """
    if not keywords and settings is not None:
        return settings
    given = dict(keywords)
    if "patience" in given:
        patience = given.pop("patience")
        given["early_stopping"] = None if patience is None else {"patience": patience}
    base = FIT_DEFAULTS if settings is None else settings.model_dump()
    try:
        return Training.model_validate({**base, **given})
    except ValidationError as e:
        first: dict[str, Any] = {}  # one error per key: a union's value fails each of its kinds
        for err in e.errors():
            first.setdefault(str(err["loc"][:1]), err)
        raise TrainingError("; ".join(_problem(err) for err in first.values())) from None


def with_options(settings: Training, options: dict[str, Any]) -> Training:
    """`settings` with command-line options set (`{"epochs": 50}` from --epochs), validated: a bad
    value is a SpecError named by its option, the same for every command that takes it."""
    try:
        return Training.model_validate({**settings.model_dump(), **options})
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        raise SpecError(f"--{key.replace('_', '-')}: {err['msg']} (got {err.get('input')!r})") from None


def _problem(err: Any) -> str:
    """One validation error of the record, as a sentence for a keyword of fit."""
    loc = [str(k) for k in err["loc"]]
    got = err.get("input")
    if err["type"] == "spec":  # our own message (an unknown key, a schedule's type)
        ctx = err["ctx"]
        at = [*loc, *(str(k) for k in ctx["at"])]
        return ctx["message"] if ctx["on_key"] or not at else f"{'.'.join(at)}: {ctx['message']}"
    field = Training.model_fields.get(loc[0]) if len(loc) == 1 else None
    if field is None:
        return f"{'.'.join(loc)}: {err['msg']}, got {got!r}"
    base, bounds = _kind(field.annotation, list(field.metadata))
    if get_origin(base) is Literal:
        choices = [str(c) for c in get_args(base)]
        use = " or ".join(choices) if len(choices) == 2 else f"one of {', '.join(choices)}"
        return f"unknown {loc[0]} '{got}'; use {use}"
    what = {int: "a whole number", float: "a number", bool: "true or false", str: "a text"}.get(base)
    if what is None:
        return f"{loc[0]}: {err['msg']}, got {got!r}"
    if any(getattr(b, "gt", None) == 0 for b in bounds):
        what = what.replace("a ", "a positive ", 1)
    limits = [
        f"{sign} {getattr(b, key)}"
        for b in bounds
        for key, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
        if getattr(b, key, None) is not None and not (key == "gt" and getattr(b, key) == 0)
    ]
    return f"{loc[0]} must be {what}{' ' + ' and '.join(limits) if limits else ''}, got {got!r}"


def _kind(annotation: Any, bounds: list[Any]) -> tuple[Any, list[Any]]:
    """A field's type without None and Annotated, and the bounds (annotated_types) found on the way."""
    while True:
        args = get_args(annotation)
        if get_origin(annotation) is Annotated:
            annotation = args[0]
            for extra in args[1:]:
                bounds += getattr(extra, "metadata", [extra])
        elif type(None) in args and get_origin(annotation) is not Literal:
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return annotation, bounds
            annotation = rest[0]
        else:
            return annotation, bounds
