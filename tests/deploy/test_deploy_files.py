"""The deploy kit is consistent with the code: configs parse, every `sigma_*` metric a rule or
dashboard panel uses is one `Metrics` exports, every systemd unit runs a real `sigma` command
and every setting in the environment example exists.

PromQL is checked by extracting the metric names it selects, and by promtool (on PATH or at
$PROMTOOL; scripts/ensure_services.sh takes it from Debian's `prometheus` package): the rules,
the scrape config and every dashboard expression, and the alert rules' unit tests
(deploy/prometheus/tests)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from prometheus_client.metrics_core import Metric

from sigma.cli.main import app as cli
from sigma.config.settings import GROUP_OF, load_settings
from sigma.ops.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
# Series from other exporters in the compose file (Prometheus itself, RabbitMQ, node-exporter).
EXTERNAL = re.compile(r"up|rabbitmq_\w+|node_\w+")

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
_FUNCTION_OR_KEYWORD = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?")


def exported_names() -> set[str]:
    """Every series name the registry of `Metrics` exposes (with the type's suffixes)."""
    families: list[Metric] = list(Metrics().registry.collect())
    return {f.name + suffix for f in families for suffix in _SUFFIXES[f.type]}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label matchers, ranges, strings,
    grouping clauses, functions and keywords removed)."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values may hold anything
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = _GROUPING.sub(" ", stripped)
    return {
        name
        for name, call in _IDENT.findall(stripped)
        if not call and name.lower() not in _FUNCTION_OR_KEYWORD
    }


def rule_exprs() -> Iterator[tuple[str, str]]:
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield rule.get("alert") or rule["record"], rule["expr"]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def dashboards() -> list[Path]:
    return sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for path in dashboards():
        for node in _walk(json.loads(path.read_text())):
            if "expr" in node:
                yield path.name, node["expr"]


def check_known(exprs: list[tuple[str, str]]) -> list[str]:
    known = exported_names()
    problems = []
    for where, expr in exprs:
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric in {expr!r}")
        for name in names:
            if name not in known and not EXTERNAL.fullmatch(name):
                problems.append(f"{where}: {name} is not exported (in {expr!r})")
    return problems


# --- the checker itself ---------------------------------------------------------------------
def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, symbol) (rate(sigma_x_bucket{a="b{c}"}[5m])))'
        " / clamp_min(sum without (job) (foo_total offset 1h) + 1e-9, 2) > bool 0.5"
        ' and on (instance) up{job=~"sigma-.*"} == 0 or absent(bar)'
    )
    assert metric_names(expr) == {"sigma_x_bucket", "foo_total", "up", "bar"}
    assert metric_names("time() - max by (w) (sigma_worker_heartbeat_timestamp) > 120") == {
        "sigma_worker_heartbeat_timestamp"
    }


def test_exported_names_cover_every_kind() -> None:
    names = exported_names()
    assert {
        "sigma_ticks_received_total",
        "sigma_tick_to_order_seconds_bucket",
        "sigma_feed_stale",
        "sigma_worker_heartbeat_timestamp",
    } <= names
    assert "sigma_ticks_received" not in names  # a counter is only exposed with _total


def test_checker_reports_unknown_names() -> None:
    assert check_known([("r", "rate(sigma_tick_recieved_total[1m])")]) == [
        "r: sigma_tick_recieved_total is not exported (in 'rate(sigma_tick_recieved_total[1m])')"
    ]


# --- promtool -------------------------------------------------------------------------------
PROMTOOL = os.environ.get("PROMTOOL") or shutil.which("promtool")


def promtool(*args: str | Path) -> str:
    # A missing promtool fails the check instead of skipping it: scripts/ensure_services.sh
    # (run by .ci/run) installs it from Debian's prometheus package.
    assert PROMTOOL is not None, "promtool is missing: run scripts/ensure_services.sh"
    done = subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_checks_rules_and_scrape_config() -> None:
    rules = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
    assert "SUCCESS" in promtool("check", "rules", *rules)
    # --syntax-only: the rule_files glob names the path inside the container.
    assert "SUCCESS" in promtool(
        "check", "config", "--syntax-only", DEPLOY / "prometheus" / "prometheus.yml"
    )


