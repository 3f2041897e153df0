"""Tests of the batched Lasso solvers (csood.solvers)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from csood.solvers import (FISTA, LIPSCHITZ_SAFETY, fista, ista, lasso_objective,
                           lipschitz_constant)

from _lasso import random_problem  # tests/ is on sys.path under pytest

LAM = 0.1


def _problem(m, n, n_samples, seed, dtype=np.float64):
    return random_problem(m, n, n_samples, seed, density=0.1, dtype=dtype)


def _sklearn_optimum(Y, D, lam, positive):
    m = D.shape[0]
    est = Lasso(alpha=lam / m, fit_intercept=False, tol=1e-10, max_iter=100_000, positive=positive)
    return np.stack([est.fit(D, y).coef_ for y in Y])


def _rel_gap(Y, D, Z, Z_ref, lam=LAM):
    f, f_ref = lasso_objective(Y, D, Z, lam), lasso_objective(Y, D, Z_ref, lam)
    return np.max((f - f_ref) / f_ref)


@pytest.fixture(scope="module")
def problem():
    return _problem(20, 50, 8, seed=0)


@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("m, n, seed", [(20, 50, 0), (30, 30, 1), (15, 60, 2)])
def test_fista_reaches_sklearn_optimum(m, n, seed, positive):
    Y, D = _problem(m, n, 6, seed)
    Z_ref = _sklearn_optimum(Y, D, LAM, positive)
    Z = fista(Y, D, LAM, positive=positive, max_iter=3000, device="cpu")
    assert Z.dtype == np.float64 and Z.shape == (6, n)
    assert _rel_gap(Y, D, Z, Z_ref) < 1e-4
    assert _rel_gap(Y, D, Z_ref, Z) < 1e-4  # not better than the optimum either (sanity)
    if positive:
        assert Z.min() >= 0
    else:
        assert Z.min() < 0


def test_default_hundred_iterations_is_close_and_codes_are_sparse(problem):
    Y, D = problem
    Z_ref = _sklearn_optimum(Y, D, LAM, True)
    Z = fista(Y, D, device="cpu")  # paper defaults: lam 0.1, 100 iterations, z >= 0
    assert _rel_gap(Y, D, Z, Z_ref) < 2e-2
    assert (Z == 0).mean() > 0.5


def test_ista_converges_to_same_optimum(problem):
    Y, D = problem
    Z_ref = _sklearn_optimum(Y, D, LAM, True)
    Z = ista(Y, D, LAM, max_iter=20_000, device="cpu")
    assert _rel_gap(Y, D, Z, Z_ref) < 1e-4
    # and momentum helps: after 50 iterations FISTA is closer than ISTA
    gap = lambda Z: _rel_gap(Y, D, Z, Z_ref)  # noqa: E731
    assert gap(fista(Y, D, max_iter=50)) < gap(ista(Y, D, max_iter=50))


def test_warm_and_cold_starts_agree(problem):
    Y, D = problem
    cold = fista(Y, D, LAM, max_iter=3000)
    Z0 = np.abs(np.random.default_rng(5).standard_normal(cold.shape))
    Z0_copy = Z0.copy()
    warm = fista(Y, D, LAM, max_iter=3000, Z0=Z0)
    np.testing.assert_array_equal(Z0, Z0_copy)  # the warm start is not modified
    np.testing.assert_allclose(warm, cold, atol=1e-4)
    # a warm start at the optimum stays there
    again, n_iter = fista(Y, D, LAM, Z0=cold, tol=1e-6, max_iter=100, return_n_iter=True)
    assert n_iter <= 5
    np.testing.assert_allclose(again, cold, atol=1e-6)


@pytest.mark.parametrize("positive", [True, False])
def test_factored_and_gram_forms_agree(problem, positive):
    Y, D = problem
    Zf = fista(Y, D, LAM, positive=positive, form="factored", max_iter=200)
    Zg = fista(Y, D, LAM, positive=positive, form="gram", max_iter=200)
    Za = fista(Y, D, LAM, positive=positive, form="auto", max_iter=200)
    np.testing.assert_allclose(Zf, Zg, atol=1e-9)
    np.testing.assert_allclose(Za, Zf, atol=1e-9)


@pytest.mark.parametrize("positive", [True, False])
def test_closed_form_with_orthonormal_dictionary(positive):
    """With orthonormal atoms the Lasso decouples: z = soft(D^T y, lam) (or relu(D^T y - lam))."""
    rng = np.random.default_rng(4)
    D = np.linalg.qr(rng.standard_normal((12, 7)))[0]  # (12, 7), orthonormal columns
    Y = rng.standard_normal((9, 12))
    c = Y @ D
    expected = np.maximum(c - LAM, 0) if positive else np.sign(c) * np.maximum(np.abs(c) - LAM, 0)
    for form in ("factored", "gram"):
        Z = fista(Y, D, LAM, positive=positive, form=form, max_iter=300)
        np.testing.assert_allclose(Z, expected, atol=1e-10)


def test_tol_stops_early_near_optimum(problem):
    Y, D = problem
    Z_ref = _sklearn_optimum(Y, D, LAM, True)
    Y0 = np.vstack([Y, np.zeros((1, Y.shape[1]))])  # plus a sample that converges at once
    Z, n_iter = fista(Y0, D, LAM, tol=1e-7, max_iter=10_000, return_n_iter=True)
    assert 10 < n_iter < 10_000  # the rule waits for the slowest sample
    assert (Z[-1] == 0).all() and _rel_gap(Y, D, Z[:-1], Z_ref) < 1e-4
    _, n_loose = fista(Y, D, LAM, tol=1e-2, max_iter=10_000, return_n_iter=True)
    assert n_loose < n_iter
    _, n_full = fista(Y, D, LAM, max_iter=37, return_n_iter=True)
    assert n_full == 37


def test_lam_zero_and_large_lam():
    Y, D = _problem(30, 10, 5, seed=3)  # overdetermined: lam = 0 is least squares
    Z = fista(Y, D, 0.0, positive=False, max_iter=5000)
    np.testing.assert_allclose(Z, np.linalg.lstsq(D, Y.T, rcond=None)[0].T, atol=1e-6)
    lam_max = np.abs(Y @ D).max()  # above it the solution is exactly zero
    assert (fista(Y, D, 1.01 * lam_max, positive=False) == 0).all()


@pytest.mark.parametrize("shape", [(30, 80), (80, 30), (50, 50), (139, 2000)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lipschitz_matches_spectral_norm(shape, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    D = torch.randn(*shape, generator=g, dtype=torch.float64)
    D /= torch.linalg.vector_norm(D, dim=0)
    ref = torch.linalg.matrix_norm(D, 2).item() ** 2
    L = lipschitz_constant(D.to(dtype))
    assert abs(L / LIPSCHITZ_SAFETY - ref) <= 1e-4 * ref
    assert L >= ref  # the step 1/L never exceeds 1/||D||^2
    assert lipschitz_constant(D.to(dtype).numpy()) == pytest.approx(L, rel=1e-6)


def test_lipschitz_deterministic_and_zero_matrix():
    D = np.random.default_rng(0).standard_normal((40, 90))
    assert lipschitz_constant(D) == lipschitz_constant(D)
    assert lipschitz_constant(np.zeros((3, 4))) == 0.0
    with pytest.raises(ValueError, match="D must be"):
        fista(np.ones((2, 3)), np.zeros((3, 4)))


def test_numpy_and_torch_in_and_out(problem):
    Y, D = problem
    Z_np = fista(Y, D, LAM)
    assert isinstance(Z_np, np.ndarray) and Z_np.dtype == np.float64
    Z_t = fista(torch.from_numpy(Y), torch.from_numpy(D), LAM)
    assert isinstance(Z_t, torch.Tensor) and Z_t.dtype == torch.float64 and Z_t.device.type == "cpu"
    np.testing.assert_allclose(Z_t.numpy(), Z_np, atol=1e-12)
    Z32 = fista(Y.astype(np.float32), D.astype(np.float32), LAM)
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, Z_np, atol=1e-4)
    Z_mixed = fista(torch.from_numpy(Y).float(), D.astype(np.float32), LAM)  # kind follows Y
    assert isinstance(Z_mixed, torch.Tensor) and Z_mixed.dtype == torch.float32
    obj = lasso_objective(torch.from_numpy(Y), D, Z_np, LAM)
    assert isinstance(obj, torch.Tensor) and obj.shape == (Y.shape[0],)
    np.testing.assert_allclose(obj.numpy(), lasso_objective(Y, D, Z_np, LAM))


def test_lasso_objective_by_hand():
    Y = np.array([[1.0, 2.0]])
    D = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    Z = np.array([[0.5, -1.0, 0.0]])
    # residual (0.5, 3) -> 0.5 * 9.25 = 4.625; penalty 0.1 * 1.5
    np.testing.assert_allclose(lasso_objective(Y, D, Z, 0.1), [4.775])


def test_estimator_matches_function(problem):
    Y, D = problem
    est = FISTA(lam=0.05, max_iter=150, tol=0.0, device="cpu").fit(D)
    assert est.dictionary_ is not None and est.lipschitz_ == pytest.approx(lipschitz_constant(D))
    np.testing.assert_array_equal(est.transform(Y), fista(Y, D, 0.05, max_iter=150))
    Z0 = fista(Y, D, 0.05, max_iter=10)
    np.testing.assert_array_equal(est.transform(Y, Z0=Z0), fista(Y, D, 0.05, max_iter=150, Z0=Z0))
    assert est.n_iter_ == 150 and "lam=0.05" in repr(est)
    with pytest.raises(RuntimeError, match="fit"):
        FISTA().transform(Y)


@pytest.mark.parametrize("call, match", [
    (lambda Y, D: fista(Y, D, -0.1), "lam must be"),
    (lambda Y, D: fista(Y, D, float("nan")), "lam must be"),
    (lambda Y, D: fista(Y[:, :-1], D), r"Y must be .*D of shape"),
    (lambda Y, D: fista(Y[0], D), "Y must be"),
    (lambda Y, D: fista(Y, D[0]), "D must be"),
    (lambda Y, D: fista(np.where(Y > 0.5, np.nan, Y), D), "Y must be finite"),
    (lambda Y, D: fista(Y, np.where(D > 0.5, np.inf, D)), "D must be finite"),
    (lambda Y, D: fista(Y, D, Z0=np.full((Y.shape[0], D.shape[1]), np.nan)), "Z0 must be finite"),
    (lambda Y, D: fista(Y, D, Z0=np.zeros((Y.shape[0], 3))), "Z0 must be"),
    (lambda Y, D: fista(Y, D, max_iter=0), "max_iter must be"),
    (lambda Y, D: fista(Y, D, max_iter=2.5), "max_iter must be"),
    (lambda Y, D: fista(Y, D, tol=-1e-3), "tol must be"),
    (lambda Y, D: fista(Y, D, form="dense"), "form must be one of"),
    (lambda Y, D: fista(Y, D, positive="yes"), "positive must be"),
    (lambda Y, D: fista(Y, D, L=0.0), "L must be"),
    (lambda Y, D: fista(Y, D, device="tpu"), "device must be"),
    (lambda Y, D: ista(Y, D, lam=-1.0), "lam must be"),
    (lambda Y, D: lasso_objective(Y, D, np.zeros((2, 2)), 0.1), "Z must be"),
    (lambda Y, D: lipschitz_constant(D, n_iter=0), "n_iter must be"),
    (lambda Y, D: FISTA().fit(D[0]), "D must be"),
    (lambda Y, D: FISTA(lam=-1.0).fit(D).transform(Y), "lam must be"),
])
def test_bad_arguments_raise(problem, call, match):
    Y, D = problem
    with pytest.raises(ValueError, match=match):
        call(Y, D)


@pytest.mark.cuda
@pytest.mark.parametrize("form", ["factored", "gram"])
def test_cuda_matches_cpu(problem, form):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    Y, D = (X.astype(np.float32) for X in problem)
    Z_cpu = fista(Y, D, LAM, form=form, device="cpu")
    Z_gpu_np = fista(Y, D, LAM, form=form, device="cuda")  # numpy in, numpy out
    assert isinstance(Z_gpu_np, np.ndarray)
    np.testing.assert_allclose(Z_gpu_np, Z_cpu, atol=1e-4)
    Y_t, D_t = torch.from_numpy(Y).cuda(), torch.from_numpy(D).cuda()
    Z_t = fista(Y_t, D_t, LAM, form=form)  # tensors stay on their device
    assert Z_t.is_cuda and Z_t.dtype == torch.float32
    np.testing.assert_allclose(Z_t.cpu().numpy(), Z_cpu, atol=1e-4)
    Z_tol, n_iter = fista(Y_t, D_t, LAM, tol=1e-5, max_iter=5000, return_n_iter=True)
    assert n_iter < 5000 and Z_tol.is_cuda
    L_gpu = lipschitz_constant(D_t)
    assert L_gpu == pytest.approx(lipschitz_constant(D), rel=1e-5)


@pytest.mark.cuda
def test_cuda_estimator_returns_input_kind():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    Y, D = _problem(20, 50, 4, seed=9, dtype=np.float32)
    Z = FISTA(device="cuda").fit(D).transform(Y)
    assert isinstance(Z, np.ndarray)
    np.testing.assert_allclose(Z, fista(Y, D, device="cpu"), atol=1e-4)
    Z_t = FISTA(device="cuda").fit(D).transform(torch.from_numpy(Y))
    assert isinstance(Z_t, torch.Tensor) and Z_t.device.type == "cpu"
