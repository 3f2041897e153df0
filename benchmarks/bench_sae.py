"""SAE training speed: csood's trainer against the way most research code is written.

For each variant at n = 100 and n = 1000 (k = 10, m = ``cs_bound(n, 10)``, 2,500 training
samples of ``make_dataset(n, 10, n_samples=5000, seed=0)``), seconds per epoch of

* ``ours``: :func:`csood.saes.train_sae`, one model;
* ``ours_batched``: :func:`csood.saes.train_saes` with several seeds in one batched run,
  reported per model;
* ``baseline``: written here, the straightforward way: ``DataLoader(TensorDataset(Y),
  batch_size=64, shuffle=True)``, one ``nn.Module`` per variant with the same maths (autograd,
  including the JumpReLU straight-through estimators and the unrolled matching pursuit),
  ``torch.optim.AdamW(lr=5e-4)`` with its defaults, the same decoder-gradient projection and
  renormalisation.

Every case trains fresh models, after a warm-up, all in one process; seconds per epoch are
``(t(1 + E) - t(1)) / E`` (set-up and the trainer's final evaluation cancel; see
:func:`per_epoch`), ratios are baseline / ours. ``python -m benchmarks.bench_sae`` (``--quick``: n = 100 only, a smoke run
that writes nothing; ``--threads N``: ``torch.set_num_threads(N)`` first).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks._harness import cli, machine, machine_name, measure, parse, table, write_results
from csood.data import cs_bound, make_dataset
from csood.saes import SAE_VARIANTS, train_sae, train_saes

K = 10
BATCH = 64
LR = 5e-4
GAMMA = 1e-4
EPS = 1e-3


# --------------------------------------------------------------------------- the baseline
def _rect(u):
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, theta):
        ctx.save_for_backward(h, theta)
        return h * (h > theta)

    @staticmethod
    def backward(ctx, g):
        h, theta = ctx.saved_tensors
        return g * (h > theta), (-(theta / EPS) * _rect((h - theta) / EPS) * g).sum(0)


class _StepFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, theta):
        ctx.save_for_backward(h, theta)
        return (h > theta).to(h.dtype)

    @staticmethod
    def backward(ctx, g):
        h, theta = ctx.saved_tensors
        return torch.zeros_like(h), (-(1.0 / EPS) * _rect((h - theta) / EPS) * g).sum(0)


class BaselineSAE(nn.Module):
    """One SAE of any variant, written plainly (autograd does the gradients)."""

    def __init__(self, variant: str, m: int, width: int, k: int, seed: int):
        super().__init__()
        self.variant, self.k = variant, k
        W = torch.empty(width, m)
        nn.init.kaiming_uniform_(W, generator=torch.Generator().manual_seed(seed))
        if variant != "mp":
            self.W_enc = nn.Parameter(W.clone())
            self.b_enc = nn.Parameter(torch.zeros(width))
        self.W_dec = nn.Parameter(W.T / W.T.norm(dim=0, keepdim=True))
        self.b_dec = nn.Parameter(torch.zeros(m))
        if variant == "jumprelu":
            self.log_theta = nn.Parameter(torch.full((width,), math.log(1e-3)))

    def encode(self, x):
        if self.variant == "mp":
            r = x - self.b_dec
            z = torch.zeros(x.shape[0], self.W_dec.shape[1])
            taken = torch.zeros_like(z, dtype=torch.bool)
            for _ in range(self.k):
                corr = r @ self.W_dec
                j = corr.detach().abs().masked_fill(taken, -1.0).argmax(dim=1, keepdim=True)
                c = corr.gather(1, j)
                r = r - c * self.W_dec.T[j[:, 0]]
                z = z.scatter(1, j, c)
                taken = taken.scatter(1, j, True)
            return z, 0.0
        pre = (x - self.b_dec) @ self.W_enc.T + self.b_enc
        if self.variant == "relu":
            z = torch.relu(pre)
            return z, GAMMA * z.abs().sum(dim=1).mean()
        if self.variant == "topk":
            vals, idx = pre.topk(self.k, dim=1)
            return torch.zeros_like(pre).scatter(1, idx, torch.relu(vals)), 0.0
        h = torch.relu(pre)
        theta = self.log_theta.exp()
        return _JumpFn.apply(h, theta), GAMMA * _StepFn.apply(h, theta).sum(dim=1).mean()

    def forward(self, x):
        z, penalty = self.encode(x)
        return nn.functional.mse_loss(z @ self.W_dec.T + self.b_dec, x) + penalty


def train_baseline(variant: str, Y: torch.Tensor, width: int, epochs: int, seed: int = 0):
    model = BaselineSAE(variant, Y.shape[1], width, K, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(Y), batch_size=BATCH, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    for epoch in range(1, epochs + 1):
        for (x,) in loader:
            opt.zero_grad()
            model(x).backward()
            with torch.no_grad():
                g, W = model.W_dec.grad, model.W_dec
                g -= (g * W).sum(dim=0, keepdim=True) * W
            opt.step()
        if epoch % 50 == 0:
            with torch.no_grad():
                model.W_dec /= model.W_dec.norm(dim=0, keepdim=True)
    return model


# --------------------------------------------------------------------------- the benchmark
def per_epoch(train, epochs: int, repeats: int, device) -> dict:
    """Seconds per epoch of ``train(n_epochs)``: ``(t(1 + epochs) - t(1)) / epochs``, so that
    set-up and the trainer's final evaluation cancel.

    From the fastest of ``repeats`` timings of each (other processes only ever slow a run
    down; on an idle machine min and median agree); the medians are kept in ``"median"``.
    """
    t_long = measure(lambda: train(1 + epochs), repeats=repeats, device=device)
    t_short = measure(lambda: train(1), repeats=repeats, device=device)
    return {"seconds_per_epoch": (t_long["min"] - t_short["min"]) / epochs,
            "median": (t_long["median"] - t_short["median"]) / epochs,
            "long": t_long, "short": t_short}


def main(argv=None) -> None:
    parser = cli(__doc__, "smoke run: n = 100, fewer epochs")
    args = parse(parser, argv)
    sizes = (100,) if args.quick else (100, 1000)
    epochs, repeats = (2, 1) if args.quick else (5, 3)
    n_seeds = 2 if args.quick else 4
    device = "cpu"

    cases, rows = {}, []
    for n in sizes:
        Y_np = make_dataset(n, K, n_samples=5000, seed=0).train.Y
        Y = torch.from_numpy(Y_np)
        m = cs_bound(n, K)
        assert Y.shape == (2500, m)
        for variant in SAE_VARIANTS:
            kw = dict(width=n, k=K, device=device)
            t = {"ours": per_epoch(lambda e: train_sae(variant, Y_np, epochs=e, **kw),
                                   epochs, repeats, device),
                 "ours_batched": per_epoch(lambda e: train_saes(variant, Y_np, seeds=range(n_seeds),
                                                                epochs=e, **kw),
                                           epochs, repeats, device),
                 "baseline": per_epoch(lambda e: train_baseline(variant, Y, n, e), epochs, repeats,
                                       device)}
            sec = {"ours": t["ours"]["seconds_per_epoch"],
                   "ours_batched_per_model": t["ours_batched"]["seconds_per_epoch"] / n_seeds,
                   "baseline": t["baseline"]["seconds_per_epoch"]}
            case = f"{variant}_n{n}"
            cases[case] = {"n": n, "m": m, "k": K, "width": n, "n_train": 2500,
                           "epochs_timed": epochs, "n_seeds_batched": n_seeds,
                           "torch_threads": torch.get_num_threads(), "seconds_per_epoch": sec,
                           "raw": t, "speedup_ours": sec["baseline"] / sec["ours"],
                           "speedup_batched": sec["baseline"] / sec["ours_batched_per_model"]}
            rows.append([variant, n, m, sec["baseline"], sec["ours"], sec["ours_batched_per_model"],
                         cases[case]["speedup_ours"], cases[case]["speedup_batched"]])
            print(f"{case}: baseline {sec['baseline']:.4f} s/epoch, ours {sec['ours']:.4f}, "
                  f"batched {sec['ours_batched_per_model']:.4f} per model", flush=True)
    if not args.quick:
        write_results(machine_name(device), "sae_training", cases, machine(device))
    print(table(rows, ["variant", "n", "m", "baseline s/epoch", "ours s/epoch",
                       f"ours, {n_seeds} seeds batched, s/epoch/model", "baseline/ours",
                       "baseline/batched"]))


if __name__ == "__main__":
    main()
