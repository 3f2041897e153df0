"""TopK SAE: keep the ``k`` largest pre-activations of each sample, ReLU them; no penalty."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import check_int
from .base import SAE, keep_where_positive
from .registry import register

__all__ = ["TopKConfig", "TopKSAE"]


@dataclass(frozen=True)
class TopKConfig:
    """Hyper-parameters of :class:`TopKSAE`.

    Attributes
    ----------
    k : int
        Latents kept per sample, ``1 <= k < width`` (checked by :func:`~csood.saes.make_sae`).
    """

    k: int

    def validate(self) -> None:
        check_int("k", self.k, low=1)


@register("topk")
class TopKSAE(SAE):
    """SAE whose encoder keeps the ``k`` largest pre-activations (see
    :class:`~csood.saes.base.SAE`)."""

    config_class = TopKConfig

    def _topk(self, P_NBF: torch.Tensor) -> torch.Tensor:
        values, index = P_NBF.topk(self.config.k, dim=2, sorted=False)
        return torch.zeros_like(P_NBF).scatter(2, index, torch.relu(values))

    def _encode(self, Y_NBM):
        Z_NBF = self._topk(self._preactivations(Y_NBM))
        return Z_NBF, Z_NBF.new_zeros(Z_NBF.shape[0])

    def _grads_(self, Y_NBM, v):
        X_NBM, P_NBF = self._pre(Y_NBM, v)
        Z_NBF = self._topk(P_NBF)
        R_NBM, G_NBF = self._decoder_backward(X_NBM, Z_NBF, v)
        # the gradient reaches the pre-activations exactly where a kept value is positive
        self._encoder_backward_(X_NBM, R_NBM, keep_where_positive(G_NBF, Z_NBF), v)
