"""The vector-env benchmark (evaluation/vector_benchmark.py): figures consistent with each other."""

from __future__ import annotations

import pytest

from labsched.evaluation.vector_benchmark import bench_vector_env, bench_vector_memory


def test_one_round_ratios_are_the_printed_rates_ratios():
    v = bench_vector_env(n_envs=16, steps=5, repeats=1)
    assert v["n_envs"] == 16
    for key in ("labs_steps_per_s", "labs_log_steps_per_s", "cartpole_steps_per_s", "single_steps_per_s"):
        assert v[key] > 0.0
    # One round: the median ratio is that round's ratio of the reported rates.
    assert v["ratio_cartpole"] == pytest.approx(v["labs_steps_per_s"] / v["cartpole_steps_per_s"])
    assert v["ratio_single"] == pytest.approx(v["labs_steps_per_s"] / v["single_steps_per_s"])
    assert v["ratio_cartpole_range"] == (v["ratio_cartpole"], v["ratio_cartpole"])
    low, high = v["ratio_cartpole_cpu_range"]
    assert 0.0 < low <= v["ratio_cartpole_cpu"] <= high


def test_memory_grows_with_the_number_of_envs():
    small, large = bench_vector_memory(256, steps=3), bench_vector_memory(4096, steps=3)
    assert 0.0 < small["peak_mib"] < large["peak_mib"] < 64.0
