"""--plot: RTT percentiles, snapshot rate and connected bots over time."""

from __future__ import annotations


def write_plot(report: dict, path: str) -> None:
    """Three stacked panels sharing the time axis, from report["series"]."""
    import matplotlib

    matplotlib.use("Agg")  # no display: CI and headless load machines
    import matplotlib.pyplot as plt

    series = report["series"]
    t = [row["t"] for row in series]
    nan = float("nan")
    fig, (ax_rtt, ax_rate, ax_bots) = plt.subplots(3, 1, sharex=True, figsize=(9, 8))
    ax_rtt.plot(t, [nan if r["rtt_p50_ms"] is None else r["rtt_p50_ms"] for r in series], label="p50")
    ax_rtt.plot(t, [nan if r["rtt_p99_ms"] is None else r["rtt_p99_ms"] for r in series], label="p99")
    ax_rtt.set_ylabel("RTT (ms)")
    ax_rtt.legend(loc="upper left")
    ax_rtt.grid(alpha=0.3)
    ax_rate.plot(t, [r["snapshots_per_s"] for r in series], label="snapshots/s")
    ax_rate.plot(t, [r["inputs_per_s"] for r in series], label="inputs/s")
    ax_rate.set_ylabel("messages per second")
    ax_rate.legend(loc="upper left")
    ax_rate.grid(alpha=0.3)
    ax_bots.step(t, [r["connected"] for r in series], where="post")
    ax_bots.set_ylabel("bots connected")
    ax_bots.set_xlabel("seconds since start")
    ax_bots.grid(alpha=0.3)
    fig.suptitle(f"tickroom load test: {report['scenario']}, {report['bots']} bots, seed {report['seed']}")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
