"""Tests of the opt-in fast solvers of csood.solvers.fista (restart, working set)."""

import numpy as np
import pytest
import torch

from csood import _fista_fast
from csood.solvers import _fista_core, fista, lasso_objective, lipschitz_constant

from _lasso import random_problem  # tests/ is on sys.path under pytest

LAM = 0.1


def _problem(m, n, n_samples, seed, dtype=np.float64):
    return random_problem(m, n, n_samples, seed, density=0.05, dtype=dtype)


def _rel(Y, D, Z, Z_ref):
    f, f_ref = lasso_objective(Y, D, Z, LAM), lasso_objective(Y, D, Z_ref, LAM)
    return (f - f_ref) / f_ref


@pytest.fixture(scope="module", params=[(20, 60, 0), (30, 200, 1)], ids=["n60", "n200"])
def converged(request):
    m, n, seed = request.param
    Y, D = _problem(m, n, 12, seed)
    refs = {pos: fista(Y, D, LAM, positive=pos, max_iter=20_000, tol=1e-12) for pos in (True, False)}
    return Y, D, refs


@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("kw", [dict(restart=True), dict(working_set=True),
                                dict(working_set=True, restart=True),
                                dict(working_set=True, restart=True, working_set_size=1)],
                         ids=["restart", "ws", "ws+restart", "ws1"])
def test_fast_solvers_reach_plain_optimum(converged, positive, kw):
    Y, D, refs = converged
    Z, n_iter = fista(Y, D, LAM, positive=positive, max_iter=5000, tol=1e-9,
                      return_n_iter=True, **kw)
    rel = _rel(Y, D, Z, refs[positive])
    assert np.abs(rel).max() < 1e-5
    assert n_iter < 5000 * (20 if kw.get("working_set") else 1)
    assert (Z.min() >= 0) if positive else (Z.min() < 0)


def test_restart_needs_fewer_iterations(converged):
    Y, D, _ = converged
    _, n_plain = fista(Y, D, LAM, max_iter=20_000, tol=1e-8, return_n_iter=True)
    _, n_restart = fista(Y, D, LAM, max_iter=20_000, tol=1e-8, restart=True, return_n_iter=True)
    assert n_restart < n_plain


@pytest.mark.parametrize("positive", [True, False])
def test_working_set_solution_satisfies_kkt(positive):
    Y, D = _problem(25, 300, 10, seed=3)
    Z = fista(Y, D, LAM, positive=positive, working_set=True, restart=True, tol=1e-10,
              max_iter=5000)
    corr = (Y - Z @ D.T) @ D  # D^T r, (n_samples, n)
    on = Z != 0
    assert on.any(axis=1).all() and (on.sum(axis=1) < 0.5 * D.shape[1]).all()
    sign = np.sign(Z[on]) if not positive else 1.0
    np.testing.assert_allclose(corr[on], LAM * sign, atol=1e-5)  # stationarity on the support
    off = corr[~on] if positive else np.abs(corr[~on])
    assert off.max() <= LAM * (1 + _fista_fast.KKT_RTOL) + 1e-7


def test_working_set_grows_and_warm_starts():
    Y, D = _problem(25, 300, 10, seed=4)
    Yt, Dt = torch.from_numpy(Y), torch.from_numpy(D)
    Z, _, n_rounds = _fista_fast.working_set(Yt, Dt, LAM, positive=True, max_iter=3000, tol=1e-9,
                                              Z0=None, size=1, restart=True)
    assert n_rounds > 1  # one atom cannot hold the supports: the KKT test must have added atoms
    assert (Z != 0).sum(dim=1).max() > 1
    Z2, n_iter, rounds2 = _fista_fast.working_set(Yt, Dt, LAM, positive=True, max_iter=3000,
                                                   tol=1e-9, Z0=Z, size=1, restart=True)
    assert rounds2 == 1 and n_iter <= 50  # warm start at the optimum: one short round
    torch.testing.assert_close(Z2, Z, atol=1e-6, rtol=0)


