"""Linear probe of SPEC §3: supervised ridge regression from observations to latents.

The probe is the skyline for *linear* read-outs: it sees the true latents of the train split and
fits ``Z ≈ Y W.T`` by ridge regression without intercept. The penalty α is chosen from a small
grid by efficient leave-one-out cross-validation (scikit-learn's :class:`~sklearn.linear_model.
RidgeCV` in its closed-form LOO mode), one α shared by all latents. Its codes are its
predictions.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import RidgeCV

from csood._matching import to_numpy
from csood._validation import check_array, fail

__all__ = ["DEFAULT_ALPHAS", "LinearProbe", "fit_linear_probe"]

#: The α grid of SPEC §3.
DEFAULT_ALPHAS = (1e-6, 1e-4, 1e-2, 1.0, 10.0)


def _check_alphas(alphas):
    values = alphas if isinstance(alphas, (list, tuple, np.ndarray)) else [alphas]
    values = list(np.ravel(np.asarray(values, dtype=object)))
    ok = len(values) > 0 and all(
        isinstance(a, numbers.Real) and not isinstance(a, bool) and np.isfinite(a) and a > 0 for a in values
    )
    if not ok:
        fail("alphas", "a non-empty sequence of finite numbers > 0", alphas)
    return tuple(float(a) for a in values)


def _matrix(name, X):
    return np.asarray(check_array(name, to_numpy(X), ndim=2), dtype=np.float64)


class LinearProbe(BaseEstimator, TransformerMixin):
    """Ridge regression from observations to latents, α by leave-one-out CV.

    Parameters
    ----------
    alphas : sequence of float > 0
        Candidate ridge penalties (default ``(1e-6, 1e-4, 1e-2, 1, 10)``, SPEC §3).

    Attributes
    ----------
    alpha_ : float
        The α with the lowest leave-one-out mean squared error over all latents.
    coef_ : ndarray of shape (n_latents, m)
        Regression weights; codes are ``Y @ coef_.T``.
    best_score_ : float
        Leave-one-out score (negative mean squared error) of ``alpha_``.
    n_features_in_ : int
        ``m``, the observation dimension seen in :meth:`fit`.

    Examples
    --------
    >>> probe = LinearProbe().fit(Y_train, Z_train)      # doctest: +SKIP
    >>> codes_val = probe.transform(Y_val)              # doctest: +SKIP
    """

    def __init__(self, alphas=DEFAULT_ALPHAS):
        self.alphas = alphas

    def fit(self, Y, Z):
        """Fit the probe.

        Parameters
        ----------
        Y : array of shape (n_samples, m)
            Observations (numpy array or torch tensor).
        Z : array of shape (n_samples, n_latents)
            True latents of the same samples.

        Returns
        -------
        self : LinearProbe
        """
        alphas = _check_alphas(self.alphas)
        Y = _matrix("Y", Y)
        Z = _matrix("Z", Z)
        if Z.shape[0] != Y.shape[0]:
            fail("Z", f"an array with as many rows as Y ({Y.shape[0]})", f"shape {Z.shape}")
        if Y.shape[0] < 2:
            fail("Y", "an array with at least 2 rows (samples)", f"shape {Y.shape}")
        ridge = RidgeCV(alphas=alphas, fit_intercept=False).fit(Y, Z)
        self.alpha_ = float(ridge.alpha_)
        self.best_score_ = float(ridge.best_score_)
        self.coef_ = np.asarray(ridge.coef_, dtype=np.float64).reshape(Z.shape[1], Y.shape[1])
        self.n_features_in_ = Y.shape[1]
        return self

    def transform(self, Y):
        """Codes of new observations.

        Parameters
        ----------
        Y : array of shape (n_samples, m)

        Returns
        -------
        ndarray of shape (n_samples, n_latents)
            ``Y @ coef_.T`` (float64).
        """
        if not hasattr(self, "coef_"):
            raise NotFittedError("This LinearProbe is not fitted yet; call fit(Y, Z) first.")
        Y = _matrix("Y", Y)
        if Y.shape[1] != self.n_features_in_:
            fail("Y", f"an array with {self.n_features_in_} columns (as in fit)", f"shape {Y.shape}")
        return Y @ self.coef_.T

    def predict(self, Y):
        """Alias of :meth:`transform`: codes of shape (n_samples, n_latents)."""
        return self.transform(Y)

    def fit_transform(self, Y, Z):
        """Fit on ``(Y, Z)`` and return the codes of ``Y``, shape (n_samples, n_latents)."""
        return self.fit(Y, Z).transform(Y)


def fit_linear_probe(Y, Z, alphas=DEFAULT_ALPHAS):
    """Fit a :class:`LinearProbe` in one call.

    Parameters
    ----------
    Y : array of shape (n_samples, m)
        Observations of the train split.
    Z : array of shape (n_samples, n_latents)
        True latents of the same samples.
    alphas : sequence of float > 0
        Candidate ridge penalties.

    Returns
    -------
    LinearProbe
        The fitted probe (``alpha_``, ``coef_`` of shape (n_latents, m)).
    """
    return LinearProbe(alphas=alphas).fit(Y, Z)
