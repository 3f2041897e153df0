"""Compressed-sensing checks for the Theory chapter: restricted isometry and exact recovery.

Both functions draw their own random matrices and k-sparse vectors from one ``seed`` and are
independent of the ID/OOD data generator in :mod:`csood.data`.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_float, check_int, fail

__all__ = ["gaussian_unit_columns", "restricted_isometry", "recovery_rate"]


def gaussian_unit_columns(m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """A (m, n) matrix of i.i.d. N(0, 1) entries with every column scaled to unit norm."""
    A = rng.standard_normal((m, n))
    return A / np.linalg.norm(A, axis=0, keepdims=True)


def restricted_isometry(A, k: int, *, n_trials: int = 500, seed: int = 0) -> dict:
    """Estimate the restricted isometry constant of order ``k`` from random supports.

    For a support ``S`` of size ``k`` the sub-matrix ``A_S`` (m, k) satisfies
    ``(1 - d_S)||x||^2 <= ||A_S x||^2 <= (1 + d_S)||x||^2`` with
    ``d_S = max(s_max^2 - 1, 1 - s_min^2)`` from its extreme singular values. ``delta`` is
    the largest ``d_S`` over the sampled supports: a *lower* bound on the true constant
    ``delta_k`` (a maximum over all supports, which no one can enumerate).

    Parameters
    ----------
    A : array of shape (m, n)
        Matrix with (ideally) unit-norm columns.
    k : int
        Support size, ``1 <= k <= min(m, n)``.
    n_trials : int
        Number of random supports.
    seed : int
        Seed of the support draws.

    Returns
    -------
    dict
        ``delta`` (float), ``s_min`` and ``s_max`` (arrays of shape (n_trials,)) — the
        extreme singular values of each sampled ``A_S``.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or not np.isfinite(A).all():
        fail("A", "a finite 2-D array", f"array of shape {A.shape}")
    m, n = A.shape
    k = check_int("k", k, allowed=f"an integer with 1 <= k <= min(m, n) (= {min(m, n)})", low=1, high=min(m, n))
    n_trials = check_int("n_trials", n_trials, low=1)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    supports = np.argsort(rng.random((n_trials, n)), axis=1)[:, :k]       # (n_trials, k)
    sub = np.transpose(A[:, supports], (1, 0, 2))                           # (n_trials, m, k)
    s = np.linalg.svd(sub, compute_uv=False)                                # (n_trials, k)
    s_max, s_min = s[:, 0], s[:, -1]
    delta = float(np.max(np.maximum(s_max**2 - 1.0, 1.0 - s_min**2)))
    return {"delta": delta, "s_min": s_min, "s_max": s_max}


def recovery_rate(
    n_latents: int,
    k: int,
    m_values,
    *,
    n_trials: int = 100,
    lam: float = 1e-3,
    rel_error: float = 1e-2,
    max_iter: int = 3000,
    seed: int = 0,
    device=None,
) -> np.ndarray:
    """Fraction of random non-negative k-sparse vectors that FISTA recovers, for each ``m``.

    For each ``m`` a fresh Gaussian matrix with unit columns is drawn; ``n_trials`` vectors
    with ``k`` non-zeros uniform in (0, 1) are measured noiselessly and decoded with
    non-negative FISTA at a small penalty ``lam``. A vector counts as recovered when
    ``||z_hat - z|| <= rel_error * ||z||``.

    Parameters
    ----------
    n_latents, k : int
        Dimension and sparsity, ``0 < k < n_latents``.
    m_values : sequence of int
        Numbers of measurements, each in ``[1, n_latents]``.

    Returns
    -------
    ndarray of shape (len(m_values),)
        Recovery rate for each ``m``.
    """
    from .solvers import fista

    n = check_int("n_latents", n_latents, low=2)
    k = check_int("k", k, low=1, high=n - 1, allowed=f"an integer with 0 < k < n_latents (= {n})")
    ms = [check_int(f"m_values[{i}]", m, low=1, high=n) for i, m in enumerate(m_values)]
    if not ms:
        fail("m_values", "a non-empty sequence of integers", m_values)
    n_trials = check_int("n_trials", n_trials, low=1)
    lam = check_float("lam", lam, low=0.0)
    rel_error = check_float("rel_error", rel_error, low=0.0, low_inclusive=False)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    rates = np.empty(len(ms))
    for i, m in enumerate(ms):
        A = gaussian_unit_columns(m, n, rng)
        Z = np.zeros((n_trials, n))
        support = np.argsort(rng.random((n_trials, n)), axis=1)[:, :k]
        np.put_along_axis(Z, support, rng.uniform(0.05, 1.0, (n_trials, k)), axis=1)
        Y = Z @ A.T
        Z_hat = fista(Y, A, lam, positive=True, max_iter=max_iter, tol=1e-7, device=device)
        err = np.linalg.norm(Z_hat - Z, axis=1) / np.linalg.norm(Z, axis=1)
        rates[i] = float(np.mean(err <= rel_error))
    return rates
