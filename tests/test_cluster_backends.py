"""``labsched table2`` (a small sweep) on real clusters: a ``distributed.LocalCluster`` of two
worker processes on the loopback interface, reached through ``--address``, and a local Ray
instance. Their rows must equal the joblib (loky) run's in every column but the timing, and
every process the cluster started must be gone once it is closed.

The ``dask`` and ``ray`` extras are installed by ``.ci/run``; without them these tests skip.
"""

from __future__ import annotations

import csv
import time

import pytest

from labsched.cli import main
from labsched.envs._lib.threads import BLAS_ENV
from labsched.evaluation.sweep import NONDETERMINISTIC, load_results

psutil = pytest.importorskip("psutil")

#: ``labsched table2`` on one objective, one horizon and two runs of a small problem:
#: 2 x (2 + 4) = 12 cells on two workers.
TINY = ["--objectives", "cosines", "--horizons", "5", "--runs", "2", "--selector", "random"]
TINY += ["--ps-simulations", "10", "-n", "8", "-l", "4", "--jobs", "2", "--no-progress", "--no-plot"]
N_CELLS = 12


def _table(out, *backend):
    """``labsched table2`` (TINY) into ``out``: its tidy table and its rows (sorted by cell id,
    timing dropped)."""
    assert main(["table2", *TINY, "--out", str(out), *backend]) == 0
    rows = load_results(out / "sweep.csv")
    stripped = [{k: v for k, v in r.items() if k not in NONDETERMINISTIC} for r in rows]
    with open(out / "table2_tidy.csv", newline="") as f:
        tidy = list(csv.DictReader(f))
    return tidy, sorted(stripped, key=lambda r: r["cell_id"])


@pytest.fixture(scope="module")
def joblib_table(tmp_path_factory):
    tidy, rows = _table(tmp_path_factory.mktemp("joblib"), "--backend", "loky")
    assert len(rows) == N_CELLS and {r["scheduler"] for r in rows} >= {"sequential", "onfcp", "ps"}
    return tidy, rows


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _assert_no_new_children(before: set[int]) -> None:
    """Every process started since ``before`` exits (within a grace period)."""
    new = [psutil.Process(pid) for pid in _children() - before if psutil.pid_exists(pid)]
    _, alive = psutil.wait_procs(new, timeout=20)
    assert not alive, f"processes left running: {[(p.pid, p.name()) for p in alive]}"


@pytest.mark.slow  # two worker processes that each import labsched (torch, SB3)
def test_table2_on_a_dask_local_cluster_equals_joblib(tmp_path, joblib_table):
    distributed = pytest.importorskip("distributed")
    before = _children()
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        env=dict(BLAS_ENV),
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        with distributed.Client(cluster, set_as_default=False) as observer:
            workers = set(observer.scheduler_info()["workers"])
            assert len(workers) == 2 and _children() - before  # two worker processes (and nannies)
            with distributed.get_task_stream(client=observer) as stream:
                tidy, rows = _table(tmp_path, "--backend", "dask", "--address", address)
        # the cells ran on the cluster's workers, not in this process
        assert stream.data and {t["worker"] for t in stream.data} <= workers
    _assert_no_new_children(before)
    ref_tidy, ref_rows = joblib_table
    assert rows == ref_rows
    assert tidy == ref_tidy


def _ray_task_events(ray, timeout: float = 20.0) -> list[dict]:
    """The ``task:execute`` events of Ray's timeline (workers report them asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in ray.timeline() if e.get("cat") == "task:execute"]
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


@pytest.mark.slow  # Ray starts in ~10 s and its joblib pool re-imports labsched for every chunk
def test_table2_on_a_local_ray_instance_equals_joblib(tmp_path, joblib_table, monkeypatch):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.util.joblib")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    # Ray runs its workers at nice 15 by default: on a shared machine they get almost no CPU
    monkeypatch.setenv("RAY_worker_niceness", "0")
    before = _children()
    # Ray never binds a node to the loopback address (it resolves 127.0.0.1 to this machine's
    # address), so this instance is local to the machine rather than to the loopback interface.
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": dict(BLAS_ENV)},
    )
    try:
        local = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
        nodes = ray.nodes()
        assert len(nodes) == 1 and nodes[0]["Alive"] and nodes[0]["NodeManagerAddress"] in local
        assert ray.cluster_resources()["CPU"] == 2
        tidy, rows = _table(tmp_path, "--backend", "ray")
        # the sweep used the running instance, left it running, and its cells ran as Ray tasks
        assert ray.is_initialized()
        assert _ray_task_events(ray)
    finally:
        ray.shutdown()
    _assert_no_new_children(before)
    ref_tidy, ref_rows = joblib_table
    assert rows == ref_rows
    assert tidy == ref_tidy
