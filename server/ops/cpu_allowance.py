"""What CPU the node may get, and how long it waited for it.

The load governor (tickroom.server.ops.overload) sets its CPU target against
the node's *allowance*, and tells a node that its machine starves from one
that is idle by its *demand*: the CPU it used plus the time it spent
runnable but not running. Both are read from the kernel:

- the allowance: one core (the node runs on one thread), or the cgroup's
  CPU quota if lower: cgroup v2 ``cpu.max`` (``"max 100000"`` or ``"quota
  period"`` in microseconds), or cgroup v1 ``cpu.cfs_quota_us`` and
  ``cpu.cfs_period_us`` (quota -1: none), the lowest over the process's
  cgroup and its parents that this process can see. No file, or one that
  does not parse: no quota (one core).
- the run-queue wait: the second field of ``/proc/thread-self/schedstat``
  (nanoseconds the thread spent waiting on a run queue), read from the
  event loop's thread: its waits are what delay the ticks. No file (a kernel
  without schedstats): 0, and the governor falls back on the CPU used alone.

Which files hold the quota is found once (the process's cgroup does not
change); what they say is read at every sample, since a quota can change
while the node runs (a container resized in place).
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
# The calling thread's figures; /proc/self/schedstat (the main thread's) when
# the kernel has no thread-self (before Linux 3.17).
SCHEDSTAT_PATHS = (Path("/proc/thread-self/schedstat"), Path("/proc/self/schedstat"))
ONE_CORE = 1.0  # the node's event loop runs on one thread: it can use one core at most
MIN_ALLOWANCE = 0.01  # cores; a quota below this is read as this (no division by ~0)


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` as cores (quota / period); None for ``max`` (no
    quota) or anything that does not parse."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000  # the kernel's default period
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def parse_cfs_quota(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` as cores;
    None for a quota of -1 (none) or anything that does not parse."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # absent, or not readable here: no figure from it
        return None


def _own_cgroups(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """The process's cgroup paths: (v2's, v1 cpu controller's); None where absent."""
    v2 = v1 = None
    for line in (_read(proc_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _dirs_up(base: Path, cgroup_path: str | None) -> list[Path]:
    """``base/cgroup_path`` and each parent up to ``base``, those that exist.
    Inside a container's cgroup namespace the path is "/" and ``base`` is the
    container's own cgroup; without one, the path may name directories that
    the container's mount does not show, and those are skipped."""
    dirs = [base]
    if cgroup_path:
        parts = [p for p in cgroup_path.split("/") if p]
        dirs = [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [d for d in dirs if d.is_dir()]


QuotaFile = tuple[Path, Path | None]  # cgroup v2: (cpu.max, None); v1: (cfs_quota_us, cfs_period_us)


def quota_files(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> list[QuotaFile]:
    """The files that may hold a CPU quota over the process's cgroup and its
    parents (those present now), v2 and v1."""
    v2_path, v1_path = _own_cgroups(proc_cgroup)
    found: list[QuotaFile] = [(d / "cpu.max", None) for d in _dirs_up(root, v2_path) if (d / "cpu.max").is_file()]
    for directory in _dirs_up(root / "cpu", v1_path):
        quota, period = directory / "cpu.cfs_quota_us", directory / "cpu.cfs_period_us"
        if quota.is_file() and period.is_file():
            found.append((quota, period))
    return found


def read_quota(files: list[QuotaFile]) -> float | None:
    """The lowest quota (cores) that ``files`` say now; None: none."""
    quotas: list[float] = []
    for first, period in files:
        text = _read(first)
        if text is None:
            continue
        if period is None:
            cores = parse_cpu_max(text)
        else:
            period_text = _read(period)
            cores = parse_cfs_quota(text, period_text) if period_text is not None else None
        if cores is not None:
            quotas.append(cores)
    return min(quotas) if quotas else None


def cgroup_quota_cores(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The lowest CPU quota (cores) over the process's cgroup and its parents,
    v2 or v1; None when there is none (or none can be read)."""
    return read_quota(quota_files(root, proc_cgroup))


def allowance_cores(quota: float | None) -> float:
    """The CPU the node may use, in cores: one, or ``quota`` if lower."""
    if quota is None:
        return ONE_CORE
    return max(MIN_ALLOWANCE, min(ONE_CORE, quota))


class CpuAllowance:
    """The node's CPU allowance (cores) when called: the quota files found
    at construction, read again at each call."""

    def __init__(self, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> None:
        self.files = quota_files(root, proc_cgroup)

    def __call__(self) -> float:
        return allowance_cores(read_quota(self.files))


def parse_schedstat_wait(text: str) -> float | None:
    """Seconds spent waiting on a run queue, from a ``schedstat`` line
    ("run_ns wait_ns timeslices"); None if it does not parse."""
    fields = text.split()
    try:
        return int(fields[1]) / 1e9
    except (IndexError, ValueError):
        return None


def read_run_queue_wait() -> float:
    """Seconds the calling thread has waited on a run queue since it started;
    0.0 where the kernel does not say (no wait measured)."""
    for path in SCHEDSTAT_PATHS:
        text = _read(path)
        if text is not None and (waited := parse_schedstat_wait(text)) is not None:
            return waited
    return 0.0
