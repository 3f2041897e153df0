"""Method registry: chapters name methods by string and the runner calls them uniformly.

A method is a registered function ``fn(dataset, params, *, seed, device) -> MethodOutput``;
``params`` is the resolved parameter dict (:func:`resolve_params`), ``seed`` the one integer it
draws randomness from, ``device`` is passed on to the solvers (None: CUDA when present)::

    @register("fista_oracle", defaults={"lam": 0.1, "max_iter": 100, "positive": True}, version=1,
          checks={"lam": Float(low=0.0), "max_iter": Int(low=1), "positive": check_bool})
    def _fista_oracle(dataset, params, *, seed, device): ...

Contract (SPEC §3): unsupervised methods *learn* only from ``dataset.train.Y``; they infer codes
for val and OOD with what they learned (per-sample solvers optimise codes on every split), but
nothing fitted on val or OOD feeds back into a dictionary or an encoder. Only ``linear_probe``
(the supervised skyline) reads latents, and only ``dataset.train.Z``; no method reads labels.
Bump ``version`` whenever a change can change a method's output: it is part of every result key.

Families: ``frozen_<sae>`` and ``refined_<sae>`` are registered once per prefix with
:func:`register_family`; a member's parameters are the family's own plus ``"base"``, the base
method's resolved parameters, and its version is the string ``"<family>.<base>"``.

The study's methods are registered in :mod:`csood.catalog` (imported at the end of this
module): see its docstring for the list.
"""

from __future__ import annotations

import json
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ._matching import to_numpy
from ._validation import check_int, fail

__all__ = [
    "SPLITS", "MethodOutput", "MethodSpec", "METHODS", "FAMILIES", "register", "register_family",
    "unregister", "method_names", "get_method", "resolve_params", "run_method",
]

SPLITS = ("train", "val", "ood")


@dataclass
class MethodOutput:
    """What a method returns.

    Attributes
    ----------
    codes : dict of numpy.ndarray
        ``"train"``, ``"val"``, ``"ood"`` codes, each of shape (n_split_samples, n_components).
    dictionary : numpy.ndarray of shape (m, n_components), optional
        The learned dictionary (atoms as columns), None for methods without one.
    info : dict
        JSON-able scalars about the run (e.g. ``n_rounds``, ``alpha``), copied into the record.
    artifacts : dict of numpy.ndarray
        Arrays a later experiment may reuse (e.g. ``"decoder"``, ``"decoder_bias"``).
    """

    codes: dict
    dictionary: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    """A registered method, a resolved family member, or (in :data:`FAMILIES`) a family."""

    name: str  # the prefix, for a family
    fn: Callable
    defaults: dict
    version: Any  # int; "F.B" (family version, base version) for family members
    checks: dict = field(default_factory=dict)
    family: str | None = None  # prefix of the family, for members
    base: str | None = None  # base method, for members
    bases: tuple = ()  # allowed base methods, for families


#: Plain methods by name.
METHODS: dict[str, MethodSpec] = {}
#: Families by prefix (e.g. ``"frozen_"``).
FAMILIES: dict[str, MethodSpec] = {}


