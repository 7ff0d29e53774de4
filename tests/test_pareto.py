"""Pareto front and hypervolume against brute force."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

import autopeft.pareto as pareto
from autopeft.pareto import hypervolume, normalize, pareto_mask


def naive_mask(values: np.ndarray, directions) -> np.ndarray:
    """Double loop straight from the definition."""
    v = np.asarray(values, dtype=float) * [(-1 if d.startswith("max") else 1) for d in directions]
    n = len(v)
    mask = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(v[i]).any():
            continue
        mask[i] = not any(
            not np.isnan(v[j]).any() and (v[j] <= v[i]).all() and (v[j] < v[i]).any()
            for j in range(n)
        )
    return mask


def inclusion_exclusion_hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Minimisation hypervolume as the union of boxes [p, ref], by inclusion-exclusion."""
    pts = [p for p in points if (p < ref).all()]
    total = 0.0
    for size in range(1, len(pts) + 1):
        for subset in itertools.combinations(pts, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * np.prod(ref - corner)
    return total


def grid_hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Integer points, minimisation: count unit cells whose lower corner some point covers."""
    axes = [np.arange(0, int(r)) for r in ref]
    cells = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(ref))
    covered = (points[None, :, :] <= cells[:, None, :]).all(axis=2).any(axis=1)
    return float(covered.sum())


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("seed", range(4))
def test_mask_matches_naive(k, seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(60, k)).astype(float)  # small range: many ties/dupes
    values[rng.random(60) < 0.1, rng.integers(k)] = np.nan
    directions = [rng.choice(["maximize", "minimize", "max", "min"]) for _ in range(k)]
    np.testing.assert_array_equal(pareto_mask(values, directions), naive_mask(values, directions))
    cont = rng.normal(size=(80, k))
    np.testing.assert_array_equal(pareto_mask(cont, directions), naive_mask(cont, directions))


def test_block_front_on_three_objectives(monkeypatch):
    # The k >= 4 block algorithm is general: check it on k = 3 too, with tiny blocks.
    monkeypatch.setattr(pareto, "_BLOCK", 7)
    rng = np.random.default_rng(5)
    values = rng.integers(0, 5, size=(100, 3)).astype(float)
    uniq = np.unique(values, axis=0)
    uniq = uniq[np.lexsort(uniq.T[::-1])]
    np.testing.assert_array_equal(pareto._front_blocks(uniq), naive_mask(uniq, ["min"] * 3))
    np.testing.assert_array_equal(pareto._front_3d(uniq), naive_mask(uniq, ["min"] * 3))


def test_mask_hand_cases():
    # accuracy (max), trainable params (min)
    values = [
        [0.8, 100],
        [0.8, 100],
        [0.9, 500],
        [0.7, 100],
        [0.85, 300],
        [0.85, 600],
        [np.nan, 1],
        [0.95, np.inf],
    ]
    mask = pareto_mask(values, ["maximize", "minimize"])
    assert mask.tolist() == [True, True, True, False, True, False, False, True]
    assert pareto_mask(values, ["minimize", "minimize"]).tolist() == [
        False,
        False,
        False,
        True,
        False,
        False,
        False,
        False,
    ]
    assert pareto_mask(np.empty((0, 3)), ["min"] * 3).tolist() == []
    assert pareto_mask([[1.0], [0.5], [0.5]], ["min"]).tolist() == [False, True, True]
    assert pareto_mask([[np.nan, 1.0]], ["min", "min"]).tolist() == [False]
    assert pareto_mask([[0.0, 1.0, 2.0], [-0.0, 1.0, 2.0]], ["max"] * 3).tolist() == [True, True]
    with pytest.raises(ValueError, match="directions"):
        pareto_mask([[1, 2]], ["up", "down"])
    with pytest.raises(ValueError, match="need 2 directions"):
        pareto_mask([[1, 2]], ["min"])


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("shape", ["uniform", "plane"])
def test_mask_is_fast_on_100k_points(k, shape):
    rng = np.random.default_rng(0)
    values = rng.random((100_000, k))
    if shape == "plane":  # every point on the front: the worst case for pruning
        values[:, -1] = values[:, :-1].sum(axis=1) + 0.5 * rng.random()
        values[:, :-1] *= -1
    directions = ["maximize"] * (k - 1) + ["maximize" if shape == "plane" else "minimize"]
    start = time.perf_counter()
    mask = pareto_mask(values, directions)
    assert time.perf_counter() - start < 3.0  # ~0.1-0.3 s here; generous for shared CPUs
    if shape == "plane":
        assert mask.all()
        return
    signs = np.array([-1.0] * (k - 1) + [1.0])
    v = values * signs
    for i in np.r_[np.flatnonzero(mask), rng.choice(len(values), 30, replace=False)]:
        dominated = ((v <= v[i]).all(axis=1) & (v < v[i]).any(axis=1)).any()
        assert mask[i] == (not dominated)


def test_hypervolume_hand_cases():
    # 2-D minimisation: union of [1,3]x[2,3] and [2,3]x[1,3] = 2 + 2 - 1 = 3
    assert hypervolume([[1, 2], [2, 1]], ["min", "min"], [3, 3]) == pytest.approx(3.0)
    # maximisation of both, reference (0, 0): boxes [0,2]x[0,1] and [0,1]x[0,2] -> 3
    assert hypervolume([[2, 1], [1, 2]], ["max", "max"], [0, 0]) == pytest.approx(3.0)
    # accuracy up, params down; a point worse than the reference adds nothing
    vals = [[0.9, 10.0], [0.5, 50.0], [0.95, 1000.0]]
    assert hypervolume(vals, ["maximize", "minimize"], [0.0, 100.0]) == pytest.approx(
        0.9 * 90 + 0 * 50
    )
    assert hypervolume([[1, 1, 1]], ["min"] * 3, [2, 3, 4]) == pytest.approx(6.0)
    assert hypervolume([[1, 1, 1, 1]], ["min"] * 4, [2, 2, 2, 3]) == pytest.approx(2.0)
    assert hypervolume([[5, 5], [np.nan, 0]], ["min", "min"], [3, 3]) == 0.0
    assert hypervolume([[3, 1]], ["min", "min"], [3, 3]) == 0.0  # on the boundary: no volume
    assert hypervolume(np.empty((0, 2)), ["min", "min"], [1, 1]) == 0.0
    assert hypervolume([[0.2], [0.5]], ["min"], [1.0]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="reference"):
        hypervolume([[1, 2]], ["min", "min"], [1, 2, 3])


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_hypervolume_matches_inclusion_exclusion(k, seed):
    rng = np.random.default_rng(100 + seed)
    points = rng.random((9, k))
    points[0] = points[1]  # duplicates must not be counted twice
    ref = np.full(k, 0.9)
    expected = inclusion_exclusion_hv(points, ref)
    assert hypervolume(points, ["min"] * k, ref) == pytest.approx(expected, abs=1e-12)
    # Same sets in maximisation space.
    assert hypervolume(-points, ["max"] * k, -ref) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_hypervolume_matches_grid_count(k):
    rng = np.random.default_rng(k)
    ref = np.full(k, 6 if k < 4 else 5)
    points = rng.integers(0, ref[0], size=(25, k)).astype(float)
    assert hypervolume(points, ["min"] * k, ref) == pytest.approx(grid_hv(points, ref))


def test_normalize():
    values = np.array([[0.5, 100.0, 7.0], [1.0, 300.0, 7.0], [np.nan, 200.0, 7.0]])
    out = normalize(values, ["maximize", "minimize", "minimize"])
    np.testing.assert_allclose(out[:2], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert np.isnan(out[2, 0]) and out[2, 1] == pytest.approx(0.5)
    # Normalising keeps the front; the usual reference is 1.1 on each normalised axis.
    assert pareto_mask(out, ["min"] * 3).tolist() == [True, True, False]
    assert hypervolume([[0.0, 0.0]], ["min", "min"], [1.1, 1.1]) == pytest.approx(1.21)
