"""Tests of the controlled-decomposition helpers (csood.support)."""

import numpy as np
import pytest
import torch

from csood.data import make_dataset
from csood.metrics import dictionary_diagnostics
from csood.solvers import fista
from csood.support import (frozen_decoder_codes, ls_on_support, refined_codes,
                           renormalise_columns, with_true_norms)


@pytest.fixture(scope="module")
def ds():
    return make_dataset(100, 10, n_samples=1000, seed=0)


# --------------------------------------------------------------------------- least squares
def test_true_support_recovers_noiseless_codes(ds):
    Z, Y = ds.val.Z, ds.val.Y
    Z_ls = ls_on_support(Y, ds.A, Z > 0, device="cpu")
    assert isinstance(Z_ls, np.ndarray) and Z_ls.dtype == np.float32 and Z_ls.shape == Z.shape
    np.testing.assert_allclose(Z_ls, Z, atol=2e-5)
    assert (Z_ls[Z == 0] == 0).all()  # exactly zero off the support


def test_float64_is_exact_to_float64_tolerance(ds):
    Z = ds.val.Z.astype(np.float64)
    A = ds.A.astype(np.float64)
    Z_ls = ls_on_support(Z @ A.T, A, Z > 0, device="cpu")
    assert Z_ls.dtype == np.float64
    np.testing.assert_allclose(Z_ls, Z, atol=1e-8)


def test_superset_support_gives_zero_extra_coefficients(ds):
    Z, Y = ds.val.Z, ds.val.Y
    rng = np.random.default_rng(1)
    mask = (Z > 0) | (rng.random(Z.shape) < 0.1)  # ~10 extra atoms per sample, size < m
    assert (mask.sum(1) > 12).mean() > 0.5 and mask.sum(1).max() < ds.m
    Z_ls = ls_on_support(Y, ds.A, mask, device="cpu")
    np.testing.assert_allclose(Z_ls, Z, atol=1e-4)


def test_support_from_codes_and_chunking(ds):
    Z, Y = ds.val.Z, ds.val.Y
    codes = np.where(Z > 0, Z + 0.3, 1e-6)  # wrong magnitudes; below-threshold noise elsewhere
    a = ls_on_support(Y, ds.A, codes, device="cpu")
    b = ls_on_support(Y, ds.A, Z > 0, chunk_size=7, device="cpu")
    np.testing.assert_allclose(a, Z, atol=2e-5)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_least_squares_on_a_wrong_support_is_the_projection(ds):
    """Noisy data on a fixed support: the result solves the normal equations."""
    rng = np.random.default_rng(2)
    Y = rng.standard_normal((5, ds.m)).astype(np.float64)
    mask = np.zeros((5, 100), dtype=bool)
    mask[:, [3, 17, 40]] = True
    mask[0, 41] = True
    Z_ls = ls_on_support(Y, ds.A.astype(np.float64), mask, device="cpu")
    for i in range(5):
        S = np.flatnonzero(mask[i])
        c, *_ = np.linalg.lstsq(ds.A[:, S].astype(np.float64), Y[i], rcond=None)
        np.testing.assert_allclose(Z_ls[i, S], c, atol=1e-8)


def test_empty_supports_and_torch_kind(ds):
    mask = torch.zeros((3, 100), dtype=torch.bool)
    mask[1, 5] = True
    Z = ls_on_support(torch.as_tensor(ds.val.Y[:3]), torch.as_tensor(ds.A), mask, device="cpu")
    assert isinstance(Z, torch.Tensor) and Z.shape == (3, 100)
    assert (Z[0] == 0).all() and (Z[2] == 0).all() and Z[1, 5] != 0


def test_oversized_support_is_regularised_not_an_error(ds):
    mask = np.ones((2, 100), dtype=bool)  # 100 atoms > m: singular Gram
    Z = ls_on_support(ds.val.Y[:2], ds.A, mask, device="cpu")
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z @ ds.A.T, ds.val.Y[:2], atol=1e-3)  # still fits the data


@pytest.mark.parametrize("support, match", [
    (np.ones((3, 99)), r"support must be of shape \(n_samples, n_components\)"),
    (np.full((3, 100), np.nan), "support must be finite"),
])
def test_ls_bad_support(ds, support, match):
    with pytest.raises(ValueError, match=match):
        ls_on_support(ds.val.Y[:3], ds.A, support)


def test_ls_bad_arguments(ds):
    with pytest.raises(ValueError, match=r"Y must be of shape \(n_samples, "):
        ls_on_support(np.ones((3, 4)), ds.A, np.ones((3, 100)))
    with pytest.raises(ValueError, match="threshold must be"):
        ls_on_support(ds.val.Y[:3], ds.A, np.ones((3, 100)), threshold=-1.0)
    with pytest.raises(ValueError, match="chunk_size must be"):
        ls_on_support(ds.val.Y[:3], ds.A, np.ones((3, 100)), chunk_size=0)


# --------------------------------------------------------------------------- frozen decoder
def test_frozen_decoder_with_true_dictionary_is_oracle_fista(ds):
    Y = ds.val.Y
    oracle = fista(Y, ds.A, 0.1, max_iter=100, device="cpu")
    np.testing.assert_array_equal(frozen_decoder_codes(Y, ds.A, np.zeros(ds.m), device="cpu"),
                                  oracle)
    np.testing.assert_array_equal(frozen_decoder_codes(Y, ds.A, device="cpu"), oracle)


