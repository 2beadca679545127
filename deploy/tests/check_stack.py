#!/usr/bin/env python3
"""Static and live checks of the shortener observability stack (see validate.sh).

  check_stack.py dashboards        unique panel ids, units, descriptions, datasource uids, variables
  check_stack.py collector         collector config: pipelines reference defined components, PII, naming
  check_stack.py tempo             Tempo 3 config: no 2.x-only blocks, generator wired to Prometheus, capped
  check_stack.py runbooks          every alert's runbook_url names a section of docs/runbook.md, and back
  check_stack.py compose CONFIG    `docker compose config` output: healthchecks, loopback-only ports,
                                   pinned images, the app's click_outbox against its runtime config
  check_stack.py promql APP_METRICS_FILE [APP_OUTBOX_METRICS_FILE]
        starts the Debian Prometheus on 127.0.0.1 (random port, temp dir), scraping the fixture
        series from a local HTTP server and loading the alert/recording rules, then evaluates every
        PromQL expression of every dashboard and rule through the HTTP API. Fails on parse errors
        and on metric names that have no series. Job "shortener" has two targets: APP_METRICS_FILE
        and the /metrics of a replica with click_outbox "true" (default: the committed fixture
        deploy/tests/fixtures/app-metrics-outbox.prom), which must carry every family of the first.

Only the standard library (Python 3.11+: tomllib) and PyYAML.
"""
import glob
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
FIXTURES = os.path.join(DEPLOY, "tests", "fixtures")
DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json")))
RULE_FILES = sorted(glob.glob(os.path.join(DEPLOY, "prometheus", "rules", "*.yml")))

errors = []


def fail(msg):
    errors.append(msg)
    print("  FAIL: " + msg)


# ---------------------------------------------------------------- dashboards
def provisioned_datasource_uids():
    uids = {}
    for f in glob.glob(os.path.join(DEPLOY, "grafana", "provisioning", "datasources", "*.y*ml")):
        for ds in (yaml.safe_load(open(f)) or {}).get("datasources", []):
            uids[ds["uid"]] = ds["type"]
    return uids


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def check_dashboards():
    print("dashboards: ids, units, descriptions, datasources, variables")
    uids = provisioned_datasource_uids()
    if not {"prometheus", "tempo"} <= set(uids):
        fail("provisioned datasources must include uids prometheus and tempo, got %s" % sorted(uids))
    prov = yaml.safe_load(open(os.path.join(DEPLOY, "grafana", "provisioning", "dashboards", "dashboards.yaml")))
    if [p.get("folder") for p in prov["providers"]] != ["Shortener"]:
        fail("dashboards must be provisioned into the single folder 'Shortener'")
    if len(DASHBOARDS) != 4:
        fail("expected 4 dashboards, found %d" % len(DASHBOARDS))
    seen_uids = set()
    for path in DASHBOARDS:
        name = os.path.relpath(path, ROOT)
        d = json.load(open(path))
        if d.get("uid") in seen_uids:
            fail("%s: duplicate dashboard uid %s" % (name, d.get("uid")))
        seen_uids.add(d.get("uid"))
        variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
        dsvar = variables.get("datasource")
        if not dsvar or dsvar.get("type") != "datasource" or dsvar.get("query") != "prometheus":
            fail("%s: needs a 'datasource' variable of type datasource (prometheus)" % name)
        if "service" in os.path.basename(path) and "route" not in variables:
            fail("%s: needs a 'route' variable" % name)

        def check_ds(ref, where):
            if ref is None:
                return
            uid = ref.get("uid") if isinstance(ref, dict) else ref
            if uid in ("${datasource}", "$datasource"):
                return
            if uid in ("-- Grafana --", "grafana") and where.startswith("annotation"):
                return
            if uid not in uids:
                fail("%s: %s references datasource uid %r, not provisioned (%s)" % (name, where, uid, sorted(uids)))
        for v in variables.values():
            if v.get("type") == "query":
                check_ds(v.get("datasource"), "variable " + v["name"])
        for a in d.get("annotations", {}).get("list", []):
            check_ds(a.get("datasource"), "annotation " + a.get("name", ""))
        ids = []
        for p in walk_panels(d.get("panels", [])):
            ids.append(p.get("id"))
            if p.get("type") == "row":
                continue
            title = "%s panel %r" % (name, p.get("title"))
            if not p.get("description", "").strip():
                fail(title + ": no description")
            if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                fail(title + ": no unit")
            check_ds(p.get("datasource"), "panel %r" % p.get("title"))
            if not p.get("targets"):
                fail(title + ": no queries")
            for t in p.get("targets", []):
                check_ds(t.get("datasource"), "panel %r target" % p.get("title"))
                if not t.get("expr"):
                    fail(title + ": target without expr")
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if None in ids:
            fail(name + ": panel without id")
        if dup:
            fail("%s: duplicate panel ids %s" % (name, dup))


