"""The three-concept toy model of compositional shift (chapter ``chap-toy``).

Concepts ``a1, a2, a3`` in the plane (m = 2, n = 3, k = 2): ``a1`` on the x-axis, ``a2`` at angle
``alpha`` from it, ``a3`` a further ``beta`` on. Training supports {1, 2} and {2, 3}, OOD support
{1, 3}, label ``z1 > tau``. The ID-perfect linear classifier predicts positive on OOD data iff
``z1 > tau + rho z3``, ``rho = |a3| sin(beta) / (|a1| sin(alpha))``; its OOD accuracy is
``1 - rho/2`` if ``rho <= 1 - tau`` (case 1), else ``tau + (1 - tau)**2 / (2 rho)`` (case 2).
Angles are in radians unless ``degrees=True``; functions of angles broadcast over arrays.
Figures: :mod:`csood.plotting`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validation import check_choice, check_float, check_int, fail

__all__ = ["toy_dictionary", "rho", "ood_case", "accuracy_from_rho", "ood_accuracy_analytic",
           "LinearBoundary", "id_boundary", "sample_toy", "boundary_accuracy",
           "simulate_ood_accuracy", "fit_id_classifier", "decode_pairs"]

#: support of each split: latent indices (0-based) of the two active concepts
SUPPORTS = {"id": ((0, 1), (1, 2)), "ood": ((0, 2),)}
UNIT = (1.0, 1.0, 1.0)


# ----------------------------------------------------------------------------- checks
def _angle(name, value, degrees):
    high, allowed = (180.0, "in (0, 180) degrees") if degrees else (np.pi, "in (0, pi) radians")
    try:
        x = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        fail(name, "an angle " + allowed, value)
    bad = ~(np.isfinite(x) & (x > 0) & (x < high))
    if bad.any():
        fail(name, "an angle " + allowed, float(x[bad].flat[0]) if x.ndim else value)
    return np.deg2rad(x) if degrees else x


def _norms(norms):
    try:
        v = np.asarray(norms, dtype=float)
    except (TypeError, ValueError):
        v = np.full(1, np.nan)
    if v.shape != (3,) or not (np.isfinite(v).all() and (v > 0).all()):
        fail("norms", "three positive finite numbers (|a1|, |a2|, |a3|)", norms)
    return v


def _tau(tau):
    return check_float("tau", tau, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)


def _dictionary(A):
    try:
        A = np.asarray(A, dtype=float)
    except (TypeError, ValueError):
        fail("A", "a finite array of shape (2, 3)", A)
    if A.shape != (2, 3) or not np.isfinite(A).all():
        fail("A", "a finite array of shape (2, 3)", f"array of shape {A.shape}")
    return A


def _out(x):  # plain Python scalar for 0-d results, the array otherwise
    return x.item() if np.ndim(x) == 0 else x


# ----------------------------------------------------------------------------- closed form
def toy_dictionary(alpha, beta, norms=UNIT, *, degrees=False) -> np.ndarray:
    """The mixing matrix of the toy model.

    Parameters
    ----------
    alpha, beta : float
        Angle from ``a1`` to ``a2`` and from ``a2`` to ``a3``, in (0, pi), or (0, 180) with
        ``degrees=True``.
    norms : sequence of 3 floats, default (1, 1, 1)
        Lengths ``|a1|, |a2|, |a3|``.
    degrees : bool, default False
        Read the angles in degrees.

    Returns
    -------
    A : ndarray, shape (2, 3)
        Columns ``a1 = |a1| (1, 0)``, ``a2`` at angle ``alpha``, ``a3`` at ``alpha + beta``.
    """
    a, b, r = _angle("alpha", alpha, degrees), _angle("beta", beta, degrees), _norms(norms)
    if a.ndim or b.ndim:
        fail("alpha and beta", "single angles for toy_dictionary", (alpha, beta))
    phi = np.array([0.0, a, a + b])
    return np.vstack([np.cos(phi), np.sin(phi)]) * r


def rho(alpha, beta, norms=UNIT, *, degrees=False):
    """Slope of the ID-perfect boundary in the OOD latents: on OOD data the classifier
    predicts positive iff ``z1 > tau + rho * z3``. Parameters as :func:`toy_dictionary`,
    but the angles may be arrays (broadcast against each other).

    Returns
    -------
    float or ndarray
        ``|a3| sin(beta) / (|a1| sin(alpha)) > 0``; a float for scalar angles.
    """
    a, b, r = _angle("alpha", alpha, degrees), _angle("beta", beta, degrees), _norms(norms)
    return _out(r[2] * np.sin(b) / (r[0] * np.sin(a)))


def accuracy_from_rho(rho, tau=0.5):
    """OOD accuracy of the ID-perfect classifier given its slope ``rho`` (float or array,
    >= 0) and the threshold ``tau`` in (0, 1).

    Returns
    -------
    float or ndarray
        ``1 - rho/2`` where ``rho <= 1 - tau`` (case 1), else ``tau + (1-tau)**2 / (2 rho)``.
    """
    r, tau = np.asarray(rho, dtype=float), _tau(tau)
    if not (np.isfinite(r).all() and (r >= 0).all()):
        fail("rho", "finite and >= 0", rho)
    acc = np.where(r <= 1 - tau, 1 - r / 2, tau + (1 - tau) ** 2 / (2 * np.maximum(r, 1e-300)))
    return _out(acc)


def ood_case(alpha, beta, tau=0.5, norms=UNIT, *, degrees=False):
    """Which closed form applies; parameters as :func:`ood_accuracy_analytic`.

    Returns
    -------
    int or ndarray of int
        1 where ``rho <= 1 - tau`` (the ID boundary leaves the OOD parallelogram through the
        far edge ``z3 = 1``; the far corner ``a1 + a3`` is classified positive), else 2 (it
        leaves through the edge ``z1 = 1`` and cuts the far corner off).
    """
    r, tau = np.asarray(rho(alpha, beta, norms, degrees=degrees)), _tau(tau)
    return _out(np.where(r <= 1 - tau, 1, 2))


def ood_accuracy_analytic(alpha, beta, tau=0.5, norms=UNIT, *, degrees=False):
    """Closed-form OOD accuracy of the ID-perfect linear classifier.

    Parameters
    ----------
    alpha, beta : float or array
        Angles as in :func:`toy_dictionary`, broadcast against each other.
    tau : float in (0, 1), default 0.5
        Label threshold on ``z1``.
    norms, degrees
        As in :func:`toy_dictionary`.

    Returns
    -------
    float or ndarray
        :func:`accuracy_from_rho` of :func:`rho`.
    """
    return accuracy_from_rho(rho(alpha, beta, norms, degrees=degrees), tau)


# ----------------------------------------------------------------------------- geometry
class LinearBoundary(NamedTuple):
    """The linear classifier ``normal @ y > offset`` (``normal`` of unit length)."""

    normal: np.ndarray
    offset: float

    def predict(self, Y):
        """Boolean predictions for observations ``Y`` of shape (n_samples, 2)."""
        return Y @ self.normal > self.offset


def _boundary_through(point, direction, towards):
    n = np.array([-direction[1], direction[0]]) / np.linalg.norm(direction)
    n = n if n @ towards > 0 else -n
    return LinearBoundary(n, float(n @ point))


def id_boundary(A, tau=0.5) -> LinearBoundary:
    """The ID-perfect classifier for ``A`` (shape (2, 3)), built in observation space: the
    line through ``tau * a1`` parallel to ``a2``, positive on the side of ``a1``."""
    A, tau = _dictionary(A), _tau(tau)
    return _boundary_through(tau * A[:, 0], A[:, 1], A[:, 0])


def sample_toy(A, split="ood", n_samples=1000, *, seed=0):
    """Draw ``n_samples`` (>= 1) points of ``split`` for the matrix ``A`` (shape (2, 3)).

    ``split="id"`` uses support {1, 2} or {2, 3} with probability 1/2 each, ``"ood"`` uses
    {1, 3}; active latents are U(0, 1). Returns latents ``Z`` (n_samples, 3) and
    observations ``Y = Z @ A.T`` (n_samples, 2), drawn with the integer ``seed`` (>= 0).
    """
    A = _dictionary(A)
    check_choice("split", split, SUPPORTS)
    n_samples = check_int("n_samples", n_samples, low=1)
    return _sample(A, split, n_samples, np.random.default_rng(check_int("seed", seed, low=0)))


def _sample(A, split, n_samples, rng):
    pairs = np.array(SUPPORTS[split])
    which = pairs[rng.integers(len(pairs), size=n_samples)]
    Z = np.zeros((n_samples, 3))
    np.put_along_axis(Z, which, rng.random((n_samples, 2)), axis=1)
    return Z, Z @ A.T


def boundary_accuracy(A, boundary, tau=0.5, split="ood", *, n_samples=100_000, seed=0) -> float:
    """Monte-Carlo accuracy of ``boundary`` (a :class:`LinearBoundary`) against the label
    ``z1 > tau`` on ``n_samples`` fresh points of ``split``; ``A``, ``split``, ``n_samples``
    and ``seed`` as in :func:`sample_toy`."""
    tau = _tau(tau)
    Z, Y = sample_toy(A, split, n_samples, seed=seed)
    return float(np.mean(boundary.predict(Y) == (Z[:, 0] > tau)))


def simulate_ood_accuracy(alpha, beta, tau=0.5, *, n_samples=100_000, seed=0, norms=UNIT,
                          degrees=False):
    """Monte-Carlo OOD accuracy of the ID-perfect classifier, without the closed form.

    For every (broadcast) pair of angles ``alpha, beta`` (``tau``, ``norms``, ``degrees`` as
    in :func:`ood_accuracy_analytic`): build ``A`` with :func:`toy_dictionary`, the boundary
    as :func:`id_boundary` does, draw ``n_samples`` (>= 1) fresh OOD points ``z1 a1 + z3 a3``
    and compare the prediction with ``z1 > tau``. One generator seeded by ``seed`` (>= 0)
    feeds all grid points in C order, so their errors are independent. Returns a float, or
    an array of the broadcast shape.
    """
    a, b = np.broadcast_arrays(_angle("alpha", alpha, degrees), _angle("beta", beta, degrees))
    tau, norms = _tau(tau), _norms(norms)
    n_samples = check_int("n_samples", n_samples, low=1)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    acc = np.empty(a.shape)
    for idx in np.ndindex(a.shape):
        A = toy_dictionary(a[idx], b[idx], norms)
        Z, Y = _sample(A, "ood", n_samples, rng)
        boundary = _boundary_through(tau * A[:, 0], A[:, 1], A[:, 0])
        acc[idx] = np.mean(boundary.predict(Y) == (Z[:, 0] > tau))
    return _out(acc)


# ----------------------------------------------------------------------------- learners
def fit_id_classifier(A, tau=0.5, *, n_samples=20_000, seed=0, C=1e4) -> LinearBoundary:
    """Fit a logistic regression to ``n_samples`` (>= 2) in-distribution points (drawn by
    :func:`sample_toy` with ``seed``) labelled ``z1 > tau``; return its boundary as a
    :class:`LinearBoundary`. ``C`` (> 0) is scikit-learn's inverse L2 penalty: large means
    nearly unregularised."""
    from sklearn.linear_model import LogisticRegression

    A, tau = _dictionary(A), _tau(tau)
    n_samples = check_int("n_samples", n_samples, low=2)
    C = check_float("C", C, low=0.0, low_inclusive=False)
    Z, Y = sample_toy(A, "id", n_samples, seed=seed)
    clf = LogisticRegression(C=C, max_iter=10_000, tol=1e-10).fit(Y, Z[:, 0] > tau)
    w, b = clf.coef_[0], clf.intercept_[0]
    return LinearBoundary(w / np.linalg.norm(w), float(-b / np.linalg.norm(w)))


def decode_pairs(A, Y, *, atol=1e-9):
    """Sparse (k = 2) decoding by exhaustive search: for every support {i, j}, solve
    ``y = z_i a_i + z_j a_j`` and keep it if the solution lies in ``[0, 1]^2``.

    Parameters
    ----------
    A : array, shape (2, 3)
    Y : array, shape (n_samples, 2)
    atol : float, default 1e-9
        Slack on the bounds, for points on a cone's edge.

    Returns
    -------
    Z_hat : ndarray, shape (n_samples, 3)
        Latents from the first feasible support in the order {1, 2}, {2, 3}, {1, 3}; zeros
        where none is feasible.
    n_feasible : ndarray of int, shape (n_samples,)
        How many supports explain each point; with ``alpha + beta > pi`` (disjoint pair
        cones) it is 1 for almost every point, so the decoding is unique.
    """
    A = _dictionary(A)
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[1] != 2 or not np.isfinite(Y).all():
        fail("Y", "a finite array of shape (n_samples, 2)", f"array of shape {Y.shape}")
    Z_hat, n_feasible = np.zeros((len(Y), 3)), np.zeros(len(Y), dtype=int)
    for pair in ((0, 1), (1, 2), (0, 2)):
        if abs(np.linalg.det(A[:, pair])) < 1e-12 * np.prod(np.linalg.norm(A[:, pair], axis=0)):
            continue  # parallel columns (alpha + beta = pi): this support spans a line only
        c = np.linalg.solve(A[:, pair], Y.T).T
        ok = ((c >= -atol) & (c <= 1 + atol)).all(axis=1)
        first = ok & (n_feasible == 0)
        Z_hat[np.ix_(first, pair)] = c[first]
        n_feasible += ok
    return Z_hat, n_feasible