def test_decoder_bias_is_subtracted(ds):
    b = np.random.default_rng(0).standard_normal(ds.m).astype(np.float32)
    Y = ds.val.Y[:50]
    np.testing.assert_allclose(frozen_decoder_codes(Y + b, ds.A, b, device="cpu"),
                               fista(Y, ds.A, 0.1, device="cpu"), atol=1e-5)
    Zt = frozen_decoder_codes(torch.as_tensor(Y + b), torch.as_tensor(ds.A), b, device="cpu")
    assert isinstance(Zt, torch.Tensor)
    np.testing.assert_allclose(Zt.numpy(), fista(Y, ds.A, 0.1, device="cpu"), atol=1e-5)


def test_refined_from_the_optimum_stays_there(ds):
    Y = ds.val.Y.astype(np.float64)
    A = ds.A.astype(np.float64)
    Z_opt = fista(Y, A, 0.1, max_iter=5000, tol=1e-12, device="cpu")
    Z_ref = refined_codes(Y, A, np.zeros(ds.m), Z_opt, max_iter=100, device="cpu")
    np.testing.assert_allclose(Z_ref, Z_opt, atol=1e-7)
    # a cold start with few iterations is measurably elsewhere: the check above can fail
    assert np.abs(frozen_decoder_codes(Y, A, max_iter=5, device="cpu") - Z_opt).max() > 1e-3


def test_frozen_decoder_bad_arguments(ds):
    with pytest.raises(ValueError, match=r"b_dec must be of shape \(m,\)"):
        frozen_decoder_codes(ds.val.Y, ds.A, np.zeros(ds.m + 1))
    with pytest.raises(ValueError, match="lam must be"):
        frozen_decoder_codes(ds.val.Y, ds.A, lam=-0.1)
    with pytest.raises(ValueError, match="Z0 must be of shape"):
        refined_codes(ds.val.Y, ds.A, None, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Z0 must be"):
        refined_codes(ds.val.Y, ds.A, None, None)


# --------------------------------------------------------------------------- dictionary variants
def test_renormalise_unit_columns_is_a_noop(ds):
    out = renormalise_columns(ds.A)
    assert out is not ds.A and out.dtype == ds.A.dtype
    np.testing.assert_allclose(out, ds.A, atol=1e-7)


def test_renormalise_scales_and_keeps_zero_columns():
    D = torch.tensor([[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]])
    out = renormalise_columns(D)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.0, 2 ** -0.5], [0.8, 0.0, -2 ** -0.5]]))


def test_with_true_norms_keeps_directions_and_sets_norms(ds):
    rng = np.random.default_rng(0)
    A = ds.A * rng.uniform(0.5, 2.0, ds.A.shape[1]).astype(np.float32)  # non-unit true norms
    perm = rng.permutation(100)
    D = (ds.A[:, perm] + 0.05 * rng.standard_normal(ds.A.shape)) * rng.uniform(0.1, 3.0, 100)
    out = with_true_norms(D, A)
    cos = np.sum(out * D, 0) / (np.linalg.norm(out, axis=0) * np.linalg.norm(D, axis=0))
    np.testing.assert_allclose(cos, 1.0, atol=1e-6)
    match = dictionary_diagnostics(D, A)["matching"]
    np.testing.assert_allclose(np.linalg.norm(out[:, match["code_index"]], axis=0),
                               np.linalg.norm(A[:, match["true_index"]], axis=0), rtol=1e-5)
    np.testing.assert_array_equal(match["code_index"][np.argsort(perm[match["code_index"]])],
                                  np.argsort(perm))  # the noisy permutation was undone


def test_with_true_norms_leaves_unmatched_atoms(ds):
    noise = 0.3 * np.random.default_rng(0).standard_normal((ds.m, 3))
    extra = ds.A[:, :3] + noise
    extra *= 2.5 / np.linalg.norm(extra, axis=0)  # worse-aligned copies, norm 2.5
    D = np.hstack([0.5 * ds.A, extra])  # 103 atoms, 100 true columns
    out = with_true_norms(D, ds.A)
    assert out.shape == D.shape
    norms = np.linalg.norm(out, axis=0)
    np.testing.assert_allclose(norms[:100], 1.0, atol=1e-5)  # matched: the true norms
    np.testing.assert_allclose(out[:, 100:], extra, atol=1e-6)  # unmatched: untouched
    with pytest.raises(ValueError, match="D must be an array with as many rows as A"):
        with_true_norms(np.ones((3, 4)), ds.A)


@pytest.mark.cuda
def test_cuda(ds):
    Y = torch.as_tensor(ds.val.Y, device="cuda")
    A = torch.as_tensor(ds.A, device="cuda")
    Z = ls_on_support(Y, A, torch.as_tensor(ds.val.Z > 0, device="cuda"))
    assert Z.device.type == "cuda"
    np.testing.assert_allclose(Z.cpu().numpy(), ds.val.Z, atol=2e-5)
    Zf = frozen_decoder_codes(Y, A, torch.zeros(ds.m, device="cuda"))
    np.testing.assert_allclose(Zf.cpu().numpy(), fista(ds.val.Y, ds.A, device="cpu"), atol=1e-4)
    assert with_true_norms(A, A).device.type == "cuda"