# ---------------------------------------------------------------- collector
FORBIDDEN_DIMENSIONS = {"client.address", "network.peer.address", "url.path", "url.full", "user_agent.original",
                        "http.user_agent", "http.target", "shortener.slug", "slug", "http.client_ip"}
PII_ATTRIBUTES = {"client.address", "network.peer.address", "user_agent.original"}


def check_collector():
    print("collector: deploy/otel-collector/config.yaml structure")
    cfg = yaml.safe_load(open(os.path.join(DEPLOY, "otel-collector", "config.yaml")))
    sections = {k: cfg.get(k) or {} for k in ("receivers", "processors", "exporters", "connectors", "extensions")}
    service = cfg.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        fail("no service.pipelines")
    for ext in service.get("extensions", []):
        if ext not in sections["extensions"]:
            fail("service.extensions uses undefined extension %r" % ext)
    used = {k: set() for k in sections}
    conn_as_exporter, conn_as_receiver = {}, {}
    for pname, p in pipelines.items():
        ptype = pname.split("/")[0]
        if ptype not in ("traces", "metrics", "logs"):
            fail("pipeline %r: unknown signal type" % pname)
        if not p.get("receivers"):
            fail("pipeline %r: no receivers" % pname)
        if not p.get("exporters"):
            fail("pipeline %r: no exporters" % pname)
        for r in p.get("receivers", []):
            if r in sections["connectors"]:
                conn_as_receiver.setdefault(r, []).append(ptype)
                used["connectors"].add(r)
            elif r in sections["receivers"]:
                used["receivers"].add(r)
            else:
                fail("pipeline %r: receiver %r is not defined" % (pname, r))
        for pr in p.get("processors", []):
            if pr not in sections["processors"]:
                fail("pipeline %r: processor %r is not defined" % (pname, pr))
            used["processors"].add(pr)
        procs = p.get("processors", [])
        if procs[:1] != ["memory_limiter"]:
            fail("pipeline %r: memory_limiter must be the first processor" % pname)
        if "batch" not in procs:
            fail("pipeline %r: no batch processor" % pname)
        for e in p.get("exporters", []):
            if e in sections["connectors"]:
                conn_as_exporter.setdefault(e, []).append(ptype)
                used["connectors"].add(e)
            elif e in sections["exporters"]:
                used["exporters"].add(e)
            else:
                fail("pipeline %r: exporter %r is not defined" % (pname, e))
    for c in sections["connectors"]:
        if c not in conn_as_exporter or c not in conn_as_receiver:
            fail("connector %r must be an exporter in one pipeline and a receiver in another" % c)
    for kind in ("receivers", "processors", "exporters", "connectors"):
        for name in sections[kind]:
            if name not in used[kind]:
                fail("%s %r is defined but used by no pipeline" % (kind[:-1], name))
    # Current component names and keys of the pinned contrib release: the
    # deprecated aliases still load, and a later release drops them.
    deprecated = {("exporters", "otlp"): "otlp_grpc", ("exporters", "otlphttp"): "otlp_http",
                  ("connectors", "spanmetrics"): "span_metrics"}
    for (kind, old_type), current in deprecated.items():
        for name in sections[kind]:
            if name.split("/")[0] == old_type:
                fail("%s %r uses the deprecated type %r: use %r" % (kind[:-1], name, old_type, current))
    for name, conf in sections["connectors"].items():
        if "dimensions_cache_size" in (conf or {}):
            fail("connector %r sets the deprecated dimensions_cache_size: use aggregation_cardinality_limit" % name)
    # spanmetrics: traces in, metrics out, low-cardinality dimensions, names the fixture assumes.
    sm = sections["connectors"].get("span_metrics")
    if not sm:
        fail("span_metrics connector missing")
    else:
        if conn_as_exporter.get("span_metrics") != ["traces"] or conn_as_receiver.get("span_metrics") != ["metrics"]:
            fail("spanmetrics must be exported to from a traces pipeline and received in a metrics pipeline")
        dims = {d["name"] for d in sm.get("dimensions", [])}
        bad = dims & FORBIDDEN_DIMENSIONS
        if bad:
            fail("spanmetrics dimensions include high-cardinality/personal attributes %s" % sorted(bad))
        if sm.get("namespace") != "traces.span.metrics" or sm.get("histogram", {}).get("unit") != "s":
            fail("spanmetrics must set namespace traces.span.metrics and histogram.unit s "
                 "(the fixture and every query assume traces_span_metrics_duration_seconds_*)")
        if not sm.get("exemplars", {}).get("enabled"):
            fail("spanmetrics exemplars must be enabled")
        buckets = sm.get("histogram", {}).get("explicit", {}).get("buckets", [])
        if "100us" not in buckets or "25ms" not in buckets:
            fail("spanmetrics buckets must include 100us (sub-ms redirects) and 25ms (latency SLO bound)")
        limit = sm.get("aggregation_cardinality_limit")
        if not isinstance(limit, int) or not 0 < limit <= 10000:
            fail("span_metrics must cap cardinality with aggregation_cardinality_limit (1..10000), got %r" % limit)
        for needed in ("http.route", "http.response.status_code", "db.operation.name", "db.system.name"):
            if needed not in dims:
                fail("spanmetrics dimension %s missing (used by dashboards/rules)" % needed)
    prom = sections["exporters"].get("prometheus") or {}
    if prom.get("translation_strategy") != "UnderscoreEscapingWithSuffixes" or not prom.get("enable_open_metrics"):
        fail("prometheus exporter must use translation_strategy UnderscoreEscapingWithSuffixes and "
             "enable_open_metrics (names with suffixes; exemplars)")
    # Personal data: deleted (or hashed) in every traces pipeline before export.
    for pname, p in pipelines.items():
        if not pname.startswith("traces"):
            continue
        handled = set()
        for pr in p.get("processors", []):
            conf = sections["processors"].get(pr) or {}
            for a in conf.get("actions", []) if pr.split("/")[0] == "attributes" else []:
                if a.get("action") in ("delete", "hash") and a.get("key"):
                    handled.add(a["key"])
        missing = PII_ATTRIBUTES - handled
        if missing:
            fail("pipeline %r does not delete or hash %s" % (pname, sorted(missing)))
    telemetry = ((service.get("telemetry") or {}).get("metrics") or {})
    ports = [r.get("pull", {}).get("exporter", {}).get("prometheus", {}) for r in telemetry.get("readers", [])]
    if not any(p.get("host") == "0.0.0.0" and p.get("port") == 8888 for p in ports):
        fail("collector's own metrics must be served on 0.0.0.0:8888 (Prometheus job otel-collector)")


