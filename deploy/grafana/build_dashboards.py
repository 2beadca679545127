#!/usr/bin/env python3
"""Generates the Grafana dashboards in dashboards/*.json (the provisioned files).

Edit this file, then run:  python3 deploy/grafana/build_dashboards.py
deploy/tests/validate.sh fails when the committed JSON differs from this output.
"""
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}

# Shared selectors (span metrics from the collector's spanmetrics connector).
APP = 'service_name="shortener"'
SERVER = APP + ',span_kind="SPAN_KIND_SERVER"'
# The app's own CLIENT spans (kv.*, sqlite.execute). Spin adds its own for
# some host calls (spin_sqlite.execute for every statement through the
# synchronous SQLite interface the app uses), under its own request span and
# with db.system.name too: left out, so nothing is counted twice.
CLIENT = APP + ',span_kind="SPAN_KIND_CLIENT",span_name!~"spin_.*"'
# The click write: the one SQLite statement on the redirect path.
CLICK_INSERT = CLIENT + ',db_system_name="sqlite",db_operation_name="INSERT",db_collection_name="clicks"'
REDIRECT = SERVER + r',span_name=~"(GET|HEAD) /\\{slug\\}"'
# The app's route templates; Spin's own server spans carry the manifest routes
# "/..." and "/api/..." and are shown separately.
ROUTES = r'/\\{slug\\}|/api/links.*|/health|/metrics'
CALLS = "traces_span_metrics_calls_total"
BUCKET = "traces_span_metrics_duration_seconds_bucket"


def datasource_var():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {"text": "Prometheus", "value": "prometheus"}, "hide": 0, "refresh": 1,
            "options": [], "regex": "", "includeAll": False, "multi": False}


def query_var(name, label, query, regex="", all_value=".*", multi=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": regex, "sort": 1, "includeAll": True, "multi": multi,
            "allValue": all_value, "current": {"text": ["All"], "value": ["$__all"]}, "options": [], "hide": 0}


class Board:
    def __init__(self, uid, title, description, tags, variables):
        self.uid, self.title, self.description = uid, title, description
        self.tags, self.variables = tags, variables
        self.panels, self.next_id, self.y = [], 1, 0
        self.x, self.row_h = 0, 0

    def _place(self, w, h):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append({"id": self.next_id, "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.next_id += 1
        self.y += 1

    def panel(self, kind, title, description, unit, targets, w=12, h=8, **extra):
        refs = "ABCDEFGH"
        tgts = []
        for i, t in enumerate(targets):
            expr, legend = t[0], t[1]
            tgt = {"datasource": DS, "refId": refs[i], "expr": expr, "legendFormat": legend,
                   "range": kind not in ("stat", "table"), "instant": kind in ("stat", "table")}
            if len(t) > 2:
                tgt.update(t[2])
            tgts.append(tgt)
        p = {"id": self.next_id, "type": kind, "title": title, "description": description,
             "datasource": DS, "gridPos": self._place(w, h), "targets": tgts,
             "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}
        if kind == "timeseries":
            p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                      "showPoints": "never", "spanNulls": False}
            p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                                       "calcs": ["mean", "max", "lastNotNull"]},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
        elif kind == "stat":
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto", "justifyMode": "auto",
                            "orientation": "auto"}
        elif kind == "heatmap":
            p["options"] = {"calculate": False, "yAxis": {"unit": unit}, "cellGap": 1,
                            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                            "exemplars": {"color": "rgba(255,0,255,0.7)"}, "tooltip": {"mode": "single"}}
        for k, v in extra.items():
            if k == "thresholds":
                p["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": v}
                p["fieldConfig"]["defaults"]["color"] = {"mode": "thresholds"}
            elif k == "stack":
                p["fieldConfig"]["defaults"]["custom"]["stacking"] = {"mode": "normal", "group": "A"}
                p["fieldConfig"]["defaults"]["custom"]["fillOpacity"] = 60
            elif k == "min":
                p["fieldConfig"]["defaults"]["min"] = v
            elif k == "max":
                p["fieldConfig"]["defaults"]["max"] = v
            else:
                p[k] = v
        self.next_id += 1
        self.panels.append(p)

    def json(self):
        return {
            "uid": self.uid, "title": self.title, "description": self.description, "tags": self.tags,
            "editable": False, "graphTooltip": 1, "schemaVersion": 41, "version": 1, "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"}, "timezone": "browser", "fiscalYearStartMonth": 0,
            "liveNow": False, "weekStart": "",
            "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m"]},
            "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                      "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                      "name": "Annotations & Alerts", "type": "dashboard"}]},
            "links": [{"title": "Shortener dashboards", "type": "dashboards", "tags": ["shortener"],
                       "asDropdown": True, "includeVars": True, "keepTime": True, "icon": "external link",
                       "tooltip": "", "url": "", "targetBlank": False}],
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


