"""Tensor-memory accounting of a traced training step: live bytes per category and the peak.

:class:`AllocationTracker` is a ``TorchDispatchMode``: every tensor an operator returns is
looked up by its storage, and a storage seen for the first time adds its bytes to the live
total, under the category of the phase that created it; a weak-reference callback takes them
off when the storage is freed. This is the same bookkeeping as torch's
``torch.distributed._tools.mem_tracker.MemTracker`` (and what ``max_memory_allocated`` sees:
bytes of live tensor storages), without its per-module statistics: MemTracker walks every
tracked module on every operator to keep per-module peaks, needs no-op grad-hook handles for
frozen parameters and is a private API. A plain peak with a category breakdown is all we
need.

Categories (the keys of :attr:`AllocationTracker.live` and of the peak snapshot):

* ``weights``: frozen parameters and buffers, registered with :meth:`track_model`;
* ``trainable_params``: parameters with ``requires_grad``;
* ``grads``: parameter gradients (re-labelled by a post-accumulate-grad hook);
* ``optimizer_state``: tensors held in ``optimizer.state`` after a step;
* ``activations``: tensors created in the forward phase (the batch included);
* ``temporaries``: tensors created in backward or in the optimizer step that are neither
  gradients nor optimizer state (gradients of activations, AdamW's intermediates).

Works on real and on fake tensors (``FakeTensorMode``): only storage sizes are read.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

CATEGORIES = (
    "weights",
    "trainable_params",
    "grads",
    "optimizer_state",
    "activations",
    "temporaries",
)
_LOCAL_SCALAR = torch.ops.aten._local_scalar_dense.default
_PHASE_CATEGORY = {"forward": "activations", "backward": "temporaries", "optimizer": "temporaries"}


def _is_fake(t: Any) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor)


class _Record:
    """One tracked storage: its size and current category (mutable, for re-labelling)."""

    __slots__ = ("nbytes", "category", "ref")

    def __init__(self, nbytes: int, category: str) -> None:
        self.nbytes = nbytes
        self.category = category
        self.ref: weakref.ref | None = None


class AllocationTracker(TorchDispatchMode):
    """Live tensor bytes by category, and the peak with its breakdown.

    Args:
        granularity: Allocation rounding in bytes: 512 models the CUDA caching allocator
            (``max_memory_allocated`` counts whole 512-byte blocks), 1 counts exact bytes
            as the CPU allocator does.
        assume_scalars: When code reads a value out of a fake tensor (``bool(t)``,
            ``t.item()``), answer True / 1 instead of failing: see ``__torch_dispatch__``.

    Attributes:
        live: Bytes currently alive per category.
        peak_bytes: Highest total seen so far.
        peak_breakdown: ``live`` at the (last) moment the peak was reached.
        peak_where: ``(step, phase)`` at that moment.
        phase: ``forward`` / ``backward`` / ``optimizer``: decides the category of new
            storages; set by the caller around each part of a step.
        step: The caller's step counter, reported in :attr:`peak_where`.
    """

    def __init__(self, granularity: int = 1, *, assume_scalars: bool = False) -> None:
        super().__init__()
        self.granularity = max(1, int(granularity))
        self.assume_scalars = assume_scalars
        self.live: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        self.total = 0
        self.peak_bytes = 0
        self.peak_breakdown: dict[str, int] = dict(self.live)
        self.peak_where: tuple[int, str] = (0, "setup")
        self.phase = "forward"
        self.step = 0
        self.max_grads = 0
        # Keyed by id(storage): a storage object stays alive while its record does, and the
        # weakref callback removes the record before the id can be reused.
        self._records: dict[int, _Record] = {}
        self._hooks: list[Any] = []

    # -- bookkeeping ------------------------------------------------------------------
    def _size(self, storage: Any) -> int:
        nbytes = int(storage.nbytes())
        if self.granularity > 1 and nbytes:
            nbytes = math.ceil(nbytes / self.granularity) * self.granularity
        return nbytes

    def _free(self, key: int, _ref: Any = None) -> None:
        rec = self._records.pop(key, None)
        if rec is not None:
            self.live[rec.category] -= rec.nbytes
            self.total -= rec.nbytes

    def add(self, tensor: Any, category: str | None = None) -> None:
        """Track ``tensor``'s storage (once); a known storage keeps its category."""
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._records:
            return
        rec = _Record(self._size(storage), category or _PHASE_CATEGORY[self.phase])
        rec.ref = weakref.ref(storage, lambda ref, key=key: self._free(key, ref))
        self._records[key] = rec
        self.live[rec.category] += rec.nbytes
        self.total += rec.nbytes
        # ">=": the breakdown is taken at the last moment the peak is reached, so a tie
        # between steps reports step 2, where optimizer state is already labelled as such.
        if self.total >= self.peak_bytes:
            self.peak_bytes = self.total
            self.peak_breakdown = dict(self.live)
            self.peak_where = (self.step, self.phase)

    def relabel(self, tensor: Any, category: str) -> None:
        """Move ``tensor``'s storage to ``category`` (tracking it first if new)."""
        self.add(tensor, category)
        rec = self._records[id(tensor.untyped_storage())]
        if rec.category != category:
            self.live[rec.category] -= rec.nbytes
            self.live[category] += rec.nbytes
            rec.category = category
        if category == "grads":
            self.max_grads = max(self.max_grads, self.live["grads"])

    # -- wiring -----------------------------------------------------------------------
    def track_model(self, model: Any) -> None:
        """Register parameters and buffers, and relabel gradients as they accumulate."""
        for param in model.parameters():
            if param.requires_grad:
                self.add(param, "trainable_params")
                self._hooks.append(param.register_post_accumulate_grad_hook(
                    lambda p: self.relabel(p.grad, "grads")
                ))
            else:
                self.add(param, "weights")
        for buf in model.buffers():
            self.add(buf, "weights")

    def track_optimizer_state(self, optimizer: Any) -> None:
        """Label what ``optimizer.state`` holds (call after each ``optimizer.step()``)."""
        for state in optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    self.relabel(value, "optimizer_state")

    def state_bytes(self, tensors: Iterable[Any]) -> int:
        """Bytes of the distinct storages of ``tensors`` (tracked or not)."""
        seen: dict[int, int] = {}
        for t in tensors:
            st = t.untyped_storage()
            seen[id(st)] = self._size(st)
        return sum(seen.values())

    def remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if self.assume_scalars and func is _LOCAL_SCALAR and _is_fake(args[0]):
            # A fake tensor has no value to read: a random keep/drop decision such as
            # LoKr's ``torch.rand(1) > module_dropout`` gets True (the module runs, the
            # costlier branch), numbers get 1 (safe to divide by).
            return True if args[0].dtype == torch.bool else 1
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.add(t)
        return out
