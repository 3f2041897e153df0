"""Dictionary learning by alternating minimisation: DL-FISTA (SPEC section 3).

**DL-FISTA** (SPEC section 3) alternates, on the *train* observations ``Y`` (n_samples, m):

1. codes: non-negative FISTA for every row of ``Y`` on the current dictionary ``D``
   (``fista_iter`` iterations, warm-started from the previous round's codes, step ``1/L`` with
   ``L = ||D||_2^2`` recomputed every round by :func:`csood.solvers.lipschitz_constant`);
2. dictionary: least squares ``D = Y^T Z (Z^T Z + eps I)^{-1}``, solved by a Cholesky
   factorisation of the (n_components, n_components) Gram matrix in float64 (never an explicit
   inverse), then every column rescaled to unit norm.

It stops when ``||D_new - D||_F / ||D||_F < tol`` or after ``max_rounds`` rounds.

That is ``schedule="paper"`` (the default). ``schedule="fast"`` (:mod:`csood._dl_schedule`)
starts with 10 warm-started inner iterations per round and extrapolated dictionary steps, and
grows the inner iterations to ``fista_iter`` as the dictionary settles; the run then ends with
the paper's rounds, so it stops at a fixed point of the same alternation.

Two implementation choices the SPEC leaves open:

* **Warm start across the renormalisation.** When column ``j`` of the least-squares solution
  has norm ``s_j`` and is divided by it, the warm-start codes of atom ``j`` are multiplied by
  ``s_j``: the reconstruction ``Z D^T`` the next round starts from is exactly the least-squares
  one.
* **Dead atoms.** An atom whose code column is all zero gets a zero least-squares column. With
  ``dead_atoms="resample"`` (default) it is replaced by a random training sample, normalised
  (drawn from the call's seeded generator), which gives the atom a new chance to be used; with
  ``dead_atoms="keep"`` the previous atom is kept. A replaced atom counts in the relative change,
  so a run that keeps resampling atoms does not stop early.

Softplus-Adam, the "direct" learner, is in :mod:`csood.softplus_adam`.

Everything runs in torch, float32 (float64 inputs too), on ``device``; the Cholesky factorisation
of the dictionary update is float64. Numpy inputs give numpy outputs; tensor inputs give tensors
on the input's device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ._dl_schedule import SCHEDULES, FastSchedule, Schedule, resolve_schedule
from ._matching import to_numpy
from ._validation import check_array, check_choice, check_float, check_int, fail
from .metrics import dictionary_diagnostics
from .solvers import _compute_device, _like, _to_tensor, fista, lipschitz_constant

__all__ = ["DLResult", "dl_fista", "DLFISTA", "DEAD_ATOMS", "SCHEDULES", "FastSchedule"]

DEAD_ATOMS = ("resample", "keep")
_DEAD_NORM = 1e-10


@dataclass
class DLResult:
    """Outcome of :func:`dl_fista`.

    Attributes
    ----------
    dictionary : array or tensor, shape (m, n_components)
        Learned dictionary, unit-norm columns.
    codes : array or tensor, shape (n_samples, n_components)
        FISTA codes of the training observations on the final ``dictionary`` (one last coding
        pass of ``fista_iter`` iterations, warm-started from the last round's codes).
    n_rounds : int
        Dictionary updates performed.
    converged : bool
        Whether the relative-change criterion fired before ``max_rounds``.
    history : dict of lists
        ``round`` (0 is the initial dictionary), ``rel_change`` (``||D_new - D||_F / ||D||_F``;
        NaN at round 0), ``objective`` (mean Lasso objective over the samples of the codes of
        that round on the dictionary they were computed with; at round 0 the zero codes),
        ``mean_cosine`` (matched mean |cosine| to ``reference``, only when one was given) and,
        for a schedule other than ``"paper"``, ``fista_iter`` (inner iterations of that round;
        0 at round 0).
    """

    dictionary: object
    codes: object
    n_rounds: int
    converged: bool
    history: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_dictionary(m: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Gaussian (m, n) matrix with unit-norm columns (on the CPU, float32)."""
    D = torch.randn((m, n), generator=gen)
    return D / torch.linalg.vector_norm(D, dim=0).clamp_(min=1e-12)


def _check_Y(name: str, Y):
    Y = check_array(name, Y, ndim=2)
    if Y.shape[0] < 1 or Y.shape[1] < 1:
        fail(name, "a non-empty (n_samples, m) array", f"shape {tuple(Y.shape)}")
    return Y


def _check_dictionary(name: str, D, m: int, n_components: int):
    D = check_array(name, D, ndim=2)
    if tuple(D.shape) != (m, n_components):
        fail(name, f"of shape (m, n_components) = ({m}, {n_components}) to match Y and "
             "n_components", f"shape {tuple(D.shape)}")
    norms = D.norm(dim=0) if isinstance(D, torch.Tensor) else np.linalg.norm(D, axis=0)
    if bool((norms == 0).any()):
        fail(name, "a matrix with non-zero columns", "a matrix with a zero column")
    return D


def _mean_objective(Y: torch.Tensor, D: torch.Tensor, Z: torch.Tensor, lam: float) -> float:
    R = Z @ D.T - Y
    return float((0.5 * (R * R).sum() + lam * Z.abs().sum()) / max(Y.shape[0], 1))


def _least_squares_dictionary(Y: torch.Tensor, Z: torch.Tensor, eps: float) -> torch.Tensor:
    """``Y^T Z (Z^T Z + eps I)^{-1}`` of shape (m, n) via Cholesky in float64.

    The products are formed in the working precision, the factorisation in float64. When the
    regularised Gram is not numerically positive definite the ridge is raised tenfold (from
    ``max(eps, 1e-10 * mean diagonal)``) until the factorisation succeeds.
    """
    G = (Z.T @ Z).to(torch.float64)  # (n, n)
    B = (Y.T @ Z).to(torch.float64)  # (m, n)
    diag = G.diagonal()
    ridge = eps
    floor = 1e-10 * max(float(diag.mean()), 1.0)
    for _ in range(12):
        chol, info = torch.linalg.cholesky_ex(G + ridge * torch.eye(G.shape[0], dtype=G.dtype,
                                                                    device=G.device))
        if int(info) == 0:
            break
        ridge = max(ridge * 10.0, floor)
    return torch.cholesky_solve(B.T, chol).T.to(Y.dtype)  # (m, n)


def _update_dictionary(Y, Z, D, eps, dead_atoms, gen):
    """Least-squares update, unit columns, dead atoms replaced; returns ``(D_new, Z_rescaled)``.

    ``Z`` is rescaled in place so that ``Z_rescaled @ D_new.T`` is the least-squares
    reconstruction (dead atoms' codes set to 0).
    """
    D_new = _least_squares_dictionary(Y, Z, eps)
    norms = torch.linalg.vector_norm(D_new, dim=0)
    dead = (norms <= _DEAD_NORM) | ~(Z != 0).any(dim=0)
    D_new /= torch.where(dead, torch.ones_like(norms), norms)
    Z *= torch.where(dead, torch.zeros_like(norms), norms)
    n_dead = int(dead.sum())
    if n_dead and dead_atoms == "keep":
        D_new[:, dead] = D[:, dead]
    elif n_dead:  # normalised random training samples (random atoms for all-zero samples)
        atoms = Y[torch.randint(Y.shape[0], (n_dead,), generator=gen).to(Y.device)].T
        atom_norms = torch.linalg.vector_norm(atoms, dim=0)
        fallback = _random_dictionary(D.shape[0], n_dead, gen).to(Y.device)
        D_new[:, dead] = torch.where(atom_norms > _DEAD_NORM,
                                     atoms / atom_norms.clamp(min=_DEAD_NORM), fallback)
    return D_new, Z


# --------------------------------------------------------------------------- DL-FISTA
def dl_fista(Y, n_components: int, *, lam: float = 0.1, max_rounds: int = 1000,
             fista_iter: int = 100, tol: float = 1e-5, eps: float = 1e-6, D_init=None,
             seed: int = 0, reference=None, history_every: int | None = None,
             dead_atoms: str = "resample", callback=None, device=None,
             schedule="paper") -> DLResult:
    """Learn a dictionary from the training observations ``Y`` by DL-FISTA (module docstring).

    Parameters
    ----------
    Y : array or tensor, shape (n_samples, m)
        Training observations only (never val or OOD).
    n_components : int
        Number of atoms (>= 1).
    lam : float, default 0.1
        Lasso penalty of the coding step (>= 0).
    max_rounds : int, default 1000
        Maximum number of rounds (>= 1).
    fista_iter : int, default 100
        FISTA iterations per round (>= 1); with ``schedule="fast"`` the most per round, reached
        as the dictionary settles, and those of the final coding pass.
    tol : float, default 1e-5
        Stop when ``||D_new - D||_F / ||D||_F < tol`` (>= 0; 0 runs ``max_rounds`` rounds). With
        ``schedule="fast"`` only rounds run with ``fista_iter`` iterations may stop the run.
    eps : float, default 1e-6
        Ridge of the least-squares update (>= 0).
    D_init : array or tensor, shape (m, n_components), optional
        Initial dictionary (columns are normalised; zero columns are rejected). Default: random
        Gaussian with unit-norm columns drawn from ``seed``.
    seed : int, default 0
        Seeds the initial dictionary and dead-atom resampling.
    reference : array or tensor, shape (m, n_latents), optional
        True dictionary; when given, ``history["mean_cosine"]`` tracks the matched mean
        |cosine| (:func:`csood.metrics.dictionary_diagnostics`).
    history_every : int, optional
        Record the history every this many rounds (>= 1; default every round). Round 0 and
        the last round are always recorded.
    dead_atoms : {"resample", "keep"}, default "resample"
        What replaces an unused atom after the least-squares update (module docstring).
    callback : callable, optional
        ``callback(round, D)`` after every update, ``D`` the current dictionary as a float32
        tensor (m, n_components) on the compute device (do not modify it).
    device : str or torch.device, optional
        Where to compute; None keeps a tensor ``Y`` on its device and sends numpy to "auto".
    schedule : {"paper", "fast"} or FastSchedule, default "paper"
        Round schedule (:mod:`csood._dl_schedule`): "paper" is SPEC section 3 (``fista_iter``
        iterations every round); "fast" is ``FastSchedule()``; a :class:`FastSchedule` sets its
        parameters.

    Returns
    -------
    DLResult
        Numpy arrays for numpy ``Y``, tensors on ``Y``'s device otherwise.
    """
    Y = _check_Y("Y", Y)
    n_components = check_int("n_components", n_components, low=1)
    lam = check_float("lam", lam, low=0.0)
    max_rounds = check_int("max_rounds", max_rounds, low=1)
    fista_iter = check_int("fista_iter", fista_iter, low=1)
    tol = check_float("tol", tol, low=0.0)
    eps = check_float("eps", eps, low=0.0)
    seed = check_int("seed", seed, low=0)
    dead_atoms = check_choice("dead_atoms", dead_atoms, DEAD_ATOMS)
    sched = Schedule(resolve_schedule(schedule), fista_iter)
    if history_every is not None:
        history_every = check_int("history_every", history_every, low=1)
    if callback is not None and not callable(callback):
        fail("callback", "a callable or None", type(callback).__name__)
    m = Y.shape[1]
    if D_init is not None:
        D_init = _check_dictionary("D_init", D_init, m, n_components)
    if reference is not None:
        reference = np.asarray(to_numpy(check_array("reference", reference, ndim=2)), np.float64)
        if reference.shape[0] != m:
            fail("reference", f"of shape (m, n_latents) with m = {m} rows to match Y of shape "
                 f"{tuple(Y.shape)}", f"shape {reference.shape}")

    dev = _compute_device(Y, device)
    Yt = _to_tensor(Y, torch.float32, dev)
    gen = _generator(seed)
    D = _random_dictionary(m, n_components, gen) if D_init is None else \
        _to_tensor(D_init, torch.float32, torch.device("cpu"))
    D = (D / torch.linalg.vector_norm(D, dim=0)).to(dev)
    Z = torch.zeros((Yt.shape[0], n_components), dtype=torch.float32, device=dev)
    every = history_every or 1

    history: dict[str, list] = {"round": [], "rel_change": [], "objective": []}
    if reference is not None:
        history["mean_cosine"] = []
    if sched.spec is not None:
        history["fista_iter"] = []

    def record(r, rel, obj, D_now, n_iter=0):
        if sched.spec is not None:
            history["fista_iter"].append(n_iter)
        history["round"].append(r)
        history["rel_change"].append(rel)
        history["objective"].append(obj)
        if reference is not None:
            history["mean_cosine"].append(
                dictionary_diagnostics(to_numpy(D_now), reference)["mean_cosine"])

    record(0, float("nan"), 0.5 * float((Yt * Yt).sum()) / Yt.shape[0], D)
    converged, n_rounds = False, 0
    for r in range(1, max_rounds + 1):
        n_iter, was_final = sched.n_iter, sched.final
        Z = fista(Yt, D, lam, positive=True, max_iter=n_iter, Z0=Z, L=sched.lipschitz(D),
                  device=dev)
        obj = _mean_objective(Yt, D, Z, lam)  # one matmul: ~1% of the coding step
        D_ls, Z = _update_dictionary(Yt, Z, D, eps, dead_atoms, gen)
        D_new, Z = sched.step(D, D_ls, Z, obj)
        norm_D = torch.linalg.vector_norm(D)
        rel = float(torch.linalg.vector_norm(D_new - D) / norm_D)
        sched.update(rel if D_new is D_ls else float(torch.linalg.vector_norm(D_ls - D) / norm_D))
        D, n_rounds = D_new, r
        if callback is not None:
            callback(r, D)
        stop = rel < tol and sched.may_stop(was_final)
        if stop or r % every == 0 or r == max_rounds:
            record(r, rel, obj, D, n_iter)
        if stop:
            converged = True
            break
    Z = fista(Yt, D, lam, positive=True, max_iter=fista_iter, Z0=Z, L=lipschitz_constant(D),
              device=dev)
    return DLResult(dictionary=_like(D, Y), codes=_like(Z, Y), n_rounds=n_rounds,
                    converged=converged, history=history)


class DLFISTA:
    """Estimator around :func:`dl_fista`: ``fit(Y_train)`` learns, ``transform(Y)`` codes.

    :meth:`transform` runs FISTA once (cold start, ``fista_iter`` iterations) on the learned
    dictionary, for any split; the dictionary is never refitted there.

    Parameters
    ----------
    n_components, lam, max_rounds, fista_iter, tol, eps, seed, dead_atoms, schedule
        As in :func:`dl_fista`.
    device : str or torch.device, default "auto"

    Attributes
    ----------
    dictionary_ : array or tensor, shape (m, n_components)
    codes_ : array or tensor, shape (n_train, n_components)
        Training codes from :func:`dl_fista` (warm-started across rounds).
    lipschitz_ : float
    n_rounds_ : int
    converged_ : bool
    history_ : dict of lists
    """

    _PARAMS = ("n_components", "lam", "max_rounds", "fista_iter", "tol", "eps", "seed",
               "dead_atoms", "device", "schedule")

    def __init__(self, n_components: int, *, lam: float = 0.1, max_rounds: int = 1000,
                 fista_iter: int = 100, tol: float = 1e-5, eps: float = 1e-6, seed: int = 0,
                 dead_atoms: str = "resample", device="auto", schedule="paper"):
        self.n_components, self.lam, self.max_rounds = n_components, lam, max_rounds
        self.fista_iter, self.tol, self.eps, self.seed = fista_iter, tol, eps, seed
        self.dead_atoms, self.device, self.schedule = dead_atoms, device, schedule

    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters by name."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def __repr__(self) -> str:
        return f"DLFISTA({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def fit(self, Y, y=None, *, D_init=None, reference=None, history_every=None,
            callback=None) -> "DLFISTA":
        """Learn the dictionary from training observations ``Y`` of shape (n_samples, m)."""
        res = dl_fista(Y, self.n_components, lam=self.lam, max_rounds=self.max_rounds,
                       fista_iter=self.fista_iter, tol=self.tol, eps=self.eps, D_init=D_init,
                       seed=self.seed, reference=reference, history_every=history_every,
                       dead_atoms=self.dead_atoms, callback=callback, device=self.device,
                       schedule=self.schedule)
        self.dictionary_, self.codes_ = res.dictionary, res.codes
        self.n_rounds_, self.converged_, self.history_ = res.n_rounds, res.converged, res.history
        self.lipschitz_ = lipschitz_constant(res.dictionary)
        return self

    def transform(self, Y, Z0=None):
        """FISTA codes (n_samples, n_components) of ``Y`` (n_samples, m) on ``dictionary_``."""
        if not hasattr(self, "dictionary_"):
            raise RuntimeError("This DLFISTA instance is not fitted yet: call fit(Y_train) first.")
        return fista(Y, self.dictionary_, self.lam, positive=True, max_iter=self.fista_iter,
                     Z0=Z0, L=self.lipschitz_, device=self.device)

    def fit_transform(self, Y, y=None, **fit_kw):
        """``fit(Y)`` then the training codes ``codes_``."""
        return self.fit(Y, **fit_kw).codes_
