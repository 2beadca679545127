#!/usr/bin/env bash
# The redirect hot path on a real `spin up`, against baselines measured in
# the same session (benches/README.md, "spin"):
#   hello     - a component that answers 200 and touches no store
#   kv        - the tutorial's redirect: one key-value get, 302
#   kv-traced - kv, with Spin exporting its own spans as it does for ours
#   kv-click  - the floor of a redirect that records clicks: kv plus one
#               SQLite INSERT per redirect, nothing else
#   kv-click-traced - the traced floor: kv-click plus the three spans a traced
#               redirect must have (request, key-value get, INSERT) over
#               wasi:otel, with Spin exporting to the sink
#   ours      - shortener's redirect: key-value get, classified click written
#               to SQLite, spans exported over wasi:otel to a loopback OTLP sink
#   ours-untraced - the same build with Spin not exporting (no endpoint)
#
# Each of ours is compared with the floor of its mode: ours-untraced (and a
# variant with no-export or no-otel) with kv-click, ours with kv-click-traced.
#
# It builds them all, starts them side by side on loopback, and runs them
# interleaved (round 1: hello, kv, ours; round 2: ...) with oha at a fixed
# request count, so no request is abandoned at a deadline. Then it runs ours
# at half of its median max throughput (oha -q) for the p99 at half load,
# and reconciles the clicks: the link's click count read through the API
# after the run, minus before, and the raw click rows in the variant's
# SQLite file (sqlite3) must both equal the 302s oha received.
#
# Usage: benches/spin/run.sh [--rounds 3] [--requests 4000] [--concurrency 32]
#                            [--no-build] [--profile]
#                            [--variant name=path.wasm[,no-otel][,no-export][,reuse=N][,ablate=a+b][,var=name=value][,spin-sample=R][,profile][,half]]...
# A --variant is another build of our component (e.g. a profiling variant)
# measured in the same rounds as ours (the path may be relative); `no-otel`
# starts it without --experimental-wasi-otel (for a --no-default-features
# build), `no-export` without an OTLP endpoint, `reuse=N`
# with --max-instance-reuse-count N (e.g. ours=...,reuse=100000 separates
# per-instance start-up from per-request work), `ablate=a+b` removes those
# parts of the redirect in a build with `--features ablation` (src/ablation.rs;
# `rollups` drops the rollup trigger, and then only raw rows are reconciled),
# `half` runs it at half load too (as ours and ours-untraced always are),
# `var=name=value` sets one of its Spin variables (e.g.
# var=trace_sample_ratio=0.1, var=click_outbox=true), `spin-sample=R`
# samples Spin's own spans at R (OTEL_TRACES_SAMPLER=traceidratio), and
# `profile` (an ablation build, with --concurrency 1) prints the guest's
# self time per stage of the redirect (src/profile.rs); `--profile` adds
# kv-click-profile, the floor printing its own (its `profile` feature).
# Needs: spin (4.1+), oha, jq, python3, curl, sqlite3, cargo with wasm32-wasip2.
set -euo pipefail

ROUNDS=3
REQUESTS=4000
CONCURRENCY=32
BUILD=1
PROFILE=0
VARIANTS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        --concurrency) CONCURRENCY="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --profile) PROFILE=1; shift ;;
        --variant) VARIANTS+=("$2"); shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="$ROOT/benches/spin"
OUT="$ROOT/target/bench-spin"
OURS_WASM="$ROOT/target/wasm32-wasip2/release/shortener.wasm"
TOKEN="bench-admin-token-0123456789abcdef0123456789"
SALT="bench-visitor-salt-0123456789abcdef"
UA="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
SLUG="bench"
for tool in spin oha jq python3 curl sqlite3 cargo; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

if [[ $BUILD == 1 ]]; then
    echo "==> building (release, wasm32-wasip2)"
    (cd "$ROOT" && cargo build --quiet --target wasm32-wasip2 --release)
    for crate in hello kv-redirect kv-click; do
        (cd "$BENCH/$crate" && cargo build --quiet --release --target wasm32-wasip2 --target-dir "$OUT")
    done
    (cd "$BENCH/kv-click" && cargo build --quiet --release --target wasm32-wasip2 \
        --features traced --target-dir "$OUT/traced")
    if [[ $PROFILE == 1 ]]; then
        (cd "$BENCH/kv-click" && cargo build --quiet --release --target wasm32-wasip2 \
            --features profile --target-dir "$OUT/profile")
    fi