# --------------------------------------------------------------------------- canonical values
def _canonical(value, default=None, where="params"):
    """JSON-able canonical form: numpy scalars -> Python, tuples/arrays -> lists, and an int
    given for a float default -> float (so ``lam=1`` and ``lam=1.0`` give the same key)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return float(value) if isinstance(default, float) else int(value)
    if isinstance(value, numbers.Real):
        if not np.isfinite(value):
            fail(where, "a finite number", value)
        return float(value)
    if isinstance(value, (list, tuple)):
        inner = default[0] if isinstance(default, (list, tuple)) and len(default) else None
        return [_canonical(v, inner, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v, None, f"{where}[{k!r}]") for k, v in value.items()}
    fail(where, "a JSON-able value (number, bool, str, None, list or dict)", value)


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        fail(what, "a non-empty string of letters, digits and underscores", name)
    return name


# --------------------------------------------------------------------------- registration
def register(name: str, *, defaults: dict, version: int, checks: dict | None = None,
             replace: bool = False):
    """Decorator registering ``fn(dataset, params, *, seed, device) -> MethodOutput``.

    Parameters
    ----------
    name : str
        Method name used by the chapters (letters, digits, underscores).
    defaults : dict
        Every parameter the method accepts, with its default (JSON-able values).
    version : int
        Bump when the output can change; part of every result key.
    checks : dict, optional
        ``{param: callable(name, value) -> value}`` run by :func:`resolve_params`, e.g.
        :class:`csood.params.Float` instances, so that bad values fail before anything runs.
    replace : bool
        Allow replacing an existing registration (re-executed notebook cells).
    """
    _check_name(name, "name")
    version = check_int("version", version, low=0)
    defaults = _canonical(dict(defaults), where=f"defaults of {name!r}")

    def decorator(fn):
        if name in METHODS and not replace:
            fail("name", "a method name not registered yet (pass replace=True to replace it)", name)
        METHODS[name] = MethodSpec(name, fn, defaults, version, dict(checks or {}))
        return fn

    return decorator


def register_family(prefix: str, *, defaults: dict, version: int, bases: Iterable[str],
                    checks: dict | None = None, replace: bool = False):
    """Decorator registering a family ``<prefix><base>`` of methods built on a base method.

    The function is called as ``fn(base_output, dataset, params, *, seed, device)`` where
    ``base_output`` is the base method's :class:`MethodOutput` on the same dataset and seed (run
    by :func:`run_method`, or taken from its ``base_cache``) and ``params`` holds the family's
    parameters plus ``params["base"]``, the base's resolved parameters.

    Parameters
    ----------
    prefix : str
        Ends with ``"_"``, e.g. ``"frozen_"``.
    defaults, version, checks, replace
        As in :func:`register`, for the family's own parameters (``"base"`` is reserved).
    bases : iterable of str
        Allowed base methods; members exist for those that are registered at lookup time.
    """
    _check_name(prefix, "prefix")
    if not prefix.endswith("_"):
        fail("prefix", "a string ending with '_'", prefix)
    if "base" in defaults:
        fail("defaults", "a dict without the reserved key 'base'", sorted(defaults))
    version = check_int("version", version, low=0)
    bases = tuple(_check_name(b, "bases") for b in bases)
    defaults = _canonical(dict(defaults), where=f"defaults of {prefix!r}")

    def decorator(fn):
        if prefix in FAMILIES and not replace:
            fail("prefix", "a family prefix not registered yet (pass replace=True)", prefix)
        FAMILIES[prefix] = MethodSpec(prefix, fn, defaults, version, dict(checks or {}), bases=bases)
        return fn

    return decorator


def unregister(name: str) -> None:
    """Remove a method (or a family, given its prefix); mainly for tests."""
    METHODS.pop(name, None)
    FAMILIES.pop(name, None)


def method_names() -> list[str]:
    """Every method name that :func:`run_method` accepts now: plain methods, then the members of
    each family whose base is registered."""
    names = sorted(METHODS)
    for prefix in sorted(FAMILIES):
        names += [prefix + b for b in FAMILIES[prefix].bases if b in METHODS]
    return names


def _known_text() -> str:
    parts = [repr(n) for n in sorted(METHODS)]
    for prefix in sorted(FAMILIES):
        fam = FAMILIES[prefix]
        parts.append(f"'{prefix}<base>' with <base> in {{{', '.join(fam.bases)}}}")
    return "one of " + (", ".join(parts) if parts else "(none registered)")


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``name``; family members are resolved by their prefix
    (the longest registered prefix wins). Unknown names raise ``ValueError``."""
    if isinstance(name, str):
        if name in METHODS:
            return METHODS[name]
        for prefix in sorted(FAMILIES, key=len, reverse=True):
            fam = FAMILIES[prefix]
            base = name[len(prefix):]
            if name.startswith(prefix) and base in fam.bases and base in METHODS:
                b = METHODS[base]
                return MethodSpec(name, fam.fn, fam.defaults, f"{fam.version}.{b.version}",
                                  fam.checks, family=prefix, base=base)
    fail("method", _known_text(), name)


