"""Batched ISTA / FISTA for the Lasso, in torch (CPU and CUDA).

Each row ``y`` of ``Y`` is solved independently::

    minimise over z   0.5 * ||y - D z||^2 + lam * ||z||_1      (optionally z >= 0)

with step ``1 / L``, ``L = ||D||_2^2`` (SPEC section 3). Shapes follow the project's
convention: ``Y`` is ``(n_samples, m)``, the dictionary ``D`` is ``(m, n_components)`` with atoms
as columns, and the codes ``Z`` are ``(n_samples, n_components)`` so that ``Y ~ Z @ D.T``.

Numpy inputs give numpy outputs; torch inputs give torch outputs on the input's device.
float64 inputs are solved in float64, everything else in float32.

>>> import numpy as np
>>> D = np.eye(3)
>>> np.round(fista(np.array([[1.0, 0.05, -2.0]]), D, lam=0.1, positive=False, max_iter=50,
...                device="cpu"), 4)
array([[ 0.9,  0. , -1.9]])
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from . import _fista_fast
from ._fista_fast import _fista_core
from ._device import resolve_device
from ._validation import check_array, check_bool, check_choice, check_float, check_int, fail

__all__ = ["lipschitz_constant", "fista", "ista", "lasso_objective", "FISTA", "LIPSCHITZ_SAFETY"]

#: Factor applied to the Lanczos (power-iteration) estimate of ``||D||_2^2`` so that the step ``1/L``
#: never exceeds ``1 / ||D||_2^2`` (the estimate approaches the true value from below).
LIPSCHITZ_SAFETY = 1.001

FORMS = ("auto", "factored", "gram")


# --------------------------------------------------------------------------- conversions
def _dtype_of(*arrays) -> torch.dtype:
    """float64 when any input is float64, float32 otherwise."""
    for X in arrays:
        if X is not None and X.dtype in (np.float64, torch.float64):
            return torch.float64
    return torch.float32


def _to_tensor(X, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        return X.detach().to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(X), dtype=dtype, device=device)


def _compute_device(Y, device) -> torch.device:
    if device is None:
        return Y.device if isinstance(Y, torch.Tensor) else resolve_device("auto")
    return resolve_device(device)


def _like(out: torch.Tensor, ref):
    """Return ``out`` as the same kind as ``ref``: numpy array, or tensor on ``ref``'s device."""
    if isinstance(ref, torch.Tensor):
        return out.to(ref.device)
    return out.cpu().numpy()


def _check_Y_D(Y, D):
    Y = check_array("Y", Y, ndim=2)
    D = check_array("D", D, ndim=2)
    if D.shape[0] < 1 or D.shape[1] < 1:
        fail("D", "a non-empty (m, n_components) matrix", f"shape {tuple(D.shape)}")
    if Y.shape[1] != D.shape[0]:
        fail("Y", f"of shape (n_samples, {D.shape[0]}) to match D of shape {tuple(D.shape)} "
             "(Y.shape[1] == D.shape[0])", f"shape {tuple(Y.shape)}")
    return Y, D


def _check_codes(name: str, Z, n_samples: int, n_components: int):
    Z = check_array(name, Z, ndim=2)
    if tuple(Z.shape) != (n_samples, n_components):
        fail(name, f"of shape (n_samples, n_components) = ({n_samples}, {n_components})",
             f"shape {tuple(Z.shape)}")
    return Z


