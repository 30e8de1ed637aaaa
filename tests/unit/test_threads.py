"""Thread counts of a fit (issue 17): the usable CPUs (affinity, cgroup quota, load), the choice
for a work size, explicit settings respected, pools scoped to the fit, and bad --threads (exit 2)."""

from __future__ import annotations

import json

import pytest

from dpsynth import UNTRACKED, _threads
from dpsynth.cli import main
from dpsynth.exceptions import ParameterError
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger

IDLE_2 = _threads.CPUs(online=2, affinity=2, quota=None, load=0.0)
BUSY_2 = _threads.CPUs(online=2, affinity=2, quota=None, load=1.0)


# -- what the process may use -------------------------------------------------------------------


def _cgroup(tmp_path, line: str, files: dict[str, str]):
    tmp_path = tmp_path / str(len(list(tmp_path.iterdir())))  # a fresh tree per call
    tmp_path.mkdir()
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(line)
    root = tmp_path / "cgroup"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    return _threads.cgroup_quota(root, proc)


def test_cgroup_v2_quota_is_the_smallest_along_the_path(tmp_path):
    assert _cgroup(tmp_path, "0::/\n", {"cpu.max": "150000 100000\n"}) == 1.5
    assert _cgroup(tmp_path, "0::/a/b\n", {"a/cpu.max": "100000 100000\n", "a/b/cpu.max": "max 100000\n"}) == 1.0


