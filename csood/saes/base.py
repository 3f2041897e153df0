"""Shared machinery of the sparse autoencoders: parameters with a model axis, the variant
registry, initialisation, decoding, the loss and the decoder constraints (SPEC section 3).

Every SAE holds ``n_models`` independent models of one shape, stacked along a leading *model
axis*, so that several seeds train as one batched computation (``torch.bmm``); a single SAE is
``n_models = 1``. Tensor names carry shape suffixes: ``N`` models, ``B`` samples of a batch,
``M`` input dimension ``m``, ``F`` latents (the width).

=================  ==============  ====================================================
parameter          shape           meaning
=================  ==============  ====================================================
``W_enc_NFM``      (N, F, m)       encoder rows (absent in MP)
``b_enc_NF``       (N, F)          encoder bias (absent in MP)
``W_dec_NMF``      (N, m, F)       decoder, atoms as columns (unit norm)
``b_dec_NM``       (N, m)          decoder bias; inputs are centred by it before encoding
``log_theta_NF``   (N, F)          JumpReLU only: log thresholds
=================  ==============  ====================================================

Variants register themselves by name in :data:`csood.saes.registry.SAE_VARIANTS`. Each
implements two things: ``_encode`` (autograd-differentiable codes and sparsity
penalty, used by :meth:`SAE.loss` and the public methods) and ``_grads_`` (the same loss's
gradients written by hand into the parameters' ``.grad``, used by the trainer: no autograd
graph per step). Tests check that the two agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from types import SimpleNamespace
from typing import ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from .._validation import check_int

__all__ = ["SAE", "seed_generator", "keep_where_positive"]

def seed_generator(seed: int, stream: int) -> torch.Generator:
    """CPU generator for one model's random ``stream`` (0: initialisation, 1: shuffling).

    Streams are decorrelated by :class:`numpy.random.SeedSequence`; drawing on the CPU makes
    the initialisation and the batch order the same on every device.
    """
    state = np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) >> 1)


class SAE(nn.Module):
    """Base class: ``n_models`` SAEs of width ``F`` on inputs of dimension ``m``.

    Subclasses are made with :func:`make_sae`. Initialisation (per model, from its own seed):
    ``W_enc`` Kaiming-uniform (``torch.nn.init.kaiming_uniform_`` defaults: bound
    ``sqrt(6 / m)``), ``b_enc = 0``, ``W_dec = W_enc^T`` with unit-norm columns, ``b_dec = 0``.
    Parameters are drawn on the CPU; move the module with ``.to(device)``.

    Parameters
    ----------
    n_inputs : int
        Input dimension ``m``.
    width : int
        Number of latents ``F``.
    config : dataclass
        The variant's configuration (``config_class``).
    seeds : sequence of int
        One seed per model; ``n_models = len(seeds)``.
    dtype : torch.dtype, default torch.float32

    Attributes
    ----------
    variant : str
        Registry name.
    n_inputs, width, n_models : int
    seeds : tuple of int
    """

    variant: ClassVar[str] = ""
    config_class: ClassVar[type]
    has_encoder: ClassVar[bool] = True

    def __init__(self, n_inputs: int, width: int, config, *, seeds: Sequence[int] = (0,),
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.n_inputs, self.width, self.config = int(n_inputs), int(width), config
        self.seeds = tuple(int(s) for s in seeds)
        N, M, F = len(self.seeds), self.n_inputs, self.width
        bound = math.sqrt(6.0 / M)
        W_NFM = torch.empty((N, F, M), dtype=dtype)
        for i, seed in enumerate(self.seeds):
            W_NFM[i] = torch.rand((F, M), generator=seed_generator(seed, 0), dtype=dtype)
        W_NFM.mul_(2.0 * bound).sub_(bound)
        W_dec = W_NFM.transpose(1, 2).clone()
        if self.has_encoder:
            self.W_enc_NFM = nn.Parameter(W_NFM)
            self.b_enc_NF = nn.Parameter(torch.zeros((N, F), dtype=dtype))
        self.W_dec_NMF = nn.Parameter(W_dec)
        self.b_dec_NM = nn.Parameter(torch.zeros((N, M), dtype=dtype))
        self.normalise_decoder_()

    # ------------------------------------------------------------------ shape helpers
    @property
    def n_models(self) -> int:
        """Number of stacked models ``N``."""
        return self.W_dec_NMF.shape[0]

    def extra_repr(self) -> str:
        cfg = ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
        return (f"variant={self.variant!r}, n_inputs={self.n_inputs}, width={self.width}, "
                f"n_models={self.n_models}" + (f", {cfg}" if cfg else ""))

    def _with_model_axis(self, Y: torch.Tensor) -> torch.Tensor:
        """``Y`` of shape (B, m) (shared by all models) or (N, B, m) -> (N, B, m)."""
        if Y.ndim == 2:
            return Y.unsqueeze(0).expand(self.n_models, -1, -1)
        if Y.ndim != 3 or Y.shape[0] != self.n_models:
            raise ValueError(f"Y must be of shape (n_samples, {self.n_inputs}) or "
                             f"({self.n_models}, n_samples, {self.n_inputs}); got {tuple(Y.shape)}.")
        return Y

    # ------------------------------------------------------------------ public API
    def encode(self, Y: torch.Tensor) -> torch.Tensor:
        """Codes of every model.

        Parameters
        ----------
        Y : tensor, shape (n_samples, m) or (n_models, n_samples, m)
            Inputs (shared by all models when 2-D), on the module's device and dtype.

        Returns
        -------
        tensor, shape (n_models, n_samples, width)
        """
        return self._encode(self._with_model_axis(Y))[0]

    def decode(self, Z: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``Z @ W_dec^T + b_dec``.

        Parameters
        ----------
        Z : tensor, shape (n_models, n_samples, width)

        Returns
        -------
        tensor, shape (n_models, n_samples, m)
        """
        return torch.baddbmm(self.b_dec_NM.unsqueeze(1), Z, self.W_dec_NMF.transpose(1, 2))

    def forward(self, Y: torch.Tensor) -> torch.Tensor:
        """``decode(encode(Y))``, shape (n_models, n_samples, m)."""
        return self.decode(self.encode(Y))

    def loss(self, Y: torch.Tensor) -> torch.Tensor:
        """Training loss of each model: MSE (mean over samples and inputs) + sparsity penalty.

        Parameters
        ----------
        Y : tensor, shape (n_samples, m) or (n_models, n_samples, m)

        Returns
        -------
        tensor, shape (n_models,)
            Differentiable; models are independent, so ``loss(Y).sum().backward()`` gives each
            model the gradient of its own loss.
        """
        Y_NBM = self._with_model_axis(Y)
        Z_NBF, penalty_N = self._encode(Y_NBM)
        return (self.decode(Z_NBF) - Y_NBM).square().mean(dim=(1, 2)) + penalty_N

    @torch.no_grad()
    def normalise_decoder_(self) -> None:
        """Rescale every decoder column to unit norm (in place)."""
        W = self.W_dec_NMF
        W.div_(torch.linalg.vector_norm(W, dim=1, keepdim=True).clamp_(min=1e-12))

    @torch.no_grad()
    def project_decoder_grad_(self) -> None:
        """Remove from each decoder column's gradient its component along the column:
        ``g_j -= (g_j . d_j) d_j`` (exact for unit-norm columns). No-op without a gradient."""
        if self.W_dec_NMF.grad is not None:
            self._project_(SimpleNamespace(W_dec=self.W_dec_NMF, g_W_dec=self.W_dec_NMF.grad))

    def take(self, model: int) -> "SAE":
        """A new single-model SAE holding a copy of model ``model``'s parameters."""
        model = check_int("model", model, low=0, high=self.n_models - 1)
        p = next(self.parameters())
        new = type(self)(self.n_inputs, self.width, self.config, seeds=(self.seeds[model],),
                         dtype=p.dtype)
        with torch.no_grad():
            for dst, src in zip(new.parameters(), self.parameters()):
                dst.copy_(src[model:model + 1])
        return new.to(p.device)

    def _preactivations(self, Y_NBM: torch.Tensor) -> torch.Tensor:
        """``W_enc (y - b_dec) + b_enc`` of every model, (N, B, F); differentiable."""
        return torch.baddbmm(self.b_enc_NF.unsqueeze(1), Y_NBM - self.b_dec_NM.unsqueeze(1),
                             self.W_enc_NFM.transpose(1, 2))

    # ------------------------------------------------------------------ variant hooks
    def _encode(self, Y_NBM: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (N, B, F) and sparsity penalty (N,), differentiable."""
        raise NotImplementedError

    def _grads_(self, Y_NBM: torch.Tensor, v: SimpleNamespace) -> None:
        """Write the gradient of ``loss(Y_NBM).sum()`` into every parameter's ``.grad``,
        without autograd, through the views ``v = self._bind()``. Called under
        ``torch.no_grad()``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ hand-written backward
    def _bind(self) -> SimpleNamespace:
        """Views of the parameters and of their gradients (which must exist) for ``_grads_``.

        Built once per training run: creating views and looking parameters up through
        ``nn.Module`` costs microseconds per step, as much as a small kernel. The views stay
        valid while parameters and gradients are updated in place.
        """
        v = SimpleNamespace(consts={})
        v.W_dec, v.g_W_dec = self.W_dec_NMF, self.W_dec_NMF.grad
        v.W_dec_T = v.W_dec.transpose(1, 2)
        v.b_dec_1, v.g_b_dec, v.g_b_dec_1 = (self.b_dec_NM.unsqueeze(1), self.b_dec_NM.grad,
                                             self.b_dec_NM.grad.unsqueeze(1))
        if self.has_encoder:
            v.W_enc, v.g_W_enc = self.W_enc_NFM, self.W_enc_NFM.grad
            v.W_enc_T = v.W_enc.transpose(1, 2)
            v.b_enc_1, v.g_b_enc = self.b_enc_NF.unsqueeze(1), self.b_enc_NF.grad
            v.g_b_enc_1 = v.g_b_enc.unsqueeze(1)
        return v

    @staticmethod
    def _const(v: SimpleNamespace, value: float, like: torch.Tensor) -> torch.Tensor:
        """A cached (1, 1, 1) tensor holding ``value`` (a broadcast addend for ``baddbmm``)."""
        c = v.consts.get(value)
        if c is None:
            c = v.consts[value] = like.new_full((1, 1, 1), value)
        return c

    @staticmethod
    def _pre(Y_NBM: torch.Tensor, v: SimpleNamespace) -> tuple[torch.Tensor, torch.Tensor]:
        """Centred inputs ``X = Y - b_dec`` (N, B, m) and pre-activations (N, B, F)."""
        X_NBM = Y_NBM - v.b_dec_1
        return X_NBM, torch.baddbmm(v.b_enc_1, X_NBM, v.W_enc_T)

    @staticmethod
    def _decoder_backward(X_NBM: torch.Tensor, Z_NBF: torch.Tensor, v: SimpleNamespace,
                          offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """MSE part of the backward pass for codes ``Z`` of centred inputs ``X``.

        Writes ``W_dec``'s gradient and returns ``R = dL/dY_hat = 2 (Z W_dec^T - X) / (B m)``
        (N, B, m) and ``dL/dZ`` (N, B, F), plus ``offset`` when given.
        """
        s = 2.0 / (X_NBM.shape[1] * X_NBM.shape[2])
        R_NBM = torch.baddbmm(X_NBM, Z_NBF, v.W_dec_T, beta=-s, alpha=s)
        torch.bmm(R_NBM.transpose(1, 2), Z_NBF, out=v.g_W_dec)
        if offset is None:
            return R_NBM, torch.bmm(R_NBM, v.W_dec)
        return R_NBM, torch.baddbmm(offset, R_NBM, v.W_dec)

    @staticmethod
    def _encoder_backward_(X_NBM: torch.Tensor, R_NBM: torch.Tensor, G_NBF: torch.Tensor,
                           v: SimpleNamespace) -> None:
        """Write encoder and decoder-bias gradients from the pre-activation gradient ``G``
        and the reconstruction gradient ``R`` (the decoder weights' gradient is written by
        :meth:`_decoder_backward`)."""
        torch.sum(G_NBF, dim=1, out=v.g_b_enc)
        torch.bmm(G_NBF.transpose(1, 2), X_NBM, out=v.g_W_enc)
        # b_dec enters the reconstruction (+) and the centring (-):
        # sum_b (R - G W_enc) = sum_b R - (sum_b G) W_enc
        torch.baddbmm(R_NBM.sum(dim=1, keepdim=True), v.g_b_enc_1, v.W_enc, alpha=-1.0,
                      out=v.g_b_dec_1)

    @staticmethod
    def _project_(v: SimpleNamespace) -> None:
        """:meth:`project_decoder_grad_` through the views."""
        g, W = v.g_W_dec, v.W_dec
        g.addcmul_(torch.mul(g, W).sum(dim=1, keepdim=True), W, value=-1.0)


def keep_where_positive(G: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """``G`` where ``Z > 0``, else 0 (a new tensor): the ReLU's backward, in one kernel
    (``G * (Z > 0)`` costs three, with a bool-to-float conversion)."""
    return torch.ops.aten.threshold_backward(G, Z, 0.0)
