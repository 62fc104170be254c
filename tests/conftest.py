"""Suite-wide test settings."""

from hypothesis import HealthCheck, settings

# Deterministic property tests: the same examples on every run and machine,
# so CI never fails on a draw a developer could not reproduce; no per-example
# deadline or generation-speed check, which measure the machine, not the code.
settings.register_profile(
    "tickroom",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("tickroom")