def test_cgroup_v2_without_a_quota(tmp_path):
    assert _cgroup(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"}) is None
    assert _cgroup(tmp_path, "0::/\n", {}) is None
    assert _cgroup(tmp_path, "", {}) is None


def test_cgroup_v1_quota_and_a_container_whose_cgroup_is_mounted_at_the_root(tmp_path):
    line = "9:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n0::/\n"
    # the host path does not exist inside the container: the mount's root holds the container's limits
    assert _cgroup(tmp_path, line, {"cpu,cpuacct/cpu.cfs_quota_us": "200000\n",
                                    "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}) == 2.0
    assert _cgroup(tmp_path, "4:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}) is None


def test_usable_and_free_cpus():
    assert _threads.CPUs(online=16, affinity=8, quota=2.5, load=0.0).usable == 2
    assert _threads.CPUs(online=16, affinity=8, quota=0.3, load=0.0).usable == 1
    assert _threads.CPUs(online=16, affinity=4, quota=None, load=0.0).usable == 4
    assert IDLE_2.free == 2 and BUSY_2.free == 1
    assert _threads.CPUs(online=2, affinity=2, quota=None, load=0.4).free == 2
    assert _threads.CPUs(online=2, affinity=2, quota=None, load=5.0).free == 1
    # the load is spread over the machine: a quarter of its CPUs busy takes a quarter of ours
    assert _threads.CPUs(online=64, affinity=64, quota=8.0, load=16.0).free == 6


def _tasks(tmp_path, states: list[str]):
    tasks = tmp_path / "task"
    for i, state in enumerate(states):
        (tasks / str(100 + i)).mkdir(parents=True)
        (tasks / str(100 + i) / "stat").write_text(f"{100 + i} (py thon) {state} 1 2 3\n")
    return tasks


def test_the_other_tasks_leave_out_this_process_own_running_threads(tmp_path, monkeypatch):
    loadavg = tmp_path / "loadavg"
    tasks = _tasks(tmp_path, ["R", "R", "S"])  # this thread and a spinning pool thread
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.2, 0.1, 0.0))
    loadavg.write_text("0.20 0.10 0.00 3/90 1234\n")  # one other task runnable right now
    assert _threads._others_load(loadavg, tasks) == 1.0
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (3.5, 3.0, 2.0))  # the average saw more
    assert _threads._others_load(loadavg, tasks) == 1.5
    loadavg.write_text("garbage\n")
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert _threads._others_load(loadavg, tasks) == 0.0


def test_cpus_reads_affinity_quota_and_load(monkeypatch):
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(_threads, "cgroup_quota", lambda: 2.0)
    monkeypatch.setattr(_threads, "_others_load", lambda: 4.0)
    m = _threads.cpus()
    assert (m.online, m.affinity, m.quota, m.load, m.usable, m.free) == (8, 3, 2.0, 4.0, 2, 1)


# -- the choice ---------------------------------------------------------------------------------


def test_a_users_number_is_taken_as_given_and_validated():
    choice = _threads.choose(3, machine=BUSY_2, environ={"OMP_NUM_THREADS": "1"})
    assert (choice.threads, choice.source, choice.exact) == (3, "threads", True)
    for bad, message in [(0, "threads (0) must be an integer > 0"), (True, "threads (True) must be an integer > 0"),
                         (2.0, "threads (2.0) must be an integer > 0"), (2000, "threads (2000) must be at most 1024")]:
        with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
            _threads.choose(bad)


def test_omp_num_threads_leaves_the_pools_as_they_are():
    choice = _threads.choose(None, work=1e12, machine=IDLE_2, environ={"OMP_NUM_THREADS": "4"})
    assert (choice.threads, choice.source) == (None, "OMP_NUM_THREADS")
    assert _threads.choose(None, machine=IDLE_2, environ={"OMP_NUM_THREADS": "abc"}).source == "automatic"


def test_automatic_threads_follow_the_free_cpus_and_the_work():
    big, small = 100 * _threads.WORK_PER_THREAD, _threads.WORK_PER_THREAD / 2
    assert _threads.choose(work=big, machine=IDLE_2, environ={}).threads == 2
    assert _threads.choose(work=big, machine=BUSY_2, environ={}).threads == 1  # never more threads than free cores
    assert _threads.choose(work=small, machine=IDLE_2, environ={}).threads == 1  # small products: one thread
    assert _threads.choose(work=None, machine=IDLE_2, environ={}).threads == 2
    sixteen = _threads.CPUs(online=16, affinity=16, quota=None, load=0.0)
    assert _threads.choose(work=3.5 * _threads.WORK_PER_THREAD, machine=sixteen, environ={}).threads == 3


def test_the_dp_sgd_work_comes_from_public_sizes(small_schema):
    pytest.importorskip("torch")
    from dpsynth.synth.dpsgd import DPCTGAN, DPVAE

    ctgan = DPCTGAN(epsilon=1.0, delta=1e-6)._thread_work(small_schema)
    assert ctgan >= 500 * 256 * 256  # a generator step: 500 rows through (≥ 256) × 256
    vae = DPVAE(epsilon=1.0, delta=1e-6)._thread_work(small_schema)
    assert _threads.choose(work=vae, machine=IDLE_2, environ={}).threads == 1
    # a public row count makes the expected Poisson batch known; the private one is never read
    assert DPVAE(epsilon=1.0, delta=1e-6, rows=100_000)._thread_work(small_schema) > 10 * vae


# -- applied to a fit, restored afterwards ------------------------------------------------------


@pytest.fixture
def torch_threads():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield torch
    torch.set_num_threads(before)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_limited_sets_a_users_number_and_restores(torch_threads):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        with _threads.limited(_threads.Choice(1, "threads", "given")):
            assert torch_threads.get_num_threads() == 1 and set(_blas_threads()) <= {1}
        assert torch_threads.get_num_threads() == 2 and _blas_threads() == outside


def test_an_automatic_choice_only_lowers_the_pools(torch_threads):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        with _threads.limited(_threads.Choice(1, "automatic", "busy")):
            assert torch_threads.get_num_threads() == 1 and set(_blas_threads()) <= {1}
        assert torch_threads.get_num_threads() == 2 and set(_blas_threads()) <= {2}
    torch_threads.set_num_threads(1)  # the caller's own setting
    with _threads.limited(_threads.Choice(2, "automatic", "idle")):
        assert torch_threads.get_num_threads() == 1
    assert torch_threads.get_num_threads() == 1
    with _threads.limited(_threads.Choice(None, "OMP_NUM_THREADS", "set")):
        assert torch_threads.get_num_threads() == 1


def _spy_train(monkeypatch, torch):
    from dpsynth.synth.dpsgd import DPVAE

    seen = []
    train = DPVAE._train

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return train(self, *args, **kwargs)

    monkeypatch.setattr(DPVAE, "_train", spy)
    return DPVAE, seen


FAST = {"sample_rate": 0.1, "epochs": 0.5, "embedding_dim": 8, "device": "cpu", "insecure_seed": 3}


def test_a_fit_with_threads_1_runs_on_one_thread_and_restores_them(torch_threads, monkeypatch, small_schema,
                                                                    small_data):
    pytest.importorskip("opacus")
    DPVAE, seen = _spy_train(monkeypatch, torch_threads)
    synth = DPVAE(epsilon=1.0, delta=1e-6, **FAST).fit(small_data, schema=small_schema, ledger=UNTRACKED, threads=1)
    assert seen == [1] and torch_threads.get_num_threads() == 2
    assert synth.threads_["threads"] == 1 and synth.threads_["source"] == "threads"
    assert "threads" not in synth.get_params()  # not a model parameter: the ledger's record is unchanged


def test_an_automatic_fit_beside_a_busy_core_takes_one_thread(torch_threads, monkeypatch, small_schema, small_data):
    pytest.importorskip("opacus")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads, "cpus", lambda: BUSY_2)
    DPVAE, seen = _spy_train(monkeypatch, torch_threads)
    synth = DPVAE(epsilon=1.0, delta=1e-6, **FAST).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert seen == [1] and torch_threads.get_num_threads() == 2
    assert synth.threads_["source"] == "automatic"
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the environment's setting is respected
    seen.clear()
    synth = DPVAE(epsilon=1.0, delta=1e-6, **FAST).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert seen == [2] and synth.threads_ == {"threads": None, "source": "OMP_NUM_THREADS",
                                              "reason": "OMP_NUM_THREADS=2 is set: the pools are left as it made them"}


