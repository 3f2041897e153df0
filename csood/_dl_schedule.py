"""Round schedules of DL-FISTA (:func:`csood.dictionary.dl_fista`).

``"paper"`` (the default, SPEC section 3): every round runs ``fista_iter`` FISTA iterations,
step ``1/L`` with ``L`` from :func:`csood.solvers.lipschitz_constant` (Lanczos), and the
dictionary is the least-squares update. Early stopping when the relative change of ``D``
falls below ``tol``.

``"fast"`` (:class:`FastSchedule`) reaches the same kind of dictionary several times sooner:

* **Few warm-started inner iterations first.** The codes are warm-started from the previous
  round, so a round needs far fewer than 100 FISTA iterations while the dictionary still moves
  a lot. The inner count starts at ``start_iter`` and is multiplied by ``growth`` (rounded up,
  capped at ``fista_iter``) after every round whose relative change of ``D`` (the
  least-squares step) is below ``grow_below`` (the codes get more accurate as the dictionary
  settles), and after every round whose mean objective did not decrease (inexact codes can make
  the alternation oscillate and diverge). Below ~8 iterations the alternation stalls (codes stay near their warm start).
* **Extrapolated dictionary steps.** While the inner count is below ``fista_iter``, the
  least-squares dictionary ``D_ls`` is extrapolated, ``D_ls + beta (D_ls - D)`` with
  ``beta = extrapolation``, and its columns renormalised (the over-relaxation used to speed up
  alternating least squares). Resampled dead atoms are not extrapolated. Safeguard: when the
  mean objective of a round's codes is not below the previous round's, the extrapolated step
  is rejected (the run goes back to the previous round's least-squares dictionary and its
  codes) and extrapolation is off for the rest of the run (overshooting atoms can collide, and
  the alternation then diverges).
* **Cheap Lipschitz constant.** ``L = LIPSCHITZ_SAFETY * lambda_max`` of the smaller Gram
  matrix (``D D^T`` or ``D^T D``) in float64 by a dense symmetric eigensolver, instead of the
  Lanczos loop with a host round trip per step (which cost as much as 10 FISTA iterations at
  n = 100).
* **Same end point.** Once the inner count has reached ``fista_iter`` the rounds are the
  paper's rounds (no extrapolation, ``fista_iter`` iterations), and only then may the
  ``tol`` criterion stop the run: the final dictionary is a fixed point of the same
  alternation, and the final codes come from the same ``fista_iter``-iteration pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._validation import fail
from .solvers import LIPSCHITZ_SAFETY, lipschitz_constant

SCHEDULES = ("paper", "fast")


@dataclass(frozen=True)
class FastSchedule:
    """Parameters of the ``"fast"`` schedule (module docstring)."""

    start_iter: int = 10
    growth: float = 2.0
    grow_below: float = 1e-3
    extrapolation: float = 0.8

    def __post_init__(self):
        if not (isinstance(self.start_iter, int) and self.start_iter >= 1):
            fail("start_iter", "an integer >= 1", repr(self.start_iter))
        if not (isinstance(self.growth, (int, float)) and self.growth > 1.0):
            fail("growth", "a number > 1", repr(self.growth))
        if not (isinstance(self.grow_below, (int, float)) and self.grow_below >= 0.0):
            fail("grow_below", "a number >= 0", repr(self.grow_below))
        if not (isinstance(self.extrapolation, (int, float)) and 0.0 <= self.extrapolation < 2.0):
            fail("extrapolation", "a number in [0, 2)", repr(self.extrapolation))


def resolve_schedule(schedule):
    """``"paper"`` -> None, ``"fast"`` -> ``FastSchedule()``, a :class:`FastSchedule` as is."""
    if isinstance(schedule, FastSchedule):
        return schedule
    if isinstance(schedule, str) and schedule in SCHEDULES:
        return FastSchedule() if schedule == "fast" else None
    fail("schedule", f"one of {SCHEDULES} or a FastSchedule", repr(schedule))


def dense_lipschitz(D: torch.Tensor) -> float:
    """``LIPSCHITZ_SAFETY * ||D||_2^2`` from a dense float64 eigensolve of the smaller Gram."""
    m, n = D.shape
    D64 = D.to(torch.float64)
    G = D64 @ D64.T if m <= n else D64.T @ D64
    return LIPSCHITZ_SAFETY * float(torch.linalg.eigvalsh(G)[-1])


class Schedule:
    """Per-round decisions of a DL-FISTA run: inner iterations, L, extrapolation, stopping."""

    def __init__(self, spec: FastSchedule | None, fista_iter: int):
        self.spec, self.fista_iter = spec, fista_iter
        self.n_iter = fista_iter if spec is None else min(spec.start_iter, fista_iter)
        self._last_obj = math.inf
        self.beta = 0.0 if spec is None else float(spec.extrapolation)
        self._saved = None  # (D_ls, Z) of the last extrapolated round, for a rejection

    @property
    def final(self) -> bool:
        """Whether rounds are now the paper's rounds (full iterations, no extrapolation)."""
        return self.n_iter >= self.fista_iter

    def lipschitz(self, D: torch.Tensor) -> float:
        return lipschitz_constant(D) if self.spec is None else dense_lipschitz(D)

    def step(self, D: torch.Tensor, D_ls: torch.Tensor, Z: torch.Tensor, obj: float):
        """Next ``(D, Z)`` from the least-squares ``D_ls`` and codes ``Z`` rescaled to it.

        ``obj`` is the mean objective of this round's codes on ``D``.
        """
        if self.spec is None or self.final:
            return D_ls, Z
        improved, self._last_obj = obj < self._last_obj, obj
        if not improved:  # inexact codes or overshoot: more iterations, no more extrapolation
            self.n_iter = min(self.fista_iter, math.ceil(self.n_iter * self.spec.growth))
            saved, self._saved, self.beta = self._saved, None, 0.0
            if saved is not None:  # reject the last extrapolation
                return saved
        if self.beta == 0.0:
            return D_ls, Z
        self._saved = (D_ls, Z.clone())
        live = (Z != 0).any(dim=0)  # resampled dead atoms have all-zero code columns
        D_ex = D_ls + self.beta * (D_ls - D)
        D_ex /= torch.linalg.vector_norm(D_ex, dim=0).clamp_(min=1e-12)
        return torch.where(live, D_ex, D_ls), Z

    def update(self, rel_ls: float) -> None:
        """Grow the inner iterations after a round whose least-squares change was ``rel_ls``."""
        if self.spec is not None and not self.final and rel_ls < self.spec.grow_below:
            self.n_iter = min(self.fista_iter, math.ceil(self.n_iter * self.spec.growth))

    def may_stop(self, was_final: bool) -> bool:
        """The ``tol`` criterion counts only for a round run with the paper's settings."""
        return self.spec is None or was_final
