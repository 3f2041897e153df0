"""Matching-pursuit SAE (MP-SAE): no encoder; ``k`` greedy steps on the residual.

Starting from ``r_0 = y - b_dec``, step ``t`` selects, among the atoms (decoder columns) not
selected before, the one with the largest ``|<r, d_j>|``, sets its coefficient to that
correlation ``c_t = <r_{t-1}, d_j>`` and updates ``r_t = r_{t-1} - c_t d_j``. An atom is never
selected twice (selected atoms are masked), so every sample has exactly ``k`` distinct atoms.
The atoms are the decoder columns as they are (kept at unit norm by the trainer's gradient
projection and renormalisation). The reconstruction is ``y_hat = b_dec + sum_t c_t d_t``, so
``y - y_hat = r_k``. Vectorised over models and samples: a Python loop of ``k`` steps only.

Gradients reach the decoder through the coefficients and the residuals. The autograd path
(:meth:`MPSAE.encode`, :meth:`~csood.saes.base.SAE.loss`) differentiates the unrolled loop
literally. The trainer's hand-written gradient uses the closed form of the same map: with the
selected atoms ``D_s`` (k, m), ``b = D_s (y - b_dec)`` and the Gram ``G = D_s D_s^T``, the
coefficients solve the unit lower-triangular system ``(I + tril(G, -1)) c = b`` (forward
substitution is exactly the greedy recursion), which back-propagates with one triangular
solve per sample instead of ``k`` unrolled steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import check_int
from .base import SAE
from .registry import register

__all__ = ["MPConfig", "MPSAE"]


@dataclass(frozen=True)
class MPConfig:
    """Hyper-parameters of :class:`MPSAE`.

    Attributes
    ----------
    k : int
        Pursuit steps (atoms per sample), ``1 <= k < width`` (checked by
        :func:`~csood.saes.make_sae`).
    """

    k: int

    def validate(self) -> None:
        check_int("k", self.k, low=1)


@register("mp")
class MPSAE(SAE):
    """Matching-pursuit SAE (see the module docstring and :class:`~csood.saes.base.SAE`)."""

    config_class = MPConfig
    has_encoder = False

    def pursuit(self, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the greedy pursuit (differentiable).

        Parameters
        ----------
        Y : tensor, shape (n_samples, m) or (n_models, n_samples, m)

        Returns
        -------
        index : tensor of int64, shape (n_models, n_samples, k)
            Selected atoms in selection order (distinct along the last axis).
        coef : tensor, shape (n_models, n_samples, k)
            Their coefficients.
        residual : tensor, shape (n_models, n_samples, m)
            ``r_k = y - y_hat``.
        """
        return self._pursuit(self._with_model_axis(Y) - self.b_dec_NM.unsqueeze(1))

    def _pursuit(self, X_NBM):
        """The literal unrolled pursuit from ``r_0 = X``, differentiable: autograd follows the
        coefficients and the residuals. Returns index (N, B, k), coef (N, B, k), residual."""
        N, B, M = X_NBM.shape
        W_NMF = self.W_dec_NMF
        atoms_NFM = W_NMF.transpose(1, 2)
        taken_NBF = X_NBM.new_zeros((N, B, self.width))
        R_NBM = X_NBM
        index, coef = [], []
        for _ in range(self.config.k):
            C_NBF = torch.bmm(R_NBM, W_NMF)
            with torch.no_grad():  # never re-select: selected atoms score -inf
                j_NB1 = C_NBF.abs().add_(taken_NBF).argmax(dim=2, keepdim=True)
                taken_NBF.scatter_(2, j_NB1, -math.inf)
            c_NB1 = C_NBF.gather(2, j_NB1)
            R_NBM = R_NBM - c_NB1 * atoms_NFM.gather(1, j_NB1.expand(N, B, M))
            index.append(j_NB1)
            coef.append(c_NB1)
        return torch.cat(index, dim=2), torch.cat(coef, dim=2), R_NBM

    def _encode(self, Y_NBM):
        X_NBM = Y_NBM - self.b_dec_NM.unsqueeze(1)
        index, coef, _ = self._pursuit(X_NBM)
        Z_NBF = coef.new_zeros((*X_NBM.shape[:2], self.width)).scatter(2, index, coef)
        return Z_NBF, coef.new_zeros(X_NBM.shape[0])

    # ------------------------------------------------------------------ training path
    def _select(self, X_NBM, v):
        """The pursuit's selections and coefficients, without autograd, for the trainer.

        Correlations ``C = R W_dec`` (N, B, F) are updated either through the decoder's Gram
        matrix, ``C -= c_t (W_dec^T W_dec)[j_t]`` (one ``F^2 m`` product per batch, used when
        ``F <= k B``), or by recomputing ``C`` from the updated residual (``B m F`` per step).
        Same selections and coefficients as :meth:`_pursuit`, up to rounding.

        Returns index (N, B, k), flat atom rows ``n F + j`` (N * B * k,), coef (N, B, k) and
        the Gram matrix (N, F, F) or None.
        """
        N, B, M = X_NBM.shape
        F, k = self.width, self.config.k
        W_NMF = v.W_dec
        C_NBF = torch.bmm(X_NBM, W_NMF)
        gram_NFF = torch.bmm(v.W_dec_T, W_NMF) if F <= k * B else None
        if gram_NFF is None:
            table, R_NBM = v.W_dec_T.reshape(N * F, M), X_NBM.clone()
        else:
            table = gram_NFF.view(N * F, F)
        first_row_N11 = (None if N == 1 else
                         torch.arange(0, N * F, F, device=X_NBM.device).view(N, 1, 1))
        taken_NBF = torch.zeros_like(C_NBF)
        index, rows, coef = [], [], []
        for t in range(k):
            if t and gram_NFF is None:
                torch.bmm(R_NBM, W_NMF, out=C_NBF)
            j_NB1 = torch.abs(C_NBF).add_(taken_NBF).argmax(dim=2, keepdim=True)
            taken_NBF.scatter_(2, j_NB1, -math.inf)
            c_NB1 = C_NBF.gather(2, j_NB1)
            row_NB1 = j_NB1 if first_row_N11 is None else j_NB1 + first_row_N11
            index.append(j_NB1)
            rows.append(row_NB1)
            coef.append(c_NB1)
            if t < k - 1:  # C -= c G[j]  or  R -= c d_j
                update = table.index_select(0, row_NB1.view(-1)).view(N, B, -1)
                (C_NBF if gram_NFF is not None else R_NBM).addcmul_(c_NB1, update, value=-1.0)
        return (torch.cat(index, dim=2), torch.cat(rows, dim=2).view(-1), torch.cat(coef, dim=2),
                gram_NFF)

    def _grads_(self, Y_NBM, v):
        """Hand-written backward through the closed form ``c = (I + tril(G, -1))^{-1} D_s x``
        (see the module docstring); ``NB = N * B`` samples of ``k`` selected atoms each."""
        N, B, M = Y_NBM.shape
        F, k = self.width, self.config.k
        NB = N * B
        X_NBM = Y_NBM - v.b_dec_1
        index, rows, c_NBK, gram_NFF = self._select(X_NBM, v)
        atoms = v.W_dec_T.reshape(N * F, M)
        Ds = atoms.index_select(0, rows).view(NB, k, M)                      # selected atoms
        c_row = c_NBK.view(NB, 1, k)
        # rho = dL/dy_hat = 2 (y_hat - y) / (B m) with y_hat - y = Z W_dec^T - x (= -r_k)
        Z_NBF = X_NBM.new_zeros((N, B, F)).scatter_(2, index, c_NBK)
        s = 2.0 / (B * M)
        rho_NBM = torch.baddbmm(X_NBM, Z_NBF, v.W_dec_T, beta=-s, alpha=s)
        # dL/dc (direct, y_hat = b_dec + sum_t c_t d_t): d_t . rho = (rho W_dec)[j_t]
        g_c = torch.bmm(rho_NBM, v.W_dec).gather(2, index).view(NB, k, 1)
        rho = rho_NBM.view(NB, 1, M)
        # Gram of the selected atoms; the solve reads its strict upper part (= that of L^T)
        if gram_NFF is None:
            G = torch.bmm(Ds, Ds.transpose(1, 2))
        else:
            pairs = (index.unsqueeze(3) * F + index.unsqueeze(2)).view(N, B * k * k)
            G = gram_NFF.view(N, F * F).gather(1, pairs).view(NB, k, k)
        g_b = torch.linalg.solve_triangular(G, g_c, upper=True, unitriangular=True)   # L^{-T} g_c
        # dL/dL_tu = -g_b[t] c[u] =: -S_tu for u < t; L_tu = d_t . d_u adds -(S + S^T) D_s
        S = torch.mul(g_b, c_row).mul_(self._strict_lower(k, v, rho))
        S = S + S.transpose(1, 2)
        # dL/dD_s = g_b x^T (through b = D_s x) + c rho^T (direct) - (S + S^T) D_s
        g_Ds = torch.baddbmm(torch.mul(g_b, X_NBM.reshape(NB, 1, M)), S, Ds, alpha=-1.0)
        g_Ds.addcmul_(c_NBK.view(NB, k, 1), rho)
        g_atoms = atoms.new_zeros((N * F, M)).index_add_(0, rows, g_Ds.view(NB * k, M))
        v.g_W_dec.copy_(g_atoms.view(N, F, M).transpose(1, 2))
        # b_dec: + in the reconstruction, - in the centring x = y - b_dec (dL/dx = D_s^T g_b)
        g_x = torch.bmm(g_b.transpose(1, 2), Ds)
        torch.sum(rho.sub_(g_x).view(N, B, M), dim=1, out=v.g_b_dec)

    @staticmethod
    def _strict_lower(k: int, v, like: torch.Tensor) -> torch.Tensor:
        mask = v.consts.get("strict_lower")
        if mask is None:
            mask = torch.ones((k, k), dtype=like.dtype, device=like.device).tril_(-1)
            v.consts["strict_lower"] = mask
        return mask