def test_a_bad_thread_count_is_refused_before_anything_is_charged(tmp_path, small_schema, small_data):
    from dpsynth.synth import MST

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    with pytest.raises(ParameterError, match=r"threads \(0\) must be an integer > 0"):
        MST(epsilon=1.0, delta=1e-6).fit(small_data, schema=small_schema, ledger=ledger, dataset="d", threads=0)
    assert ledger.statement("d").reservations == []


# -- the CLI ------------------------------------------------------------------------------------


def _fit_argv(tmp_path, small_schema, small_data, *extra):
    data = tmp_path / "data.csv"
    small_data.to_csv(data, index=False)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(small_schema.to_dict()))
    return ["fit", "--data", str(data), "--schema", str(schema), "--epsilon", "1", "--delta", "1e-6", "--rows",
            "20", "--out", str(tmp_path / "out.csv"), "--no-ledger", *extra]


def _release_argv(tmp_path, small_schema, small_data, *extra):
    data = tmp_path / "data.csv"
    small_data.to_csv(data, index=False)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(small_schema.to_dict()))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, create=True).create_dataset("d", ApproxDP(5.0, 1e-6))
    from dpsynth.release import shipped_policy

    return ["release", "--data", str(data), "--schema", str(schema), "--synthesizer", "mst", "--epsilon", "1",
            "--delta", "1e-6", "--ledger", url, "--dataset", "d", "--policy", str(shipped_policy("permissive")),
            "--out", str(tmp_path / "release"), *extra]


@pytest.mark.parametrize("command", ["fit", "release", "demo"])
@pytest.mark.parametrize("value,message", [
    ("0", "error: threads (0) must be an integer > 0"),
    ("-3", "error: threads (-3) must be an integer > 0"),
    ("5000", "error: threads (5000) must be at most 1024"),
    ("abc", "error: argument --threads: 'abc' is not an integer"),
])
def test_cli_bad_threads_exit_2_with_one_line(command, value, message, tmp_path, small_schema, small_data, capsys):
    argv = {"fit": lambda: _fit_argv(tmp_path, small_schema, small_data),
            "release": lambda: _release_argv(tmp_path, small_schema, small_data),
            "demo": lambda: ["demo", "--out", str(tmp_path / "demo")]}[command]()
    capsys.readouterr()
    try:
        code = main([*argv, "--threads", value])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "demo" / "ledger.db").exists()
    if command == "release":
        assert Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True).statement("d").reservations == []


def test_cli_fit_reports_the_threads(tmp_path, small_schema, small_data, capsys):
    assert main(_fit_argv(tmp_path, small_schema, small_data, "--threads", "1", "--json",
                          "--insecure-seed", "1")) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["threads"]["threads"] == 1 and out["threads"]["source"] == "threads"
