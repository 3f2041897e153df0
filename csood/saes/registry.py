"""The registry of SAE variants by name, and :func:`make_sae`."""

from __future__ import annotations

from dataclasses import fields
from typing import Sequence

import numpy as np
import torch

from .._validation import check_int, fail
from .base import SAE

__all__ = ["SAE_VARIANTS", "register", "make_sae", "variant_class", "check_seeds", "make_config"]

#: Variant name -> SAE class, filled by :func:`register`.
SAE_VARIANTS: dict[str, type["SAE"]] = {}


def register(name: str):
    """Class decorator adding an :class:`SAE` subclass to :data:`SAE_VARIANTS` under ``name``."""
    def deco(cls):
        cls.variant = name
        SAE_VARIANTS[name] = cls
        return cls
    return deco


def make_sae(variant: str, n_inputs: int, width: int, *, k: int | None = None, n_models: int = 1,
             seed: int | Sequence[int] = 0, dtype: torch.dtype = torch.float32, **config) -> SAE:
    """Build an SAE of a registered variant (see :data:`SAE_VARIANTS`).

    Parameters
    ----------
    variant : str
        One of ``SAE_VARIANTS`` ("relu", "topk", "jumprelu", "mp").
    n_inputs : int
        Input dimension ``m`` (>= 1).
    width : int
        Number of latents ``F`` (>= 1).
    k : int, optional
        Active latents per sample, ``1 <= k < width``; required by "topk" and "mp", ignored by
        "relu" and "jumprelu" (so one call signature serves a sweep over variants).
    n_models : int, default 1
        Number of independent models stacked along the model axis.
    seed : int or sequence of int, default 0
        An int gives the models seeds ``seed, seed + 1, ...``; a sequence gives one seed per
        model (its length must equal ``n_models``). Seeds are >= 0.
    dtype : torch.dtype, default torch.float32
    **config
        The variant's other hyper-parameters (fields of its config dataclass, e.g. ``gamma``).

    Returns
    -------
    SAE
        On the CPU.

    Raises
    ------
    ValueError
        Unknown variant or config key, missing or out-of-range ``k``, bad shapes or seeds.
    """
    cls = variant_class(variant)
    n_inputs = check_int("n_inputs", n_inputs, low=1)
    width = check_int("width", width, low=1)
    n_models = check_int("n_models", n_models, low=1)
    seeds = check_seeds(seed, n_models)
    if dtype not in (torch.float32, torch.float64):
        fail("dtype", "torch.float32 or torch.float64", dtype)
    return cls(n_inputs, width, make_config(cls, width, k, config), seeds=seeds, dtype=dtype)


def variant_class(variant) -> type[SAE]:
    if not isinstance(variant, str) or variant not in SAE_VARIANTS:
        fail("variant", "one of " + ", ".join(repr(v) for v in SAE_VARIANTS), variant)
    return SAE_VARIANTS[variant]


def check_seeds(seed, n_models: int | None = None) -> tuple[int, ...]:
    """Seeds of ``n_models`` models from an int (consecutive seeds) or a sequence."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        seed = check_int("seed", seed, low=0)
        return tuple(range(seed, seed + (n_models or 1)))
    try:
        seeds = tuple(seed)
    except TypeError:
        fail("seed", "a non-negative integer or a sequence of them", seed)
    if not seeds:
        fail("seeds", "a non-empty sequence of non-negative integers", seed)
    seeds = tuple(check_int("seed", s, low=0) for s in seeds)
    if n_models is not None and len(seeds) != n_models:
        fail("seed", f"an int or a sequence of n_models (= {n_models}) seeds", seed)
    return seeds


def make_config(cls: type[SAE], width: int, k, config: dict):
    """Validated config dataclass of ``cls`` from ``k`` and keyword arguments."""
    names = [f.name for f in fields(cls.config_class)]
    allowed = tuple(n for n in names if n != "k")
    for key in config:
        if key not in allowed:
            fail("config", f"keyword arguments among {allowed} for variant {cls.variant!r}", key)
    if "k" in names:
        if k is None:
            fail("k", f"an integer with 1 <= k < width (= {width}) for variant {cls.variant!r}", k)
        config = {**config, "k": check_int("k", k, low=1, high=width - 1,
                                           allowed=f"an integer with 1 <= k < width (= {width})")}
    cfg = cls.config_class(**config)
    cfg.validate()
    return cfg