def q(quantile, selector, by="le"):
    return "histogram_quantile(%s, sum by (%s) (rate(%s{%s}[$__rate_interval])))" % (quantile, by, BUCKET, selector)


def service():
    route_var = query_var("route", "Route",
                          'label_values(%s{%s}, http_route)' % (CALLS, SERVER),
                          regex=r"/^\/(\{slug\}|api\/links.*|health|metrics)$/", all_value=ROUTES)
    b = Board("shortener-service", "Service",
              "Shortener service health: traffic, errors and latency per route from span metrics, and Spin's own "
              "host metrics. Start here.", ["shortener"], [datasource_var(), route_var])
    R = SERVER + ',http_route=~"$route"'
    b.row("Redirects at a glance")
    b.panel("stat", "Redirects per second", "Rate of GET and HEAD /{slug} answered by the app (all statuses), "
            "from span metrics. A drop to 0 while the proxy still gets traffic means the app is down or spans no "
            "longer arrive: check the Telemetry pipeline row and the Clicks dashboard divergence panel.", "reqps",
            [("sum(rate(%s{%s}[$__rate_interval]))" % (CALLS, REDIRECT), "redirects/s")], w=6, h=5)
    b.panel("stat", "Redirect error ratio (5xx)", "Share of redirects answered with a 5xx over the selected "
            "interval. 404 (unknown slug) and 410 (expired) are outcomes, not errors. SLO: below 0.1%. If it is "
            "high, look at the error-ratio panel per route and follow an exemplar to a failing trace; a failed "
            "click write answers 500 by design (Storage dashboard).", "percentunit",
            [("sum(rate(%s{%s,http_response_status_code=~\"5..\"}[$__rate_interval])) / sum(rate(%s{%s}[$__rate_interval]))"
              % (CALLS, REDIRECT, CALLS, REDIRECT), "5xx ratio")], w=6, h=5,
            thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.001},
                        {"color": "red", "value": 0.01}])
    b.panel("stat", "Redirect p99 latency", "99th percentile of the app's redirect span duration (guest-side; "
            "Spin's host overhead is on the Spin row). SLO: 99% within 25 ms. If high, check SQLite INSERT "
            "latency on the Storage dashboard (write lock) and Spin CPU time below.", "s",
            [(q(0.99, REDIRECT), "p99")], w=6, h=5,
            thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.01},
                        {"color": "red", "value": 0.025}])
    b.panel("stat", "Availability error-budget burn (1h)", "How many times faster than allowed the redirect "
            "availability SLO (99.9%) burns its error budget, over the last hour (recording rule "
            "shortener:redirect_error_ratio:rate1h / 0.001). 1 = exactly on budget; 14.4 pages. Above 1 for long: "
            "find the failing dependency on the Storage dashboard.", "suffix:×",
            [("shortener:redirect_error_ratio:rate1h / 0.001", "burn rate")], w=6, h=5,
            thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1},
                        {"color": "red", "value": 6}])
    b.row("Per route (the app's spans)")
    b.panel("timeseries", "Request rate per route", "Requests per second per route template (the app's SERVER "
            "spans). /health and /metrics are counted twice: Spin's host span for an exact manifest route has "
            "the same name as the app's span. Unexpected traffic on a route: check the proxy and the load test.",
            "reqps", [("sum by (http_route) (rate(%s{%s}[$__rate_interval]))" % (CALLS, R), "{{http_route}}")])
    b.panel("timeseries", "Error ratio per route (5xx)", "Share of 5xx answers per route. 4xx are client "
            "outcomes (404 unknown slug, 401 bad token) and are not errors. A route above 0.1% for minutes: open "
            "an exemplar on the latency panel or search Tempo for status=error on that route.", "percentunit",
            [("sum by (http_route) (rate(%s{%s,http_response_status_code=~\"5..\"}[$__rate_interval])) / "
              "sum by (http_route) (rate(%s{%s}[$__rate_interval]))" % (CALLS, R, CALLS, R), "{{http_route}}")],
            min=0)
    b.panel("timeseries", "Latency p50 / p95 / p99 per route", "Percentiles of the app's server span duration "
            "per route, from histogram buckets starting at 100 µs. Points are exemplars: click one to open the "
            "trace in Tempo. p99 well above p50 means contention (SQLite write lock, instance start-up); compare "
            "with Spin CPU time and the Storage dashboard.", "s",
            [(q(0.5, R, "le, http_route"), "p50 {{http_route}}", {"exemplar": True}),
             (q(0.95, R, "le, http_route"), "p95 {{http_route}}", {"exemplar": True}),
             (q(0.99, R, "le, http_route"), "p99 {{http_route}}", {"exemplar": True})], w=24, h=9)
    b.panel("timeseries", "Answers by status class", "Requests per second by HTTP status class for the selected "
            "routes. 3xx are redirects served, 4xx are outcomes (404 unknown or deleted slug, 410 expired, 401 "
            "unauthorised API call), only 5xx are errors. A jump in 404s usually means a link was deleted or a "
            "scanner is probing slugs, not an outage.", "reqps",
            [("sum by (class) (label_replace(rate(%s{%s}[$__rate_interval]), \"class\", \"${1}xx\", "
              "\"http_response_status_code\", \"([0-9]).*\"))" % (CALLS, R), "{{class}}")], stack=True)
    b.panel("timeseries", "Redirect outcomes", "Redirects per second by outcome (attribute "
            "shortener.redirect.outcome): hit (redirected), miss (404), expired (410). A falling hit share with "
            "steady traffic means links were deleted or expired, or slugs are being guessed.", "reqps",
            [("sum by (shortener_redirect_outcome) (rate(%s{%s}[$__rate_interval]))" % (CALLS, REDIRECT),
              "{{shortener_redirect_outcome}}")], stack=True)
    b.panel("heatmap", "Redirect latency distribution", "Heatmap of the redirect span durations (bucket counts "
            "per interval) with exemplars. A second band appearing above the main one points to a slow path "
            "(cold instance, SQLite busy retries): open an exemplar from that band.", "s",
            [("sum by (le) (rate(%s{%s}[$__rate_interval]))" % (BUCKET, REDIRECT), "{{le}}",
              {"format": "heatmap", "exemplar": True})], w=24, h=8)
    b.row("Spin host")
    b.panel("timeseries", "Spin requests per component", "Requests Spin routed to each component "
            "(spin.request_count, exported by Spin over OTLP every OTEL_METRIC_EXPORT_INTERVAL). Redirect + api "
            "should match the proxy's traffic; if it is lower than the span-based rate, spans are duplicated; if "
            "higher, spans are being dropped.", "reqps",
            [("sum by (component_id) (rate(spin_request_count_total[$__rate_interval]))", "{{component_id}}")])
    b.panel("timeseries", "Host vs guest latency (redirect p99)", "p99 of Spin's own server span (manifest route "
            "/..., includes instantiation and host work) beside the app's GET /{slug} span. The gap is Spin's "
            "overhead; if it grows, instances are being created too often or the host is CPU-bound.", "s",
            [(q(0.99, SERVER + ',span_name=~"(GET|HEAD) /\\\\.\\\\.\\\\."'), "Spin host GET /... p99", {"exemplar": True}),
             (q(0.99, REDIRECT), "app GET /{slug} p99", {"exemplar": True})])
    b.panel("timeseries", "Spin CPU time", "CPU seconds per second spent running each component's guest code "
            "(spin.component_cpu_time, recorded when an instance is dropped, so it lags by ~128 requests). "
            "Close to the host's core count means the app is CPU-bound: scale out or reduce per-request work.",
            "suffix: cores", [("sum by (component_id) (rate(spin_component_cpu_time_sum[$__rate_interval]))",
                               "{{component_id}}")])
    b.panel("timeseries", "Spin memory per instance", "Average linear memory used by a component instance at "
            "initialisation and at the end of its life (spin.component_memory_used_on_init / "
            "spin.component_memory_used). Steady growth across instances suggests a leak in state kept per "
            "instance (statics live for ~128 requests).", "bytes",
            [("sum by (component_id) (rate(spin_component_memory_used_sum[$__rate_interval])) / sum by "
              "(component_id) (rate(spin_component_memory_used_count[$__rate_interval]))", "used {{component_id}}"),
             ("sum by (component_id) (rate(spin_component_memory_used_on_init_sum[$__rate_interval])) / sum by "
              "(component_id) (rate(spin_component_memory_used_on_init_count[$__rate_interval]))",
              "on init {{component_id}}")])
    b.row("Telemetry pipeline")
    b.panel("timeseries", "Collector: spans in and out", "Spans accepted by the collector's OTLP receiver, "
            "refused/failed by it (memory_limiter pressure) and sent to Tempo. Refused or failed above 0 means "
            "dashboards undercount: give the collector more memory or sample. Sent below accepted: Tempo is "
            "slow or down.", "cps",
            [("sum(rate(otelcol_receiver_accepted_spans_total[$__rate_interval]))", "accepted"),
             ("sum(rate(otelcol_receiver_refused_spans_total[$__rate_interval])) + "
              "sum(rate(otelcol_receiver_failed_spans_total[$__rate_interval]))", "refused + failed"),
             ("sum by (exporter) (rate(otelcol_exporter_sent_spans_total[$__rate_interval]))", "sent {{exporter}}")])
    b.panel("timeseries", "Collector: export failures", "Spans and metric points an exporter failed to send or "
            "to queue. Any sustained value fires OtelCollectorExportFailing: check Tempo (otlp/tempo) and the "
            "collector logs.", "cps",
            [("sum by (exporter) (rate(otelcol_exporter_send_failed_spans_total[$__rate_interval]))",
              "send failed spans {{exporter}}"),
             ("sum by (exporter) (rate(otelcol_exporter_enqueue_failed_spans_total[$__rate_interval]))",
              "enqueue failed spans {{exporter}}"),
             ("sum by (exporter) (rate(otelcol_exporter_send_failed_metric_points_total[$__rate_interval]))",
              "send failed points {{exporter}}")], min=0)
    return b


