"""Pareto fronts and hypervolumes: pure numpy functions of (values, directions).

``values`` is an ``(n, k)`` array, one row per trial and one column per objective;
``directions`` names each column ``"maximize"``/``"minimize"`` (``"max"``/``"min"`` too).
Internally everything is turned into minimisation by negating maximised columns.

A point dominates another when it is at least as good in every objective and strictly
better in one. Identical points do not dominate each other, so duplicates on the front are
all kept. Rows containing NaN are never on the front and never dominate anything.
"""

from __future__ import annotations

import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

# The one direction table: values times sign are minimised (-1 flips a maximised column).
_SIGN = {"maximize": -1.0, "max": -1.0, "minimize": 1.0, "min": 1.0}
_BLOCK = 512  # rows compared at once by the k >= 4 front: (front + block) x block x k
_SAMPLE = 1024  # points whose front gives the first pivots of a front within noise


def direction_sign(direction: str) -> float:
    """-1.0 for ``maximize``/``max``, 1.0 for ``minimize``/``min``; ValueError otherwise."""
    try:
        return _SIGN[direction.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"direction must be maximize or minimize, got {direction!r}") from None


def canonical_direction(direction: str) -> str:
    """``maximize`` or ``minimize`` for any spelling :func:`direction_sign` accepts."""
    return "maximize" if direction_sign(direction) < 0 else "minimize"


def _signs(directions: Sequence[str], k: int) -> np.ndarray:
    if isinstance(directions, str) or len(directions) != k:
        raise ValueError(f"need {k} directions, got {directions!r}")
    try:
        return np.array([_SIGN[d.lower()] for d in directions])
    except (KeyError, AttributeError):
        raise ValueError(f"directions must be maximize/minimize, got {directions!r}") from None


def _as_minimization(values: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, len(directions))
    if arr.ndim != 2:
        raise ValueError(f"values must be an (n, k) array, got shape {arr.shape}")
    # "+ 0.0" turns the -0.0 produced by negation into 0.0, so equal points stay equal.
    return arr * _signs(directions, arr.shape[1]) + 0.0


