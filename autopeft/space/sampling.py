"""Turn a :class:`SearchSpace` into an Optuna define-by-run function, and decode what it samples.

Optuna's parameter names (what the searcher puts in the trial config):

* ``method``: categorical over the space's methods, sorted by name;
* ``<method>.learning_rate`` and ``<method>.<param>``: suggested only when that method is
  chosen, so distributions of different methods never share a name. ``.`` is safe in Ray's
  config keys (Ray un-flattens on ``/``).

Fixed values (``{value: x}``) are not suggested: the define-by-run function returns them as
``{"<method>.<param>": x}``, which the searcher merges into the trial config. List choices
appear encoded (``"q+v"``); :func:`decode_config` turns a config back into plain values, and
takes fixed values from the space, so Optuna's ``trial.params`` alone decode too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from autopeft.errors import AutopeftError, excerpt
from autopeft.space.schema import ParamSpec, SampledConfig, SearchSpace

if TYPE_CHECKING:
    import optuna

METHOD_KEY = "method"


def param_key(method: str, param: str) -> str:
    """The Optuna/Ray name of a method's parameter: ``<method>.<param>``."""
    return f"{method}.{param}"


def _plan(space: SearchSpace) -> dict[str, list[tuple[str, ParamSpec]]]:
    """Per method, ``(key, spec)`` in a fixed order: learning rate first, then params by name.

    The order is sorted, not as written, so a space that went through a JSON store (which may
    reorder keys) samples the same sequence for the same seed.
    """
    from autopeft.methods.base import get_method

    plan = {}
    for mname in sorted(space.methods):
        ms = space.methods[mname]
        lr = ms.learning_rate
        if lr is None:  # spaces built by hand may omit it; loaded ones never do
            low, high = get_method(mname).lr_range
            lr = ParamSpec(low=float(low), high=float(high), log=True)
        items = [(param_key(mname, "learning_rate"), lr)]
        items += [(param_key(mname, p), ms.params[p]) for p in sorted(ms.params)]
        plan[mname] = items
    return plan


def _suggest(trial: optuna.Trial, key: str, spec: ParamSpec) -> Any:
    if spec.kind == "categorical":
        return trial.suggest_categorical(key, spec.optuna_choices())
    if spec.kind == "int":
        return trial.suggest_int(key, spec.low, spec.high, step=spec.step or 1, log=spec.log)
    return trial.suggest_float(key, spec.low, spec.high, step=spec.step, log=spec.log)


