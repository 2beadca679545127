#!/usr/bin/env python3
"""An alert travels Prometheus -> Alertmanager -> webhook, on real binaries.

Starts, all on 127.0.0.1 with random ports and temp dirs:
  - a webhook receiver (http.server) that records every POST;
  - Alertmanager (Debian package prometheus-alertmanager) on the repository's
    deploy/alertmanager/alertmanager.yml, with __ALERT_WEBHOOK_URL__ replaced by
    the receiver's URL exactly as docker-compose.yml's alertmanager command does;
  - Prometheus (Debian package prometheus) on the repository's
    deploy/prometheus/prometheus.yml with its alertmanager target pointed at
    that Alertmanager, its scrape jobs dropped (they name compose hosts) and,
    as its only rule, an always-firing test alert (ShortenerAlertPipelineTest,
    severity page, with a runbook_url like every real alert).

Passes when the receiver gets a "firing" notification for that alert, from the
`webhook` receiver, carrying its labels and runbook_url. Prints the payload.

  check_alerting.py            (needs: prometheus, prometheus-alertmanager, PyYAML)
"""
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALERT = "ShortenerAlertPipelineTest"
TIMEOUT_S = 150

TEST_RULES = {
    "groups": [{
        "name": "alert-pipeline-test",
        "rules": [{
            "alert": ALERT,
            "expr": "vector(1)",
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "Always firing: proves alerts reach the webhook (CI only).",
                "runbook_url": "docs/runbook.md#" + ALERT.lower(),
            },
        }],
    }],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    sys.exit("none of %s on PATH (apt-get install prometheus prometheus-alertmanager)" % ", ".join(names))


def wait_ready(url, proc, what):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited with %s" % (what, proc.returncode))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("%s not ready at %s" % (what, url))


def main():
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = "http://127.0.0.1:%d/alerts" % hook.server_address[1]

    tmp = tempfile.mkdtemp(prefix="alerting-")
    procs = []
    try:
        # Alertmanager on the repository's config, substituted as in compose.
        am_port = free_port()
        template = open(os.path.join(ROOT, "deploy", "alertmanager", "alertmanager.yml")).read()
        if "__ALERT_WEBHOOK_URL__" not in template:
            sys.exit("deploy/alertmanager/alertmanager.yml has no __ALERT_WEBHOOK_URL__ placeholder")
        am_config = os.path.join(tmp, "alertmanager.yml")
        with open(am_config, "w") as f:
            f.write(template.replace("__ALERT_WEBHOOK_URL__", hook_url))
        am = subprocess.Popen(
            [binary("prometheus-alertmanager", "alertmanager"),
             "--config.file=" + am_config,
             "--storage.path=" + os.path.join(tmp, "am-data"),
             "--web.listen-address=127.0.0.1:%d" % am_port,
             "--cluster.listen-address="],
            stdout=open(os.path.join(tmp, "alertmanager.log"), "w"), stderr=subprocess.STDOUT)
        procs.append(am)
        wait_ready("http://127.0.0.1:%d/-/ready" % am_port, am, "alertmanager")

        # Prometheus on the repository's config, pointed at that Alertmanager.
        prom_config = yaml.safe_load(open(os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")))
        managers = prom_config.get("alerting", {}).get("alertmanagers", [])
        if len(managers) != 1:
            sys.exit("prometheus.yml must send alerts to exactly one Alertmanager, has %d" % len(managers))
        managers[0]["static_configs"] = [{"targets": ["127.0.0.1:%d" % am_port]}]
        prom_config["global"]["evaluation_interval"] = "1s"
        prom_config["scrape_configs"] = []
        rules = os.path.join(tmp, "test-rules.yml")
        with open(rules, "w") as f:
            yaml.safe_dump(TEST_RULES, f)
        prom_config["rule_files"] = [rules]
        prom_file = os.path.join(tmp, "prometheus.yml")
        with open(prom_file, "w") as f:
            yaml.safe_dump(prom_config, f)
        prom_port = free_port()
        prom = subprocess.Popen(
            [binary("prometheus"),
             "--config.file=" + prom_file,
             "--storage.tsdb.path=" + os.path.join(tmp, "prom-data"),
             "--web.listen-address=127.0.0.1:%d" % prom_port],
            stdout=open(os.path.join(tmp, "prometheus.log"), "w"), stderr=subprocess.STDOUT)
        procs.append(prom)
        wait_ready("http://127.0.0.1:%d/-/ready" % prom_port, prom, "prometheus")

        started = time.time()
        while time.time() - started < TIMEOUT_S:
            for payload in received:
                for alert in payload.get("alerts", []):
                    if alert.get("labels", {}).get("alertname") == ALERT and alert.get("status") == "firing":
                        problems = []
                        if payload.get("receiver") != "webhook":
                            problems.append("receiver %r, want webhook" % payload.get("receiver"))
                        if alert["labels"].get("severity") != "page":
                            problems.append("severity label lost")
                        if alert.get("annotations", {}).get("runbook_url") != "docs/runbook.md#" + ALERT.lower():
                            problems.append("runbook_url annotation lost")
                        print(json.dumps(payload, indent=2))
                        if problems:
                            sys.exit("alert arrived, but: " + "; ".join(problems))
                        print("alerting: %s reached the webhook %.1f s after Prometheus was ready"
                              % (ALERT, time.time() - started))
                        return
            time.sleep(0.5)
        for log in ("prometheus.log", "alertmanager.log"):
            print("--- %s (tail)" % log)
            print("".join(open(os.path.join(tmp, log)).readlines()[-20:]))
        sys.exit("no firing %s reached the webhook within %d s (%d POSTs)" % (ALERT, TIMEOUT_S, len(received)))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        hook.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