fi
CLICK_PROFILE_WASM="$OUT/profile/wasm32-wasip2/release/bench_kv_click.wasm"
HELLO_WASM="$OUT/wasm32-wasip2/release/bench_hello.wasm"
KV_WASM="$OUT/wasm32-wasip2/release/bench_kv_redirect.wasm"
CLICK_WASM="$OUT/wasm32-wasip2/release/bench_kv_click.wasm"
CLICK_TRACED_WASM="$OUT/traced/wasm32-wasip2/release/bench_kv_click.wasm"
echo "==> component sizes (bytes)"
printf '  %-8s %9d\n' hello "$(stat -c %s "$HELLO_WASM")" kv "$(stat -c %s "$KV_WASM")" \
    kv-click "$(stat -c %s "$CLICK_WASM")" kv-click-traced "$(stat -c %s "$CLICK_TRACED_WASM")" \
    ours "$(stat -c %s "$OURS_WASM")"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A loopback OTLP/HTTP sink: answers 200 to every export and counts them.
SINK_PORT="$(free_port)"
python3 - "$SINK_PORT" "$WORK/sink.count" <<'EOF' &
import http.server, sys
port, count_file = int(sys.argv[1]), sys.argv[2]
posts = [0, 0]
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        posts[0] += 1; posts[1] += n
        with open(count_file, "w") as f: f.write(f"{posts[0]} {posts[1]}\n")
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
EOF
PIDS+=($!)

wait_up() { # url
    for _ in $(seq 1 300); do
        curl -fs -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "not up: $1" >&2; return 1
}

# start NAME MANIFEST [spin up args...]: starts `spin up`, sets PORT_<NAME>.
start() {
    local name="$1" manifest="$2"; shift 2
    local port; port="$(free_port)"
    mkdir -p "$WORK/$name"
    (cd "$WORK/$name" && exec spin up --from "$manifest" --listen "127.0.0.1:$port" \
        --state-dir "$WORK/$name/state" "$@" >"$WORK/$name/spin.log" 2>&1) &
    PIDS+=($!)
    printf -v "PORT_${name//-/_}" '%s' "$port"
    printf -v "PID_${name//-/_}" '%s' "$!"
    wait_up "http://127.0.0.1:$port/.well-known/spin/health"
}

# Our manifest, pointing at another build of the component; the redirect
# component gets SHORTENER_ABLATE=$3 (src/ablation.rs) and
# SHORTENER_PROFILE=$4 (src/profile.rs).
manifest_for() { # name wasm [ablate] [profile]
    sed -e "s|source = \"target/wasm32-wasip2/release/shortener.wasm\"|source = \"$2\"|" \
        -e "/^\[component.redirect\]\$/a environment = { SHORTENER_ABLATE = \"${3:-}\", SHORTENER_PROFILE = \"${4:-}\" }" \
        "$ROOT/spin.toml" >"$WORK/$1.spin.toml"
    echo "$WORK/$1.spin.toml"
}

OURS_ARGS=(--variable "admin_token=$TOKEN" --variable "visitor_salt=$SALT"
    --variable "public_base_url=https://sho.rt")
