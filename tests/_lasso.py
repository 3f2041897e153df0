"""Random Lasso problems shared by the solver tests."""

import numpy as np


def random_problem(m, n, n_samples, seed, *, density=0.1, dtype=np.float64):
    """Unit-column Gaussian ``D`` (m, n) and noisy observations ``Y`` (n_samples, m) of sparse
    non-negative codes with about ``density * n`` non-zeros per sample."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((m, n))
    D /= np.linalg.norm(D, axis=0)
    Z = np.where(rng.random((n_samples, n)) < density, rng.random((n_samples, n)), 0.0)
    Y = Z @ D.T + 0.05 * rng.standard_normal((n_samples, m))
    return Y.astype(dtype), D.astype(dtype)
