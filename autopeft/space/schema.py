"""Search-space dataclasses: what a space file may say, checked in ``__post_init__``.

A :class:`SearchSpace` maps method names to a :class:`MethodSpace`; each hyper-parameter (and
the learning rate) is a :class:`ParamSpec` of one of four kinds:

* ``{value: x}``: fixed, never suggested;
* ``{choices: [...]}``: categorical; an item is a scalar or a flat list of scalars;
* ``{low: a, high: b, log?, step?}``: an int range when ``a``, ``b`` (and ``step``) are ints,
  otherwise a float range.

Optuna's categorical choices must be None, bool, int, float or str, so a list choice is encoded
as its items joined by ``+`` (``[q, v]`` → ``"q+v"``, ``[]`` → ``""``) and decoded back by
:meth:`ParamSpec.decode`.

Registry checks (does the method exist, does it have that parameter) live in
:mod:`autopeft.space.loader`; these classes check only what a space says on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from autopeft.errors import AutopeftError, excerpt

TOP_KEYS = ("name", "description", "methods")

_SCALARS = (type(None), bool, int, float, str)
SPEC_KEYS = ("value", "choices", "low", "high", "log", "step")
METHOD_KEYS = ("learning_rate", "params")


class SpaceError(AutopeftError):
    """A search space is invalid at ``key`` (a dotted path such as ``methods.lora.params.r``)."""

    def __init__(self, detail: str, key: str = "", source: str = "") -> None:
        self.detail, self.key, self.source = detail, key, source
        key = excerpt(key, 120, quote=False)  # key paths are made of the user's keys
        where = f"search space {source}" if source else "search space"
        super().__init__(f"{where}: {key}: {detail}" if key else f"{where}: {detail}")

    def under(self, prefix: str) -> SpaceError:
        """The same error with ``prefix`` prepended to its key path."""
        return SpaceError(self.detail, f"{prefix}.{self.key}" if self.key else prefix, self.source)


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _freeze(x: Any, what: str) -> Any:
    """A scalar, or a flat list of scalars as a tuple; anything else is an error."""
    if isinstance(x, (list, tuple)):
        bad = [i for i in x if not isinstance(i, _SCALARS)]
        if bad:
            raise SpaceError(f"{what}: list items must be scalars, got {excerpt(bad[0])}")
        return tuple(x)
    if not isinstance(x, _SCALARS):
        raise SpaceError(f"{what}: expected a scalar or a list of scalars, got {excerpt(x)}")
    return x


def _thaw(x: Any) -> Any:
    return list(x) if isinstance(x, tuple) else x


def encode_choice(choice: Any) -> Any:
    """The Optuna categorical value of a choice: lists become ``"a+b"`` strings."""
    return "+".join(str(i) for i in choice) if isinstance(choice, (list, tuple)) else choice


def _choice_key(encoded: Any) -> tuple[str, Any]:
    # 1 == 1.0 == True in Python; keep bools apart from numbers, numbers together.
    kind = "bool" if isinstance(encoded, bool) else "num" if _is_number(encoded) else "other"
    return kind, encoded


@dataclass(frozen=True)
class ParamSpec:
    """One hyper-parameter: fixed ``value``, categorical ``choices`` or a ``low``/``high`` range.

    Attributes:
        value: The fixed value (lists are stored as tuples); unset unless fixed.
        choices: Categorical choices (list choices stored as tuples); None unless categorical.
        low: Range lower bound (inclusive); None unless a range.
        high: Range upper bound (inclusive); None unless a range.
        log: Sample the range log-uniformly (needs ``low > 0``).
        step: Range step (Optuna's ``step``); cannot be combined with ``log``.
    """

    value: Any = _UNSET
    choices: tuple | None = None
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None

    def __post_init__(self) -> None:
        given = [k for k, on in (("value", self.value is not _UNSET),
                                 ("choices", self.choices is not None),
                                 ("low/high", self.low is not None or self.high is not None))
                 if on]
        if not given:
            raise SpaceError("expected {value: x}, {choices: [...]} or {low: a, high: b}")
        if len(given) > 1:
            raise SpaceError(f"give only one of value, choices or low/high (got {given})")
        if given[0] != "low/high" and (self.log or self.step is not None):
            raise SpaceError("log and step apply only to low/high ranges")
        if self.value is not _UNSET:
            object.__setattr__(self, "value", _freeze(self.value, "value"))
        elif self.choices is not None:
            self._check_choices()
        else:
            self._check_range()

    def _check_choices(self) -> None:
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Iterable):
            raise SpaceError(f"choices must be a list, got {excerpt(self.choices)}")
        frozen = tuple(_freeze(c, "choices") for c in self.choices)
        if not frozen:
            raise SpaceError("choices is empty")
        seen: dict[tuple[str, Any], Any] = {}
        for c in frozen:
            key = _choice_key(encode_choice(c))
            if key in seen:
                raise SpaceError(
                    f"choices {excerpt(_thaw(seen[key]))} and {excerpt(_thaw(c))} are the "
                    f"same Optuna "
                    f"value {excerpt(encode_choice(c))}; remove one"
                )
            seen[key] = c
        object.__setattr__(self, "choices", frozen)

    def _check_range(self) -> None:
        for name in ("low", "high"):
            x = getattr(self, name)
            if x is None:
                raise SpaceError(f"{name} is missing (a range needs both low and high)")
            if not _is_number(x) or not math.isfinite(x):
                raise SpaceError(f"{name} must be a finite number, got {excerpt(x)}")
        if not isinstance(self.log, bool):
            raise SpaceError(f"log must be true or false, got {excerpt(self.log)}")
        if self.step is not None and (not _is_number(self.step) or not self.step > 0):
            raise SpaceError(f"step must be a number > 0, got {excerpt(self.step)}")
        if not self.low < self.high:
            raise SpaceError(f"low must be < high (got low={self.low}, high={self.high})")
        if self.log and not self.low > 0:
            raise SpaceError(f"log range needs low > 0 (got low={self.low})")
        if self.log and self.step is not None:
            raise SpaceError("log and step cannot be combined (Optuna does not support it)")

    @property
    def kind(self) -> str:
        """``fixed``, ``categorical``, ``int`` or ``float``."""
        if self.value is not _UNSET:
            return "fixed"
        if self.choices is not None:
            return "categorical"
        ints = all(isinstance(x, int) for x in (self.low, self.high))
        return "int" if ints and (self.step is None or isinstance(self.step, int)) else "float"

    @property
    def values(self) -> list[Any]:
        """Every value a fixed or categorical spec can take (lists as lists); [] for ranges."""
        if self.kind == "fixed":
            return [_thaw(self.value)]
        return [_thaw(c) for c in self.choices or ()]

    def fixed_value(self) -> Any:
        """The fixed value, a fresh list if it is a list."""
        return _thaw(self.value)

    def optuna_choices(self) -> list[Any]:
        """The categorical choices as Optuna values (lists encoded as ``"a+b"``)."""
        return [encode_choice(c) for c in self.choices or ()]

    def decode(self, encoded: Any) -> Any:
        """The choice whose Optuna value is ``encoded``; not one of the choices is an error."""
        for c in self.choices or ():
            if _choice_key(encode_choice(c)) == _choice_key(encoded):
                return _thaw(c)
        raise AutopeftError(f"{excerpt(encoded)} is not one of the choices "
                            f"{excerpt(self.optuna_choices())}")

    def to_dict(self) -> dict[str, Any]:
        """The spec as it is written in a space file (JSON-able)."""
        if self.kind == "fixed":
            return {"value": _thaw(self.value)}
        if self.kind == "categorical":
            return {"choices": self.values}
        out: dict[str, Any] = {"low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out

    @classmethod
    def from_dict(cls, d: Any) -> ParamSpec:
        """Parse ``{value: ...}``, ``{choices: ...}`` or ``{low, high, log?, step?}`` strictly."""
        if not isinstance(d, Mapping):
            raise SpaceError(
                f"expected a mapping such as {{value: x}}, {{choices: [...]}} or "
                f"{{low: a, high: b}}, got {excerpt(d)}"
            )
        for k in d:
            if k not in SPEC_KEYS:
                raise SpaceError(f"unknown key (known: {', '.join(SPEC_KEYS)})", str(k))
        return cls(**dict(d))


@dataclass(frozen=True)
class MethodSpace:
    """The search space of one method.

    Attributes:
        name: Registry name of the method.
        learning_rate: Learning-rate spec; None means the method's ``lr_range``, log-uniform
            (the loader fills it in, so loaded spaces always state it).
        params: Method hyper-parameter specs by peft-style name; unlisted parameters keep the
            method's defaults.
    """

    name: str
    learning_rate: ParamSpec | None = None
    params: dict[str, ParamSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpaceError(f"method name must be a non-empty string, got {excerpt(self.name)}")
        lr = self.learning_rate
        if lr is not None:
            if lr.kind == "int":
                raise SpaceError("range bounds must be floats (write 1.0e-4, not 1)",
                                 "learning_rate")
            bad = [v for v in lr.values if not _is_number(v) or not v > 0]
            if bad or (lr.kind == "float" and not lr.low > 0):
                raise SpaceError("learning rates must be numbers > 0", "learning_rate")
        for pname in self.params:
            if pname == "learning_rate":
                raise SpaceError("learning_rate is set beside params, not inside them",
                                 "params.learning_rate")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.learning_rate is not None:
            out["learning_rate"] = self.learning_rate.to_dict()
        out["params"] = {k: v.to_dict() for k, v in self.params.items()}
        return out

    @classmethod
    def from_dict(cls, name: str, d: Any) -> MethodSpace:
        """Parse ``{learning_rate?: spec, params?: {name: spec}}``; None means ``{}``."""
        d = {} if d is None else d
        if not isinstance(d, Mapping):
            raise SpaceError(f"expected a mapping with learning_rate and params, got {excerpt(d)}")
        for k in d:
            if k not in METHOD_KEYS:
                raise SpaceError(f"unknown key (known: {', '.join(METHOD_KEYS)})", str(k))
        lr = d.get("learning_rate")
        try:
            lr = None if lr is None else ParamSpec.from_dict(lr)
        except SpaceError as e:
            raise e.under("learning_rate") from None
        raw = d.get("params") or {}
        if not isinstance(raw, Mapping):
            raise SpaceError(f"expected a mapping of parameter specs, got {excerpt(raw)}", "params")
        params = {}
        for pname, spec in raw.items():
            try:
                params[str(pname)] = ParamSpec.from_dict(spec)
            except SpaceError as e:
                raise e.under(f"params.{pname}") from None
        return cls(name, lr, params)


@dataclass(frozen=True)
class SearchSpace:
    """A named search space: a method choice, and per method its own hyper-parameters.

    Attributes:
        name: Short name (``default``, ``lora``, ``quick``, ...).
        description: One line for listings.
        methods: Method spaces by method name (at least one).
        source: Where the space came from (a file path, or ``<dict>``).
    """

    name: str
    description: str
    methods: dict[str, MethodSpace]
    source: str = "<dict>"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= 100:
            raise SpaceError("must be a non-empty string of at most 100 characters, got "
                             f"{excerpt(self.name)}", "name")
        if not isinstance(self.description, str):
            raise SpaceError(f"must be a string, got {excerpt(self.description)}", "description")
        if not self.methods:
            raise SpaceError("no methods; list at least one", "methods")
        for key, ms in self.methods.items():
            if not isinstance(ms, MethodSpace) or ms.name != key:
                raise SpaceError(f"entry does not describe method {excerpt(key)}", f"methods.{key}")

    def restrict(self, methods: Iterable[str]) -> SearchSpace:
        """The space with only the given methods (in this space's order); none left is an error.

        Names that are not in the space are ignored, so callers may pass every applicable method.
        """
        wanted = set(methods)
        keep = {k: v for k, v in self.methods.items() if k in wanted}
        if not keep:
            raise AutopeftError(
                f"search space {self.name}: none of its methods ({', '.join(self.methods)}) "
                f"is left; allowed: {', '.join(sorted(wanted)) or 'none'}"
            )
        return replace(self, methods=keep)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the space-file layout plus ``source``); :meth:`from_dict` inverts it."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchSpace:
        """Rebuild a space from :meth:`to_dict` output, checked structurally (no registry).

        Use :func:`autopeft.space.space_from_dict` to also check it against the registry.
        """
        d = dict(d)
        source = d.pop("source", "<dict>")
        return cls.parse(d, str(source))

    @classmethod
    def parse(cls, d: Any, source: str = "<dict>") -> SearchSpace:
        """A space from its file layout, checking structure only (no registry)."""
        try:
            if not isinstance(d, Mapping):
                raise SpaceError(f"expected a mapping with keys {', '.join(TOP_KEYS)}, "
                                 f"got {excerpt(d)}")
            for k in d:
                if k not in TOP_KEYS:
                    raise SpaceError(f"unknown top-level key (known: {', '.join(TOP_KEYS)})",
                                     str(k))
            if "name" not in d:
                raise SpaceError("missing", "name")
            methods = d.get("methods")
            if not methods:
                raise SpaceError("no methods; list at least one", "methods")
            if not isinstance(methods, Mapping):
                raise SpaceError("expected a mapping of method name to space, "
                                 f"got {excerpt(methods)}",
                                 "methods")
            parsed = {}
            for mname, body in methods.items():
                try:
                    parsed[str(mname)] = MethodSpace.from_dict(str(mname), body)
                except SpaceError as e:
                    raise e.under(f"methods.{mname}") from None
            return cls(d["name"], d.get("description") or "", parsed, source)
        except SpaceError as e:
            raise SpaceError(e.detail, e.key, source) from None


@dataclass(frozen=True)
class SampledConfig:
    """One sampled configuration, decoded.

    Attributes:
        method: Registry name of the method.
        params: The space's parameters for that method with plain values (lists as lists),
            fixed ones included; parameters the space does not mention are not here.
        learning_rate: The learning rate.
    """

    method: str
    params: dict[str, Any]
    learning_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": dict(self.params),
                "learning_rate": self.learning_rate}