TRACED=() # the names that run with Spin exporting
HALF_NAMES=(ours ours-untraced) # the names also run at half load
NO_ROLLUPS=() # the names whose rollup trigger was dropped
start_ours() { # name wasm [options: see --variant above]
    local extra=() opt otel=1 export=1 ablate="" profile="" sampler=parentbased_always_on sampler_arg=""
    IFS=, read -ra opts <<<"${3:-}"
    for opt in "${opts[@]}"; do
        case "$opt" in
            no-otel) otel=0; export=0 ;;
            no-export) export=0 ;;
            reuse=*) extra+=(--max-instance-reuse-count "${opt#reuse=}") ;;
            ablate=*) ablate="${opt#ablate=}" ;;
            half) HALF_NAMES+=("$1") ;;
            profile) profile=1; PROFILED+=("$1") ;;
            var=*) extra+=(--variable "${opt#var=}") ;;
            spin-sample=*) sampler=traceidratio; sampler_arg="${opt#spin-sample=}" ;;
            *) echo "unknown variant option: $opt" >&2; exit 2 ;;
        esac
    done
    local manifest; manifest="$(manifest_for "$1" "$2" "$ablate" "$profile")"
    [[ $export == 0 ]] || TRACED+=("$1")
    [[ $otel == 0 ]] || extra+=(--experimental-wasi-otel)
    # Our manifest grants a second database (`unrecorded`), which only a
    # runtime config defines: both stores as files in the variant's state.
    mkdir -p "$WORK/$1/state"
    printf '[key_value_store.default]\ntype = "spin"\npath = "%s/kv.db"\n\n[sqlite_database.default]\ntype = "spin"\npath = "%s/clicks.db"\n\n[sqlite_database.unrecorded]\ntype = "spin"\npath = "%s/unrecorded.db"\n' \
        "$WORK/$1/state" "$WORK/$1/state" "$WORK/$1/state" >"$WORK/$1.runtime.toml"
    extra+=(--runtime-config-file "$WORK/$1.runtime.toml")
    local endpoint="http://127.0.0.1:$SINK_PORT"
    [[ $export == 1 ]] || endpoint=""
    # OTEL_TRACES_SAMPLER's default is parentbased_always_on.
    OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" OTEL_SERVICE_NAME="shortener-bench" \
        OTEL_TRACES_SAMPLER="$sampler" OTEL_TRACES_SAMPLER_ARG="$sampler_arg" \
        start "$1" "$manifest" "${OURS_ARGS[@]}" "${extra[@]}"
    local port_var="PORT_${1//-/_}"
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:${!port_var}/api/links" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"url\": \"https://example.com/landing\", \"slug\": \"$SLUG\"}")"
    [[ "$code" == 201 ]] || { echo "$1: creating the link answered $code" >&2; exit 1; }
    if [[ "+$ablate+" == *+rollups+* ]]; then
        sqlite3 "$WORK/$1/state/clicks.db" "DROP TRIGGER clicks_rollup"
        NO_ROLLUPS+=("$1")
    fi
}

has() { local n="$1"; shift; local m; for m in "$@"; do [[ "$m" == "$n" ]] && return 0; done; return 1; }

# The click rows a variant of ours holds for the link, read from its file.
raw_clicks() { # name
    sqlite3 "$WORK/$1/state/clicks.db" "SELECT count(*) FROM clicks WHERE slug = '$SLUG'"
}

# The clicks counted so far: "api raw" for ours (the API's total, from the
# rollups, or "-" without them; the raw rows), the row count for the floors.
clicks() { # name port
    if [[ "$1" == kv-click* ]]; then curl -fs "http://127.0.0.1:$2/"; return; fi
    local api="-"
    has "$1" "${NO_ROLLUPS[@]}" || api="$(curl -fs "http://127.0.0.1:$2/api/links/$SLUG" \
        -H "Authorization: Bearer $TOKEN" | jq -r .clicks)"
    echo "$api $(raw_clicks "$1")"
}

echo "==> starting spin up x $((7 + ${#VARIANTS[@]})) on 127.0.0.1 (OTLP sink on :$SINK_PORT)"
start hello "$BENCH/hello/spin.toml"
start kv "$BENCH/kv-redirect/spin.toml"
# The same KV-only redirect with Spin's own tracing exported (its request
# and key-value spans), as ours runs: what tracing costs the platform alone.
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" OTEL_SERVICE_NAME="kv-bench" \
    start kv-traced "$BENCH/kv-redirect/spin.toml"
start kv-click "$BENCH/kv-click/spin.toml"
# The traced floor: its three spans over wasi:otel, exported by Spin.
sed "s|^source = .*|source = \"$CLICK_TRACED_WASM\"|" "$BENCH/kv-click/spin.toml" \
    >"$WORK/kv-click-traced.spin.toml"
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" OTEL_SERVICE_NAME="kv-click-traced" \
    start kv-click-traced "$WORK/kv-click-traced.spin.toml" --experimental-wasi-otel
TRACED+=(kv-traced kv-click-traced)
PROFILED=() # the names that print a guest-side profile (src/profile.rs)
NAMES=(hello kv kv-traced kv-click kv-click-traced)
if [[ $PROFILE == 1 ]]; then
    # The floor with its guest time per stage printed (its `profile` feature).
    sed "s|^source = .*|source = \"$CLICK_PROFILE_WASM\"|" "$BENCH/kv-click/spin.toml" \
        >"$WORK/kv-click-profile.spin.toml"
    start kv-click-profile "$WORK/kv-click-profile.spin.toml"
    NAMES+=(kv-click-profile); PROFILED+=(kv-click-profile)
fi
for name in "${NAMES[@]:1}"; do # every baseline but hello: seed the link
    port_var="PORT_${name//-/_}"
    code="$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:${!port_var}/$SLUG" \
        --data-binary 'https://example.com/landing')"
    [[ "$code" == 201 ]] || { echo "$name: seeding answered $code" >&2; exit 1; }
