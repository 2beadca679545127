#!/usr/bin/env bash
# Local load test against a running `spin up` (loopback only), driven by oha.
#
#   ADMIN_TOKEN=... loadtest/run-local.sh
#
# Env (defaults):
#   BASE_URL     http://127.0.0.1:3000   must be loopback (127.0.0.0/8, [::1], localhost)
#   ADMIN_TOKEN  (required)
#   LINKS        20       links created, Zipf-like popularity (ZIPF_S 1.1)
#   REQUESTS     5000     total requests: ~80% human / 20% bot GETs, 5% HEAD, 3% unknown slugs
#   CONNECTIONS  8        oha -c per run
#   PARALLEL     4        oha runs at the same time (so kinds/links interleave)
#   RATE         0        oha -q per run (req/s; 0 = as fast as possible)
#   CHUNK        250      max requests per oha run (one run = one URL, method, UA, referrer)
#   RUN_ID       random   slugs are lt-<RUN_ID>-001 ...; reruns never collide
#   OUT_DIR      mktemp   where plan, oha JSON, stats and report.json go
#   SEED         random   plan seed (UA/referrer picks and run order)
#   CLEANUP      0        1 = delete the links afterwards
#   REQ_TIMEOUT  30s      oha -t per request (an unanswered request is reported, never expected)
#   OHA          oha      path to the oha binary
#
# Exit code: 0 every served redirect recorded exactly once (per link, humans and
# bots apart); 1 a click is missing or extra; 2 setup/usage error.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
RECONCILE=("$PY" "$HERE/reconcile.py")

BASE_URL="${BASE_URL:-http://127.0.0.1:3000}"
BASE_URL="${BASE_URL%/}"
LINKS="${LINKS:-20}"
REQUESTS="${REQUESTS:-5000}"
CONNECTIONS="${CONNECTIONS:-8}"
PARALLEL="${PARALLEL:-4}"
RATE="${RATE:-0}"
CHUNK="${CHUNK:-250}"
RUN_ID="${RUN_ID:-$(date +%s | tail -c 7)$(printf '%04x' $((RANDOM % 65536)))}"
SEED="${SEED:-$RANDOM}"
CLEANUP="${CLEANUP:-0}"
REQ_TIMEOUT="${REQ_TIMEOUT:-30s}"
OHA="${OHA:-oha}"

die() { echo "run-local: $*" >&2; exit 2; }

[[ -n "${ADMIN_TOKEN:-}" ]] || die "ADMIN_TOKEN is required"
[[ "$RUN_ID" =~ ^[A-Za-z0-9_-]{1,40}$ ]] || die "RUN_ID must match [A-Za-z0-9_-]{1,40}"
for v in LINKS REQUESTS CONNECTIONS PARALLEL RATE CHUNK SEED; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer"
done
(( LINKS >= 1 && LINKS <= 500 )) || die "LINKS must be 1..500"
(( REQUESTS >= 1 && REQUESTS <= 2000000 )) || die "REQUESTS must be 1..2000000"
(( CONNECTIONS >= 1 && CONNECTIONS <= 512 )) || die "CONNECTIONS must be 1..512"
(( PARALLEL >= 1 && PARALLEL <= 32 )) || die "PARALLEL must be 1..32"
(( CHUNK >= 1 )) || die "CHUNK must be >= 1"
command -v "$OHA" >/dev/null 2>&1 || die "oha not found (cargo install --locked oha), or set OHA=/path/to/oha"
command -v "$PY" >/dev/null 2>&1 || die "python3 not found"

# Loopback only (reconcile.py refuses anything else), and the app must answer /health.
"${RECONCILE[@]}" check --base-url "$BASE_URL" || exit 2

OUT_DIR="${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/shortener-loadtest.XXXXXX")}"
mkdir -p "$OUT_DIR/runs" "$OUT_DIR/stats"
echo "run $RUN_ID against $BASE_URL, output in $OUT_DIR"

"${RECONCILE[@]}" create --base-url "$BASE_URL" --run-id "$RUN_ID" --links "$LINKS" --out "$OUT_DIR/links.json"
"${RECONCILE[@]}" plan --links "$OUT_DIR/links.json" --requests "$REQUESTS" --seed "$SEED" \
  --chunk "$CHUNK" --out "$OUT_DIR/plan.json" --tsv "$OUT_DIR/plan.tsv"

# One bounded oha run per plan line: -n (never -z: a deadline abandons requests the
# server still completes, which would show up as "extra" clicks).
run_one() {
  local id="$1" method="$2" slug="$3" ua="$4" ref="$5" n="$6"
  local c=$(( CONNECTIONS < n ? CONNECTIONS : n ))
  local args=(-n "$n" -c "$c" --no-tui --output-format json --redirect 0 -t "$REQ_TIMEOUT" -m "$method" -H "User-Agent: $ua")
  [[ "$ref" != "-" ]] && args+=(-H "Referer: $ref")
  (( RATE > 0 )) && args+=(-q "$RATE")
  if ! "$OHA" "${args[@]}" "$BASE_URL/$slug" >"$OUT_DIR/runs/$id.json" 2>"$OUT_DIR/runs/$id.err"; then
    echo "oha run $id failed: $(head -c 300 "$OUT_DIR/runs/$id.err")" >&2
  fi
}

start_ns=$(date +%s%N)
total_runs=$(wc -l <"$OUT_DIR/plan.tsv")
done_runs=0
while IFS=$'\t' read -r id method slug ua ref n; do
  run_one "$id" "$method" "$slug" "$ua" "$ref" "$n" &
  while (( $(jobs -rp | wc -l) >= PARALLEL )); do wait -n || true; done
  done_runs=$((done_runs + 1))
  (( done_runs % 20 == 0 )) && echo "  started $done_runs/$total_runs oha runs"
done <"$OUT_DIR/plan.tsv"
wait
end_ns=$(date +%s%N)
wall=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
echo "traffic done in ${wall}s ($total_runs oha runs)"

"${RECONCILE[@]}" fetch-stats --links "$OUT_DIR/links.json" --out-dir "$OUT_DIR/stats"

rc=0
"${RECONCILE[@]}" report --plan "$OUT_DIR/plan.json" --runs "$OUT_DIR/runs" --stats "$OUT_DIR/stats" \
  --links "$OUT_DIR/links.json" --wall-seconds "$wall" --json "$OUT_DIR/report.json" || rc=$?

if [[ "$CLEANUP" == "1" ]]; then
  "${RECONCILE[@]}" cleanup --links "$OUT_DIR/links.json" || true
fi
echo "artifacts: $OUT_DIR (plan.json, runs/*.json, stats/*.json, report.json)"
exit "$rc"
