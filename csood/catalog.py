"""The study's methods (SPEC section 3), registered by name for the chapters and the runner.

==================  ==================================================================
name                what it is
==================  ==================================================================
``fista_oracle``    FISTA with the true mixing matrix as dictionary (nothing learned)
``dl_fista``        dictionary learning by alternating FISTA codes and least squares
``softplus_adam``   dictionary and softplus codes learned jointly by Adam ("direct")
``sae_relu``        sparse autoencoders: ReLU, TopK, JumpReLU, matching pursuit
``sae_topk``
``sae_jumprelu``
``sae_mp``
``lista``           16 unrolled ISTA layers with free weights, trained on the true dictionary
``linear_probe``    ridge regression from observations to latents (supervised skyline)
``frozen_<sae>``    FISTA on ``y - b_dec`` with a trained SAE's decoder, cold start
``refined_<sae>``   the same, warm-started from the SAE's codes
==================  ==================================================================

Every learner sees ``dataset.train`` only; codes for val and OOD are inferred afterwards with
what was learned. Parameters whose default is ``None`` are resolved from the data at run time
(``width``/``n_components`` = ``n_latents``, ``k`` = the data's ``k``).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_bool, check_choice
from .methods import SPLITS, MethodOutput, register, register_family
from .params import Float, FloatList, Int
from .softplus_adam import SOFTPLUS_ADAM_STEPS

__all__ = ["SAE_METHODS"]

SAE_METHODS = ("sae_relu", "sae_topk", "sae_jumprelu", "sae_mp")
_POS = Float(low=0.0, low_inclusive=False)
_NONNEG = Float(low=0.0)


def _optional(check):
    return lambda name, value: None if value is None else check(name, value)


def _codes(fn, dataset, splits=SPLITS) -> dict:
    return {s: fn(dataset[s].Y) for s in splits}


@register("fista_oracle", defaults={"lam": 0.1, "max_iter": 100, "positive": True}, version=1,
          checks={"lam": _NONNEG, "max_iter": Int(low=1), "positive": check_bool})
def _fista_oracle(dataset, params, *, seed, device):
    """FISTA with the true mixing matrix ``A`` as dictionary (nothing is learned)."""
    from .solvers import fista

    codes = _codes(lambda Y: fista(Y, dataset.A, params["lam"], positive=params["positive"],
                                   max_iter=params["max_iter"], device=device), dataset)
    return MethodOutput(codes, info={"n_iter": params["max_iter"]})


@register("linear_probe", defaults={"alphas": [1e-6, 1e-4, 1e-2, 1.0, 10.0]}, version=1,
          checks={"alphas": FloatList(_POS)})
def _linear_probe(dataset, params, *, seed, device):
    """Ridge regression Y -> Z fitted on the train split with its true latents (supervised)."""
    from .probes import LinearProbe

    probe = LinearProbe(alphas=tuple(params["alphas"])).fit(dataset.train.Y, dataset.train.Z)
    codes = _codes(lambda Y: probe.transform(Y).astype(np.float32), dataset)
    return MethodOutput(codes, info={"alpha": probe.alpha_},
                        artifacts={"coef": probe.coef_.astype(np.float32)})


@register("dl_fista", version=1,
          defaults={"n_components": None, "lam": 0.1, "max_rounds": 1000, "fista_iter": 100,
                    "tol": 1e-5, "eps": 1e-6, "infer_iter": 100, "schedule": "paper"},
          checks={"n_components": _optional(Int(low=1)), "lam": _NONNEG, "max_rounds": Int(low=1),
                  "fista_iter": Int(low=1), "tol": _NONNEG, "eps": _POS, "infer_iter": Int(low=1),
                  "schedule": lambda name, v: check_choice(name, v, ("paper", "fast"))})
def _dl_fista(dataset, params, *, seed, device):
    """DL-FISTA on the train split, then FISTA codes for val and OOD on the final dictionary."""
    from .dictionary import dl_fista
    from .solvers import fista

    res = dl_fista(dataset.train.Y, params["n_components"] or dataset.n_latents, lam=params["lam"],
                   max_rounds=params["max_rounds"], fista_iter=params["fista_iter"], tol=params["tol"],
                   eps=params["eps"], schedule=params["schedule"], seed=seed, device=device)
    D = np.asarray(res.dictionary)
    codes = {"train": np.asarray(res.codes)}
    codes.update(_codes(lambda Y: fista(Y, D, params["lam"], max_iter=params["infer_iter"], device=device),
                        dataset, ("val", "ood")))
    return MethodOutput(codes, D, info={"n_rounds": res.n_rounds, "converged": res.converged},
                        artifacts={"decoder": D})


@register("softplus_adam", version=1,
          defaults={"n_components": None, "lam": 0.1, "n_steps": SOFTPLUS_ADAM_STEPS, "lr": 1e-3},
          checks={"n_components": _optional(Int(low=1)), "lam": _NONNEG, "n_steps": Int(low=1),
                  "lr": _POS})
def _softplus_adam(dataset, params, *, seed, device):
    """Softplus codes and dictionary by Adam on train; val/OOD codes with the dictionary frozen."""
    from .softplus_adam import softplus_adam, softplus_adam_codes

    kw = {"lam": params["lam"], "n_steps": params["n_steps"], "lr": params["lr"], "device": device}
    D, train_codes = softplus_adam(dataset.train.Y, params["n_components"] or dataset.n_latents,
                                   seed=seed, **kw)
    D = np.asarray(D)
    codes = {"train": np.asarray(train_codes)}
    codes.update(_codes(lambda Y: np.asarray(softplus_adam_codes(Y, D, seed=seed, **kw)), dataset,
                        ("val", "ood")))
    return MethodOutput(codes, D, artifacts={"decoder": D})


_SAE_DEFAULTS = {"width": None, "k": None, "epochs": 500, "batch_size": 64, "lr": 5e-4,
                 "renorm_every": 50}
_SAE_CHECKS = {"width": _optional(Int(low=1)), "k": _optional(Int(low=1)), "epochs": Int(low=1),
               "batch_size": Int(low=1), "lr": _POS, "renorm_every": Int(low=1)}


def _register_sae(variant: str, extra: dict | None = None):
    extra = extra or {}

    @register(f"sae_{variant}", version=1, defaults={**_SAE_DEFAULTS, **extra},
              checks={**_SAE_CHECKS, **{name: _NONNEG for name in extra}})
    def _sae(dataset, params, *, seed, device):
        from .saes import sae_codes, sae_decoder, sae_decoder_bias, train_sae

        p = dict(params)
        width, k = p.pop("width") or dataset.n_latents, p.pop("k") or dataset.k
        sae, history = train_sae(variant, dataset.train.Y, width=width, k=k, seed=seed,
                                 device=device, **p)
        D, b = sae_decoder(sae), sae_decoder_bias(sae)
        codes = _codes(lambda Y: sae_codes(sae, Y), dataset)
        # the encoder's parameters too, so that a stored SAE can be rebuilt (csood.decompositions)
        encoder = {f"state_{name}": p[0].detach().cpu().numpy() for name, p in sae.named_parameters()
                   if name not in ("W_dec_NMF", "b_dec_NM")}
        return MethodOutput(codes, D, info={"final_loss": history["loss"][-1]},
                            artifacts={"decoder": D, "decoder_bias": b, **encoder})

    _sae.__doc__ = f"SAE ({variant}) trained on the train split; its encoder gives every split's codes."
    return _sae


for _variant, _extra in (("relu", {"gamma": 1e-4}), ("topk", None), ("jumprelu", {"gamma": 1e-4}),
                         ("mp", None)):
    _register_sae(_variant, _extra)


# "coupled" (per-layer W_t of shape (m, n), no n-by-n S_t): lower held-out Lasso objective than
# "full" at n = 100 and 1000 in csood.lista's measurements, and memory that scales to n = 10^4.
@register("lista", version=1,
          defaults={"n_layers": 16, "lam": 0.1, "structure": "coupled", "epochs": 50,
                    "batch_size": 256, "lr": 1e-3},
          checks={"n_layers": Int(low=1), "lam": _NONNEG, "epochs": Int(low=1),
                  "batch_size": Int(low=1), "lr": _POS,
                  "structure": lambda name, v: check_choice(name, v, ("auto", "full", "coupled"))})
def _lista(dataset, params, *, seed, device):
    """LISTA initialised from ISTA on the true dictionary and trained on train (Lasso loss)."""
    from .lista import lista_codes, train_lista

    model = train_lista(dataset.A, dataset.train.Y, seed=seed, device=device, **params)
    return MethodOutput(_codes(lambda Y: lista_codes(model, Y), dataset))


_FROZEN_DEFAULTS = {"lam": 0.1, "max_iter": 100}
_FROZEN_CHECKS = {"lam": _NONNEG, "max_iter": Int(low=1)}


@register_family("frozen_", defaults=_FROZEN_DEFAULTS, version=1, bases=SAE_METHODS,
                 checks=_FROZEN_CHECKS)
def _frozen(base, dataset, params, *, seed, device):
    """FISTA on ``y - b_dec`` with the SAE's decoder, started from zero."""
    from .support import frozen_decoder_codes

    W, b = base.artifacts["decoder"], base.artifacts["decoder_bias"]
    codes = _codes(lambda Y: frozen_decoder_codes(Y, W, b, lam=params["lam"], max_iter=params["max_iter"],
                                                  device=device), dataset)
    return MethodOutput(codes, W)


@register_family("refined_", defaults=_FROZEN_DEFAULTS, version=1, bases=SAE_METHODS,
                 checks=_FROZEN_CHECKS)
def _refined(base, dataset, params, *, seed, device):
    """FISTA on ``y - b_dec`` with the SAE's decoder, warm-started from the SAE's codes."""
    from .support import refined_codes

    W, b = base.artifacts["decoder"], base.artifacts["decoder_bias"]
    codes = {s: refined_codes(dataset[s].Y, W, b, base.codes[s], lam=params["lam"],
                              max_iter=params["max_iter"], device=device) for s in SPLITS}
    return MethodOutput(codes, W)
