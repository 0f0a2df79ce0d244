"""``/metrics``: Prometheus text that the client library parses, never served anonymously."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bastion.security import scopes
from tests.support.operators import operator_headers
from tests.support.tenants import Tenant

FAMILIES = {
    "bastion_http_requests",
    "bastion_http_request_duration_seconds",
    "bastion_auth_attempts",
    "bastion_authz_denials",
    "bastion_ratelimit_requests",
    "bastion_ratelimit_shed",
    "bastion_websocket_connections",
    "bastion_messages_sent",
    "bastion_messages_delivered",
    "bastion_message_delivery_seconds",
    "bastion_db_pool_connections_in_use",
    "bastion_db_pool_size",
    "bastion_db_query_duration_seconds",
    "bastion_event_loop_lag_seconds",
    "bastion_process_cpu_percent",
    "bastion_process_memory_rss_bytes",
    "bastion_process_open_fds",
    "bastion_host_cpu_percent",
    "bastion_host_memory_used_percent",
    "bastion_data_dir_free_bytes",
    "bastion_audit_appends",
    "bastion_audit_failures",
    "bastion_kek_age_seconds",
    "bastion_kek_max_age_seconds",
    "bastion_kek_version",
    "bastion_signing_key_age_seconds",
}


async def test_metrics_need_the_metrics_scope(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """No token: 401 with a Bearer challenge; a token without metrics:read: 403."""
    anonymous = await http.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "bastion_" not in anonymous.text
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    for headers in (await tenant.backend_headers(), auditor):
        response = await http.get("/metrics", headers=headers)
        assert response.status_code == 403
        assert "bastion_" not in response.text


async def test_metrics_parse_and_list_every_family(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """The exposition parses with prometheus_client's parser and has the documented families."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = (await tenant.channel(alice, [bob]))["id"]
    await tenant.send(alice, channel, "counted")
    scraper = await operator_headers(tenant, scopes.METRICS_READ)
    response = await http.get("/metrics", headers=scraper)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert FAMILIES - set(families) == set()
    sends = [
        sample
        for sample in families["bastion_http_requests"].samples
        if sample.labels.get("route") == "/v1/channels/{channel_id}/messages"
        and sample.labels.get("method") == "POST"
        and sample.labels.get("status") == "201"
    ]
    assert sends
    assert sends[0].value >= 1
    assert families["bastion_audit_appends"].samples[0].value >= 1


async def test_key_ages_are_plausible(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """The KEK and signing key ages are those of this test session's fresh keys (under a
    day), and the KEK policy is the configured 90 days."""
    scraper = await operator_headers(tenant, scopes.METRICS_READ)
    text = (await http.get("/metrics", headers=scraper)).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    (kek,) = [
        s for s in families["bastion_kek_age_seconds"].samples if s.labels["source"] == "local"
    ]
    assert 0 <= kek.value < 86_400
    policies = families["bastion_kek_max_age_seconds"].samples
    assert {s.value for s in policies if s.labels["source"] == "local"} == {90 * 86_400}
    (signing,) = families["bastion_signing_key_age_seconds"].samples
    assert 0 <= signing.value < 86_400
    again = await http.get("/metrics", headers=scraper)
    (later,) = [
        s
        for f in text_string_to_metric_families(again.text)
        if f.name == "bastion_kek_age_seconds"
        for s in f.samples
        if s.labels["source"] == "local"
    ]
    # Computed at each scrape, not frozen at the last sample.
    assert later.value >= kek.value
