"""Parameter validation: the one message shape, chapter schemas, devices."""

import numpy as np
import pytest
import torch

from csood import params
from csood._device import resolve_device
from csood._validation import check_array, check_float, check_int


def test_check_int_names_parameter_value_and_range():
    assert check_int("k", 3, low=1) == 3
    assert check_int("k", 3.0, low=1) == 3
    with pytest.raises(ValueError, match=r"k must be an integer >= 1; got 0\."):
        check_int("k", 0, low=1)
    with pytest.raises(ValueError, match="k must be"):
        check_int("k", True)
    with pytest.raises(ValueError, match="k must be"):
        check_int("k", 2.5)


def test_check_float_rejects_nan_and_bounds():
    assert check_float("lam", 0.0, low=0.0) == 0.0
    with pytest.raises(ValueError, match=r"lam must be a finite number >= 0\.0; got -1"):
        check_float("lam", -1, low=0.0)
    with pytest.raises(ValueError, match="lam must be a finite number"):
        check_float("lam", float("nan"))
    with pytest.raises(ValueError, match="tau must be"):
        check_float("tau", 1.0, low=0, high=1, high_inclusive=False)


def test_check_array_rejects_nan_and_wrong_ndim():
    with pytest.raises(ValueError, match="Y must be finite"):
        check_array("Y", np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="Y must be finite"):
        check_array("Y", torch.tensor([[float("inf")]]))
    with pytest.raises(ValueError, match="Y must be an array with 2 dimension"):
        check_array("Y", np.zeros(3))
    with pytest.raises(ValueError, match="Y must be a numeric array"):
        check_array("Y", [["a"]])


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device must be 'auto' or 'cpu' on this machine"):
            resolve_device("cuda")


def test_validate_rejects_unknown_missing_and_bad_values():
    good = params.validate("toy_derivation", **_toy())
    assert good["tau"] == 0.5
    with pytest.raises(ValueError, match="chapter must be one of"):
        params.validate("nope", seed=0)
    with pytest.raises(ValueError, match="parameter name must be one of .*; got 'sed'"):
        params.validate("toy_derivation", sed=1, **_toy())
    incomplete = _toy()
    del incomplete["tau"]
    with pytest.raises(ValueError, match="tau must be given"):
        params.validate("toy_derivation", **incomplete)
    with pytest.raises(ValueError, match="seed must be an integer >= 0; got -1"):
        params.validate("toy_derivation", **{**_toy(), "seed": -1})


def test_list_specs():
    assert params.IntList(params.Int(low=1))("grid", [1, 2]) == [1, 2]
    with pytest.raises(ValueError, match=r"grid\[1\] must be an integer >= 1; got 0"):
        params.IntList(params.Int(low=1))("grid", [1, 0])
    with pytest.raises(ValueError, match="grid must be a non-empty list"):
        params.IntList()("grid", [])
    with pytest.raises(ValueError, match=r"lams\[0\] must be a finite number > 0"):
        params.FloatList(params.Float(low=0, low_inclusive=False))("lams", [0.0])


def _toy():
    defaults = {name: None for name in params.SCHEMAS["toy_derivation"]}
    from csood.pipeline import load_profile
    from pathlib import Path

    defaults.update(load_profile("toy_derivation", "quick", Path(__file__).resolve().parents[1]))
    return defaults