done
start_ours ours "$OURS_WASM"
start_ours ours-untraced "$OURS_WASM" no-export
NAMES+=(ours ours-untraced)
OURS_NAMES=(ours ours-untraced)
for v in "${VARIANTS[@]}"; do
    name="${v%%=*}"; rest="${v#*=}"; wasm="$(realpath "${rest%%,*}")"; flags=""
    [[ "$rest" == *,* ]] && flags="${rest#*,}"
    echo "  variant $name: $wasm ($(stat -c %s "$wasm") bytes${flags:+, $flags})"
    start_ours "$name" "$wasm" "$flags"
    NAMES+=("$name"); OURS_NAMES+=("$name")
done

counts_clicks() { has "$1" "${OURS_NAMES[@]}" || [[ "$1" == kv-click* ]]; }
# The floor a name is compared with: the traced floor when Spin exports.
floor_of() { if has "$1" "${TRACED[@]}"; then echo kv-click-traced; else echo kv-click; fi; }

# CPU seconds (user + system) a process and its descendants have used so far
# (`spin up` runs the HTTP trigger in a child process).
tree() { local c; echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
cpu_secs() {
    local pid stats=()
    for pid in $(tree "$1"); do stats+=("/proc/$pid/stat"); done
    cat "${stats[@]}" 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '{t += $14 + $15} END {print t / hz}'
}

LOST=0
# run NAME LABEL [oha args...]: one fixed-count oha run; one result line in results.tsv.
run() {
    local name="$1" label="$2"; shift 2
    local port_var="PORT_${name//-/_}" path="/$SLUG" expect=302
    [[ "$name" == hello ]] && { path="/"; expect=200; }
    local before="0 0"
    counts_clicks "$name" && before="$(clicks "$name" "${!port_var}")"
    local json="$WORK/$name.$label.json" pid_var="PID_${name//-/_}"
    local cpu0; cpu0="$(cpu_secs "${!pid_var}")"
    oha -n "$REQUESTS" -c "$CONCURRENCY" --no-tui --redirect 0 --output-format json \
        -H "User-Agent: $UA" -H "Referer: https://news.example.com/post" "$@" \
        "http://127.0.0.1:${!port_var}$path" >"$json"
    local cpu1; cpu1="$(cpu_secs "${!pid_var}")"
    local ok others rps p50 p99 cpu_us
    cpu_us="$(awk -v a="$cpu0" -v b="$cpu1" -v n="$REQUESTS" 'BEGIN {printf "%.0f", (b - a) / n * 1e6}')"
    ok="$(jq -r --arg c "$expect" '.statusCodeDistribution[$c] // 0' "$json")"
    others="$(jq -r --arg c "$expect" '[.statusCodeDistribution | to_entries[] | select(.key != $c) | "\(.key)x\(.value)"] + [.errorDistribution | to_entries[] | "\(.key)x\(.value)"] | join(" ")' "$json")"
    rps="$(jq -r '.summary.requestsPerSec' "$json")"
    p50="$(jq -r '.latencyPercentiles.p50 * 1000' "$json")"
    p99="$(jq -r '.latencyPercentiles.p99 * 1000' "$json")"
    local recon="-"
    if counts_clicks "$name"; then
        local after; after="$(clicks "$name" "${!port_var}")"
        local api0 raw0 api1 raw1
        read -r api0 raw0 <<<"$before"; read -r api1 raw1 <<<"$after"
        if [[ "$name" == kv-click* ]]; then
            recon="clicks=$((api1 - api0)) 302s=$ok"
            [[ $((api1 - api0)) == "$ok" ]] || { recon="$recon MISMATCH"; LOST=1; }
        else
            local api=-; [[ "$api1" == - ]] || api=$((api1 - api0))
            recon="clicks=$api rows=$((raw1 - raw0)) 302s=$ok"
            if [[ $((raw1 - raw0)) != "$ok" || ( "$api" != - && "$api" != "$ok" ) ]]; then
                recon="$recon MISMATCH"; LOST=1
            fi
        fi
    fi
    [[ -z "$others" ]] || { recon="$recon other=[$others]"; LOST=1; }
    printf '%s\t%s\t%.0f\t%.2f\t%.2f\t%s\t%s\n' "$name" "$label" "$rps" "$p50" "$p99" "$cpu_us" "$recon" \
        | tee -a "$WORK/results.tsv"
}

echo "==> warm-up ($REQUESTS requests each, not counted)"
for name in "${NAMES[@]}"; do run "$name" warmup >/dev/null; done
: >"$WORK/results.tsv"

echo "==> $ROUNDS interleaved rounds: oha -n $REQUESTS -c $CONCURRENCY"
printf 'name\tround\trps\tp50_ms\tp99_ms\tcpu_us/req\tclicks\n'
for r in $(seq 1 "$ROUNDS"); do
    for name in "${NAMES[@]}"; do run "$name" "r$r"; done
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -F'\t' -v n="$1" -v c="$2" '$1==n && $2 ~ /^r/ {print $c}' "$WORK/results.tsv"; }

