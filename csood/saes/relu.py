"""ReLU SAE: ``z = ReLU(W_enc (y - b_dec) + b_enc)``, loss MSE + ``gamma * mean_b ||z||_1``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import check_float
from .base import SAE, keep_where_positive
from .registry import register

__all__ = ["ReLUConfig", "ReLUSAE"]


@dataclass(frozen=True)
class ReLUConfig:
    """Hyper-parameters of :class:`ReLUSAE`.

    Attributes
    ----------
    gamma : float, default 1e-4
        Weight of the L1 penalty ``mean over samples of ||z||_1`` (>= 0).
    """

    gamma: float = 1e-4

    def validate(self) -> None:
        check_float("gamma", self.gamma, low=0.0)


@register("relu")
class ReLUSAE(SAE):
    """SAE with a ReLU encoder and an L1 penalty (see :class:`~csood.saes.base.SAE`)."""

    config_class = ReLUConfig

    def _encode(self, Y_NBM):
        Z_NBF = torch.relu(self._preactivations(Y_NBM))
        return Z_NBF, self.config.gamma * Z_NBF.abs().sum(dim=2).mean(dim=1)

    def _grads_(self, Y_NBM, v):
        X_NBM, Z_NBF = self._pre(Y_NBM, v)
        Z_NBF.clamp_(min=0.0)
        # d/dz of gamma * mean_b ||z||_1 is gamma / B on z > 0; the ReLU passes only z > 0
        l1 = self._const(v, self.config.gamma / Y_NBM.shape[1], Z_NBF)
        R_NBM, G_NBF = self._decoder_backward(X_NBM, Z_NBF, v, l1)
        self._encoder_backward_(X_NBM, R_NBM, keep_where_positive(G_NBF, Z_NBF), v)