# --------------------------------------------------------------------------- Lipschitz
def _top_eigenvalue(D: torch.Tensor, n_iter: int, tol: float) -> float:
    """Largest eigenvalue of ``D D^T`` (= that of ``D^T D``), i.e. ``||D||_2^2``.

    Lanczos iteration (the Krylov refinement of power iteration) with full
    re-orthogonalisation, in float64 on ``D``'s device, on the smaller Gram matrix ``G``
    (s, s), from a fixed positive start vector. After ``j`` steps the top Ritz value ``theta``
    is a lower bound of the eigenvalue; iteration stops when the Ritz residual
    ``beta_j |u_last|`` is below ``tol * theta`` (then the error is below that bound), when the
    Krylov space is exhausted, or after ``n_iter`` steps. Plain power iteration needs thousands
    of steps where the top of the spectrum is crowded (random ``D`` with ``m << n``: still
    0.7 % low after 100 steps at m = 139, n = 10,000); Lanczos converges in a few dozen.
    """
    m, n = D.shape
    G = (D @ D.T if m <= n else D.T @ D).to(torch.float64)  # (s, s)
    s = G.shape[0]
    k_max = min(n_iter, s)
    Q = torch.zeros((k_max, s), dtype=torch.float64, device=G.device)
    gen = torch.Generator().manual_seed(0)
    q = (torch.rand(s, generator=gen, dtype=torch.float64) + 0.5).to(G.device)
    q /= torch.linalg.vector_norm(q)
    alpha: list[float] = []
    beta: list[float] = []
    theta = 0.0
    for j in range(k_max):
        Q[j] = q
        w = G @ q
        alpha.append(float(q @ w))
        basis = Q[: j + 1]
        for _ in range(2):  # full re-orthogonalisation, twice for stability
            w -= basis.T @ (basis @ w)
        b = float(torch.linalg.vector_norm(w))
        vals, vecs = scipy.linalg.eigh_tridiagonal(
            np.array(alpha), np.array(beta), select="i", select_range=(j, j))
        theta = float(vals[0])
        if theta <= 0.0:
            return 0.0
        if b <= 1e-10 * theta or b * abs(vecs[-1, 0]) <= tol * theta:  # exhausted or converged
            break
        beta.append(b)
        q = w / b
    return theta


def lipschitz_constant(D, *, n_iter: int = 100, tol: float = 1e-7) -> float:
    """Lipschitz constant of the Lasso gradient, ``||D||_2^2``, times :data:`LIPSCHITZ_SAFETY`.

    Lanczos iteration (power iteration's Krylov refinement) on the smaller of ``D D^T`` and
    ``D^T D`` from a fixed start vector, stopped when the Ritz residual falls below
    ``tol`` relative to the estimate. Runs on ``D``'s device (numpy inputs on the CPU); the
    Gram matrix is formed in ``D``'s precision, the iteration in float64. Deterministic.

    Parameters
    ----------
    D : array or tensor, shape (m, n_components)
        Dictionary, atoms as columns.
    n_iter : int, default 100
        Maximum number of Lanczos steps (>= 1); at most ``min(m, n_components)`` are needed.
    tol : float, default 1e-7
        Stopping threshold on the relative Ritz residual (>= 0).

    Returns
    -------
    float
        ``LIPSCHITZ_SAFETY * ||D||_2^2`` (0 for an all-zero ``D``).
    """
    D = check_array("D", D, ndim=2)
    n_iter = check_int("n_iter", n_iter, low=1)
    tol = check_float("tol", tol, low=0.0)
    if D.shape[0] < 1 or D.shape[1] < 1:
        fail("D", "a non-empty (m, n_components) matrix", f"shape {tuple(D.shape)}")
    device = D.device if isinstance(D, torch.Tensor) else torch.device("cpu")
    Dt = _to_tensor(D, _dtype_of(D), device)
    return LIPSCHITZ_SAFETY * _top_eigenvalue(Dt, n_iter, tol)


# --------------------------------------------------------------------------- core
def _resolve_form(form: str, m: int, n_components: int) -> str:
    if form == "auto":
        return "gram" if n_components < 2 * m else "factored"
    return form


