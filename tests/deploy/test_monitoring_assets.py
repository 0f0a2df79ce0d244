"""deploy/: Sigma rules load in pySigma; Prometheus rules and the dashboard use real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from bastion.security import scopes
from tests.support.operators import operator_headers
from tests.support.tenants import Tenant

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\bbastion_[a-z_]+\b")


def _sigma() -> SigmaCollection:
    text = "\n---\n".join(p.read_text("utf-8") for p in sorted((DEPLOY / "sigma").glob("*.yml")))
    collection = SigmaCollection.from_yaml(text)
    collection.resolve_rule_references()
    return collection


def test_sigma_rules_parse_and_cover_every_detector() -> None:
    """pySigma loads every rule; each detector has a correlation over Bastion's fields."""
    collection = _sigma()
    correlations = [r for r in collection.rules if isinstance(r, SigmaCorrelationRule)]
    titles = {r.title for r in correlations}
    assert titles == {
        "Bastion credential stuffing",
        "Bastion password spraying",
        "Bastion refresh-token reuse burst",
        "Bastion id enumeration",
        "Bastion traffic spike from one source",
    }
    for rule in correlations:
        assert rule.rules, rule.title
        for reference in rule.rules:
            assert isinstance(reference.rule, SigmaRule)
        assert set(rule.group_by or []) <= {"ip", "principal", "subject"}
    bases = [r for r in collection.rules if isinstance(r, SigmaRule)]
    assert {r.logsource.product for r in bases} == {"bastion"}
    assert {r.logsource.service for r in bases} == {"audit", "access"}


def _exposed(exposition: str) -> set[str]:
    names: set[str] = set()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, []))
    return names


def _dashboard_exprs() -> list[str]:
    dashboard: dict[str, Any] = json.loads((DEPLOY / "grafana/bastion-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus/bastion-alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


async def test_dashboard_and_alert_rules_use_only_exposed_metrics(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """Every bastion_* series the dashboard and the alert rules query is in /metrics."""
    scraper = await operator_headers(tenant, scopes.METRICS_READ)
    exposed = _exposed((await http.get("/metrics", headers=scraper)).text)
    rules = _alert_rules()
    used = {name for expr in _dashboard_exprs() for name in METRIC.findall(expr)}
    used |= {name for rule in rules for name in METRIC.findall(rule["expr"])}
    assert used - exposed == set()
    assert len(used) >= 20
    for rule in rules:
        assert rule["alert"].startswith("Bastion")
        assert "summary" in rule["annotations"]
        assert rule["labels"]["severity"] in {"warning", "critical", "{{ $labels.severity }}"}
