"""Counting tensors that share storage once: the one place that decides "same storage".

Tied weights (T5's embeddings and LM head), peft's references to wrapped modules and
parameters registered under two parents all hand out the same storage more than once.
Meta tensors have no storage: they are told apart by identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def memory_key(tensor: Any) -> tuple:
    """Where a tensor's elements live: device, address of its first element and count (a
    meta tensor has none: its own id). Views at other offsets of one storage differ."""
    if tensor.device.type == "meta":
        return ("meta", id(tensor), tensor.numel())
    return (str(tensor.device), tensor.data_ptr(), tensor.numel())


def distinct(tensors: Iterable[Any]) -> Iterator[Any]:
    """The tensors, skipping any whose elements (same place, same count) came before."""
    seen: set[tuple] = set()
    for t in tensors:
        key = memory_key(t)
        if key not in seen:
            seen.add(key)
            yield t


def tensor_bytes(tensors: Iterable[Any]) -> int:
    """Bytes of the tensors, shared storage counted once."""
    return sum(t.numel() * t.element_size() for t in distinct(tensors))
