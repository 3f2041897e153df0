"""Training of the SAEs (SPEC section 3) and numpy accessors for the chapters.

The trainer is written for per-step overhead, which dominates at the book's sizes (a batch is
64 samples of dimension ~50-140):

* no ``DataLoader``: each model's shuffle order is a ``torch.randperm`` from its own seeded
  generator (drawn on the CPU so that every device sees the same order, one small copy per
  epoch); the epoch's shuffled data is gathered once into a preallocated device buffer and the
  batches are fixed views of it;
* no autograd graph: each variant writes its gradients by hand into preallocated ``.grad``
  tensors (tests check them against autograd on :meth:`SAE.loss`);
* one fused AdamW kernel call per step for all parameters (the kernel behind
  ``torch.optim.AdamW(fused=True)``, called directly; ``foreach`` AdamW where torch has no
  fused kernel for the device);
* several models (seeds) of one variant and shape train as one batched computation along the
  model axis; every model keeps its own initialisation and batch order, so a batch of seeds
  gives the models that one-at-a-time training gives.

Optimiser: ``torch.optim.AdamW(lr=lr)`` with torch's other defaults (betas (0.9, 0.999),
eps 1e-8, weight_decay 0.01 on every parameter), batch 64, 500 epochs; the last batch of an
epoch holds the remainder. Before each step the decoder gradient is projected orthogonal to
its columns; the columns are renormalised to unit norm after every ``renorm_every``-th epoch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .._device import resolve_device
from .._validation import check_array, check_float, check_int, fail
from ..metrics import dictionary_diagnostics
from .base import SAE, seed_generator
from .registry import check_seeds, make_config, variant_class

__all__ = ["train_sae", "train_saes", "sae_codes", "sae_decoder", "sae_decoder_bias"]

_CHUNK_ELEMENTS = 1 << 22  # codes computed per chunk when evaluating: (n_models * rows * width)


class _AdamW:
    """``torch.optim.AdamW(params, lr=lr)`` with torch's defaults, stepped with less overhead.

    Where torch has the fused AdamW kernel for the parameters' device, :meth:`step` calls it
    directly (what ``torch.optim.AdamW(fused=True).step()`` does after its per-call
    bookkeeping, which costs about as much as the whole update at the book's sizes); otherwise
    it falls back to ``torch.optim.AdamW(foreach=True)``. Gradients are read from ``.grad``.
    """

    BETAS, EPS, WEIGHT_DECAY = (0.9, 0.999), 1e-8, 1e-2  # torch's defaults

    def __init__(self, params: list[torch.Tensor], lr: float):
        self.params, self.lr = params, lr
        p = params[0]
        self.fused = getattr(torch, "_fused_adamw_", None)
        if self.fused is not None and not self._fused_works(p.device, p.dtype):
            self.fused = None
        if self.fused is None:
            self.opt = torch.optim.AdamW(params, lr=lr, foreach=True)
            return
        self.grads = [q.grad for q in params]
        self.exp_avgs = [torch.zeros_like(q) for q in params]
        self.exp_avg_sqs = [torch.zeros_like(q) for q in params]
        self.step_count = torch.zeros((), dtype=torch.float32, device=p.device)
        self.steps = [self.step_count] * len(params)  # one shared counter, read by the kernel

    def _call(self, params, grads, exp_avgs, exp_avg_sqs, steps) -> None:
        self.fused(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=self.lr,
                   beta1=self.BETAS[0], beta2=self.BETAS[1], weight_decay=self.WEIGHT_DECAY,
                   eps=self.EPS, maximize=False, grad_scale=None, found_inf=None)

    def _fused_works(self, device, dtype) -> bool:
        t = [torch.ones(2, dtype=dtype, device=device) for _ in range(4)]
        try:
            self._call([t[0]], [t[1]], [t[2]], [t[3]], [torch.ones((), device=device)])
        except (RuntimeError, TypeError, NotImplementedError):
            return False
        return True

    def step(self) -> None:
        if self.fused is None:
            self.opt.step()
            return
        self.step_count.add_(1.0)
        self._call(self.params, self.grads, self.exp_avgs, self.exp_avg_sqs, self.steps)


def _as_tensor(X, dtype: torch.dtype | None, device: torch.device) -> torch.Tensor:
    if dtype is None:
        dtype = torch.float64 if X.dtype in (np.float64, torch.float64) else torch.float32
    if isinstance(X, torch.Tensor):
        return X.detach().to(device=device, dtype=dtype).contiguous()
    return torch.as_tensor(np.ascontiguousarray(X), dtype=dtype, device=device)


@torch.no_grad()
def _evaluate(sae: SAE, Y: torch.Tensor) -> np.ndarray:
    """Loss, MSE and mean L0 of every model on all of ``Y``: float64 array (3, n_models)."""
    N, S = sae.n_models, Y.shape[0]
    rows = max(1, _CHUNK_ELEMENTS // (N * sae.width))
    total = torch.zeros((3, N), dtype=torch.float64, device=Y.device)
    for a in range(0, S, rows):
        Y_NBM = sae._with_model_axis(Y[a:a + rows])
        Z_NBF, penalty_N = sae._encode(Y_NBM)
        mse_N = (sae.decode(Z_NBF) - Y_NBM).square().mean(dim=(1, 2))
        l0_N = (Z_NBF != 0).sum(dim=2).to(torch.float64).mean(dim=1)
        total += Y_NBM.shape[1] * torch.stack([(mse_N + penalty_N).double(), mse_N.double(), l0_N])
    return (total / S).cpu().numpy()


def _record(history: list[dict], sae: SAE, Y: torch.Tensor, epoch: int, reference) -> None:
    values = _evaluate(sae, Y)
    for i, h in enumerate(history):
        h["epoch"].append(epoch)
        for j, key in enumerate(("loss", "mse", "l0")):
            h[key].append(float(values[j, i]))
        if reference is not None:
            diagnostics = dictionary_diagnostics(sae_decoder(sae, i), reference)
            h["mean_cosine"].append(diagnostics["mean_cosine"])


def _fit(sae: SAE, Y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
         renorm_every: int | None, history_every: int | None, reference) -> list[dict]:
    """Train ``sae`` in place on ``Y`` (n_samples, m) on ``Y``'s device; return the histories."""
    N, (S, M) = sae.n_models, Y.shape
    keys = ("epoch", "loss", "mse", "l0") + (() if reference is None else ("mean_cosine",))
    history = [{key: [] for key in keys} for _ in range(N)]
    if history_every:
        _record(history, sae, Y, 0, reference)
    params = list(sae.parameters())
    for p in params:
        p.grad = torch.zeros_like(p)
    opt = _AdamW(params, lr)
    views = sae._bind()
    generators = [seed_generator(seed, 1) for seed in sae.seeds]
    Y_NSM = torch.empty((N, S, M), dtype=Y.dtype, device=Y.device)  # the epoch's shuffled data
    batches = [Y_NSM[:, a:a + batch_size] for a in range(0, S, batch_size)]
    with torch.no_grad():
        for epoch in range(1, epochs + 1):
            order = torch.stack([torch.randperm(S, generator=g) for g in generators])
            torch.index_select(Y, 0, order.view(-1).to(Y.device), out=Y_NSM.view(N * S, M))
            for Y_NBM in batches:
                sae._grads_(Y_NBM, views)
                sae._project_(views)
                opt.step()
            if renorm_every and epoch % renorm_every == 0:
                sae.normalise_decoder_()
            if epoch == epochs or (history_every and epoch % history_every == 0):
                _record(history, sae, Y, epoch, reference)
    for p in params:
        p.grad = None
    return history


def train_saes(variant: str, Y_train, *, seeds: Sequence[int] = (0, 1, 2), width: int,
               k: int | None = None, epochs: int = 500, batch_size: int = 64, lr: float = 5e-4,
               renorm_every: int | None = 50, history_every: int | None = None, reference=None,
               device=None, **config) -> tuple[SAE, list[dict]]:
    """Train one SAE per seed, all at once (batched along the model axis).

    Model ``i`` is initialised and shuffled from ``seeds[i]`` only, so it equals
    ``train_sae(..., seed=seeds[i])`` (up to floating-point summation order, which the
    batched kernels keep identical on the CPU).

    Parameters
    ----------
    variant : str
        One of ``SAE_VARIANTS``: "relu", "topk", "jumprelu", "mp".
    Y_train : array or tensor, shape (n_samples, m)
        Training inputs (finite). float64 trains in float64, anything else in float32.
    seeds : sequence of int, default (0, 1, 2)
        One non-negative seed per model.
    width : int
        Number of latents ``F`` (>= 1); SPEC: ``n_latents``.
    k : int, optional
        ``1 <= k < width``; required by "topk" and "mp", ignored by "relu" and "jumprelu".
    epochs : int, default 500
        Passes over the data (>= 1).
    batch_size : int, default 64
    lr : float, default 5e-4
        AdamW learning rate (> 0); torch's defaults otherwise (weight decay 0.01).
    renorm_every : int or None, default 50
        Renormalise the decoder columns after every ``renorm_every``-th epoch (None or 0: never).
    history_every : int, optional
        Record the history at epoch 0 and every ``history_every`` epochs (and at the last).
        None: at the last epoch only.
    reference : array, shape (m, n), optional
        A reference dictionary (e.g. the true mixing matrix); adds ``"mean_cosine"`` (Hungarian
        matched mean ``|cos|`` of decoder columns, :func:`csood.metrics.dictionary_diagnostics`).
    device : str or torch.device, optional
        None: a tensor ``Y_train`` stays on its device, numpy goes to ``resolve_device("auto")``.
    **config
        The variant's hyper-parameters: ``gamma`` (relu, jumprelu), ``theta_init`` and
        ``bandwidth`` (jumprelu).

    Returns
    -------
    sae : SAE
        ``n_models = len(seeds)``, on the training device, in train mode, without gradients.
    histories : list of dict
        One per model: lists ``"epoch"``, ``"loss"`` (MSE + penalty), ``"mse"``, ``"l0"``
        (mean non-zeros per sample), on all of ``Y_train``; ``"mean_cosine"`` with ``reference``.

    Raises
    ------
    ValueError
        Naming the offending argument.
    """
    cls = variant_class(variant)
    Y_train = check_array("Y_train", Y_train, ndim=2)
    S, M = Y_train.shape
    if S < 1 or M < 1:
        fail("Y_train", "a non-empty (n_samples, m) array", f"shape {tuple(Y_train.shape)}")
    width = check_int("width", width, low=1)
    seeds = check_seeds(seeds)
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    lr = check_float("lr", lr, low=0.0, low_inclusive=False)
    if renorm_every is not None:
        renorm_every = check_int("renorm_every", renorm_every, low=0)
    if history_every is not None:
        history_every = check_int("history_every", history_every, low=1)
    if reference is not None:
        if isinstance(reference, torch.Tensor):
            reference = reference.detach().cpu().numpy()
        reference = np.asarray(check_array("reference", reference, ndim=2), dtype=np.float64)
        if reference.shape[0] != M:
            fail("reference", f"an array of shape (m, n) with m = Y_train.shape[1] = {M}",
                 f"shape {reference.shape}")
    cfg = make_config(cls, width, k, config)
    if device is None:
        dev = Y_train.device if isinstance(Y_train, torch.Tensor) else resolve_device("auto")
    else:
        dev = resolve_device(device)
    Y = _as_tensor(Y_train, None, dev)
    sae = cls(M, width, cfg, seeds=seeds, dtype=Y.dtype).to(dev)
    history = _fit(sae, Y, epochs=epochs, batch_size=batch_size, lr=lr, renorm_every=renorm_every,
                   history_every=history_every, reference=reference)
    return sae, history


def train_sae(variant: str, Y_train, *, width: int, k: int | None = None, seed: int = 0,
              epochs: int = 500, batch_size: int = 64, lr: float = 5e-4,
              renorm_every: int | None = 50, history_every: int | None = None, reference=None,
              device=None, **config) -> tuple[SAE, dict]:
    """Train one SAE: :func:`train_saes` with ``seeds=(seed,)``.

    Returns
    -------
    sae : SAE
        ``n_models = 1``.
    history : dict
        As one entry of :func:`train_saes`'s histories.
    """
    seed = check_int("seed", seed, low=0)
    sae, histories = train_saes(variant, Y_train, seeds=(seed,), width=width, k=k, epochs=epochs,
                                batch_size=batch_size, lr=lr, renorm_every=renorm_every,
                                history_every=history_every, reference=reference, device=device,
                                **config)
    return sae, histories[0]


# --------------------------------------------------------------------------- numpy accessors
def _check_sae(sae, model) -> int:
    if not isinstance(sae, SAE):
        fail("sae", "an SAE (from make_sae, train_sae or train_saes)", type(sae).__name__)
    return check_int("model", model, low=0, high=sae.n_models - 1,
                     allowed=f"an integer with 0 <= model < n_models (= {sae.n_models})")


@torch.no_grad()
def sae_codes(sae: SAE, Y, model: int = 0) -> np.ndarray:
    """Codes of model ``model`` for ``Y``, as numpy.

    Parameters
    ----------
    sae : SAE
    Y : array or tensor, shape (n_samples, m)
    model : int, default 0

    Returns
    -------
    numpy.ndarray, shape (n_samples, width)
        In the SAE's dtype, computed on its device in chunks.
    """
    model = _check_sae(sae, model)
    Y = check_array("Y", Y, ndim=2)
    if Y.shape[1] != sae.n_inputs:
        fail("Y", f"an array of shape (n_samples, {sae.n_inputs})", f"shape {tuple(Y.shape)}")
    one = sae if sae.n_models == 1 else sae.take(model)
    p = one.W_dec_NMF
    Yt = _as_tensor(Y, p.dtype, p.device)
    rows = max(1, _CHUNK_ELEMENTS // one.width)
    out = [one.encode(Yt[a:a + rows])[0].cpu() for a in range(0, Yt.shape[0], rows)]
    return (torch.cat(out) if out else torch.zeros((0, one.width), dtype=p.dtype)).numpy()


def sae_decoder(sae: SAE, model: int = 0) -> np.ndarray:
    """Decoder of model ``model`` as numpy, shape (m, width), atoms as columns."""
    model = _check_sae(sae, model)
    return sae.W_dec_NMF[model].detach().cpu().numpy().copy()


def sae_decoder_bias(sae: SAE, model: int = 0) -> np.ndarray:
    """Decoder bias ``b_dec`` of model ``model`` as numpy, shape (m,)."""
    model = _check_sae(sae, model)
    return sae.b_dec_NM[model].detach().cpu().numpy().copy()