def pareto_mask(values: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values``.

    Runs in O(n log n) for k <= 3 (a sort, plus a staircase sweep for k = 3) and by
    blocks against the current front for k >= 4 (fast when the front is small compared with
    n, O(n^2 k) at worst). 100,000 points in 2 or 3 objectives take well under a second.

    Args:
        values: ``(n, k)`` objective values.
        directions: ``k`` directions, ``"maximize"`` or ``"minimize"``.

    Returns:
        ``(n,)`` bool array, True for rows on the Pareto front.
    """
    arr = _as_minimization(values, directions)
    n, k = arr.shape
    mask = np.zeros(n, dtype=bool)
    finite = ~np.isnan(arr).any(axis=1)
    if n == 0 or not finite.any() or k == 0:
        return mask
    idx = np.flatnonzero(finite)
    pts = arr[idx]
    if k == 1:
        mask[idx] = pts[:, 0] == pts[:, 0].min()
        return mask
    if k == 2:
        mask[idx] = _front_2d(pts)
        return mask
    # Deduplicate: identical rows share one verdict, and distinct points make "q <= p in
    # every objective" equivalent to "q dominates p".
    uniq, inverse = np.unique(pts, axis=0, return_inverse=True)
    order = np.lexsort(uniq.T[::-1])  # lexicographic: a dominator always comes first
    keep = _front_3d(uniq[order]) if k == 3 else _front_blocks(uniq[order])
    uniq_mask = np.empty(len(uniq), dtype=bool)
    uniq_mask[order] = keep
    mask[idx] = uniq_mask[np.asarray(inverse).reshape(-1)]
    return mask


def _front_2d(pts: np.ndarray) -> np.ndarray:
    """Sort by (f1, f2); a point is on the front iff it has the smallest f2 among points
    with its f1 and a strictly smaller f2 than every point with a smaller f1."""
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    f1, f2 = pts[order, 0], pts[order, 1]
    new_group = np.r_[True, f1[1:] != f1[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(f1)), 0))
    group_min = f2[group_start]
    running_min = np.minimum.accumulate(f2)
    best_before = running_min[np.maximum(group_start - 1, 0)]
    on_front = (f2 == group_min) & ((group_start == 0) | (f2 < best_before))
    out = np.empty(len(pts), dtype=bool)
    out[order] = on_front
    return out


def _front_3d(pts: np.ndarray) -> np.ndarray:
    """Distinct points in lexicographic order: sweep over f1 keeping the 2-D staircase of
    (f2, f3) seen so far (f2 ascending, f3 descending); a point is dominated iff the
    staircase has an entry with f2 <= its f2 and f3 <= its f3."""
    f2s: list[float] = []
    neg_f3s: list[float] = []  # -f3, ascending along the staircase, for bisect
    keep = np.zeros(len(pts), dtype=bool)
    for i, (b, c) in enumerate(pts[:, 1:].tolist()):
        j = bisect_right(f2s, b) - 1
        if j >= 0 and -neg_f3s[j] <= c:
            continue
        keep[i] = True
        lo = bisect_left(f2s, b)
        hi = bisect_right(neg_f3s, -c, lo)  # entries it dominates in (f2, f3)
        f2s[lo:hi] = [b]
        neg_f3s[lo:hi] = [-c]
    return keep


def _front_blocks(pts: np.ndarray) -> np.ndarray:
    """Distinct points in lexicographic order, any k: each block is checked against the
    front so far, then against itself. Later points never dominate earlier ones, so the
    front only grows."""
    keep = np.zeros(len(pts), dtype=bool)
    front = pts[:0]
    for start in range(0, len(pts), _BLOCK):
        block = pts[start : start + _BLOCK]
        alive = np.ones(len(block), dtype=bool)
        if len(front):
            alive = ~(front[:, None, :] <= block[None, :, :]).all(axis=2).any(axis=0)
        cand = np.flatnonzero(alive)
        sub = block[cand]
        le = (sub[:, None, :] <= sub[None, :, :]).all(axis=2)
        np.fill_diagonal(le, False)
        survivors = cand[~le.any(axis=0)]
        keep[start + survivors] = True
        front = np.concatenate([front, block[survivors]])
    return keep


def normalize(values: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Map each objective to [0, 1] in minimisation space (0 = best value seen).

    Maximised columns are flipped, so the result is to be used with all-``"minimize"``
    directions, e.g. ``hypervolume(normalize(v, d), ["minimize"] * k, [1.1] * k)``.
    Constant columns map to 0; NaNs stay NaN.
    """
    arr = _as_minimization(values, directions)
    if arr.shape[0] == 0:
        return arr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        lo = np.nanmin(arr, axis=0)
        hi = np.nanmax(arr, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (arr - lo) / span


def hypervolume(values: ArrayLike, directions: Sequence[str], reference: ArrayLike) -> float:
    """Exact hypervolume dominated by ``values`` and bounded by ``reference``.

    ``reference`` is given in the objectives' own units and directions (e.g. accuracy 0,
    trainable params 1e9). Points that are not strictly better than the reference in every
    objective, and rows with NaN, contribute nothing.

    Complexity: k = 2 a sort, O(n log n); k = 3 a sweep over the third objective with an
    incremental 2-D staircase, O(n log n) plus list shifts; k >= 4 recursive slicing over
    the last objective down to the 3-D case, O(n^(k-2) log n) -- fine for fronts of a few
    hundred points in 4-5 objectives.
    """
    pts = _as_minimization(values, directions)
    k = pts.shape[1]
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != (k,):
        raise ValueError(f"reference must have {k} values, got {ref.tolist()}")
    if np.isnan(ref).any():
        raise ValueError("reference must not contain NaN")
    ref = ref * _signs(directions, k) + 0.0
    with np.errstate(invalid="ignore"):
        pts = pts[(pts < ref).all(axis=1)]  # NaN rows compare False and drop out
    if len(pts) == 0:
        return 0.0
    if k == 1:
        return float(ref[0] - pts[:, 0].min())
    return float(_hv(pts, ref))


def _hv(pts: np.ndarray, ref: np.ndarray) -> float:
    pts = np.unique(pts[pareto_mask(pts, ["minimize"] * pts.shape[1])], axis=0)
    k = pts.shape[1]
    if k == 2:
        pts = pts[np.argsort(pts[:, 0], kind="stable")]
        widths = np.diff(np.r_[pts[:, 0], ref[0]])
        return float(np.sum(widths * (ref[1] - pts[:, 1])))
    if k == 3:
        return _hv_3d(pts, ref)
    # Slice along the last objective: between consecutive values the dominated region is a
    # (k-1)-D hypervolume of the points at or below the slice, times the slice thickness.
    pts = pts[np.argsort(pts[:, -1], kind="stable")]
    bounds = np.r_[pts[:, -1], ref[-1]]
    total = 0.0
    for i in range(len(pts)):
        thickness = bounds[i + 1] - bounds[i]
        if thickness > 0:
            total += _hv(pts[: i + 1, :-1], ref[:-1]) * thickness
    return total


def _hv_3d(pts: np.ndarray, ref: np.ndarray) -> float:
    """Sweep over f3 ascending, inserting each point's (f1, f2) into a staircase whose
    dominated area is updated incrementally."""
    pts = pts[np.argsort(pts[:, 2], kind="stable")]
    f1s: list[float] = []  # staircase: f1 ascending, f2 strictly descending
    f2s: list[float] = []
    r1, r2, r3 = ref.tolist()
    area = volume = 0.0
    rows = pts.tolist()
    for i, (a, b, c) in enumerate(rows):
        j = bisect_right(f1s, a) - 1
        if not (j >= 0 and f2s[j] <= b):  # otherwise (a, b) adds nothing to the area
            lo = bisect_left(f1s, a)
            ceiling = f2s[lo - 1] if lo > 0 else r2
            x, hi = a, lo
            while hi < len(f1s) and f2s[hi] >= b:  # staircase steps that (a, b) covers
                area += (f1s[hi] - x) * (ceiling - b)
                x, ceiling = f1s[hi], f2s[hi]
                hi += 1
            area += ((f1s[hi] if hi < len(f1s) else r1) - x) * (ceiling - b)
            f1s[lo:hi] = [a]
            f2s[lo:hi] = [b]
        next_c = rows[i + 1][2] if i + 1 < len(rows) else r3
        volume += area * (next_c - c)
    return volume


# -- fronts within noise ------------------------------------------------------------------


def _resolution_matrix(resolution: ArrayLike, n: int, k: int) -> np.ndarray:
    res = np.asarray(resolution, dtype=float)
    if res.shape == (k,):
        res = np.broadcast_to(res, (n, k))
    if res.shape != (n, k):
        raise ValueError(f"resolution must have shape ({k},) or ({n}, {k}), got {res.shape}")
    if np.isnan(res).any() or (res < 0).any():
        raise ValueError("resolution must be finite and non-negative")
    return res


def epsilon_pareto_mask(
    values: ArrayLike, directions: Sequence[str], resolution: ArrayLike
) -> np.ndarray:
    """Boolean mask of the rows that no other row dominates by more than the noise.

    ``q`` epsilon-dominates ``p`` when ``q`` is better than ``p`` by more than the
    resolution in at least one objective and worse by no more than the resolution in any.
    The resolution of a pair is the larger of the two points' own (``resolution[i, j]`` is
    how precisely row ``i``'s objective ``j`` is known), so a noisy point neither dominates
    nor is dominated by a margin inside its own noise. With zero resolution this is
    :func:`pareto_mask`.

    The relation is not transitive, so candidates are checked pairwise, but only near the
    front: with ``e`` the largest resolution of each objective, a point that some other
    point moved back by ``e`` still strictly dominates is epsilon-dominated (not a
    candidate), and a point that one moved back by ``2e`` strictly dominates cannot be the
    only point dominating anything (that one dominates whatever it does), so it is not
    needed as a dominator. Typically both sets are a small multiple of the front: 100,000
    points cost a few pivot sweeps plus candidates x dominators x k comparisons.

    Args:
        values: ``(n, k)`` objective values; rows with NaN are never on the front and never
            dominate anything.
        directions: ``k`` directions, ``"maximize"`` or ``"minimize"``.
        resolution: ``(n, k)`` or ``(k,)`` non-negative noise levels, in the objectives' units.

    Returns:
        ``(n,)`` bool array, True for rows on the front within noise.
    """
    arr = _as_minimization(values, directions)
    n, k = arr.shape
    mask = np.zeros(n, dtype=bool)
    finite = ~np.isnan(arr).any(axis=1)
    if n == 0 or k == 0 or not finite.any():
        return mask
    res = _resolution_matrix(resolution, n, k)
    idx = np.flatnonzero(finite)
    pts, eps = arr[idx], res[idx]
    widest = eps.max(axis=0)
    cand, front = _near_front(pts, widest)
    dom, _ = _near_front(pts, 2 * widest)
    # Most candidates fall to a point of the plain front: check those first, all at once.
    alive = np.ones(len(cand), dtype=bool)
    for f in front:
        alive &= ~_eps_dominates(pts[f], eps[f], pts[cand], eps[cand])
    cand = cand[alive]
    verdict = np.ones(len(cand), dtype=bool)
    for start in range(0, len(cand), 64):  # (64 x dominators x k) booleans at a time
        c = cand[start : start + 64]
        e = np.maximum(eps[c][:, None, :], eps[dom][None, :, :])  # pair resolutions
        diff = pts[dom][None, :, :] - pts[c][:, None, :]  # q - p: negative where q is better
        dominated = (diff <= e).all(axis=2) & (diff < -e).any(axis=2)
        verdict[start : start + 64] = ~dominated.any(axis=1)
    mask[idx[cand]] = verdict
    return mask


def _eps_dominates(q: np.ndarray, q_eps: np.ndarray, pts: np.ndarray,
                   eps: np.ndarray) -> np.ndarray:
    """Which rows of ``pts`` (minimised) the point ``q`` epsilon-dominates."""
    e = np.maximum(eps, q_eps)
    diff = q - pts
    return (diff <= e).all(axis=1) & (diff < -e).any(axis=1)


def _near_front(pts: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the points that no other point, moved back by ``shift``, strictly
    dominates (minimised), and of the plain front among them. Pivots: the front of a fixed
    sample, then the front of the survivors (which is the whole set's front)."""
    idx = np.arange(len(pts))
    k = pts.shape[1]
    sample = idx if len(pts) <= _SAMPLE else np.sort(
        np.random.default_rng(0).choice(len(pts), _SAMPLE, replace=False))
    front = sample[pareto_mask(pts[sample], ["minimize"] * k)]
    for stage in range(2):
        cols = np.ascontiguousarray(pts[idx].T)  # one row per objective: fast compares
        for pivot in pts[front] + shift:  # drop the dominated after each pivot: less to scan
            weak = cols[0] >= pivot[0]
            strict = cols[0] > pivot[0]
            for row, value in zip(cols[1:], pivot[1:], strict=True):
                weak &= row >= value
                strict |= row > value
            keep = ~(weak & strict)
            idx, cols = idx[keep], cols[:, keep]
        if stage == 0:
            front = idx[pareto_mask(pts[idx], ["minimize"] * k)]
    return idx, front


def epsilon_ties(
    values: ArrayLike, directions: Sequence[str], resolution: ArrayLike
) -> list[list[int]]:
    """For each row, the other rows within the pair's resolution in every objective.

    Tied points cannot be told apart by the measurements: neither epsilon-dominates the
    other. O(n^2 k): meant for a front, not for a whole study. Rows with NaN tie nothing.
    """
    arr = _as_minimization(values, directions)
    n, k = arr.shape
    res = _resolution_matrix(resolution, n, k)
    finite = ~np.isnan(arr).any(axis=1)
    e = np.maximum(res[:, None, :], res[None, :, :])
    close = (np.abs(arr[:, None, :] - arr[None, :, :]) <= e).all(axis=2)
    close &= finite[:, None] & finite[None, :]
    np.fill_diagonal(close, False)
    return [np.flatnonzero(row).tolist() for row in close]
