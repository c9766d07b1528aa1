"""Tests of ``LabSpec``: the paper's defaults, validation, immutability and ``replace``."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from labsched import LabSpec
from labsched.envs.labs.durations import Deterministic, Gamma, TruncatedNormal


def test_defaults_are_the_papers_setting():
    s = LabSpec()
    assert s.n_experiments == 20
    assert s.n_labs == 10
    assert s.horizon == 5.0
    assert s.p_safe == 0.95
    assert s.epoch == 0.1
    assert isinstance(s.duration, TruncatedNormal)
    assert s.duration.mu == 1.0
    assert s.duration.sigma == pytest.approx(math.sqrt(0.1), rel=1e-15)
    assert s.duration.sigma**2 == pytest.approx(0.1, rel=1e-14)
    assert s.duration.low == 0.0
    assert s.duration.high == math.inf
    assert s.duration == TruncatedNormal.from_variance(1.0, 0.1)


def test_max_cpe_and_n_epochs():
    assert LabSpec().max_cpe == 190
    for n in (1, 2, 3, 7, 20, 31):
        assert LabSpec(n_experiments=n).max_cpe == n * (n - 1) // 2
    assert LabSpec().n_epochs == 50
    assert LabSpec(horizon=1.0, epoch=0.3).n_epochs == 3
    assert LabSpec(horizon=0.7, epoch=0.1).n_epochs == 7


def test_frozen():
    s = LabSpec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.n_labs = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.horizon = 1.0  # type: ignore[misc]
    assert s == LabSpec()
    assert hash(s) == hash(LabSpec())


def test_values_are_normalised_to_python_types():
    s = LabSpec(n_experiments=np.int64(5), n_labs=np.int32(2), horizon=3, epoch=np.float32(0.5))
    assert type(s.n_experiments) is int and s.n_experiments == 5
    assert type(s.n_labs) is int and s.n_labs == 2
    assert type(s.horizon) is float and s.horizon == 3.0
    assert type(s.epoch) is float and s.epoch == 0.5


@pytest.mark.parametrize(
    ("kwargs", "field", "range_text"),
    [
        ({"n_experiments": 0}, "n_experiments", ">= 1"),
        ({"n_experiments": -3}, "n_experiments", ">= 1"),
        ({"n_labs": 0}, "n_labs", ">= 1"),
        ({"horizon": 0}, "horizon", "> 0"),
        ({"horizon": -1}, "horizon", "> 0"),
        ({"horizon": math.inf}, "horizon", "finite"),
        ({"horizon": math.nan}, "horizon", "finite"),
        ({"p_safe": 0}, "p_safe", "0 < p_safe < 1"),
        ({"p_safe": 1}, "p_safe", "0 < p_safe < 1"),
        ({"p_safe": 1.5}, "p_safe", "0 < p_safe < 1"),
        ({"epoch": 0}, "epoch", "0 < epoch <= horizon"),
        ({"epoch": -0.1}, "epoch", "0 < epoch <= horizon"),
        ({"epoch": 6.0}, "epoch", "0 < epoch <= horizon"),
        ({"epoch": 2.0, "horizon": 1.0}, "epoch", "0 < epoch <= horizon"),
        ({"epoch": math.nan}, "epoch", "0 < epoch <= horizon"),
    ],
)
def test_invalid_values_raise_value_error(kwargs, field, range_text):
    with pytest.raises(ValueError) as exc:
        LabSpec(**kwargs)
    msg = str(exc.value)
    assert field in msg
    assert range_text in msg


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_labs": 2.5}, "n_labs"),
        ({"n_labs": 2.0}, "n_labs"),
        ({"n_labs": True}, "n_labs"),
        ({"n_experiments": "20"}, "n_experiments"),
        ({"horizon": "5"}, "horizon"),
        ({"horizon": None}, "horizon"),
        ({"p_safe": "0.9"}, "p_safe"),
        ({"epoch": None}, "epoch"),
        ({"duration": "x"}, "duration"),
        ({"duration": None}, "duration"),
    ],
)
def test_wrong_types_raise_type_error(kwargs, field):
    with pytest.raises(TypeError, match=field):
        LabSpec(**kwargs)


def test_epoch_equal_to_horizon_is_allowed():
    s = LabSpec(horizon=2.0, epoch=2.0)
    assert s.epoch == s.horizon == 2.0
    assert s.n_epochs == 1


def test_replace():
    s = LabSpec()
    t = s.replace(n_labs=4, duration=Gamma(2.0, 0.5))
    assert t.n_labs == 4
    assert t.duration == Gamma(2.0, 0.5)
    assert t.n_experiments == s.n_experiments
    assert s.n_labs == 10  # the original is unchanged
    assert s.replace() == s


@pytest.mark.parametrize(
    ("changes", "exc", "text"),
    [
        ({"n_labs": 0}, ValueError, "n_labs"),
        ({"horizon": 0.05}, ValueError, "epoch"),  # epoch 0.1 > new horizon
        ({"p_safe": 1.0}, ValueError, "p_safe"),
        ({"n_labs": 1.5}, TypeError, "n_labs"),
        ({"duration": 3.0}, TypeError, "duration"),
        ({"n_lab": 3}, TypeError, "n_lab"),
        ({"labs": 3, "n_labs": 2}, TypeError, "labs"),
    ],
)
def test_replace_validates(changes, exc, text):
    with pytest.raises(exc, match=text):
        LabSpec().replace(**changes)


def test_replace_unknown_field_lists_fields():
    with pytest.raises(TypeError) as exc:
        LabSpec().replace(foo=1)
    assert "foo" in str(exc.value)
    assert "n_experiments" in str(exc.value)


def test_duration_is_any_duration_model():
    s = LabSpec(duration=Deterministic(0.5), horizon=2.0, epoch=0.5)
    assert s.duration.mean == 0.5