# ratio BASELINE NAME: "median [min-max]" of NAME's rps over BASELINE's, round by round.
ratio() {
    local ratios
    ratios="$(paste <(col "$2" 3) <(col "$1" 3) | awk '{printf "%.2f\n", $1/$2}')"
    echo "$(echo "$ratios" | median) [$(echo "$ratios" | sort -g | sed -n '1p;$p' | paste -sd-)]"
}

echo "==> summary (median over $ROUNDS rounds [min-max]; ratios = rps / the same round's"
echo "    baseline rps; cpu = CPU time of that spin process (host + guest) per request;"
echo "    floor = kv-click-traced for what runs with Spin exporting, else kv-click;"
echo "    cpu above floor = the median of cpu minus the floor's, round by round)"
printf '%-18s %-22s %-8s %-8s %-10s %-7s %-18s %-18s %s\n' variant rps p50_ms p99_ms cpu_us/req \
    traced "ratio vs floor" "cpu above floor" "ratio vs kv"
for name in "${NAMES[@]}"; do
    rps_med="$(col "$name" 3 | median)"
    rps_rng="$(col "$name" 3 | sort -g | sed -n '1p;$p' | paste -sd-)"
    floor="$(floor_of "$name")"
    above="$(paste <(col "$name" 6) <(col "$floor" 6) | awk '{print $1 - $2}' | median)"
    traced=no; has "$name" "${TRACED[@]}" && traced=yes
    printf '%-18s %-22s %-8s %-8s %-10s %-7s %-18s %-18s %s\n' "$name" "$rps_med [$rps_rng]" \
        "$(col "$name" 4 | median)" "$(col "$name" 5 | median)" "$(col "$name" 6 | median)" \
        "$traced" "$(ratio "$floor" "$name")" "$above" "$(ratio kv "$name")"
done

# The p99 at half load: each of ours at half of its own median max, and its
# floor at the same rate (the target compares the two p99s).
echo "==> at half of each one's median max throughput, its floor at the same rate:"
echo "    oha -q <half> -n $REQUESTS -c $CONCURRENCY"
printf 'name\tround\trps\tp50_ms\tp99_ms\tcpu_us/req\tclicks\n'
for name in "${HALF_NAMES[@]}"; do
    half="$(col "$name" 3 | median | awk '{printf "%d", $1/2}')"
    run "$name" half -q "$half"
    run "$(floor_of "$name")" "half-of-$name" -q "$half"
done

# The guest-side profiles: each instance's stderr reports, summed.
for name in "${PROFILED[@]}"; do
    echo "==> guest profile of $name (self time per stage, us per request, every run of it;"
    echo "    valid at --concurrency 1 only: run.sh --concurrency $CONCURRENCY)"
    cat "$WORK/$name/state/logs/"*stderr* 2>/dev/null | grep '^shortener-profile ' | awk '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "n") n += kv[2];
              else { if (!(kv[1] in t)) order[++k] = kv[1]; t[kv[1]] += kv[2] } } }
        END { if (n == 0) { print "  no profile lines"; exit }
              for (i = 1; i <= k; i++) { s += t[order[i]]; printf "  %-12s %8.1f\n", order[i], t[order[i]] / n / 1000 }
              printf "  %-12s %8.1f   (%d requests)\n", "guest total", s / n / 1000, n }'
done

read -r posts bytes <"$WORK/sink.count" 2>/dev/null || { posts=0; bytes=0; }
echo "==> OTLP sink: $posts exports, $bytes bytes"
if [[ $LOST != 0 ]]; then
    echo "FAIL: a run had other statuses, errors, or clicks that do not match its 302s" >&2
    exit 1
fi
echo "==> every click reconciled: clicks recorded = 302s served"
