"""Exact sparse assignment (csood._assignment) against the dense Hungarian solver."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from csood import _assignment as A
from csood import _assignment_weights as AW
from csood import _matching as M


def _dense_sum(W):
    r, c = linear_sum_assignment(W, maximize=True)
    return W[r, c].sum()


def _check(r, c, p, q):
    assert r.size == c.size == min(p, q)
    assert np.all(np.diff(r) > 0) and np.unique(c).size == c.size


@pytest.mark.parametrize("seed", range(40))
def test_dense_equals_linear_sum_assignment(seed):
    rng = np.random.default_rng(seed)
    p, q = rng.integers(1, 40, 2)
    W = rng.random((p, q)) ** rng.choice([1, 5, 20])
    if seed % 3 == 0:
        W = np.round(W, 1)  # ties
    if seed % 5 == 0:
        W[:, rng.integers(0, q)] = 0.0  # a zero column
    r, c = A.assign_dense(W, force=True)
    _check(r, c, p, q)
    assert abs(W[r, c].sum() - _dense_sum(W)) < 1e-10


@pytest.mark.parametrize("seed", range(40))
def test_sparse_rank_one_equals_linear_sum_assignment(seed):
    rng = np.random.default_rng(seed)
    p, q = rng.integers(1, 40, 2)
    S = sp.random(p, q, density=rng.choice([0.02, 0.1, 0.3]), random_state=seed, format="csr")
    a, b = rng.random(p) * rng.choice([0.1, 1, 3]), rng.random(q) * rng.choice([0.1, 1])
    if seed % 4 == 0:
        a[: p // 2] = 0.0
    W = AW.SparseRankOneWeights(S, a, b).dense() if p <= q else AW.SparseRankOneWeights(S.T, b, a).dense().T
    r, c, w = A.assign_sparse(S, a, b)
    _check(r, c, p, q)
    np.testing.assert_array_equal(w, W[r, c])
    assert abs(w.sum() - _dense_sum(W)) < 1e-10


def _codes(rng, n, p, density, dense=False):
    X = rng.random((n, p)) * (rng.random((n, p)) < density)
    if dense:
        X = X + 0.1 * rng.standard_normal((n, p))
    X[:, rng.integers(0, p, 2)] = 0.0  # constant columns
    return X


@pytest.mark.parametrize("shape", [(300, 120, 150), (300, 150, 120), (200, 90, 90)])
@pytest.mark.parametrize("dense", [False, True])
def test_match_columns_equals_dense(shape, dense):
    rng = np.random.default_rng(sum(shape) + dense)
    n, p, q = shape
    T = _codes(rng, n, p, 0.01)
    K = np.hstack([T[:, : q // 2] + 0.05 * rng.random((n, q // 2)) * (T[:, : q // 2] > 0),
                   _codes(rng, n, q - q // 2, 0.01, dense)])
    ti, ci, corr, n_true = M.match_columns(T, K)
    it, ik = M.varying_columns(T), M.varying_columns(K)
    C = M.abs_corr(T[:, it], K[:, ik])
    assert n_true == it.size and ti.size == min(it.size, ik.size)
    assert np.all(np.diff(ti) > 0)
    assert abs(corr.sum() - _dense_sum(C)) < 1e-10
    np.testing.assert_allclose(corr, np.abs([np.corrcoef(T[:, i], K[:, j])[0, 1] for i, j in zip(ti, ci)]),
                               atol=1e-12)


def test_sparse_abs_corr_matches_dense():
    rng = np.random.default_rng(3)
    X, Y = _codes(rng, 400, 60, 0.02), _codes(rng, 400, 70, 0.02)
    X, Y = X[:, M.varying_columns(X)], Y[:, M.varying_columns(Y)]
    S, a, b = M.sparse_abs_corr(X, Y)
    W = np.minimum(np.outer(a, b), 1.0)
    W[S.nonzero()] = S.data
    np.testing.assert_allclose(W, M.abs_corr(X, Y), atol=1e-13, rtol=0)


def test_certificate_adds_edges(monkeypatch):
    """Tiny initial candidates: the dual check must find the missing edges and repeat."""
    rng = np.random.default_rng(7)
    W = rng.random((60, 80))
    monkeypatch.setattr(A, "TOP_K", 1)
    monkeypatch.setattr(A, "ADD_PER_ROW", 1)
    monkeypatch.setattr(A, "ADD_PER_COL", 0)
    rounds = []
    violations = AW.DenseWeights.violations

    def counted(self, u, v):
        out = violations(self, u, v)
        rounds.append(out[0].size)
        return out

    monkeypatch.setattr(AW.DenseWeights, "violations", counted)
    r, c = A.assign_dense(W, force=True)
    assert len(rounds) > 1 and rounds[0] > 0 and rounds[-1] == 0
    assert abs(W[r, c].sum() - _dense_sum(W)) < 1e-10


def test_lower_envelope():
    rng = np.random.default_rng(0)
    for _ in range(200):
        q, p = rng.integers(1, 50), rng.integers(1, 30)
        b, v = rng.random(q), rng.random(q) * rng.choice([0, 0.1, 1])
        if rng.random() < 0.3:
            b, v = np.round(b, 1), np.round(v, 1)
        t = rng.random(p) * rng.choice([0.5, 3, 100])
        ref = (v[None, :] - b[None, :] * t[:, None]).min(axis=1)
        np.testing.assert_allclose(AW.lower_envelope(b, v, t), ref, atol=1e-13, rtol=0)