def test_eigenvalue_bound_is_an_upper_bound_and_tight():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(50, 40, 24, generator=g, dtype=torch.float64)
    G = A.transpose(1, 2) @ A
    top = torch.linalg.eigvalsh(G)[:, -1:]
    bound = _fista_fast._top_eigenvalue_bound(G)
    assert (bound >= top * (1 - 1e-12)).all() and (bound <= 1.25 * top).all()
    assert _fista_fast._top_eigenvalue_bound(torch.zeros(2, 3, 3)).max() < 1e-30


# The codes of the unmodified solver (git 53bdeff) on a tiny problem: defaults must not move.
_REF_POS = [[0.190715557163681, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.197955984447394, 1.247032174092399],
            [0.0, 0.673916749639211, 0.0, 0.579301650270054, 0.611991214458329, 0.0,
             0.252993019775673, 0.085094111342857, 0.0],
            [0.171131340122632, 0.635424812041859, 0.0, 0.0, 0.0, 0.52127955865875,
             0.142307469827566, 0.0, 0.0]]


def test_defaults_unchanged():
    rng = np.random.default_rng(11)
    D = rng.standard_normal((6, 9))
    D /= np.linalg.norm(D, axis=0)
    Y = rng.standard_normal((3, 6))
    np.testing.assert_allclose(fista(Y, D, LAM, max_iter=7), _REF_POS, rtol=1e-12, atol=1e-14)
    Yt, Dt = torch.from_numpy(Y), torch.from_numpy(D)
    for form in ("factored", "gram"):
        core, _ = _fista_core(Yt, Dt, LAM, positive=False, max_iter=40, tol=0.0, Z0=None,
                              L=lipschitz_constant(D), form=form, momentum=True)
        plain = fista(Y, D, LAM, positive=False, max_iter=40, form=form)
        np.testing.assert_array_equal(plain, core.numpy())  # bit for bit: the old code path
        assert not np.array_equal(plain, fista(Y, D, LAM, positive=False, max_iter=40,
                                               form=form, restart=True))


def test_fast_solvers_keep_kind_and_dtype():
    Y, D = _problem(20, 60, 5, seed=5, dtype=np.float32)
    Z = fista(Y, D, LAM, working_set=True, restart=True, tol=1e-5, max_iter=500)
    assert isinstance(Z, np.ndarray) and Z.dtype == np.float32 and Z.shape == (5, 60)
    Zt = fista(torch.from_numpy(Y), torch.from_numpy(D), LAM, restart=True, tol=1e-5)
    assert isinstance(Zt, torch.Tensor) and Zt.dtype == torch.float32
    Z0 = fista(Y[:0], D, LAM, working_set=True)
    assert Z0.shape == (0, 60)


@pytest.mark.parametrize("kw, match", [
    (dict(restart="yes"), "restart must be"),
    (dict(working_set=1), "working_set must be"),
    (dict(working_set=True, working_set_size=0), "working_set_size must be"),
    (dict(working_set=True, working_set_size=2.5), "working_set_size must be"),
])
def test_bad_fast_arguments_raise(kw, match):
    Y, D = _problem(10, 20, 3, seed=6)
    with pytest.raises(ValueError, match=match):
        fista(Y, D, LAM, **kw)
    with pytest.raises(ValueError, match="D must be"):
        fista(Y, np.zeros_like(D), working_set=True)


@pytest.mark.cuda
def test_cuda_fast_solvers_match_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    Y, D = _problem(20, 60, 8, seed=7, dtype=np.float32)
    for kw in (dict(restart=True), dict(working_set=True, restart=True)):
        Z_cpu = fista(Y, D, LAM, tol=1e-6, max_iter=2000, device="cpu", **kw)
        Z_gpu = fista(torch.from_numpy(Y).cuda(), torch.from_numpy(D).cuda(), LAM, tol=1e-6,
                      max_iter=2000, **kw)
        assert Z_gpu.is_cuda
        np.testing.assert_allclose(Z_gpu.cpu().numpy(), Z_cpu, atol=1e-4)
