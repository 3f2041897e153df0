"""Chapter parameters: one schema per chapter, checked in each notebook's first cell.

A notebook's parameters cell is flat (papermill overrides any of it with ``-p``); the cell
right after it calls :func:`validate` with every parameter by name, which raises a
``ValueError`` naming the parameter, the value and what is allowed.

>>> validate("toy_derivation", seed=0, tau=0.5, alpha_deg=100.0, beta_deg=150.0,
...          n_grid=5, n_mc=1000, device="cpu")["tau"]
0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ._device import resolve_device
from ._validation import check_choice, check_float, check_int, fail

__all__ = ["Int", "Float", "Choice", "IntList", "FloatList", "MethodList", "Str", "Device", "SCHEMAS",
           "validate"]


@dataclass(frozen=True)
class Int:
    low: int | None = None
    high: int | None = None

    def __call__(self, name, value):
        return check_int(name, value, low=self.low, high=self.high)


@dataclass(frozen=True)
class Float:
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def __call__(self, name, value):
        return check_float(name, value, low=self.low, high=self.high,
                           low_inclusive=self.low_inclusive, high_inclusive=self.high_inclusive)


@dataclass(frozen=True)
class Choice:
    choices: tuple

    def __call__(self, name, value):
        return check_choice(name, value, self.choices)


@dataclass(frozen=True)
class IntList:
    """A non-empty list of integers, each checked by ``item``."""

    item: Int = Int()

    def __call__(self, name, value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or len(value) == 0:
            fail(name, "a non-empty list of integers", value)
        return [self.item(f"{name}[{i}]", v) for i, v in enumerate(value)]


@dataclass(frozen=True)
class FloatList:
    """A non-empty list of numbers, each checked by ``item``."""

    item: Float = Float()

    def __call__(self, name, value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or len(value) == 0:
            fail(name, "a non-empty list of numbers", value)
        return [self.item(f"{name}[{i}]", v) for i, v in enumerate(value)]


@dataclass(frozen=True)
class Device:
    """``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; kept as the string given."""

    def __call__(self, name, value):
        resolve_device(value)
        return value


@dataclass(frozen=True)
class MethodList:
    """A non-empty list of distinct method names: ``family="sweep"`` from
    :data:`csood.sweeps.METHODS`, ``family="sae"`` from :data:`csood.catalog.SAE_METHODS`."""

    family: str = "sweep"

    def __call__(self, name, value):
        if self.family == "sae":
            from .catalog import SAE_METHODS as choices
        else:
            from .sweeps import METHODS as choices
        what = "SAE method names" if self.family == "sae" else "method names"
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or len(value) == 0:
            fail(name, f"a non-empty list of {what}", value)
        out = [check_choice(f"{name}[{i}]", v, choices) for i, v in enumerate(value)]
        if len(set(out)) != len(out):
            fail(name, "a list without repeated methods", value)
        return out


@dataclass(frozen=True)
class Str:
    """A non-empty string."""

    def __call__(self, name, value):
        if not isinstance(value, str) or not value:
            fail(name, "a non-empty string", value)
        return value


SEED = Int(low=0)
#: Parameters shared by the sweep chapters (phase transition, scaling).
_SWEEP = {
    "seed": SEED,
    "n_seeds": Int(low=1),
    "methods": MethodList(),
    "lam": Float(0.0, low_inclusive=False),
    "sae_epochs": Int(low=1),
    "dl_max_rounds": Int(low=1),
    "dl_schedule": Choice(("paper", "fast")),
    "lista_epochs": Int(low=1),
    "softplus_steps": Int(low=1),
    "results_dir": Str(),
    "missing": Choice(("compute", "skip")),
    "paper_results": Choice(("show", "hide")),
    "device": Device(),
}

#: chapter name -> {parameter: check}. A chapter may add cross-parameter checks in CHECKS.
SCHEMAS: dict[str, dict[str, Callable[[str, Any], Any]]] = {
    "toy_derivation": {
        "seed": SEED,
        "tau": Float(0.0, 1.0, low_inclusive=False, high_inclusive=False),
        "alpha_deg": Float(0.0, 180.0, low_inclusive=False, high_inclusive=False),
        "beta_deg": Float(0.0, 180.0, low_inclusive=False, high_inclusive=False),
        "n_grid": Int(low=2),
        "n_mc": Int(low=100),
        "device": Device(),
    },
    "theory": {
        "seed": SEED,
        "n_latents": Int(low=4),
        "k": Int(low=1),
        "n_samples": Int(low=20),
        "lam": Float(0.0, low_inclusive=False),
        "max_iter": Int(low=1),
        "iteration_grid": IntList(Int(low=1)),
        "rip_n_latents": Int(low=4),
        "rip_k": Int(low=1),
        "rip_trials": Int(low=1),
        "n_m_values": Int(low=2),
        "device": Device(),
    },
    "phase_transition": {
        "n_latents": IntList(Int(low=2)),
        "k": IntList(Int(low=1)),
        "c": FloatList(Float(0.0, low_inclusive=False)),
        "n_samples": Int(low=20),
        **_SWEEP,
    },
    "scaling": {
        "vary_n": IntList(Int(low=2)),
        "vary_n_samples": Int(low=20),
        "vary_samples": IntList(Int(low=20)),
        "vary_samples_n": Int(low=2),
        "vary_k": IntList(Int(low=1)),
        "vary_k_n": Int(low=2),
        "vary_k_samples": Int(low=20),
        "k": Int(low=1),
        "c": Float(0.0, low_inclusive=False),
        **_SWEEP,
    },
}

SCHEMAS["controlled_decompositions"] = {
    "n_latents": IntList(Int(low=2)),
    "k": Int(low=1),
    "c": Float(0.0, low_inclusive=False),
    "n_samples": Int(low=20),
    "seed": SEED,
    "n_seeds": Int(low=1),
    "saes": MethodList("sae"),
    "lam": Float(0.0, low_inclusive=False),
    "lam_grid": FloatList(Float(0.0, low_inclusive=False)),
    "iteration_grid": IntList(Int(low=1)),
    "sae_epochs": Int(low=1),
    "sae_history_every": Int(low=1),
    "dl_max_rounds": Int(low=1),
    "dl_round_grid": IntList(Int(low=0)),
    "dl_schedule": Choice(("paper", "fast")),
    "results_dir": Str(),
    "missing": Choice(("compute", "skip")),
    "paper_results": Choice(("show", "hide")),
    "device": Device(),
}


def _check_theory(p: dict) -> None:
    from .data import check_data_config

    check_data_config(p["n_latents"], p["k"], n_samples=p["n_samples"])
    if not p["rip_k"] < p["rip_n_latents"]:
        fail("rip_k", f"an integer with 0 < rip_k < rip_n_latents (= {p['rip_n_latents']})", p["rip_k"])


def _check_phase_transition(p: dict) -> None:
    from .sweeps import phase_grid

    phase_grid(p["n_latents"], p["k"], p["c"], n_samples=p["n_samples"])


def _check_scaling(p: dict) -> None:
    from .data import check_data_config

    def check(where, n, k, n_samples):
        try:
            check_data_config(n, k, n_samples=n_samples, c=p["c"])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    for i, n in enumerate(p["vary_n"]):
        check(f"vary_n[{i}] = {n} with k = {p['k']}", n, p["k"], p["vary_n_samples"])
    for i, n_samples in enumerate(p["vary_samples"]):
        check(f"vary_samples[{i}] = {n_samples}", p["vary_samples_n"], p["k"], n_samples)
    for i, k in enumerate(p["vary_k"]):
        check(f"vary_k[{i}] = {k} with vary_k_n = {p['vary_k_n']}", p["vary_k_n"], k, p["vary_k_samples"])


def _check_controlled_decompositions(p: dict) -> None:
    from .data import check_data_config

    for i, n in enumerate(p["n_latents"]):
        try:
            check_data_config(n, p["k"], n_samples=p["n_samples"], c=p["c"])
        except ValueError as exc:
            raise ValueError(f"n_latents[{i}] = {n} with k = {p['k']}: {exc}") from None
    if max(p["dl_round_grid"]) > p["dl_max_rounds"]:
        fail("dl_round_grid", f"rounds <= dl_max_rounds (= {p['dl_max_rounds']})", p["dl_round_grid"])


#: chapter name -> callable(params dict) raising ValueError on inconsistent combinations.
CHECKS: dict[str, Callable[[dict], None]] = {"theory": _check_theory,
                                             "phase_transition": _check_phase_transition,
                                             "scaling": _check_scaling}
CHECKS["controlled_decompositions"] = _check_controlled_decompositions


def validate(chapter: str, **params: Any) -> dict:
    """Check a chapter's parameters against its schema and return them canonicalised.

    Parameters
    ----------
    chapter : str
        A key of :data:`SCHEMAS`.
    **params
        Every parameter of the chapter's parameters cell, by name.

    Raises
    ------
    ValueError
        Unknown chapter, a missing or unexpected parameter, or a value out of range.
    """
    check_choice("chapter", chapter, sorted(SCHEMAS))
    schema = SCHEMAS[chapter]
    unknown = sorted(set(params) - set(schema))
    if unknown:
        fail("parameter name", "one of " + ", ".join(schema), unknown[0])
    missing = [p for p in schema if p not in params]
    if missing:
        fail(missing[0], f"given (parameters of {chapter!r}: {', '.join(schema)})", None)
    out = {name: check(name, params[name]) for name, check in schema.items()}
    if chapter in CHECKS:
        CHECKS[chapter](out)
    return out
