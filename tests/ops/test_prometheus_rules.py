"""The shipped Prometheus files, checked by promtool: the config and the
alert rules are valid, and each alert's unit tests pass (fires when it
should, stays quiet otherwise: rules/tickroom-alerts.test.yml)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from .prometheus import PROMETHEUS_DIR, RULE_TESTS, RULES, alert_rules, alert_signal, binary


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules_passes() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_check_config_passes() -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    quiet = {
        case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if not case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fired == set(), "alerts without a test in which they fire"
    assert names - quiet == set(), "alerts without a test in which they stay quiet"


def test_promtool_test_rules_passes() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_rule_test_that_expects_the_wrong_alert_fails(tmp_path) -> None:
    """The unit tests can fail: a rule test expecting an alert that must not
    fire is reported as a failure by promtool."""
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(RULES)]
    first = tests["tests"][0]  # TickroomNodeDown: instance a is down at 4m
    first["alert_rule_test"] = [{"eval_time": "4m", "alertname": "TickroomNodeDown", "exp_alerts": []}]
    tests["tests"] = [first]
    broken = tmp_path / "broken.test.yml"
    broken.write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", str(broken))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_has_the_documented_form(rule) -> None:
    """SIGNAL OP THRESHOLD (so the live test can check the signal), a
    severity and both annotations."""
    assert alert_signal(rule["expr"])
    assert rule["labels"]["severity"] in {"page", "warn", "info"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
