"""Load search-space YAML into :class:`SearchSpace` and check it against the method registry.

Every problem is one :class:`~autopeft.errors.AutopeftError` line that names the file and the
key path, e.g. ``search space x.yaml: methods.lora.params.rank: unknown parameter for lora
(known: r, lora_alpha, ...)``. Unknown keys are errors, never ignored; so are duplicate keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopeft.errors import AutopeftError, excerpt
from autopeft.methods.base import Method, get_method
from autopeft.paths import shipped_dir
from autopeft.space.schema import MethodSpace, ParamSpec, SearchSpace, SpaceError
from autopeft.yamlio import read_yaml_file

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# The same as autopeft.methods.placement.GROUPS (a test checks); not imported, so that loading
# a space does not import the method modules.
MODULE_GROUPS = ("q", "k", "v", "o", "ffn_in", "ffn_out")
LAYER_WORDS = ("all", "upper_half", "lower_half")
_GROUP_PARAMS = ("target_modules", "feedforward_modules")
# Parameters that say where a method goes in the model: resolved against a real model only
# (the pre-flight of a search, autopeft.controller.preflight).
PLACEMENT_PARAMS = (*_GROUP_PARAMS, "layers")
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
# Per-layer masks (autopeft.methods.placement): one 0/1 per layer (or per equal group of
# layers), optionally one mask per stack of a seq2seq model ("mask:ENC/DEC").
_MASK_RE = re.compile(r"^mask:(?=[01]*1)[01]+(?:/(?=[01]*1)[01]+)?$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*$")


def spaces_dir() -> Traversable:
    """The folder of shipped spaces (``search_spaces/``; see :func:`autopeft.paths.shipped_dir`)."""
    return shipped_dir("search_spaces")


def list_spaces() -> list[str]:
    """Names of the shipped spaces (``default``, ``lora``, ``quick``, ...)."""
    folder = spaces_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _resolve(path_or_name: str | Path) -> Path | Traversable:
    path = Path(path_or_name).expanduser()
    if path.is_file():
        return path
    text = str(path_or_name)
    looks_like_path = isinstance(path_or_name, Path) or "/" in text or text.endswith(
        (".yaml", ".yml")
    )
    shipped = ", ".join(list_spaces()) or "none found in " + str(spaces_dir())
    if looks_like_path:
        raise AutopeftError(f"search space file not found: {text} (shipped spaces: {shipped})")
    candidate = spaces_dir() / f"{text}.yaml"
    if candidate.is_file():
        return candidate
    raise AutopeftError(
        f"unknown search space '{text}': not a file, and not a shipped space ({shipped})"
    )


def load_space(path_or_name: str | Path) -> SearchSpace:
    """Load and validate a space from a YAML file, or a shipped space by bare name.

    Args:
        path_or_name: A path to a YAML file, or a name such as ``default`` that resolves to
            ``search_spaces/<name>.yaml`` shipped with autopeft.

    Raises:
        AutopeftError: The file is missing, is not valid YAML, or does not describe a valid
            space (the message names the file and the key).
    """
    path = _resolve(path_or_name)
    source = str(path)
    data = read_yaml_file(path, f"search space {source}")
    if data is None:
        raise AutopeftError(f"search space {source}: file is empty")
    return _check_registry(parse_space(data, source))


def parse_space(d: Any, source: str = "<dict>") -> SearchSpace:
    """Build a :class:`SearchSpace` from its dict form, checking structure only (no registry)."""
    return SearchSpace.parse(d, source)


def space_from_dict(d: Any, source: str | None = None) -> SearchSpace:
    """Parse a space's dict form and check it against the method registry.

    ``d`` is the space-file layout, or :meth:`SearchSpace.to_dict` output: its ``source`` key
    is taken as the source unless ``source`` is given (space files may not say ``source``).
    Each method must be registered and each parameter must be one of its parameters, with
    values of the default's type; placement values (module groups, layers) must be well-formed.
    An omitted learning rate becomes the method's ``lr_range``, log-uniform.
    """
    if isinstance(d, Mapping) and "source" in d:
        d = dict(d)
        stored = str(d.pop("source"))
        source = stored if source is None else source
    return _check_registry(parse_space(d, "<dict>" if source is None else source))


def _check_registry(space: SearchSpace) -> SearchSpace:
    methods = {}
    for mname, ms in space.methods.items():
        try:
            methods[mname] = _check_method(ms)
        except SpaceError as e:
            raise SpaceError(e.detail, e.key, space.source) from None
    return replace(space, methods=methods)


def _check_method(ms: MethodSpace) -> MethodSpace:
    prefix = f"methods.{ms.name}"
    try:
        method = get_method(ms.name)
    except AutopeftError as e:
        raise SpaceError(str(e), prefix) from None
    for pname, spec in ms.params.items():
        key = f"{prefix}.params.{pname}"
        if pname not in method.params:
            known = ", ".join(method.params) or "none"
            raise SpaceError(f"unknown parameter for {method.name} (known: {known})", key)
        detail = _type_problem(method, pname, spec) or _placement_problem(pname, spec)
        if detail:
            raise SpaceError(detail, key)
    if ms.learning_rate is not None:
        return ms
    low, high = method.lr_range
    try:
        lr = ParamSpec(low=float(low), high=float(high), log=True)
    except SpaceError as e:
        raise SpaceError(f"method's lr_range {method.lr_range} is invalid: {e.detail}",
                         f"{prefix}.learning_rate") from None
    return replace(ms, learning_rate=lr)


def _type_problem(method: Method, pname: str, spec: ParamSpec) -> str | None:
    """Why ``spec`` does not fit the type of the parameter's default, or None."""
    default = method.params[pname]
    if isinstance(default, bool):
        ok, want = (lambda v: isinstance(v, bool)), "true/false"
    elif isinstance(default, int):
        ok, want = (lambda v: isinstance(v, int) and not isinstance(v, bool)), "an int"
    elif isinstance(default, float):
        ok, want = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)), "a number"
    elif isinstance(default, (str, list, tuple)):
        ok, want = (lambda v: isinstance(v, (str, list))), "a string or a list"
    else:
        return None  # a None (or exotic) default says nothing about the type
    if spec.kind in ("int", "float"):
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            return f"a range needs a numeric parameter; use value or choices ({want})"
        if isinstance(default, int) and spec.kind == "float":
            return f"expects an int (default {excerpt(default)}); use int bounds and step"
        if isinstance(default, float) and spec.kind == "int":
            return f"expects a float (default {excerpt(default)}); write bounds as floats, e.g. 0.0"
        return None
    for v in spec.values:
        if not ok(v):
            return f"expects {want} (default {excerpt(default)}), got {excerpt(v)}"
    return None


