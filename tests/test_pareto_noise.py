"""Fronts within noise (epsilon-dominance) against a brute-force twin of the definition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autopeft.pareto import epsilon_pareto_mask, epsilon_ties, pareto_mask


def naive_eps_mask(values, directions, resolution) -> np.ndarray:
    """Double loop straight from the definition: q dominates p when q is better by more
    than max(res_p, res_q) in one objective and worse by no more than it in none."""
    sign = np.array([-1.0 if d.startswith("max") else 1.0 for d in directions])
    v = np.asarray(values, dtype=float) * sign
    res = np.broadcast_to(np.asarray(resolution, dtype=float), v.shape)
    n, k = v.shape
    mask = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(v[i]).any():
            continue
        dominated = False
        for j in range(n):
            if j == i or np.isnan(v[j]).any():
                continue
            better = worse_beyond = False
            for m in range(k):
                eps = max(res[i, m], res[j, m])
                if v[j, m] < v[i, m] - eps:
                    better = True
                if v[j, m] > v[i, m] + eps:
                    worse_beyond = True
            dominated |= better and not worse_beyond
        mask[i] = not dominated
    return mask


def naive_ties(values, directions, resolution) -> list[list[int]]:
    v = np.asarray(values, dtype=float)
    res = np.broadcast_to(np.asarray(resolution, dtype=float), v.shape)
    return [[j for j in range(len(v)) if j != i and not np.isnan(v[[i, j]]).any()
             and all(abs(v[i, m] - v[j, m]) <= max(res[i, m], res[j, m])
                     for m in range(v.shape[1]))]
            for i in range(len(v))]


@st.composite
def problems(draw):
    n = draw(st.integers(0, 25))
    k = draw(st.integers(1, 4))
    # small integer grids: many exact ties and gaps equal to the resolution
    values = draw(hnp.arrays(float, (n, k), elements=st.integers(0, 6).map(float)))
    if n and draw(st.booleans()):
        values[draw(st.integers(0, n - 1)), draw(st.integers(0, k - 1))] = np.nan
    per_point = draw(st.booleans())
    shape = (n, k) if per_point else (k,)
    resolution = draw(hnp.arrays(float, shape, elements=st.sampled_from([0.0, 0.5, 1.0, 2.0])))
    directions = draw(st.lists(st.sampled_from(["maximize", "minimize", "max", "min"]),
                               min_size=k, max_size=k))
    return values, directions, resolution


@settings(max_examples=200, deadline=None)
@given(problems())
def test_epsilon_mask_matches_the_definition(problem):
    values, directions, resolution = problem
    np.testing.assert_array_equal(epsilon_pareto_mask(values, directions, resolution),
                                  naive_eps_mask(values, directions, resolution))
    assert epsilon_ties(values, directions, resolution) == naive_ties(values, directions,
                                                                       resolution)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_zero_resolution_is_the_plain_front(problem):
    values, directions, _ = problem
    k = values.shape[1]
    np.testing.assert_array_equal(epsilon_pareto_mask(values, directions, np.zeros(k)),
                                  pareto_mask(values, directions))


def test_noise_both_admits_and_removes_points():
    directions = ["maximize", "minimize"]
    # 0.80 vs 0.79 is inside the noise: the cheaper point is no longer dominated
    assert pareto_mask([[0.80, 10], [0.79, 10]], directions).tolist() == [True, False]
    assert epsilon_pareto_mask([[0.80, 10], [0.79, 10]], directions,
                               [0.02, 0]).tolist() == [True, True]
    # a point whose only advantage (0.81 vs 0.80) is inside the noise, bought with a clear
    # loss (20 vs 10 parameters), leaves the front: noise cannot fake it onto the front
    assert pareto_mask([[0.80, 10], [0.81, 20]], directions).tolist() == [True, True]
    assert epsilon_pareto_mask([[0.80, 10], [0.81, 20]], directions,
                               [0.02, 0]).tolist() == [True, False]


@pytest.mark.parametrize("seed", range(3))
def test_many_continuous_points_match_the_definition(seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(150, 3))
    resolution = rng.uniform(0, 0.3, size=(150, 3))
    directions = ["maximize", "minimize", "minimize"]
    np.testing.assert_array_equal(epsilon_pareto_mask(values, directions, resolution),
                                  naive_eps_mask(values, directions, resolution))


def test_readme_demo_points_tie_instead_of_splitting_the_front():
    """README's CPU demo: ln_tuning at 0.754 was on the front beside ln_tuning at 0.772 only
    because its peak read 25 MiB lower (768 vs 793 MiB), same method and trainable count."""
    mib = 2**20
    values = [[0.772, 9_984, 793 * mib],  # ln_tuning
              [0.754, 9_984, 768 * mib],  # ln_tuning, same size
              [0.700, 9_984, 900 * mib]]  # clearly worse in both
    directions = ["maximize", "minimize", "minimize"]
    assert pareto_mask(values, directions).tolist() == [True, True, False]  # noise made a front
    # 500 dev examples: binomial SE ~0.019 at 0.77; RSS noise wider than 25 MiB
    resolution = [[0.0188, 0, 30 * mib], [0.0193, 0, 30 * mib], [0.0205, 0, 30 * mib]]
    assert epsilon_pareto_mask(values, directions, resolution).tolist() == [True, True, False]
    assert epsilon_ties(values, directions, resolution)[:2] == [[1], [0]]
    # with an exact meter the 25 MiB are real while 0.018 is inside the metric's noise: the
    # cheaper point dominates, and the front keeps it alone
    precise = [[0.0188, 0, 0], [0.0193, 0, 0], [0.0205, 0, 0]]
    assert epsilon_pareto_mask(values, directions, precise).tolist() == [False, True, False]
    # and a gap well beyond the noise still dominates
    values[1][0] = 0.70
    assert epsilon_pareto_mask(values, directions, resolution).tolist() == [True, False, False]


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="shape"):
        epsilon_pareto_mask([[1.0, 2.0]], ["min", "min"], [0.1])
    with pytest.raises(ValueError, match="non-negative"):
        epsilon_pareto_mask([[1.0, 2.0]], ["min", "min"], [0.1, -1.0])


@pytest.mark.parametrize("seed", range(2))
def test_more_points_than_the_pivot_sample_match_the_definition(seed):
    """Above 1,024 points the pivots come from a sample: compare with every pair at once."""
    rng = np.random.default_rng(seed)
    n = 2500
    values = np.c_[np.round(rng.uniform(0.5, 0.9, n), 2), rng.integers(1, 50, n),
                   rng.normal(size=n)]
    resolution = np.c_[rng.uniform(0, 0.03, n), np.zeros(n), rng.uniform(0, 0.5, n)]
    directions = ["maximize", "minimize", "minimize"]
    v = values * [-1, 1, 1]
    e = np.maximum(resolution[:, None, :], resolution[None, :, :])
    diff = v[None, :, :] - v[:, None, :]  # [p, q]: q - p
    dominated = ((diff <= e).all(axis=2) & (diff < -e).any(axis=2)).any(axis=1)
    mask = epsilon_pareto_mask(values, directions, resolution)
    np.testing.assert_array_equal(mask, ~dominated)
    assert 0 < mask.sum() < n