def fista(Y, D, lam: float = 0.1, *, positive: bool = True, max_iter: int = 100,
          tol: float = 0.0, Z0=None, L: float | None = None, form: str = "auto",
          momentum: bool = True, device=None, return_n_iter: bool = False,
          restart: bool = False, working_set: bool = False, working_set_size: int = 16):
    """Solve one Lasso per row of ``Y`` with FISTA (or ISTA when ``momentum=False``).

    Objective per sample: ``0.5 * ||y - D z||^2 + lam * ||z||_1``, with ``z >= 0`` when
    ``positive``. Step ``1 / L``. With the defaults the iterates are the textbook ones (and
    bit-for-bit those of earlier versions); ``restart`` / ``working_set`` switch to the faster
    solvers of :mod:`csood._fista_fast` (same optimum, different iterates): to reach the
    optimum quickly use e.g. ``fista(Y, D, tol=1e-5, max_iter=1000, working_set=True,
    restart=True)``.

    Parameters
    ----------
    Y : array or tensor, shape (n_samples, m)
        Observations, one sample per row.
    D : array or tensor, shape (m, n_components)
        Dictionary, atoms as columns.
    lam : float, default 0.1
        Penalty, >= 0.
    positive : bool, default True
        Constrain codes to be non-negative (prox ``relu(v - lam/L)``; else soft-threshold).
    max_iter : int, default 100
        Maximum number of iterations (>= 1).
    tol : float, default 0.0
        When > 0, stop once ``max_i ||z_i^{t+1} - z_i^t|| / max(||z_i^t||, 1e-12) < tol``;
        0 runs exactly ``max_iter`` iterations.
    Z0 : array or tensor, shape (n_samples, n_components), optional
        Warm start (default zeros). Not modified.
    L : float, optional
        Lipschitz constant (> 0); default :func:`lipschitz_constant` of ``D``.
    form : {"auto", "factored", "gram"}, default "auto"
        Gradient as ``(Z D^T - Y) D`` ("factored", ~2 m n_components flops per sample and
        iteration) or ``Z G - Y D`` with ``G = D^T D`` ("gram", ~n_components^2); "auto" picks
        "gram" iff ``n_components < 2 m``.
    momentum : bool, default True
        Nesterov/FISTA extrapolation; False gives ISTA.
    device : str or torch.device, optional
        Where to compute. None: a tensor ``Y`` stays on its device, numpy goes to
        ``resolve_device("auto")``.
    return_n_iter : bool, default False
        Also return the number of iterations run.
    restart : bool, default False
        O'Donoghue--Candes gradient adaptive restart of the momentum, per sample. With
        ``restart`` or ``working_set``, ``tol`` is tested per sample every 10 iterations
        (converged samples are frozen and dropped from the batch) instead of on the maximum
        over samples at every iteration.
    working_set : bool, default False
        Solve each sample on a working set of atoms (largest correlations), in the Gram form
        of the set with its own (much smaller) Lipschitz constant, and grow it until the full
        problem's optimality conditions hold (see :func:`csood._fista_fast.working_set`);
        ``max_iter`` then bounds each working-set solve and ``n_iter`` is their sum. ``L`` and
        ``form`` are not used.
    working_set_size : int, default 16
        Initial working-set size (>= 1); it doubles while a support fills over half of it.

    Returns
    -------
    Z : array or tensor, shape (n_samples, n_components)
        Codes; numpy if ``Y`` is numpy, else a tensor on ``Y``'s device. float64 if any of
        ``Y``, ``D``, ``Z0`` is float64, float32 otherwise.
    n_iter : int
        Only with ``return_n_iter=True``.
    """
    Y, D = _check_Y_D(Y, D)
    if Z0 is not None:
        Z0 = _check_codes("Z0", Z0, Y.shape[0], D.shape[1])
    lam = check_float("lam", lam, low=0.0)
    positive = check_bool("positive", positive)
    max_iter = check_int("max_iter", max_iter, low=1)
    tol = check_float("tol", tol, low=0.0)
    form = check_choice("form", form, FORMS)
    momentum = check_bool("momentum", momentum)
    return_n_iter = check_bool("return_n_iter", return_n_iter)
    restart = check_bool("restart", restart)
    working_set = check_bool("working_set", working_set)
    working_set_size = check_int("working_set_size", working_set_size, low=1)
    if L is not None:
        L = check_float("L", L, low=0.0, low_inclusive=False)
    dev = _compute_device(Y, device)
    dtype = _dtype_of(Y, D, Z0)
    Yt, Dt = _to_tensor(Y, dtype, dev), _to_tensor(D, dtype, dev)
    Z0t = None if Z0 is None else _to_tensor(Z0, dtype, dev)
    if working_set and not bool(Dt.any()):
        fail("D", "a matrix with at least one non-zero entry", "an all-zero matrix")
    if L is None and not working_set:
        L = LIPSCHITZ_SAFETY * _top_eigenvalue(Dt, 100, 1e-7)
        if L == 0.0:
            fail("D", "a matrix with at least one non-zero entry", "an all-zero matrix")
    if working_set:
        Z, n_iter, _ = _fista_fast.working_set(
            Yt, Dt, lam, positive=positive, max_iter=max_iter, tol=tol, Z0=Z0t,
            size=working_set_size, restart=restart, momentum=momentum)
    elif restart:
        Z, n_iter = _fista_fast.full_problem(
            Yt, Dt, lam, positive=positive, max_iter=max_iter, tol=tol, Z0=Z0t, L=L,
            form=_resolve_form(form, *D.shape), restart=restart, momentum=momentum)
    else:
        Z, n_iter = _fista_core(Yt, Dt, lam, positive=positive, max_iter=max_iter, tol=tol,
                                Z0=Z0t, L=L, form=_resolve_form(form, *D.shape),
                                momentum=momentum)
    Z = _like(Z, Y)
    return (Z, n_iter) if return_n_iter else Z


