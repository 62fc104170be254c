"""The node's CPU allowance and run-queue wait (tickroom.server.ops.cpu_allowance):
the cgroup quota's forms (v2 ``cpu.max``, v1 ``cfs_quota_us``), read over a
cgroup tree the test builds, and the schedstat wait of the calling thread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tickroom.server.ops import cpu_allowance
from tickroom.server.ops.cpu_allowance import (
    CpuAllowance,
    allowance_cores,
    cgroup_quota_cores,
    parse_cfs_quota,
    parse_cpu_max,
    parse_schedstat_wait,
    read_run_queue_wait,
)


@pytest.mark.parametrize(
    ("text", "cores"),
    [
        ("max 100000\n", None),  # no quota
        ("max\n", None),
        ("50000 100000\n", 0.5),
        ("150000 100000\n", 1.5),
        ("25000 50000", 0.5),
        ("20000\n", 0.2),  # the period left at the kernel's default
        ("", None),
        ("lots 100000", None),
        ("0 100000", None),
        ("50000 0", None),
    ],
)
def test_cpu_max_forms(text, cores):
    assert parse_cpu_max(text) == cores


@pytest.mark.parametrize(
    ("quota", "period", "cores"),
    [("-1\n", "100000\n", None), ("50000\n", "100000\n", 0.5), ("300000", "100000", 3.0), ("x", "100000", None)],
)
def test_cfs_quota_forms(quota, period, cores):
    assert parse_cfs_quota(quota, period) == cores


def test_the_allowance_is_a_core_or_the_quota_if_lower():
    assert allowance_cores(None) == 1.0
    assert allowance_cores(2.0) == 1.0  # the event loop runs on one thread
    assert allowance_cores(0.25) == 0.25
    assert allowance_cores(0.0001) == cpu_allowance.MIN_ALLOWANCE


def cgroup_tree(tmp_path: Path, proc_lines: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_lines)
    return root, proc


def test_cgroup_v2_the_lowest_quota_over_the_process_cgroup_and_its_parents(tmp_path):
    root, proc = cgroup_tree(
        tmp_path,
        "0::/kubepods/pod1/ctr\n",
        {
            "cpu.max": "max 100000\n",
            "kubepods/cpu.max": "400000 100000\n",
            "kubepods/pod1/cpu.max": "50000 100000\n",  # the pod's limit: half a core
            "kubepods/pod1/ctr/cpu.max": "max 100000\n",
        },
    )
    assert cgroup_quota_cores(root, proc) == 0.5


def test_cgroup_v2_inside_a_namespace_reads_the_root(tmp_path):
    root, proc = cgroup_tree(tmp_path, "0::/\n", {"cpu.max": "30000 100000\n"})
    assert cgroup_quota_cores(root, proc) == pytest.approx(0.3)


def test_cgroup_v1_quota(tmp_path):
    root, proc = cgroup_tree(
        tmp_path,
        "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n",
        {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n",
         "cpu/docker/abc/cpu.cfs_quota_us": "75000\n", "cpu/docker/abc/cpu.cfs_period_us": "100000\n"},
    )  # fmt: skip
    assert cgroup_quota_cores(root, proc) == 0.75


@pytest.mark.parametrize(
    ("proc_lines", "files"),
    [
        ("0::/\n", {}),  # cgroup v2 without the cpu controller's files
        ("0::/\n", {"cpu.max": "max 100000\n"}),
        ("2:cpu,cpuacct:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}),
        ("", {"cpu.max": "garbage"}),  # no /proc/self/cgroup to speak of, a file that does not parse
        ("0::/gone/away\n", {}),  # a path the mount does not show
    ],
)
def test_no_quota_or_nothing_readable_is_one_core(tmp_path, proc_lines, files):
    root, proc = cgroup_tree(tmp_path, proc_lines, files)
    assert cgroup_quota_cores(root, proc) is None
    assert allowance_cores(cgroup_quota_cores(root, proc)) == 1.0


def test_the_allowance_follows_a_quota_changed_while_the_node_runs(tmp_path):
    root, proc = cgroup_tree(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    allowance = CpuAllowance(root, proc)
    assert allowance() == 1.0
    (root / "cpu.max").write_text("40000 100000\n")  # resized in place
    assert allowance() == pytest.approx(0.4)
    (root / "cpu.max").unlink()  # gone (the cgroup moved): no quota to read
    assert allowance() == 1.0


def test_no_cgroup_filesystem_at_all_is_one_core(tmp_path):
    assert cgroup_quota_cores(tmp_path / "absent", tmp_path / "absent-proc") is None


def test_schedstat_wait():
    assert parse_schedstat_wait("1574926178 35526942 135\n") == pytest.approx(0.035526942)
    assert parse_schedstat_wait("") is None
    assert parse_schedstat_wait("12 x 3") is None


def test_the_run_queue_wait_of_this_thread_is_read_and_never_goes_back():
    first = read_run_queue_wait()
    deadline = time.perf_counter() + 0.05
    while time.perf_counter() < deadline:  # runnable for a while: the kernel may make it wait
        pass
    assert first >= 0.0 and read_run_queue_wait() >= first


def test_no_schedstat_is_no_wait(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu_allowance, "SCHEDSTAT_PATHS", (tmp_path / "absent",))
    assert read_run_queue_wait() == 0.0
