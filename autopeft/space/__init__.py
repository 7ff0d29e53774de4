"""Search spaces as data: YAML files loaded into dataclasses and sampled by Optuna.

``load_space("default")`` (or a path) gives a validated :class:`SearchSpace`;
``define_by_run(space)`` is the function the searcher samples with; ``decode_config``
turns a sampled trial config back into a :class:`SampledConfig`. Optuna is not imported here.
"""

from __future__ import annotations

from autopeft.space.loader import list_spaces, load_space, space_from_dict, spaces_dir
from autopeft.space.sampling import (
    configurations,
    count_configurations,
    decode_config,
    define_by_run,
    param_key,
)
from autopeft.space.schema import MethodSpace, ParamSpec, SampledConfig, SearchSpace, SpaceError

__all__ = [
    "MethodSpace",
    "ParamSpec",
    "SampledConfig",
    "SearchSpace",
    "SpaceError",
    "configurations",
    "count_configurations",
    "decode_config",
    "define_by_run",
    "list_spaces",
    "load_space",
    "param_key",
    "space_from_dict",
    "spaces_dir",
]