def ista(Y, D, lam: float = 0.1, *, positive: bool = True, max_iter: int = 100,
         tol: float = 0.0, Z0=None, L: float | None = None, form: str = "auto", device=None,
         return_n_iter: bool = False):
    """ISTA: :func:`fista` with ``momentum=False`` (same parameters and returns)."""
    return fista(Y, D, lam, positive=positive, max_iter=max_iter, tol=tol, Z0=Z0, L=L,
                 form=form, momentum=False, device=device, return_n_iter=return_n_iter)


def lasso_objective(Y, D, Z, lam: float):
    """Per-sample Lasso objective ``0.5 * ||y - D z||^2 + lam * ||z||_1``.

    Parameters
    ----------
    Y : array or tensor, shape (n_samples, m)
    D : array or tensor, shape (m, n_components)
    Z : array or tensor, shape (n_samples, n_components)
    lam : float
        >= 0.

    Returns
    -------
    array or tensor, shape (n_samples,)
        Same kind as ``Y`` (tensor on ``Y``'s device); computed on ``Y``'s device (numpy on
        the CPU), float64 if any input is float64.
    """
    Y, D = _check_Y_D(Y, D)
    Z = _check_codes("Z", Z, Y.shape[0], D.shape[1])
    lam = check_float("lam", lam, low=0.0)
    dev = Y.device if isinstance(Y, torch.Tensor) else torch.device("cpu")
    dtype = _dtype_of(Y, D, Z)
    Yt, Dt, Zt = (_to_tensor(X, dtype, dev) for X in (Y, D, Z))
    with torch.no_grad():
        R = Zt @ Dt.T - Yt
        obj = 0.5 * (R * R).sum(dim=1) + lam * Zt.abs().sum(dim=1)
    return _like(obj, Y)


# --------------------------------------------------------------------------- estimator
class FISTA:
    """scikit-learn-style wrapper: ``fit(D)`` fixes the dictionary, ``transform(Y)`` codes.

    Parameters
    ----------
    lam, positive, max_iter, tol
        As in :func:`fista`.
    device : str or torch.device, default "auto"
        Where to compute (tensors are moved there and returned on their own device).

    Attributes
    ----------
    dictionary_ : array or tensor, shape (m, n_components)
        The dictionary given to :meth:`fit`.
    lipschitz_ : float
        ``lipschitz_constant(dictionary_)``.
    n_iter_ : int
        Iterations used by the last :meth:`transform`.
    """

    def __init__(self, lam: float = 0.1, positive: bool = True, max_iter: int = 100,
                 tol: float = 0.0, device="auto"):
        self.lam = lam
        self.positive = positive
        self.max_iter = max_iter
        self.tol = tol
        self.device = device

    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters by name."""
        return {k: getattr(self, k) for k in ("lam", "positive", "max_iter", "tol", "device")}

    def __repr__(self) -> str:
        return f"FISTA({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def fit(self, D, y=None) -> "FISTA":
        """Store the dictionary ``D`` of shape ``(m, n_components)`` and its Lipschitz constant."""
        D = check_array("D", D, ndim=2)
        resolve_device(self.device)
        L = lipschitz_constant(D)
        if L == 0.0:
            fail("D", "a matrix with at least one non-zero entry", "an all-zero matrix")
        self.dictionary_, self.lipschitz_ = D, L
        return self

    def transform(self, Y, Z0=None):
        """Codes of shape ``(n_samples, n_components)`` for ``Y`` of shape ``(n_samples, m)``."""
        if not hasattr(self, "dictionary_"):
            raise RuntimeError("This FISTA instance is not fitted yet: call fit(D) first.")
        Z, self.n_iter_ = fista(Y, self.dictionary_, self.lam, positive=self.positive,
                                max_iter=self.max_iter, tol=self.tol, Z0=Z0, L=self.lipschitz_,
                                device=self.device, return_n_iter=True)
        return Z
