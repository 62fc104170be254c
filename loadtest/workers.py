"""Worker processes: each runs its share of the bots in its own trio loop
(client bots) or epoll loop (raw bots, loadtest/rawbots.py) and streams a
Delta to the parent once a second over a multiprocessing queue, with the
worker's own CPU time so that the report says what the load costs to make.

Processes, not threads: one Python process drives only a few dozen
trio-websocket bots at 20 Hz before its core saturates, and the load
generator must not be what the test measures. They are started with
"spawn" so that nothing of the parent (threads, the live display, sockets)
is inherited.

Bounds: every bot ends at its leave time; a worker gives up at the end of
the run plus WORKER_GRACE_S, and the parent terminates any worker still
alive RUN_GRACE_S after the end of the run.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import queue as queue_mod
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import trio

from tickroom.loadtest.bots import Meter, Target, run_bot
from tickroom.loadtest.rawbots import run_fleet
from tickroom.loadtest.scenarios import BotSpec
from tickroom.loadtest.stats import Delta, Totals

WORKER_GRACE_S = 10.0  # leave handshakes and retries past the end of the run
RUN_GRACE_S = 30.0  # then the parent stops waiting
REPORT_PERIOD_S = 1.0


START_TIMEOUT_S = 60.0  # for every worker to import and say it is ready


@dataclass(frozen=True)
class Job:
    worker: int
    bots: list[tuple[BotSpec, Target]]
    duration: float
    input_rate: float | None
    bot_kind: str = "client"  # "client": bots.py over trio; "raw": rawbots.py on one epoll loop


def worker_main(job: Job, out, start_event, t0_value) -> None:
    """Entry point of a worker process: say ready, wait for the common start
    (so that slow process start-ups do not eat into the schedule), run the
    bots, report, say done."""
    try:
        out.put(("ready", job.worker, None))
        if not start_event.wait(START_TIMEOUT_S):
            raise TimeoutError("no start signal from the parent")
        if job.bot_kind == "raw":
            until = job.duration + WORKER_GRACE_S + t0_value.value
            run_fleet(
                job.bots, job.worker, t0=t0_value.value, until=until, ship=lambda d: out.put(("delta", job.worker, d))
            )
        else:
            trio.run(_run_worker, job, t0_value.value, out)
        out.put(("done", job.worker, None))
    except BaseException:  # noqa: BLE001 - the process's last words go to the parent
        out.put(("done", job.worker, traceback.format_exc()))


async def _run_worker(job: Job, t0: float, out) -> None:
    meter = Meter(job.worker)
    cpu = [time.process_time()]
    # time.monotonic() is one clock for every process on the machine, so the
    # workers' seconds line up; trio's clock has its own offset per process.
    start = trio.current_time() - (time.monotonic() - t0)

    def ship() -> None:
        second = int(trio.current_time() - start + 0.5)  # the report ticks at whole seconds
        delta = meter.take(second)
        delta.cpu_ms = int((time.process_time() - cpu[0]) * 1e3)
        cpu[0] += delta.cpu_ms / 1e3  # the remainder counts in the next interval
        out.put(("delta", job.worker, delta))

    with trio.move_on_at(start + job.duration + WORKER_GRACE_S):
        async with trio.open_nursery() as outer:

            async def report() -> None:
                k = 1
                while True:
                    await trio.sleep_until(start + k * REPORT_PERIOD_S)
                    ship()
                    k += 1

            outer.start_soon(report)
            async with trio.open_nursery() as nursery:
                for spec, target in job.bots:
                    nursery.start_soon(
                        functools.partial(run_bot, spec, target, meter, start=start, input_rate=job.input_rate)
                    )
            outer.cancel_scope.cancel()
    ship()


def _wait_ready(out, procs, failures: list[str]) -> None:
    ready: set[int] = set()
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(ready) < len(procs) and time.monotonic() < deadline:
        try:
            kind, worker, payload = out.get(timeout=0.25)
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs):
                break
            continue
        if kind == "ready":
            ready.add(worker)
        elif kind == "done" and payload:
            failures.append(f"worker {worker} failed at start:\n{payload}")
    if len(ready) < len(procs):
        failures.append(f"only {len(ready)} of {len(procs)} workers started in {START_TIMEOUT_S} s")


def split(bots: list[tuple[BotSpec, Target]], processes: int) -> list[list[tuple[BotSpec, Target]]]:
    """Round-robin over the processes, in join order: each process gets an
    even share of the bots joining at any moment."""
    shares: list[list[tuple[BotSpec, Target]]] = [[] for _ in range(max(1, min(processes, len(bots))))]
    for i, item in enumerate(bots):
        shares[i % len(shares)].append(item)
    return shares


def run_workers(
    bots: list[tuple[BotSpec, Target]],
    *,
    processes: int,
    duration: float,
    input_rate: float | None,
    on_delta: Callable[[Totals, float], None] | None = None,
    bot_kind: str = "client",
) -> tuple[Totals, list[str], float]:
    """Run the bots over ``processes`` workers; return the merged totals,
    the tracebacks of workers that failed and the start of the schedule
    (time.time(): the benchmark lines its own samples up with it). ``on_delta(totals, elapsed)`` is
    called after every merge (the live display)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_event = ctx.Event()
    t0_value = ctx.Value("d", 0.0)
    procs = []
    for worker, share in enumerate(split(bots, processes)):
        job = Job(worker, share, duration, input_rate, bot_kind)
        proc = ctx.Process(target=worker_main, args=(job, out, start_event, t0_value), daemon=True)
        proc.start()
        procs.append(proc)
    totals = Totals()
    failures: list[str] = []
    pending = set(range(len(procs)))
    _wait_ready(out, procs, failures)
    t0 = time.monotonic() + 0.1  # a moment for the event to reach every worker
    t0_value.value = t0
    t0_unix = time.time() + (t0 - time.monotonic())
    start_event.set()
    give_up = t0 + duration + RUN_GRACE_S
    while pending and time.monotonic() < give_up:
        try:
            kind, worker, payload = out.get(timeout=0.25)
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs) and out.empty():
                # Every process is gone and nothing is left to read: stop.
                failures.extend(f"worker {w} exited without a report" for w in sorted(pending))
                break
            continue
        if kind == "delta":
            assert isinstance(payload, Delta)
            totals.add(payload)
            if on_delta is not None:
                on_delta(totals, time.monotonic() - t0)
        elif kind == "done":
            pending.discard(worker)
            if payload:
                failures.append(f"worker {worker} failed:\n{payload}")
    for proc in procs:
        proc.join(timeout=2)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=2)
    if pending and time.monotonic() >= give_up:
        failures.extend(f"worker {w} did not finish in time" for w in sorted(pending))
    out.close()
    return totals, failures, t0_unix