def _placement_problem(pname: str, spec: ParamSpec) -> str | None:
    """Why a module-group or layer value is malformed, or None (other parameters pass).

    Mirrors what :mod:`autopeft.methods.placement` accepts, minus model-dependent checks:
    a group or raw module name inside a layer (``query``, ``DenseReluDense.wi``), or a list of
    them; ``feedforward_modules`` may be an empty list (IA3 then scales outputs only).
    """
    if pname in _GROUP_PARAMS:
        for v in spec.values:
            names = [v] if isinstance(v, str) else v
            if not isinstance(names, list) or (not names and pname == "target_modules"):
                return f"expects a non-empty list of module groups ({', '.join(MODULE_GROUPS)})"
            bad = [g for g in names if not isinstance(g, str) or not _MODULE_RE.match(g)]
            if bad:
                return (
                    f"bad module group {excerpt(bad[0])}: use {', '.join(MODULE_GROUPS)} or a "
                    f"module name inside a layer"
                )
            if len(set(names)) != len(names):
                return f"module group listed twice in {excerpt(v)}"
    elif pname == "layers":
        for v in spec.values:
            detail = _layers_problem(v)
            if detail:
                return detail
    return None


def _layers_problem(v: Any) -> str | None:
    if isinstance(v, str):
        m = _RANGE_RE.match(v)
        if v in LAYER_WORDS or (m and int(m.group(1)) <= int(m.group(2))) or _MASK_RE.match(v):
            return None
    elif isinstance(v, list) and v:
        if all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v):
            return None
    return (
        f"bad layers {excerpt(v)}: use {', '.join(LAYER_WORDS)}, 'A-B' (0-based, A <= B), a "
        f"non-empty list of layer indices or 'mask:BITS' (0/1 per layer, at least one 1)"
    )
