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

__all__ = ["Int", "Float", "Choice", "IntList", "FloatList", "Device", "SCHEMAS", "validate"]


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


SEED = Int(low=0)

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
}

def _check_theory(p: dict) -> None:
    from .data import check_data_config

    check_data_config(p["n_latents"], p["k"], n_samples=p["n_samples"])
    if not p["rip_k"] < p["rip_n_latents"]:
        fail("rip_k", f"an integer with 0 < rip_k < rip_n_latents (= {p['rip_n_latents']})", p["rip_k"])


#: chapter name -> callable(params dict) raising ValueError on inconsistent combinations.
CHECKS: dict[str, Callable[[dict], None]] = {"theory": _check_theory}


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
