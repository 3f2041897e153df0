"""JumpReLU SAE: ``z = h * 1[h > theta]`` with ``h = ReLU(W_enc (y - b_dec) + b_enc)``.

The thresholds ``theta = exp(log_theta)`` (one per latent, initialised to ``theta_init``) are
learned through straight-through pseudo-derivatives with a rectangle kernel
``K(u) = 1[|u| < 1/2]`` of bandwidth ``eps`` (Rajamanoharan et al., 2024, "Jumping ahead"):

* jump ``J(h, theta) = h * H(h - theta)``: ``dJ/dh = H(h - theta)``,
  ``dJ/dtheta = -(theta / eps) K((h - theta) / eps)``;
* step ``H(h - theta)`` (the L0 penalty): ``dH/dh = 0``,
  ``dH/dtheta = -(1 / eps) K((h - theta) / eps)``.

Loss: MSE + ``gamma * mean over samples of ||z||_0`` (the L0 through the step). Both
pseudo-derivatives reach a threshold only through pre-activations within ``eps / 2`` of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._validation import check_float
from .base import SAE, keep_where_positive
from .registry import register

__all__ = ["JumpReLUConfig", "JumpReLUSAE"]


@dataclass(frozen=True)
class JumpReLUConfig:
    """Hyper-parameters of :class:`JumpReLUSAE`.

    Attributes
    ----------
    gamma : float, default 1e-4
        Weight of the L0 penalty (>= 0); the ReLU SAE's L1 weight, as nothing in SPEC asks for
        another (the L0 of a sample counts active latents, so its scale is that of the L1 of
        codes of order one).
    theta_init : float, default 1e-3
        Initial threshold of every latent (> 0).
    bandwidth : float, default 1e-3
        Width ``eps`` of the rectangle kernel (> 0).
    """

    gamma: float = 1e-4
    theta_init: float = 1e-3
    bandwidth: float = 1e-3

    def validate(self) -> None:
        check_float("gamma", self.gamma, low=0.0)
        check_float("theta_init", self.theta_init, low=0.0, low_inclusive=False)
        check_float("bandwidth", self.bandwidth, low=0.0, low_inclusive=False)


def _window(H: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Rectangle kernel ``K((h - theta) / eps) = 1[|h - theta| < eps / 2]``, as a bool tensor."""
    return (H - theta).abs_() < 0.5 * bandwidth


class _Jump(torch.autograd.Function):
    """``h * 1[h > theta]`` with the straight-through threshold gradient."""

    @staticmethod
    def forward(ctx, H, theta, bandwidth):
        ctx.save_for_backward(H, theta)
        ctx.bandwidth = bandwidth
        return H * (H > theta)

    @staticmethod
    def backward(ctx, G):
        H, theta = ctx.saved_tensors
        g_theta = -(theta / ctx.bandwidth) * _window(H, theta, ctx.bandwidth) * G
        return G * (H > theta), g_theta.sum_to_size(theta.shape), None


class _Step(torch.autograd.Function):
    """Heaviside ``1[h > theta]`` with the straight-through threshold gradient (none to ``h``)."""

    @staticmethod
    def forward(ctx, H, theta, bandwidth):
        ctx.save_for_backward(H, theta)
        ctx.bandwidth = bandwidth
        return (H > theta).to(H.dtype)

    @staticmethod
    def backward(ctx, G):
        H, theta = ctx.saved_tensors
        g_theta = -(1.0 / ctx.bandwidth) * _window(H, theta, ctx.bandwidth) * G
        return torch.zeros_like(H), g_theta.sum_to_size(theta.shape), None


@register("jumprelu")
class JumpReLUSAE(SAE):
    """SAE with a JumpReLU encoder and an L0 penalty (see :class:`~csood.saes.base.SAE`).

    Attributes
    ----------
    log_theta_NF : Parameter, shape (n_models, width)
        Log thresholds.
    """

    config_class = JumpReLUConfig

    def __init__(self, n_inputs, width, config, *, seeds=(0,), dtype=torch.float32):
        super().__init__(n_inputs, width, config, seeds=seeds, dtype=dtype)
        self.log_theta_NF = nn.Parameter(
            torch.full((len(self.seeds), self.width), math.log(config.theta_init), dtype=dtype))

    def thresholds(self) -> torch.Tensor:
        """``theta = exp(log_theta)``, shape (n_models, width)."""
        return self.log_theta_NF.exp()

    def _encode(self, Y_NBM):
        H_NBF = torch.relu(self._preactivations(Y_NBM))
        theta_N1F = self.thresholds().unsqueeze(1)
        bw = self.config.bandwidth
        Z_NBF = _Jump.apply(H_NBF, theta_N1F, bw)
        l0_N = _Step.apply(H_NBF, theta_N1F, bw).sum(dim=2).mean(dim=1)
        return Z_NBF, self.config.gamma * l0_N

    def _bind(self):
        v = super()._bind()
        v.log_theta, v.g_log_theta = self.log_theta_NF, self.log_theta_NF.grad
        return v

    def _grads_(self, Y_NBM, v):
        # the maths of _Jump and _Step, with float masks through keep_where_positive
        cfg = self.config
        X_NBM, H_NBF = self._pre(Y_NBM, v)
        H_NBF.clamp_(min=0.0)
        theta_NF = v.log_theta.exp()
        theta_N1F = theta_NF.unsqueeze(1)
        D_NBF = H_NBF - theta_N1F
        Z_NBF = keep_where_positive(H_NBF, D_NBF)                        # h * 1[h > theta]
        R_NBM, G_NBF = self._decoder_backward(X_NBM, Z_NBF, v)
        # dL/dtheta = -(1/eps) sum_b K * (theta dL/dz + gamma / B); d theta / d log theta = theta
        T_NBF = torch.addcmul(self._const(v, cfg.gamma / Y_NBM.shape[1], Z_NBF), G_NBF, theta_N1F)
        inside_NBF = torch.rsub(D_NBF.abs_(), 0.5 * cfg.bandwidth)       # > 0 iff K = 1
        torch.sum(keep_where_positive(T_NBF, inside_NBF), dim=1, out=v.g_log_theta)
        v.g_log_theta.mul_(theta_NF.mul_(-1.0 / cfg.bandwidth))
        # pre-activations: through the jump where h > theta (> 0, so the ReLU passes too)
        self._encoder_backward_(X_NBM, R_NBM, keep_where_positive(G_NBF, Z_NBF), v)