class DefineByRun:
    """The define-by-run function of a space, as a picklable object.

    Ray pickles the searcher, and the space function with it, with plain ``pickle``, so a
    closure would fail there; a module-level class does not.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.name = space.name
        self.plan = _plan(space)
        self.methods = list(self.plan)

    def __repr__(self) -> str:
        return f"define_by_run[{self.name}]"

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        method = trial.suggest_categorical(METHOD_KEY, self.methods)
        constants: dict[str, Any] = {}
        for key, spec in self.plan[method]:
            if spec.kind == "fixed":
                constants[key] = spec.fixed_value()
            else:
                _suggest(trial, key, spec)
        return constants


def define_by_run(space: SearchSpace) -> Callable[[optuna.Trial], dict[str, Any]]:
    """A define-by-run function for a trial from ``study.ask()``.

    The function suggests ``method``, then that method's learning rate and parameters, and
    returns the chosen method's fixed values as a dict of constants (``{}`` if none), which
    the searcher adds to the trial config.

    Args:
        space: A loaded (validated) search space.

    Returns:
        ``fn(trial) -> constants`` (a picklable :class:`DefineByRun`).
    """
    return DefineByRun(space)


def _decode_one(key: str, spec: ParamSpec, flat: Mapping[str, Any]) -> Any:
    if spec.kind == "fixed":
        value = spec.fixed_value()
        if key in flat and _plain(flat[key]) != value:
            raise AutopeftError(
                f"sampled config has {key}={excerpt(flat[key])}, but the space fixes it to "
                f"{excerpt(value)}"
            )
        return value
    if key not in flat:
        raise AutopeftError(f"sampled config lacks '{key}'")
    raw = flat[key]
    if spec.kind == "categorical":
        try:
            return spec.decode(raw)
        except AutopeftError as e:
            raise AutopeftError(f"sampled config: {key}: {e}") from None
    is_num = isinstance(raw, (int, float)) and not isinstance(raw, bool)
    if spec.kind == "int" and is_num and float(raw).is_integer():
        raw = int(raw)
    elif spec.kind == "float" and is_num:
        raw = float(raw)
    else:
        raise AutopeftError(f"sampled config: {key}={excerpt(raw)} is not a {spec.kind}")
    # Optuna's log-scale float may land a rounding error past a bound: allow a relative ulp.
    tol = 1e-12 * max(abs(spec.low), abs(spec.high))
    if not (spec.low - tol <= raw <= spec.high + tol) or not math.isfinite(raw):
        raise AutopeftError(
            f"sampled config: {key}={excerpt(raw)} is outside [{spec.low}, {spec.high}]"
        )
    return raw


def _plain(x: Any) -> Any:
    return list(x) if isinstance(x, tuple) else x


def decode_config(space: SearchSpace, flat: Mapping[str, Any]) -> SampledConfig:
    """Decode a flat trial config (Ray's, or Optuna's ``trial.params``) into plain values.

    Keys that belong to no parameter of the chosen method are ignored, so the config may carry
    other entries.

    Args:
        space: The space the config was sampled from.
        flat: ``{"method": "lora", "lora.r": 8, "lora.target_modules": "q+v", ...}``.

    Returns:
        The method, its space parameters (lists decoded, fixed values included) and the
        learning rate.

    Raises:
        AutopeftError: The method is not in the space, a parameter is missing, or a value is
            not one the space can produce.
    """
    method = flat.get(METHOD_KEY)
    if method not in space.methods:
        raise AutopeftError(
            f"sampled config: method {excerpt(method)} is not in search space {space.name} "
            f"({', '.join(sorted(space.methods))})"
        )
    items = _plan(space.restrict([method]))[method]
    (lr_key, lr_spec), rest = items[0], items[1:]
    prefix = len(method) + 1
    params = {key[prefix:]: _decode_one(key, spec, flat) for key, spec in rest}
    return SampledConfig(method, params, float(_decode_one(lr_key, lr_spec, flat)))


def _values(spec: ParamSpec) -> list[Any] | None:
    """Every value Optuna can suggest for ``spec`` (its own encoding), None when unbounded."""
    if spec.kind == "categorical":
        return list(spec.optuna_choices())
    if spec.kind == "int":
        step = 1 if spec.log else (spec.step or 1)
        return list(range(int(spec.low), int(spec.high) + 1, step))
    if spec.kind == "float" and spec.step:
        n = int(math.floor((spec.high - spec.low) / spec.step + 1e-9)) + 1
        return [spec.low + i * spec.step for i in range(n)]
    return None  # a continuous range


def count_configurations(space: SearchSpace) -> int | None:
    """How many distinct configurations the space holds; None for a continuous one."""
    total = 0
    for items in _plan(space).values():
        n = 1
        for _, spec in items:
            if spec.kind == "fixed":
                continue
            values = _values(spec)
            if values is None:
                return None
            n *= len(values)
        total += n
    return total


def configurations(space: SearchSpace) -> Iterator[dict[str, Any]]:
    """Every configuration of a finite space as Optuna params (for ``enqueue_trial``)."""
    for method, items in _plan(space).items():
        keys = [k for k, spec in items if spec.kind != "fixed"]
        choices = [_values(spec) for _, spec in items if spec.kind != "fixed"]
        if any(c is None for c in choices):
            raise AutopeftError(f"search space {space.name}: method {method} is continuous")
        for combo in itertools.product(*choices):
            yield {METHOD_KEY: method, **dict(zip(keys, combo, strict=True))}