def storage():
    b = Board("shortener-storage", "Storage",
              "Key-value and SQLite operations made by the app (its CLIENT spans kv.* and sqlite.execute): rate, "
              "latency and errors by operation.", ["shortener"],
              [datasource_var(),
               query_var("operation", "Operation", 'label_values(%s{%s}, db_operation_name)' % (CALLS, CLIENT))])
    KV = CLIENT + ',db_system_name="spin_key_value",db_operation_name=~"$operation"'
    SQL = CLIENT + ',db_system_name="sqlite",db_operation_name=~"$operation"'
    b.row("Rate")
    b.panel("timeseries", "Key-value operations per second", "KV calls per operation (get, set, exists, delete, "
            "get_keys). A redirect should do exactly one get: compare with the redirect rate on the Service "
            "dashboard. KV writes are slow in Spin (~1.3k/s): sets rising with redirects would be a bug.", "ops",
            [("sum by (db_operation_name) (rate(%s{%s}[$__rate_interval]))" % (CALLS, KV), "{{db_operation_name}}")])
    b.panel("timeseries", "SQLite statements per second", "sqlite.execute calls per operation and table. INSERT "
            "into clicks should equal redirects served (one click per redirect).", "ops",
            [("sum by (db_operation_name, db_collection_name) (rate(%s{%s}[$__rate_interval]))" % (CALLS, SQL),
              "{{db_operation_name}} {{db_collection_name}}")])
    b.row("Latency")
    for name, sel, by, legend in [("Key-value", KV, "le, db_operation_name", "{{db_operation_name}}"),
                                  ("SQLite", SQL, "le, db_operation_name, db_collection_name",
                                   "{{db_operation_name}} {{db_collection_name}}")]:
        b.panel("timeseries", "%s latency p50 / p95 / p99" % name, "Percentiles of the %s call duration per "
                "operation, from buckets starting at 100 µs; points are exemplars linking to traces. SQLite INSERT "
                "p99 in the tens of ms means writers queue on the single write lock (WAL + synchronous=NORMAL "
                "and one connection per instance keep it low)." % name, "s",
                [(q(0.5, sel, by), "p50 " + legend, {"exemplar": True}),
                 (q(0.95, sel, by), "p95 " + legend, {"exemplar": True}),
                 (q(0.99, sel, by), "p99 " + legend, {"exemplar": True})])
    b.row("Errors")
    b.panel("timeseries", "Failed operations per second", "KV and SQLite calls that ended with an error status, "
            "by system, operation and error.type. A failed click INSERT makes the redirect answer 500 "
            "(availability SLO). sqlite busy/locked errors point to write contention.", "ops",
            [("sum by (db_system_name, db_operation_name, error_type) (rate(%s{%s,db_operation_name=~\"$operation\","
              "status_code=\"STATUS_CODE_ERROR\"}[$__rate_interval]))" % (CALLS, CLIENT),
              "{{db_system_name}} {{db_operation_name}} {{error_type}}")], min=0)
    b.panel("timeseries", "Error ratio by operation", "Share of calls per system and operation that failed. "
            "Anything above 0 on INSERT clicks costs redirect availability directly; on KV get it turns "
            "redirects into 500s.", "percentunit",
            [("sum by (db_system_name, db_operation_name) (rate(%s{%s,db_operation_name=~\"$operation\","
              "status_code=\"STATUS_CODE_ERROR\"}[$__rate_interval])) / sum by (db_system_name, db_operation_name) "
              "(rate(%s{%s,db_operation_name=~\"$operation\"}[$__rate_interval]))" % (CALLS, CLIENT, CALLS, CLIENT),
              "{{db_system_name}} {{db_operation_name}}")], min=0)
    return b