# ---------------------------------------------------------------- PromQL
AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
               "topk", "quantile", "limitk", "limit_ratio"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
            "unless", "atan2", "inf", "nan", "start", "end"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<dur>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],@:])
""", re.X)


def metric_names(expr):
    """Metric names referenced by a PromQL expression (vector selectors and __name__ matchers)."""
    toks, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError("cannot tokenise at %r" % expr[pos:pos + 20])
        pos = m.end()
        if m.lastgroup != "ws":
            toks.append((m.lastgroup, m.group()))
    names = set()
    brace = 0
    label_list = 0
    for i, (kind, val) in enumerate(toks):
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        prev = toks[i - 1][1] if i else None
        if val == "{":
            brace += 1
            continue
        if val == "}":
            brace -= 1
            continue
        if label_list:
            if val == "(":
                label_list += 1
            elif val == ")":
                label_list -= 1
            continue
        if kind == "ident" and val in LABEL_LIST_KEYWORDS and nxt == "(":
            label_list = 0  # the "(" that follows opens the list
            toks[i + 1] = ("op", "(LIST")
            continue
        if val == "(LIST":
            label_list = 1
            continue
        if brace:
            if kind == "ident" and val == "__name__" and nxt in ("=",) and i + 2 < len(toks):
                names.add(toks[i + 2][1][1:-1])
            continue
        if kind != "ident":
            continue
        if val in KEYWORDS or val.lower() in ("inf", "nan"):
            continue
        if nxt == "(":
            continue  # function call
        if val in AGGREGATORS and nxt in ("by", "without"):
            continue
        if prev == "[" or (prev == ":" and toks[i - 2][1] != "}"):
            continue
        names.add(val)
    return names


def substitute_variables(expr, variables):
    values = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__interval_ms": "15000",
              "__range_s": "3600", "__range_ms": "3600000"}
    for v in variables:
        if v.get("type") == "datasource":
            values[v["name"]] = "prometheus"
        elif v.get("includeAll") and v.get("allValue"):
            values[v["name"]] = v["allValue"]
        else:
            values[v["name"]] = ".*"
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        # Grafana leaves unknown names alone (e.g. "${1}" in label_replace).
        return values.get(name, m.group(0))
    return re.sub(r"\$\{([a-zA-Z0-9_]+)(?::[a-z]+)?\}|\[\[([a-zA-Z0-9_]+)\]\]|\$([a-zA-Z_][a-zA-Z0-9_]*)", repl, expr)


def collect_queries():
    """(origin, promql) for every dashboard target, variable query and rule expression."""
    out = []
    for path in DASHBOARDS:
        d = json.load(open(path))
        variables = d.get("templating", {}).get("list", [])
        base = os.path.basename(path)
        for v in variables:
            if v.get("type") != "query":
                continue
            qv = v.get("query")
            qs = qv.get("query") if isinstance(qv, dict) else qv
            m = re.match(r"^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$", qs or "", re.S)
            if m:
                out.append(("%s variable %s" % (base, v["name"]), substitute_variables(m.group(1), variables)))
            elif qs:
                out.append(("%s variable %s" % (base, v["name"]), substitute_variables(qs, variables)))
        for p in walk_panels(d.get("panels", [])):
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append(("%s panel %r %s" % (base, p.get("title"), t.get("refId")),
                                substitute_variables(t["expr"], variables)))
    for f in RULE_FILES:
        for g in yaml.safe_load(open(f))["groups"]:
            for r in g["rules"]:
                out.append(("%s %s" % (os.path.basename(f), r.get("alert") or r.get("record")), r["expr"]))
    return out


class FixtureHandler(http.server.BaseHTTPRequestHandler):
    files = {}

    def do_GET(self):
        path = self.files.get(self.path.split("?")[0])
        if not path:
            self.send_error(404)
            return
        lines = [l for l in open(path, encoding="utf-8").read().splitlines() if not l.startswith("##")]
        body = ("\n".join(lines) + "\n").encode()
        om = any(l.strip() == "# EOF" for l in lines)
        self.send_response(200)
        self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8" if om
                         else "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port, path, params=None, timeout=10):
    url = "http://127.0.0.1:%d%s" % (port, path)
    data = urllib.parse.urlencode(params).encode() if params is not None else None
    try:
        with urllib.request.urlopen(url, data=data, timeout=timeout) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        try:
            return json.load(e)
        except Exception:
            return {"status": "error", "error": "HTTP %d" % e.code}


OUTBOX_FAMILIES = {"shortener_click_outbox_clicks", "shortener_click_outbox_oldest_seconds"}
# The `shortener` job's second target: a replica with click_outbox "true".
OUTBOX_TARGET = {"path": "/shortener-outbox", "instance": "outbox-replica"}


def families(path):
    return {line.split()[2] for line in open(path, encoding="utf-8") if line.startswith("# TYPE ")}


def check_promql(app_metrics, outbox_metrics):
    print("promql: every dashboard and rule expression against a real Prometheus")
    prom_bin = shutil.which("prometheus")
    if not prom_bin:
        fail("prometheus binary not found (apt-get install prometheus)")
        return
    # job name (as in deploy/prometheus/prometheus.yml) -> fixture served for it
    fixtures = {
        "shortener": app_metrics,
        "otel-collector-exporter": os.path.join(FIXTURES, "collector-exporter.prom"),
        "otel-collector": os.path.join(FIXTURES, "collector-internal.prom"),
        # In the stack these arrive by remote write from k6; here they are scraped.
        "k6-remote-write": os.path.join(FIXTURES, "k6-remote-write.prom"),
    }
    for job, f in fixtures.items():
        if not os.path.isfile(f):
            fail("fixture for job %s missing: %s" % (job, f))
            return
    if not os.path.isfile(outbox_metrics):
        fail("outbox replica metrics missing: %s" % outbox_metrics)
        return
    missing = families(app_metrics) - families(outbox_metrics)
    if missing:
        fail("%s lacks families the app reports (%s): %s" % (os.path.relpath(outbox_metrics, ROOT),
                                                             os.path.relpath(app_metrics, ROOT), sorted(missing)))
    if not OUTBOX_FAMILIES <= families(outbox_metrics):
        fail("%s lacks the outbox gauges %s" % (os.path.relpath(outbox_metrics, ROOT),
                                                sorted(OUTBOX_FAMILIES - families(outbox_metrics))))
    FixtureHandler.files = {"/" + job: f for job, f in fixtures.items()}
    FixtureHandler.files[OUTBOX_TARGET["path"]] = outbox_metrics
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FixtureHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fport = server.server_address[1]

    real = yaml.safe_load(open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")))
    scrape = []
    for job in real["scrape_configs"]:
        if job["job_name"] in fixtures:
            j = {k: v for k, v in job.items() if k not in ("static_configs", "metrics_path")}
            j.update({"scrape_interval": "1s", "scrape_timeout": "1s", "metrics_path": "/" + job["job_name"],
                      "static_configs": [{"targets": ["127.0.0.1:%d" % fport]}]})
            if job["job_name"] == "shortener":
                j["static_configs"].append({"targets": ["127.0.0.1:%d" % fport],
                                            "labels": {"__metrics_path__": OUTBOX_TARGET["path"],
                                                       "instance": OUTBOX_TARGET["instance"]}})
            scrape.append(j)
    missing_jobs = set(fixtures) - {j["job_name"] for j in scrape} - {"k6-remote-write"}
    if missing_jobs:
        fail("deploy/prometheus/prometheus.yml lacks scrape jobs %s" % sorted(missing_jobs))
    scrape.append({"job_name": "k6-remote-write", "honor_labels": True, "scrape_interval": "1s",
                   "scrape_timeout": "1s", "metrics_path": "/k6-remote-write",
                   "static_configs": [{"targets": ["127.0.0.1:%d" % fport]}]})
    tmp = tempfile.mkdtemp(prefix="shortener-prom-")
    cfg = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
           "rule_files": RULE_FILES, "scrape_configs": scrape}
    cfg_path = os.path.join(tmp, "prometheus.yml")
    yaml.safe_dump(cfg, open(cfg_path, "w"))
    port = free_port()
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen([prom_bin, "--config.file=" + cfg_path, "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port, "--enable-feature=exemplar-storage",
                             "--web.enable-remote-write-receiver"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _check_promql_live(port, tmp, fixtures)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.shutdown()
        if errors:
            print("  (Prometheus log kept in %s)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _check_promql_live(port, tmp, fixtures):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=1).status == 200:
                break
        except Exception:
            time.sleep(0.3)
    else:
        fail("Prometheus did not become ready (log: %s/prometheus.log)" % tmp)
        return
    # Wait for every target to be scraped healthily and every recording rule to have produced a series.
    recorded = {r["record"] for f in RULE_FILES for g in yaml.safe_load(open(f))["groups"] for r in g["rules"]
                if "record" in r}
    names = set()
    while time.time() < deadline:
        targets = api(port, "/api/v1/targets").get("data", {}).get("activeTargets", [])
        healthy = {t["labels"].get("job") for t in targets if t.get("health") == "up"}
        names = set(api(port, "/api/v1/label/__name__/values").get("data", []))
        # len(fixtures) + 1: job shortener's second target (OUTBOX_TARGET).
        if (healthy >= set(fixtures) and len(targets) == len(fixtures) + 1
                and all(t.get("health") == "up" for t in targets) and recorded <= names):
            break
        time.sleep(1)
    else:
        for t in api(port, "/api/v1/targets").get("data", {}).get("activeTargets", []):
            if t.get("health") != "up":
                fail("fixture scrape of job %s (%s) failed: %s" % (t["labels"].get("job"), t.get("scrapeUrl"),
                                                                  t.get("lastError")))
        for r in sorted(recorded - names):
            fail("recording rule %s produced no series from the fixtures" % r)
        return
    time.sleep(2)  # a few more samples so rate() over 1m has two points everywhere
    names = set(api(port, "/api/v1/label/__name__/values").get("data", []))
    ex = api(port, "/api/v1/query_exemplars", {"query": "traces_span_metrics_duration_seconds_bucket",
                                               "start": str(time.time() - 300), "end": str(time.time())})
    if not ex.get("data"):
        fail("no exemplars stored from the span-metric fixture (exemplar-storage / OpenMetrics scrape)")
    queries = collect_queries()
    nonempty = 0
    for origin, expr in queries:
        res = api(port, "/api/v1/query", {"query": expr})
        if res.get("status") != "success":
            fail("%s: %s\n      %s" % (origin, res.get("error"), expr))
            continue
        try:
            referenced = metric_names(expr)
        except ValueError as e:
            fail("%s: %s" % (origin, e))
            continue
        if not referenced:
            fail("%s: references no metric at all?\n      %s" % (origin, expr))
        for n in sorted(referenced - names):
            fail("%s: metric %s has no series in the fixture store" % (origin, n))
        if res.get("data", {}).get("result"):
            nonempty += 1
    print("  evaluated %d expressions (%d non-empty) against %d metric names" % (len(queries), nonempty, len(names)))


# ---------------------------------------------------------------- tempo
# Blocks Tempo 3 removed (monolithic mode): a 2.x config that still has them
# fails to start.
TEMPO_2X_ONLY = {"ingester", "compactor", "ingester_client", "metrics_generator_client"}


def check_tempo():
    print("tempo: deploy/tempo/tempo.yaml against Tempo 3 and the compose stack")
    cfg = yaml.safe_load(open(os.path.join(DEPLOY, "tempo", "tempo.yaml")))
    for block in sorted(TEMPO_2X_ONLY & set(cfg)):
        fail("tempo.yaml has the Tempo 2.x block %r (removed in 3.0)" % block)
    grpc = cfg.get("distributor", {}).get("receivers", {}).get("otlp", {}).get("protocols", {}).get("grpc", {})
    if grpc.get("endpoint") != "0.0.0.0:4317":
        fail("Tempo's OTLP gRPC receiver must listen on 0.0.0.0:4317 (the collector's otlp_grpc/tempo target)")
    collector = yaml.safe_load(open(os.path.join(DEPLOY, "otel-collector", "config.yaml")))
    if collector.get("exporters", {}).get("otlp_grpc/tempo", {}).get("endpoint") != "tempo:4317":
        fail("the collector must export traces to tempo:4317")
    gen = cfg.get("metrics_generator", {})
    writes = [rw.get("url") for rw in gen.get("storage", {}).get("remote_write", [])]
    if writes != ["http://prometheus:9090/api/v1/write"] or not gen.get("storage", {}).get("path"):
        fail("metrics_generator must remote-write to http://prometheus:9090/api/v1/write with a WAL path")
    compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
    if "--web.enable-remote-write-receiver" not in compose["services"]["prometheus"].get("command", []):
        fail("Prometheus must run with --web.enable-remote-write-receiver (Tempo's generator, k6)")
    defaults = cfg.get("overrides", {}).get("defaults", {}).get("metrics_generator", {})
    if set(defaults.get("processors", [])) != {"service-graphs", "span-metrics"}:
        fail("overrides.defaults.metrics_generator.processors must be service-graphs and span-metrics")
    limit = defaults.get("max_active_series")
    if not isinstance(limit, int) or not 0 < limit <= 20000:
        fail("the metrics generator must cap max_active_series (1..20000), got %r" % limit)
    if defaults.get("generate_native_histograms", "classic") != "classic":
        fail("generate_native_histograms must stay classic (Prometheus runs without native histograms)")
    retention = {cfg.get("backend_worker", {}).get("compaction", {}).get("block_retention"),
                 cfg.get("backend_scheduler", {}).get("provider", {}).get("compaction", {})
                 .get("compaction", {}).get("block_retention")}
    if len(retention) != 1 or None in retention:
        fail("block_retention must be set once, the same, for the backend scheduler and worker: %s" % retention)
    tempo_ds = [d for d in yaml.safe_load(open(os.path.join(DEPLOY, "grafana", "provisioning", "datasources",
                                                            "datasources.yaml")))["datasources"]
                if d.get("type") == "tempo"]
    if not tempo_ds or tempo_ds[0].get("jsonData", {}).get("serviceMap", {}).get("datasourceUid") != "prometheus":
        fail("Grafana's Tempo data source must read the service graph from Prometheus (serviceMap)")


# ---------------------------------------------------------------- runbooks
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")
# Loaded only by deploy/tests/check_alerting.py, documented in the runbook too.
TEST_ONLY_ALERTS = {"ShortenerAlertPipelineTest"}


def check_runbooks():
    print("runbooks: runbook_url of every alert -> a section of docs/runbook.md")
    sections = {m.group(1) for m in re.finditer(r"^## (\S+)\s*$", open(RUNBOOK).read(), re.M)}
    alerts = set()
    for path in RULE_FILES:
        for group in (yaml.safe_load(open(path)) or {}).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                alerts.add(name)
                url = (rule.get("annotations") or {}).get("runbook_url", "")
                if url != "docs/runbook.md#" + name.lower():
                    fail("%s: runbook_url %r, want docs/runbook.md#%s" % (name, url, name.lower()))
                if name not in sections:
                    fail("%s: no '## %s' section in docs/runbook.md" % (name, name))
    for orphan in sorted(sections - alerts - TEST_ONLY_ALERTS):
        fail("docs/runbook.md section %r matches no alert rule" % orphan)
    print("  %d alerts, %d runbook sections" % (len(alerts), len(sections)))


# ---------------------------------------------------------------- compose
ONE_SHOT = {"builder", "tempo-init", "k6"}


def check_compose(path):
    print("compose: healthchecks, published ports, image pins in %s" % os.path.relpath(path, ROOT))
    services = (yaml.safe_load(open(path)) or {}).get("services", {})
    if not services:
        fail("no services in the rendered compose file")
    for name, svc in sorted(services.items()):
        if name not in ONE_SHOT:
            test = (svc.get("healthcheck") or {}).get("test")
            if not test or (svc.get("healthcheck") or {}).get("disable"):
                fail("service %s has no healthcheck" % name)
        image = svc.get("image", "")
        if not re.search(r":[^/:]+$", image) or image.endswith(":latest"):
            fail("service %s: image %r is not pinned to a version tag" % (name, image))
        for arg, value in ((svc.get("build") or {}).get("args") or {}).items():
            if "/" in str(value) and (":" not in str(value) or str(value).endswith(":latest")):
                fail("service %s: build arg %s=%r is not a pinned image" % (name, arg, value))
        for port in svc.get("ports", []) or []:
            if isinstance(port, dict) and port.get("host_ip") != "127.0.0.1":
                fail("service %s publishes %s on %r, not 127.0.0.1, by default"
                     % (name, port.get("published"), port.get("host_ip", "all interfaces")))
    if "app" in services:
        check_app_stores(services["app"])
    print("  %d services" % len(services))


RUNTIME_CONFIG_TARGET = "/etc/shortener/runtime.toml"


def check_app_stores(app):
    """The click outbox goes with a click database shared over the network, and
    the replica's own database (the outbox) is on a volume of its own."""
    env = app.get("environment") or {}
    outbox = env.get("SPIN_VARIABLE_CLICK_OUTBOX")
    if outbox not in ("true", "false"):
        fail("service app: SPIN_VARIABLE_CLICK_OUTBOX is %r, want \"true\" or \"false\"" % outbox)
        return
    mounts = [m for m in app.get("volumes") or [] if isinstance(m, dict)]
    config_mount = next((m for m in mounts if m.get("target") == RUNTIME_CONFIG_TARGET), None)
    if not config_mount or not os.path.isfile(config_mount.get("source", "")):
        fail("service app: no runtime config file mounted at %s" % RUNTIME_CONFIG_TARGET)
        return
    name = os.path.relpath(config_mount["source"], ROOT)
    config = tomllib.load(open(config_mount["source"], "rb"))
    databases = config.get("sqlite_database", {})
    shared = databases.get("default", {}).get("type") == "libsql"
    if shared and outbox != "true":
        fail("service app: %s has the click database on libsql (replicas share it over the network), "
             "CLICK_OUTBOX must be true, got %r" % (name, outbox))
    if not shared and outbox != "false":
        fail("service app: %s has a local click database, CLICK_OUTBOX must be false, got %r" % (name, outbox))
    if not shared:
        return
    path = databases.get("unrecorded", {}).get("path", "")
    path = os.path.normpath(os.path.join(app.get("working_dir") or "/", path))
    holders = [m for m in mounts if path.startswith(m.get("target", "").rstrip("/") + "/")]
    holder = max(holders, key=lambda m: len(m["target"]), default=None)
    # Anonymous: a volume without a source, one per container (a named volume
    # or a bind mount is the same for every replica of `--scale app=N`).
    if not holder or holder.get("type") != "volume" or holder.get("source"):
        fail("service app: %s's unrecorded database %s (the replica's click outbox) must be on an anonymous "
             "volume, one per replica; it is on %s" % (name, path, holder or "the container's own filesystem"))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "runbooks":
        check_runbooks()
    elif what == "tempo":
        check_tempo()
    elif what == "compose":
        check_compose(os.path.abspath(sys.argv[2]))
    elif what == "dashboards":
        check_dashboards()
    elif what == "collector":
        check_collector()
    elif what == "promql":
        outbox = sys.argv[3] if len(sys.argv) > 3 else os.path.join(FIXTURES, "app-metrics-outbox.prom")
        check_promql(os.path.abspath(sys.argv[2]), os.path.abspath(outbox))
    else:
        print(__doc__)
        sys.exit(2)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
