"""How many threads a fit's math libraries use: chosen from the CPUs this process may use, the
load on the machine and the size of the work, and scoped to the fit.

Why: PyTorch's intra-op pool (OpenMP) starts one thread per core and its threads busy-wait at
the end of every parallel region. With more threads than free cores, a thread that lost its core
to another job holds up the rest, which spin meanwhile: a DP-CTGAN fit that takes about a minute
on a quiet two-core machine took over 18 CPU-minutes beside one single-threaded job (issue 17).
A DP-SGD step is a few small matrix products (a Poisson batch of tens of rows, layers of a few
hundred units), so extra threads gain little even on an idle machine. OpenBLAS and MKL pools
under numpy behave the same way.

The choice (:func:`choose`), in order:

1. ``threads=N`` (Python) or ``--threads N`` (CLI): exactly N threads, whatever the machine;
2. ``OMP_NUM_THREADS`` set in the environment: the pools are left as that setting made them;
3. automatic: at most the *free* CPUs (:func:`cpus`: the CPUs the process may run on, by
   affinity and by the cgroup's CPU quota, less their share of the other runnable tasks), and
   at most one thread per :data:`WORK_PER_THREAD` multiply-adds of the fit's largest matrix
   product, as the synthesizer estimates it from PUBLIC sizes only (its parameters, the schema,
   a public ``rows``; never the private row count); never more than the pools already have (a
   ``torch.set_num_threads`` of the caller's is kept). A DP-CTGAN fit at its defaults gets one
   thread beside a busy job and all the free cores on an idle machine.

:func:`limited` applies the choice for the duration of a fit and restores the pools afterwards:
``torch.set_num_threads`` (when torch is imported) and the BLAS and OpenMP pools through
threadpoolctl. What cannot be changed after start-up, and is left alone:

* JAX's XLA CPU thread pool (MST and AIM through mbi) is sized once, when its CPU backend
  starts: set ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"``
  in the environment before the process starts to keep it to one thread;
* PyTorch's inter-op pool (``torch.set_num_interop_threads`` may be called once, before any
  inter-op work, and raises afterwards); DP-SGD does not use it, and its idle threads block
  rather than spin;
* OpenMP's wait policy (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``) is read when the OpenMP runtime
  loads: ``OMP_WAIT_POLICY=PASSIVE`` in the environment makes idle threads sleep instead of spin.

The load is read once, when the fit starts: a job that starts later is not seen. None of this
reads the private data or changes what a fit computes beyond floating-point rounding (the same
seeds give the same results for the same thread count).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError

#: The most threads ``threads=`` / ``--threads`` accepts.
MAX_THREADS = 1024
#: Multiply-adds of the largest matrix product per extra thread: below it, a thread's share of
#: an operation is too small to pay for waking it (tens of microseconds of work per thread).
WORK_PER_THREAD = 4_000_000

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
PROC_LOADAVG = Path("/proc/loadavg")
PROC_SELF_TASKS = Path("/proc/self/task")


def check_threads(value: object) -> int:
    """A thread count a user gave: an integer in [1, :data:`MAX_THREADS`]."""
    n = check.positive_int("threads", value)
    if n > MAX_THREADS:
        raise ParameterError(f"threads ({value!r}) must be at most {MAX_THREADS}")
    return n


# ---------------------------------------------------------------------------------------------
# what the process may use
# ---------------------------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _ancestors(root: Path, cgroup_path: str) -> list[Path]:
    """``root/cgroup_path`` and its parents up to ``root`` (the levels whose limits apply), plus
    ``root`` itself (inside a container the process's own cgroup is mounted at the root)."""
    parts = [p for p in cgroup_path.strip().split("/") if p and p not in (".", "..")]
    return [root.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if text is None:
        return None
    fields = text.split()
    if len(fields) < 1 or fields[0] == "max":
        return None
    try:
        quota, period = float(fields[0]), float(fields[1]) if len(fields) > 1 else 100_000.0
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(directory: Path) -> float | None:
    quota_text, period_text = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    if quota_text is None or period_text is None:
        return None
    try:
        quota, period = float(quota_text.strip()), float(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None  # -1: no quota


def cgroup_quota(root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``cpu.max`` of cgroup v2, or
    ``cpu.cfs_quota_us / cpu.cfs_period_us`` of v1), the smallest along its ancestors; None
    when there is none or it cannot be read."""
    v2_path, v1_path = None, None
    for line in (_read(proc_self_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    quotas: list[float] = []
    if v2_path is not None:
        for mount in (root, root / "unified"):
            quotas += [q for d in _ancestors(mount, v2_path) if (q := _v2_quota(d)) is not None]
    if v1_path is not None:
        for mount in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
            quotas += [q for d in _ancestors(mount, v1_path) if (q := _v1_quota(d)) is not None]
    return min(quotas) if quotas else None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _own_running(tasks: Path = PROC_SELF_TASKS) -> int:
    """Threads of this process that are runnable now (this one, and pool threads still spinning
    after their last parallel region): at least 1."""
    running = 0
    try:
        entries = list(tasks.iterdir())
    except OSError:
        return 1
    for task in entries:
        stat = _read(task / "stat") or ""
        state = stat.rpartition(")")[2].split()[:1]  # the field after the command's name
        running += state == ["R"]
    return max(1, running)


def _others_load(loadavg: Path = PROC_LOADAVG, tasks: Path = PROC_SELF_TASKS) -> float:
    """Runnable tasks of other processes: the larger of the one-minute load average and the
    tasks runnable right now (``/proc/loadavg``'s fourth field), each less this process's own
    runnable threads (the average lags a job that started less than a minute ago; the count
    right now misses a job that has just paused)."""
    try:
        load1 = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        load1 = 0.0
    running = 0
    fields = (_read(loadavg) or "").split()
    if len(fields) >= 4 and "/" in fields[3]:
        with contextlib.suppress(ValueError):
            running = int(fields[3].split("/")[0])
    own = _own_running(tasks)
    return max(0.0, load1 - own, running - own)


@dataclass(frozen=True)
class CPUs:
    """What this process may use: ``online`` CPUs of the machine, ``affinity`` of them it may run
    on, a cgroup ``quota`` (in CPUs, or None) and ``load``, the other runnable tasks."""

    online: int
    affinity: int
    quota: float | None
    load: float

    @property
    def usable(self) -> int:
        """CPUs the process may keep busy: its affinity, capped by the cgroup quota (rounded down)."""
        usable = self.affinity
        if self.quota is not None:
            usable = min(usable, max(1, math.floor(self.quota + 1e-9)))
        return max(1, usable)

    @property
    def free(self) -> int:
        """Usable CPUs not taken by other tasks: the load spread evenly over the machine's CPUs,
        and rounded half down (0.5 of a CPU is taken)."""
        taken = self.load * self.usable / max(1, self.online)
        return max(1, math.ceil(self.usable - taken - 0.5))


def cpus() -> CPUs:
    """The CPUs this process may use now (affinity, cgroup quota, load of the machine)."""
    affinity = _affinity()
    return CPUs(online=max(os.cpu_count() or affinity, affinity), affinity=affinity, quota=cgroup_quota(),
                load=_others_load())


# ---------------------------------------------------------------------------------------------
# the choice
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """``threads`` for the fit (None: the pools are left as they are), where it comes from
    (``threads``, ``OMP_NUM_THREADS`` or ``automatic``) and why."""

    threads: int | None
    source: str
    reason: str

    @property
    def exact(self) -> bool:
        """Whether the pools are set to exactly ``threads`` (a user's number), not only lowered."""
        return self.source == "threads"


def _omp_num_threads(environ: Mapping[str, str]) -> int | None:
    text = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        n = int(text)
    except ValueError:
        return None
    return n if n >= 1 else None


def choose(threads: int | None = None, *, work: float | None = None, machine: CPUs | None = None,
           environ: Mapping[str, str] | None = None) -> Choice:
    """The thread count of a fit (see the module's docstring for the rules).

    Args:
        threads: the user's number (validated), or None for the automatic choice.
        work: multiply-adds of the fit's largest matrix product, from public sizes (None: unknown,
            only the free CPUs bound the choice).
        machine: the CPUs (default: :func:`cpus`, read now).
        environ: the environment (default: ``os.environ``).
    """
    if threads is not None:
        n = check_threads(threads)
        return Choice(n, "threads", f"threads={n} given")
    env_threads = _omp_num_threads(os.environ if environ is None else environ)
    if env_threads is not None:
        return Choice(None, "OMP_NUM_THREADS", f"OMP_NUM_THREADS={env_threads} is set: the pools are left as it "
                                               "made them")
    m = cpus() if machine is None else machine
    n = m.free
    reason = (f"{m.free} free of {m.usable} usable CPUs (affinity {m.affinity} of {m.online}, quota "
              f"{'none' if m.quota is None else format(m.quota, 'g')}, other runnable tasks {m.load:.2g})")
    if work is not None:
        by_work = max(1, int(work // WORK_PER_THREAD))
        if by_work < n:
            n = by_work
            reason += f"; work of {work:.3g} multiply-adds per product needs {by_work}"
    return Choice(n, "automatic", reason)


@contextlib.contextmanager
def limited(choice: Choice) -> Iterator[Choice]:
    """Apply ``choice`` to torch (when imported) and to the BLAS/OpenMP pools for the block, and
    restore them afterwards. An automatic choice only lowers a pool, a user's number sets it."""
    n = choice.threads
    if n is None:
        yield choice
        return
    torch = sys.modules.get("torch")  # never imported for this: only a fit that uses torch has it
    # read first: torch's count is OpenMP's, which threadpoolctl may lower below
    torch_before = torch.get_num_threads() if torch is not None else None
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_info, threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
        else:
            if choice.exact:
                stack.enter_context(threadpool_limits(limits=n))
            else:
                limits: dict[str, int] = {}
                for lib in threadpool_info():
                    current = int(lib.get("num_threads") or 1)
                    if current > n:
                        limits[lib["prefix"]] = min(n, limits.get(lib["prefix"], n))
                if limits:
                    stack.enter_context(threadpool_limits(limits=limits))
        if torch is not None and torch_before is not None:
            torch.set_num_threads(n if choice.exact else min(n, torch_before))
            stack.callback(torch.set_num_threads, torch_before)  # runs before threadpoolctl's restore
        yield choice