def clicks():
    SERVED = SERVER + ',span_name="GET /{slug}",http_response_status_code=~"30[1278]"'
    b = Board("shortener-clicks", "Clicks",
              "Click recording: clicks per second (humans vs bots), redirects served vs clicks recorded, the "
              "click outbox backlog, click write failures and the number of links.", ["shortener"], [datasource_var()])
    b.row("Clicks")
    b.panel("stat", "Links stored", "Links currently stored (shortener_links, read from SQLite by the app's "
            "/metrics). A sudden drop means links were deleted through the API.", "short",
            [("max(shortener_links)", "links")], w=6, h=5)
    b.panel("stat", "Clicks recorded (total)", "All clicks recorded in SQLite since the database was created, "
            "deleted links included (shortener_clicks_total; every instance reports the same value, hence max).",
            "short", [("sum(max by (kind) (shortener_clicks_total))", "clicks")], w=6, h=5)
    b.panel("stat", "Bot share", "Share of recorded clicks classified as bots over the selected interval. A jump "
            "usually means a crawler or link-preview service is fetching your links; it is not an error.",
            "percentunit", [("sum(max by (kind) (rate(shortener_clicks_total{kind=\"bot\"}[$__rate_interval]))) / "
                             "sum(max by (kind) (rate(shortener_clicks_total[$__rate_interval])))", "bots")], w=6, h=5)
    b.panel("stat", "App version", "Version reported by shortener_build_info. Several values at once mean a "
            "rollout is in progress or an old instance is still running.", "none",
            [("max by (version) (shortener_build_info)", "{{version}}")], w=6, h=5,
            options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                     "colorMode": "none", "graphMode": "none", "textMode": "name", "justifyMode": "auto",
                     "orientation": "auto"})
    b.panel("timeseries", "Clicks per second: humans vs bots", "Clicks recorded per second by visitor kind, from "
            "the SQLite totals the app exposes on /metrics (scraped every 15 s, so short spikes are smoothed). "
            "Flat at 0 while redirects are served: see the divergence panel.", "cps",
            [("max by (kind) (rate(shortener_clicks_total[$__rate_interval]))", "{{kind}}")], stack=True)
    b.panel("timeseries", "Redirect hits by visitor kind (spans)", "Redirect hits per second by "
            "shortener.visitor.kind from span metrics: the same split as the left panel, seen from the traces. "
            "The two should track each other.", "reqps",
            [("sum by (shortener_visitor_kind) (rate(%s{%s,shortener_redirect_outcome=\"hit\"}[$__rate_interval]))"
              % (CALLS, REDIRECT), "{{shortener_visitor_kind}}")], stack=True)
    b.row("Redirects served vs clicks recorded")
    b.panel("timeseries", "Redirects served vs clicks recorded", "Redirects answered with a 30x (GET /{slug} span "
            "metrics; HEAD never records a click) beside clicks recorded in SQLite. They must match: each "
            "redirect commits its click before it is answered. Redirects above clicks: clicks are lost. Clicks "
            "above redirects: spans are dropped on the way to the collector. With click_outbox the recorded "
            "clicks lag while clicks wait in the outboxes (Click outbox row) and catch up when they ship.", "cps",
            [("sum(rate(%s{%s}[$__rate_interval]))" % (CALLS, SERVED), "redirects served"),
             ("sum(max by (kind) (rate(shortener_clicks_total[$__rate_interval])))", "clicks recorded")])
    b.panel("timeseries", "Divergence (15 min window)", "Redirects served minus clicks accounted for (recorded, "
            "tallied as unrecorded in degraded mode, or added to a click outbox) over the last 15 minutes (recording rules "
            "shortener:redirects_served:increase15m and shortener:clicks_accounted:increase15m). Near 0 is healthy (a few clicks of skew from scrape and "
            "flush timing is normal). Positive and growing: clicks lost, check click-write failures and the app "
            "logs. Negative: spans dropped, raise OTEL_BSP_MAX_QUEUE_SIZE or check the collector.", "short",
            [("shortener:redirects_served:increase15m - shortener:clicks_accounted:increase15m", "served - accounted")],
            thresholds=[{"color": "red", "value": None}, {"color": "green", "value": -10},
                        {"color": "red", "value": 10}])
    b.row("Failures")
    b.panel("timeseries", "Click-write failures", "Failed click INSERTs (sqlite.execute INSERT into clicks with "
            "error status), the clicks counted as unrecorded because of them (degraded mode: the redirect is "
            "still served, shortener_clicks_unrecorded_total, the same on every instance, hence max), and "
            "redirects answered 500 (neither database could count the click). sqlite busy errors mean "
            "write-lock contention; see the ShortenerClicksUnrecorded runbook.", "ops",
            [("sum by (error_type) (rate(%s{%s,db_system_name=\"sqlite\",db_operation_name=\"INSERT\","
              "db_collection_name=\"clicks\",status_code=\"STATUS_CODE_ERROR\"}[$__rate_interval]))" % (CALLS, CLIENT),
              "failed INSERT {{error_type}}"),
             ("max by (kind) (rate(shortener_clicks_unrecorded_total[$__rate_interval]))", "unrecorded {{kind}}"),
             ("sum(rate(%s{%s,span_name=\"GET /{slug}\",http_response_status_code=\"500\"}[$__rate_interval]))"
              % (CALLS, SERVER), "redirects answered 500")], min=0)
    b.panel("timeseries", "Click write latency p99", "p99 of the click INSERT, the only write on the redirect path. "
            "It bounds redirect latency: above ~10 ms the latency SLO is at risk.", "s",
            [(q(0.99, CLICK_INSERT),
              "INSERT clicks p99", {"exemplar": True})])
    b.row("Click outbox (click_outbox = true)")
    b.panel("timeseries", "Clicks waiting in outboxes", "Clicks served but not yet in the shared click database, "
            "summed over the replicas (each reports its own outbox, shortener_click_outbox_clicks, after its "
            "scrape shipped what it could), and per replica. Near 0 while sqld answers: a replica ships at every "
            "256th redirect and every scrape. Rising: sqld is down or unreachable from that replica; the clicks "
            "wait on its disk and ship by themselves. Empty without click_outbox.", "short",
            [("sum(shortener_click_outbox_clicks)", "all replicas"),
             ("sum by (instance) (shortener_click_outbox_clicks)", "{{instance}}")], min=0)
    b.panel("timeseries", "Oldest waiting click", "Age of the oldest click waiting in each replica's outbox "
            "(shortener_click_outbox_oldest_seconds) and the oldest over all replicas. Seconds while sqld answers; "
            "above 300 s for 5 minutes fires ShortenerClickBacklogStale (the runbook says what to check). Stats "
            "and click totals miss the waiting clicks until they ship.", "s",
            [("max(shortener_click_outbox_oldest_seconds)", "oldest (all replicas)"),
             ("max by (instance) (shortener_click_outbox_oldest_seconds)", "{{instance}}")], min=0,
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 300}])
    return b