def test_promtool_parses_every_dashboard_expression(tmp_path: Path) -> None:
    # promtool has no "check expression": each one becomes a recording rule, which it parses.
    exprs = [expr for _, expr in dashboard_exprs()]
    records = [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    assert f"SUCCESS: {len(exprs)} rules found" in promtool("check", "rules", path)


def test_alert_rules_unit_tests_pass() -> None:
    tests = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
    assert tests
    assert "SUCCESS" in promtool("test", "rules", *tests)


def test_alert_rule_unit_tests_cover_the_issue_alerts() -> None:
    # The alerts the operations issue names: feed stale, worker down, queue backlog, error
    # rate, drawdown breach, disk.
    tested = {
        case["alertname"]
        for path in (DEPLOY / "prometheus" / "tests").glob("*.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert {
        "SigmaFeedStale",
        "SigmaWorkerHeartbeatMissing",
        "SigmaProcessDown",
        "SigmaOrderQueueBacklog",
        "SigmaOrderErrorRateHigh",
        "SigmaDrawdownBreach",
        "DiskAlmostFull",
    } <= tested
    assert tested <= {name for name, _ in rule_exprs()}


# --- Prometheus, Alertmanager, Grafana ------------------------------------------------------
def test_alert_rules_use_exported_metrics() -> None:
    exprs = list(rule_exprs())
    assert len(exprs) >= 8
    assert check_known(exprs) == []
    alerts = {name for name, _ in exprs}
    wanted = {
        "SigmaFeedStale",
        "SigmaWorkerHeartbeatMissing",
        "SigmaOrderQueueBacklog",
        "SigmaDrawdownBreach",
        "SigmaOrderErrorRateHigh",
    }
    assert wanted <= alerts


def test_alert_rules_are_well_formed() -> None:
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
                assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
                assert rule["annotations"]["summary"], rule["alert"]
                assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
                if "for" in rule:
                    assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_prometheus_scrapes_every_sigma_process() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"sigma-api", "sigma-bot", "sigma-sim", "sigma-worker"} <= set(jobs)
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    targets = {t for job in jobs.values() for sc in job["static_configs"] for t in sc["targets"]}
    # The ports the units give each process (see test_units_metrics_ports).
    assert {"127.0.0.1:8000", "127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9111"} <= targets


def test_dashboard_panels_use_exported_metrics() -> None:
    assert dashboards()
    exprs = list(dashboard_exprs())
    assert len(exprs) >= 15
    assert check_known(exprs) == []
    used = set().union(*(metric_names(e) for _, e in exprs))
    # Every SIGMA metric is on the dashboard.
    families = {f.name for f in Metrics().registry.collect()}
    assert {f for f in families if not any(u.startswith(f) for u in used)} == set()


def test_dashboard_has_the_operator_panels() -> None:
    board = json.loads((DEPLOY / "grafana" / "dashboards" / "sigma-overview.json").read_text())
    by_title = {p["title"]: p for p in board["panels"]}
    rows = {p["title"] for p in board["panels"] if p["type"] == "row"}
    assert {"Health", "Throughput", "Latency", "Queues", "Account"} <= rows

    def exprs(title: str) -> str:
        return " ".join(t["expr"] for t in by_title[title]["targets"])

    assert "sigma_pnl" in exprs("PnL")
    assert "sigma_regime" in exprs("Market regime")
    assert "sigma_tick_to_order_seconds_bucket" in exprs("Tick → order latency")
    assert "sigma_ticks_received_total" in exprs("Ticks / s")
    assert "sigma_queue_depth" in exprs("Order queue depth (SIGMA)")
    assert "up{" in exprs("Processes up")


def test_dashboard_structure() -> None:
    for path in dashboards():
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "prometheus"


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())
    assert [d["uid"] for d in ds["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((prov / "dashboards" / "sigma.yml").read_text())["providers"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{providers[0]['options']['path']}:ro" in mounts


def test_alertmanager_routes_to_defined_receivers() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}
    route = config["route"]
    assert route["receiver"] in receivers
    assert {r["receiver"] for r in route["routes"]} <= receivers
    # Both severities the rules use have a route (critical its own, warning the default).
    assert 'severity="critical"' in route["routes"][0]["matchers"]
    assert route["receiver"] == "ops-warning"


def test_compose_services_and_memory_budgets() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "rabbitmq", "prometheus", "alertmanager", "grafana"} <= set(
        services
    )
    assert services["postgres"]["mem_limit"] == "4g"
    assert services["postgres"]["image"].startswith("timescale/timescaledb")
    assert services["redis"]["mem_limit"] == services["rabbitmq"]["mem_limit"] == "500m"
    assert "management" in services["rabbitmq"]["image"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert "mem_limit" in service, name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    prom = services["prometheus"]["volumes"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in prom
    for volume in (v for s in services.values() for v in s.get("volumes", [])):
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (DEPLOY / source).exists(), volume


# --- systemd --------------------------------------------------------------------------------
def _unit(path: Path) -> configparser.ConfigParser:
    # systemd repeats keys (Environment=) and keeps case; '%' is its specifier, not ours.
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(path.read_text())
    return parser


def _commands() -> set[str]:
    group = typer.main.get_command(cli)
    return set(getattr(group, "commands", {}))


def test_units_parse_and_run_real_sigma_commands() -> None:
    names = {p.name for p in UNITS}
    assert names == {
        "sigma-api.service",
        "sigma-bot.service",
        "sigma-worker@.service",
        "sigma-sim.service",
        "sigma-recorder.service",
        "sigma-feed.service",
        "sigma-scheduler.service",
    }
    commands = _commands()
    for path in UNITS:
        unit = _unit(path)
        service = unit["Service"]
        argv = shlex.split(service["ExecStart"])
        assert argv[0] == "/opt/sigma/.venv/bin/sigma", path.name
        assert argv[1] in commands, f"{path.name}: sigma {argv[1]} does not exist"
        assert service["Restart"] in ("on-failure", "always"), path.name
        assert re.fullmatch(r"\d+M", service["MemoryMax"]), path.name
        assert int(service["MemoryHigh"][:-1]) < int(service["MemoryMax"][:-1]), path.name
        assert re.fullmatch(r"\d+%", service["CPUQuota"]), path.name
        assert int(service["TasksMax"]) > 0, path.name
        assert service["User"] == "sigma" and service["NoNewPrivileges"] == "yes", path.name
        assert service["ProtectSystem"] == "strict", path.name
        assert service["EnvironmentFile"] == "/etc/sigma/sigma.env", path.name
        assert unit["Install"]["WantedBy"] == "sigma.target", path.name
        assert unit["Unit"]["PartOf"] == "sigma.target", path.name


def test_units_feed_options_exist() -> None:
    feed = typer.main.get_command(cli).commands["feed"]  # type: ignore[attr-defined]
    options = {opt for param in feed.params for opt in param.opts}
    argv = shlex.split(_unit(DEPLOY / "systemd" / "sigma-feed.service")["Service"]["ExecStart"])
    assert {a for a in argv if a.startswith("--")} <= options


def _env_lines(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line[len("Environment=") :].partition("=")
            out[key] = value
    return out


def test_units_metrics_ports() -> None:
    ports = {p.name: _env_lines(p).get("SIGMA_METRICS_PORT") for p in UNITS}
    assert ports["sigma-bot.service"] == "9101"
    assert ports["sigma-sim.service"] == "9102"
    assert ports["sigma-recorder.service"] == "9103"
    assert ports["sigma-worker@.service"] == "911%i"
    assert ports["sigma-api.service"] is None  # the API serves /metrics itself


def test_target_wants_every_unit() -> None:
    target = _unit(DEPLOY / "systemd" / "sigma.target")
    wanted = set(target["Unit"]["Wants"].split())
    for path in UNITS:
        name = path.name.replace("@.", "@1.")
        assert name in wanted, name


@pytest.mark.parametrize("name", ["sigma.env.example"])
def test_env_example_names_real_settings(name: str) -> None:
    fields = {f"SIGMA_{field.upper()}" for field in GROUP_OF}
    keys = []
    for line in (DEPLOY / "env" / name).read_text().splitlines():
        line = line.lstrip("# ")
        if re.match(r"SIGMA_[A-Z_]+=", line):
            keys.append(line.split("=", 1)[0])
    assert len(keys) >= 20
    unknown = [k for k in keys if k not in fields]
    assert unknown == []
    values = {
        k: v
        for k, _, v in (
            line.partition("=")
            for line in (DEPLOY / "env" / name).read_text().splitlines()
            if line and not line.startswith("#")
        )
    }
    load_settings(**{k[len("SIGMA_") :].lower(): v for k, v in values.items() if v})
