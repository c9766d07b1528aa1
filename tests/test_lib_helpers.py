"""The small shared helpers of ``labsched.envs._lib`` that several packages fold their copies into:
lazy module attributes, the optional-plot guard, pivot-table rows and the float-array check."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from labsched.envs._lib.lazy import lazy_attributes, lazy_names
from labsched.envs._lib.reporting import markdown_row, optional_plot
from labsched.envs._lib.validation import as_float_array, real_array
from labsched.envs.bo.box import check_bounds


@pytest.fixture
def facade(monkeypatch):
    """A throw-away package module ``labsched_probe`` whose names load lazily from ``math``/``json``."""
    module = types.ModuleType("labsched_probe")
    module.__package__ = "labsched_probe"
    monkeypatch.setitem(sys.modules, "labsched_probe", module)
    module.__getattr__, module.__dir__ = lazy_attributes(
        "labsched_probe", {"math": ("sqrt", "pi"), "json": ("dumps",)}
    )
    return module


def test_lazy_attribute_loads_on_first_use_and_is_cached(facade):
    assert "sqrt" not in vars(facade)
    assert facade.sqrt(9.0) == 3.0
    assert "sqrt" in vars(facade)  # cached: the next lookup is a plain attribute read
    assert facade.dumps([1]) == "[1]"
    assert {"sqrt", "pi", "dumps"} <= set(dir(facade))
    assert dir(facade) == sorted(dir(facade))


def test_unknown_lazy_attribute_is_an_attribute_error(facade):
    with pytest.raises(AttributeError, match="module 'labsched_probe' has no attribute 'nope'"):
        facade.nope  # noqa: B018
    assert not hasattr(facade, "cos")  # only the listed names are exposed


def test_lazy_names_maps_names_to_modules_and_rejects_duplicates():
    assert lazy_names({"a": ("x", "y"), "b": ("z",)}) == {"x": "a", "y": "a", "z": "b"}
    with pytest.raises(ValueError, match="'x' is listed under 'a' and 'b'"):
        lazy_names({"a": ("x",), "b": ("x",)})


def test_package_facades_keep_their_lazy_names():
    import labsched
    import labsched.agents
    import labsched.envs
    import labsched.envs.bo
    from labsched.evaluation import queue_protocol
    from labsched.evaluation.queue import protocol

    assert labsched.envs.make_selector is labsched.envs.bo.make_selector
    assert labsched.QueueWorldSpec is labsched.envs.QueueWorldSpec
    assert "load_agent" in dir(labsched.agents) and "train" in labsched.agents.__all__
    assert queue_protocol.__all__ == protocol.__all__
    assert queue_protocol.schedule_auc is protocol.schedule_auc
    assert {"AgentRow", "train_queue_agent"} <= set(protocol.__all__)


def test_optional_plot_reports_a_missing_matplotlib_and_goes_on(capsys):
    done = []
    with optional_plot():
        raise ImportError("plots need matplotlib")
    with optional_plot():
        done.append(1)
    assert done == [1]
    assert capsys.readouterr().err == "(no plot: plots need matplotlib)\n"
    with pytest.raises(ValueError), optional_plot():
        raise ValueError("not an import problem")


def test_markdown_row_fills_missing_cells():
    cells = {("a", 1): 0.5, ("a", 3): 2.0}
    line = markdown_row("a", [("a", 1), ("a", 2), ("a", 3)], cells, lambda v: f"{v:.1f}", "n/a")
    assert line == "| a | 0.5 | n/a | 2.0 |"
    assert markdown_row("b", [("b", 1)], cells, str) == "| b |  |"


def test_as_float_array_and_its_users():
    out = as_float_array("x", [[1, 2], [3, 4]])
    assert out.dtype == np.float64 and out.shape == (2, 2)
    assert np.isnan(as_float_array("x", [np.nan])[0])  # finiteness is the caller's check
    with pytest.raises(TypeError, match="x must be a list of numbers, got str"):
        as_float_array("x", "12", "a list of numbers")
    with pytest.raises(ValueError, match="x must be a rectangular array of real numbers"):
        as_float_array("x", [[1, 2], [3]])
    with pytest.raises(TypeError, match="x must be an array of real numbers, got dtype bool"):
        as_float_array("x", [True, False])
    with pytest.raises(ValueError, match="x must contain only finite values"):
        real_array("x", [1.0, np.inf])
    with pytest.raises(TypeError, match=r"bounds must be a sequence of \(low, high\) pairs, got str"):
        check_bounds("01")
    with pytest.raises(TypeError, match="bounds must be an array of real numbers, got dtype"):
        check_bounds([["a", "b"]])
    with pytest.raises(ValueError, match="bounds must be finite"):
        check_bounds([[0.0, np.nan]])


def test_selector_repr_lists_every_class_options_most_derived_first():
    from labsched.envs.bo.selectors import make_selector

    assert repr(make_selector("ivr", n_best=2)) == (
        "IntegratedVarianceSelector(n_integration=1024, duration_fn=None, cost_exponent=1.0, "
        "gain_floor=0.5, tie_tol=1e-09, n_candidates=None, n_local=None, n_best=2, local_scale=0.5, "
        "min_distance=0.0001)"
    )
    assert repr(make_selector("random")) == "RandomSelector(min_distance=0.0001)"
    with pytest.raises(ValueError, match="n_candidates must be an integer >= 1"):
        make_selector("ts", n_candidates=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        make_selector("ei", foo=1)