def loadtest():
    b = Board("shortener-loadtest", "Load test",
              "A k6 run (docker compose --profile loadtest run --rm k6) as k6 sees it, beside the server's own view "
              "from span metrics.", ["shortener", "k6"],
              [datasource_var(), query_var("testid", "Test run", "label_values(k6_http_reqs_total, testid)")])
    b.row("Client (k6)")
    b.panel("timeseries", "Virtual users", "Active k6 virtual users (k6_vus) and the configured maximum. VUs at the "
            "maximum while the request rate stays below target means the server cannot keep up.", "short",
            [("sum(k6_vus{testid=~\"$testid\"})", "VUs"), ("sum(k6_vus_max{testid=~\"$testid\"})", "max VUs")])
    b.panel("timeseries", "Request rate: client vs server", "Requests per second sent by k6 beside requests the "
            "app's spans report. Server below client: requests fail before the app (proxy) or spans are dropped "
            "(check the Telemetry pipeline row on the Service dashboard).", "reqps",
            [("sum(rate(k6_http_reqs_total{testid=~\"$testid\"}[$__rate_interval]))", "k6 sent"),
             ("sum(rate(%s{%s,http_route=~\"%s\"}[$__rate_interval]))" % (CALLS, SERVER, ROUTES), "app spans")])
    b.panel("timeseries", "Latency p95 / p99: client vs server", "k6's p95/p99 of http_req_duration (computed "
            "over the whole run so far, not per interval) beside the server-side p95/p99 of the app's spans per "
            "interval. Client far above server: time goes into the proxy, the network or the k6 host.", "s",
            [("max(k6_http_req_duration_p95{testid=~\"$testid\"})", "k6 p95 (run so far)"),
             ("max(k6_http_req_duration_p99{testid=~\"$testid\"})", "k6 p99 (run so far)"),
             (q(0.95, SERVER + ',http_route=~"%s"' % ROUTES), "server p95", {"exemplar": True}),
             (q(0.99, SERVER + ',http_route=~"%s"' % ROUTES), "server p99", {"exemplar": True})], w=24, h=9)
    b.panel("timeseries", "Failure rate", "Share of k6 requests that failed (expected_response=false, which is "
            "what k6's http_req_failed counts) per interval, and k6's own cumulative http_req_failed rate. "
            "Failures with 5xx: see the Service dashboard; connection errors: the proxy or the k6 host.",
            "percentunit",
            [("sum(rate(k6_http_reqs_total{testid=~\"$testid\",expected_response=\"false\"}[$__rate_interval])) / "
              "sum(rate(k6_http_reqs_total{testid=~\"$testid\"}[$__rate_interval]))", "failed (per interval)"),
             ("sum by (status) (k6_http_req_failed_rate{testid=~\"$testid\"})", "http_req_failed rate, status {{status}}")], min=0)
    b.panel("timeseries", "Requests by status", "k6 requests per second by HTTP status. 302 is the expected "
            "redirect; 404 means the scenario asks for slugs that do not exist; 5xx are server errors.", "reqps",
            [("sum by (status) (rate(k6_http_reqs_total{testid=~\"$testid\"}[$__rate_interval]))", "{{status}}")], stack=True)
    b.row("Server under load")
    b.panel("timeseries", "Spin CPU during the run", "Guest CPU seconds per second per component. Near the host's "
            "core count: the run is CPU-bound (about 200 µs of CPU per redirect with its click).",
            "suffix: cores", [("sum by (component_id) (rate(spin_component_cpu_time_sum[$__rate_interval]))",
                               "{{component_id}}")])
    b.panel("timeseries", "Click INSERT p99 during the run", "p99 of the click write under load; it rises first "
            "when SQLite's write lock is the bottleneck.", "s",
            [(q(0.99, CLICK_INSERT),
              "INSERT clicks p99", {"exemplar": True})])
    return b


def main():
    check = "--check" in sys.argv
    stale = []
    for name, build in [("service", service), ("storage", storage), ("clicks", clicks), ("loadtest", loadtest)]:
        path = os.path.join(OUT, name + ".json")
        text = json.dumps(build().json(), indent=2, ensure_ascii=False) + "\n"
        if check:
            if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("out of date (run python3 deploy/grafana/build_dashboards.py): " + ", ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
