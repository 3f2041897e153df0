"""LISTA: ISTA unrolled into ``T`` layers with free per-layer weights and thresholds.

Non-negative shrinkage ``shrink(v) = relu(v)`` throughout (codes are non-negative as in the
rest of the book). Two parametrisations of layer ``t`` (codes are rows, ``z_0 = 0``):

``"full"`` (Gregor & LeCun's form)
    ``z_{t+1} = relu(y W_t + z_t S_t - theta_t)`` with ``W_t`` (m, n) and ``S_t`` (n, n);
    ISTA is ``W_t = D / L``, ``S_t = I - D^T D / L``, ``theta_t = lam / L``.
    Memory ``T (m n + n^2)`` parameters (about 1.6e9 at n = 10,000: too big).
``"coupled"``
    ``z_{t+1} = relu(z_t + (y - z_t D^T) W_t - theta_t)`` with ``W_t`` (m, n) and the fixed
    dictionary ``D``; ISTA is ``W_t = D / L``. Memory ``T m n`` parameters.
``"auto"``
    "full" for ``n_components <= 1000``, else "coupled" (a memory rule). With 2,500 training
    samples "coupled" reached a lower held-out objective than "full" at n = 100 (slightly) and
    at n = 1,000 (clearly: "full"'s 16 n^2 weights overfit), so pass it explicitly when the
    training set is small relative to n^2.

Thresholds ``theta_t`` are vectors (one per atom and layer). At initialisation both
structures compute exactly ``T`` ISTA steps from zero on ``D``. :func:`train_lista` then fits the
weights on the training observations to minimise the mean Lasso objective
``0.5 ||y - D z_T||^2 + lam ||z_T||_1`` of the network's output (unsupervised; ``D`` stays
fixed), with Adam on mini-batches.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import check_choice, check_float, check_int, fail
from .solvers import _check_Y_D, _compute_device, _dtype_of, _like, _to_tensor, lipschitz_constant

__all__ = ["LISTA", "train_lista", "lista_codes", "STRUCTURES", "AUTO_FULL_MAX"]

STRUCTURES = ("auto", "full", "coupled")
#: Largest ``n_components`` for which ``structure="auto"`` picks "full".
AUTO_FULL_MAX = 1000


class LISTA(nn.Module):
    """Unrolled, learnable ISTA initialised from a dictionary.

    Parameters
    ----------
    D : tensor, shape (m, n_components)
        Dictionary (atoms as columns); kept as a fixed buffer.
    n_layers : int, default 16
    lam : float, default 0.1
        Lasso penalty: initial thresholds ``lam / L`` and the training objective.
    structure : {"auto", "full", "coupled"}, default "auto"
        See the module docstring.
    L : float, optional
        Lipschitz constant; default :func:`csood.solvers.lipschitz_constant` of ``D``.

    Attributes
    ----------
    W : Parameter, shape (n_layers, m, n_components)
    S : Parameter, shape (n_layers, n_components, n_components)
        "full" only.
    theta : Parameter, shape (n_layers, n_components)
    D : buffer, shape (m, n_components)
    structure : str
        The resolved structure ("full" or "coupled").
    history_ : dict
        Set by :func:`train_lista`: ``epoch``, mean training ``loss`` and ``holdout`` loss per
        epoch, and ``best_epoch`` (the one whose weights were kept).
    """

    def __init__(self, D: torch.Tensor, n_layers: int = 16, lam: float = 0.1,
                 structure: str = "auto", L: float | None = None):
        super().__init__()
        m, n = D.shape
        if structure == "auto":
            structure = "full" if n <= AUTO_FULL_MAX else "coupled"
        self.structure, self.lam, self.n_layers = structure, float(lam), int(n_layers)
        D = D.detach()
        self.L = float(lipschitz_constant(D) if L is None else L)
        self.register_buffer("D", D.clone())
        self.W = nn.Parameter((D / self.L).unsqueeze(0).repeat(n_layers, 1, 1))
        self.theta = nn.Parameter(torch.full((n_layers, n), self.lam / self.L, dtype=D.dtype,
                                             device=D.device))
        if structure == "full":
            S = torch.eye(n, dtype=D.dtype, device=D.device) - (D.T @ D) / self.L
            self.S = nn.Parameter(S.unsqueeze(0).repeat(n_layers, 1, 1))
        else:
            self.register_parameter("S", None)
        self.history_: dict = {"epoch": [], "loss": [], "holdout": [], "best_epoch": 0}

    def forward(self, Y: torch.Tensor) -> torch.Tensor:
        """Codes ``z_T`` of shape (batch, n_components) for ``Y`` of shape (batch, m)."""
        Z = torch.zeros((Y.shape[0], self.D.shape[1]), dtype=Y.dtype, device=Y.device)
        for t in range(self.n_layers):
            if self.structure == "full":
                pre = Y @ self.W[t] + Z @ self.S[t]
            else:
                pre = Z + (Y - Z @ self.D.T) @ self.W[t]
            Z = torch.relu(pre - self.theta[t])
        return Z

    def objective(self, Y: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
        """Per-sample Lasso objective (batch,) of codes ``Z`` on the buffer ``D``."""
        R = Y - Z @ self.D.T
        return 0.5 * (R * R).sum(dim=1) + self.lam * Z.abs().sum(dim=1)


def train_lista(D, Y_train, *, n_layers: int = 16, lam: float = 0.1, structure: str = "auto",
                epochs: int = 50, batch_size: int = 256, lr: float = 1e-3,
                holdout: float = 0.1, patience: int = 10, seed: int = 0, device=None) -> LISTA:
    """Build a :class:`LISTA` on ``D`` and train it on ``Y_train`` (unsupervised).

    Adam (``lr``) on mini-batches of the training rows (shuffled each epoch from ``seed``),
    loss = mean Lasso objective of the network's output with ``D`` fixed. A random ``holdout``
    fraction of the *training* rows is kept aside; after every epoch the mean objective on it
    is measured and the weights of the best epoch (the ISTA initialisation counts as epoch 0)
    are returned: a free network of ``T (m n + n^2)`` weights overfits a few thousand samples
    at large n, and this keeps it from ending worse than ISTA on unseen data.

    Parameters
    ----------
    D : array or tensor, shape (m, n_components)
        Dictionary (e.g. the true ``A``, or a learned one).
    Y_train : array or tensor, shape (n_samples, m)
        Training observations only.
    n_layers : int, default 16
        Unrolled layers ``T`` (>= 1).
    lam : float, default 0.1
        Lasso penalty (>= 0).
    structure : {"auto", "full", "coupled"}, default "auto"
        See the module docstring; "auto" is "full" iff ``n_components <= 1000``.
    epochs : int, default 50
        Maximum passes over the training rows (>= 0; 0 returns the ISTA-initialised network).
    batch_size : int, default 256
        Rows per Adam step (>= 1).
    lr : float, default 1e-3
        Adam learning rate (> 0).
    holdout : float, default 0.1
        Fraction of the training rows held out for choosing the epoch, in [0, 1). 0 (or a
        hold-out of no row) trains on all rows and returns the last epoch.
    patience : int, default 10
        Stop after this many epochs without a hold-out improvement (>= 1).
    seed : int, default 0
        Seeds the shuffling.
    device : str or torch.device, optional
        None: a tensor ``Y_train`` keeps its device, numpy goes to "auto".

    Returns
    -------
    LISTA
        On the compute device, in eval mode, float32 (float64 if ``D`` or ``Y_train`` is),
        with ``history_`` filled (``epoch``, mean training ``loss``, ``holdout`` loss,
        ``best_epoch``).
    """
    Y, D = _check_Y_D(Y_train, D)
    n_layers = check_int("n_layers", n_layers, low=1)
    lam = check_float("lam", lam, low=0.0)
    structure = check_choice("structure", structure, STRUCTURES)
    epochs = check_int("epochs", epochs, low=0)
    batch_size = check_int("batch_size", batch_size, low=1)
    lr = check_float("lr", lr, low=0.0, low_inclusive=False)
    holdout = check_float("holdout", holdout, low=0.0, high=1.0, high_inclusive=False)
    patience = check_int("patience", patience, low=1)
    seed = check_int("seed", seed, low=0)
    dev = _compute_device(Y, device)
    dtype = _dtype_of(Y, D)
    Yt, Dt = _to_tensor(Y, dtype, dev), _to_tensor(D, dtype, dev)
    if not bool(Dt.abs().sum() > 0):
        fail("D", "a matrix with at least one non-zero entry", "an all-zero matrix")
    model = LISTA(Dt, n_layers=n_layers, lam=lam, structure=structure)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(Yt.shape[0], generator=gen).to(dev)
    n_hold = int(holdout * Yt.shape[0]) if Yt.shape[0] > 1 else 0
    Y_hold, Y_fit = Yt[order[:n_hold]], Yt[order[n_hold:]]
    hist = model.history_
    hist.update(holdout=[], best_epoch=0)

    def holdout_loss() -> float:
        with torch.no_grad():
            return float(model.objective(Y_hold, model(Y_hold)).mean()) if n_hold else float("nan")

    snapshot = lambda: {k: v.detach().clone() for k, v in model.state_dict().items()}  # noqa: E731
    best, best_state, since = holdout_loss(), (snapshot() if n_hold else None), 0
    n = Y_fit.shape[0]
    for epoch in range(1, epochs + 1 if n else 1):
        model.train()
        perm = torch.randperm(n, generator=gen).to(dev)
        total = torch.zeros((), dtype=dtype, device=dev)
        for start in range(0, n, batch_size):
            Yb = Y_fit[perm[start:start + batch_size]]
            obj = model.objective(Yb, model(Yb))
            opt.zero_grad(set_to_none=True)
            obj.mean().backward()
            opt.step()
            total += obj.detach().sum()
        h = holdout_loss()
        hist["epoch"].append(epoch)
        hist["loss"].append(float(total) / n)
        hist["holdout"].append(h)
        if n_hold and h < best:
            best, since, hist["best_epoch"] = h, 0, epoch
            best_state = snapshot()
        elif n_hold:
            since += 1
            if since >= patience:
                break
    if n_hold:
        model.load_state_dict(best_state)  # the ISTA initialisation if no epoch beat it
    else:
        hist["best_epoch"] = hist["epoch"][-1] if hist["epoch"] else 0
    return model.eval()


def lista_codes(model: LISTA, Y, *, batch_size: int = 65536):
    """Codes of ``Y`` (n_samples, m) through a trained :class:`LISTA`.

    Computed on the model's device in batches of ``batch_size`` rows, without gradients.

    Returns
    -------
    array or tensor, shape (n_samples, n_components)
        Numpy for numpy ``Y``; a tensor on ``Y``'s device otherwise.
    """
    if not isinstance(model, LISTA):
        fail("model", "a LISTA module (from train_lista)", type(model).__name__)
    Y, _ = _check_Y_D(Y, model.D)
    batch_size = check_int("batch_size", batch_size, low=1)
    Yt = _to_tensor(Y, model.D.dtype, model.D.device)
    with torch.no_grad():
        Z = torch.cat([model(Yt[i:i + batch_size]) for i in range(0, Yt.shape[0], batch_size)]) \
            if Yt.shape[0] else torch.zeros((0, model.D.shape[1]), dtype=Yt.dtype, device=Yt.device)
    return _like(Z, Y)