def resolve_params(name: str, params: Mapping | None = None) -> dict:
    """Defaults of method ``name`` merged with ``params`` (canonical JSON-able values).

    For a family member, ``params["base"]`` (a dict) overrides the base method's parameters
    and the result holds the resolved ``"base"`` dict.

    Raises
    ------
    ValueError
        Unknown method, unknown parameter (named, with the allowed ones), or a value that its
        registered check rejects.
    """
    spec = get_method(name)
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        fail(f"params of {name!r}", "a dict of parameter values", params)
    allowed = list(spec.defaults) + (["base"] if spec.family else [])
    for key in params:
        if key not in allowed:
            fail(f"parameter names of method {name!r}",
                 "among " + (", ".join(repr(a) for a in allowed) or "(no parameters)"), key)
    out = {}
    for key, default in spec.defaults.items():
        value = _canonical(params.get(key, default), default, where=f"params[{key!r}] of {name!r}")
        if key in spec.checks:
            value = _canonical(spec.checks[key](key, value), default, where=key)
        out[key] = value
    if spec.family:
        out["base"] = resolve_params(spec.base, params.get("base"))
    return out


def _signature(name: str, params: dict, seed: int) -> str:
    return json.dumps([name, params, seed], sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------- running
def _check_output(name: str, out, dataset) -> MethodOutput:
    if not isinstance(out, MethodOutput):
        raise TypeError(f"method {name!r} returned {type(out).__name__}, not a MethodOutput.")
    if not isinstance(out.codes, Mapping) or set(out.codes) != set(SPLITS):
        raise RuntimeError(f"method {name!r} must return codes for exactly {SPLITS}; "
                           f"got {sorted(out.codes) if isinstance(out.codes, Mapping) else out.codes}.")
    codes, width = {}, None
    for split in SPLITS:
        C = np.asarray(to_numpy(out.codes[split]))
        n_rows = len(dataset[split])
        if C.ndim != 2 or C.shape[0] != n_rows or (width is not None and C.shape[1] != width):
            raise RuntimeError(f"method {name!r}: codes[{split!r}] must have shape ({n_rows}, "
                               f"{width if width is not None else 'n_components'}); got {C.shape}.")
        width = C.shape[1]
        codes[split] = C
    D = out.dictionary
    if D is not None:
        D = np.asarray(to_numpy(D))
        if D.shape != (dataset.m, width):
            raise RuntimeError(f"method {name!r}: dictionary must have shape ({dataset.m}, "
                               f"{width}); got {D.shape}.")
    artifacts = {k: np.asarray(to_numpy(v)) for k, v in (out.artifacts or {}).items()}
    return MethodOutput(codes, D, dict(out.info or {}), artifacts)


def run_method(name: str, dataset, *, params: Mapping | None = None, seed: int = 0,
               device=None, base_cache: dict | None = None) -> MethodOutput:
    """Run method ``name`` on ``dataset``.

    Parameters
    ----------
    name : str
        A name from :func:`method_names`.
    dataset : SparseDataset
        From :func:`csood.data.make_dataset`.
    params : dict, optional
        Overrides of the method's defaults (see :func:`resolve_params`).
    seed : int
        Seed of the method's randomness.
    device : str or torch.device, optional
        Passed to the method (None: solver default, CUDA when present).
    base_cache : dict, optional
        For family members: base outputs already computed on this dataset, keyed by an
        internal signature; the base output is read from it or run and stored in it.

    Returns
    -------
    MethodOutput
        Codes as numpy arrays of shape (n_split_samples, n_components) for every split. For
        family members ``info`` gains ``base_seconds`` and ``base_cached``.
    """
    spec = get_method(name)
    resolved = resolve_params(name, params)
    seed = check_int("seed", seed, low=0)
    if spec.family is None:
        return _check_output(name, spec.fn(dataset, resolved, seed=seed, device=device), dataset)
    sig = _signature(spec.base, resolved["base"], seed)
    cached = base_cache is not None and sig in base_cache
    t0 = time.perf_counter()
    if cached:
        base_out = base_cache[sig]
    else:
        base_out = run_method(spec.base, dataset, params=resolved["base"], seed=seed, device=device)
        if base_cache is not None:
            base_cache[sig] = base_out
    base_seconds = time.perf_counter() - t0
    out = _check_output(name, spec.fn(base_out, dataset, resolved, seed=seed, device=device), dataset)
    out.info = {**out.info, "base_seconds": 0.0 if cached else base_seconds, "base_cached": cached}
    return out


# The study's methods register themselves on import (kept apart from the machinery above).
from . import catalog  # noqa: E402,F401  isort: skip
