#!/usr/bin/env bash
# The link list on a real `spin up` with 100,000 links: a first page, a deep
# page (keyset: the cursor of a link near the end), a tag filter (a common
# and a rare tag), a search for a target URL only one link has, each in
# every sort order that matters, and `/api/tags`. Prints the median, min
# and max of N timed calls (curl's time_total) per query; no assertion on
# time (figures only).
#
# Seeding 100k links through the API takes long, so it writes the stores
# directly, exactly as the product does: spin up once (the app migrates its
# database and creates one link through the API), stop it, then with Python's
# sqlite3 (SQLite ≥ 3.38, for the JSON functions) insert into the registry
# with the product's own CLAIM statement text (`links::store`, record copy,
# url and tags from it, the tag triggers firing), write the same record bytes
# into Spin's key-value file (its `spin_key_value` table, the format checked
# against the link the API created), and give each link a day of clicks as
# the rollup trigger writes them (`daily_clicks`, so the click-total trigger
# keeps `links.clicks`). Then spin up again and time the queries.
#
# Usage: benches/spin/list.sh [--links 100000] [--calls 15] [--no-build]
# Needs: spin (4.1+), python3, curl, cargo with wasm32-wasip2.
set -euo pipefail

LINKS=100000
CALLS=15
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --links) LINKS="$2"; shift 2 ;;
        --calls) CALLS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WASM="$ROOT/target/wasm32-wasip2/release/shortener.wasm"
TOKEN="bench-admin-token-0123456789abcdef0123456789"
SALT="bench-visitor-salt-0123456789abcdef"
for tool in spin python3 curl; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --target wasm32-wasip2 --release)
fi
[[ -f $WASM ]] || { echo "build the component first" >&2; exit 1; }

WORK="$(mktemp -d -t list-bench-XXXXXX)"
STATE="$WORK/state"
mkdir -p "$STATE"
cat > "$WORK/runtime.toml" <<TOML
[key_value_store.default]
type = "spin"
path = "$STATE/kv.db"

[sqlite_database.default]
type = "spin"
path = "$STATE/clicks.db"

[sqlite_database.unrecorded]
type = "spin"
path = "$STATE/unrecorded.db"
TOML
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
SPIN_PID=""
cleanup() {
    if [[ -n $SPIN_PID ]]; then kill "$SPIN_PID" 2>/dev/null || true; wait "$SPIN_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

OTEL=(--experimental-wasi-otel)
# A component built with --no-default-features imports no wasi:otel.
[[ -n ${SHORTENER_E2E_NO_OTEL:-} ]] && OTEL=()
up() {
    env -u OTEL_EXPORTER_OTLP_ENDPOINT spin up --from "$ROOT/spin.toml" --listen "127.0.0.1:$PORT" \
        --state-dir "$STATE" --runtime-config-file "$WORK/runtime.toml" "${OTEL[@]}" \
        --variable "admin_token=$TOKEN" --variable "visitor_salt=$SALT" \
        --variable "public_base_url=$BASE" > "$WORK/spin.log" 2>&1 &
    SPIN_PID=$!
    for _ in $(seq 300); do
        curl -sf "$BASE/health" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    cat "$WORK/spin.log" >&2
    exit 1
}
down() {
    kill "$SPIN_PID"; wait "$SPIN_PID" 2>/dev/null || true; SPIN_PID=""
}
api() {
    curl -sf -H "Authorization: Bearer $TOKEN" "$@"
}

echo "==> migrating and creating one link through the API"
up
api -X POST "$BASE/api/links" -H 'Content-Type: application/json' \
    -d '{"url": "https://example.com/probe", "slug": "probe-link", "tags": ["probe"]}' >/dev/null
down

echo "==> seeding $LINKS links into the registry and key-value"
python3 - "$STATE" "$LINKS" <<'PY'
import calendar, json, random, sqlite3, sys, time
state, n = sys.argv[1], int(sys.argv[2])
kv = sqlite3.connect(f"{state}/kv.db")
db = sqlite3.connect(f"{state}/clicks.db")
# What the product wrote for the probe: the format to reproduce.
(probe,) = kv.execute("SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'link:probe-link'").fetchone()
probe = bytes(probe).decode()
(copy,) = db.execute("SELECT record FROM links WHERE slug = 'probe-link'").fetchone()
assert probe == copy, (probe, copy)
def record(slug, url, at, tags):
    d = {"slug": slug, "url": url, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)), "expires_at": None}
    if tags:
        d["tags"] = tags
    return json.dumps(d, separators=(",", ":"))
p = json.loads(probe)
assert record(p["slug"], p["url"], calendar.timegm(time.strptime(p["created_at"], "%Y-%m-%dT%H:%M:%SZ")), p["tags"]) == probe, probe
CLAIM = ("INSERT INTO links (slug, created_at, record, url, tags) "
         "VALUES (?1, ?2, ?3, json_extract(?3, '$.url'), json_extract(?3, '$.tags')) "
         "ON CONFLICT (slug) DO NOTHING RETURNING slug")
ROLLUP = ("INSERT INTO daily_clicks (slug, day, clicks, humans, bots, visitors) VALUES (?1, '2030-01-01', ?2, ?2, 0, ?2)")
rng = random.Random(7)
t0 = 1893456000
rows = []
for i in range(n):
    slug = f"L{i:06d}"
    tags = [f"t{i % 10}"] + (["rare"] if i % 1000 == 0 else [])
    url = f"https://example.com/docs/{i}/page?ref=x{rng.randrange(10**6)}"
    if i == 77777:
        url = "https://only-one.example.org/the-one-target"
    rows.append((slug, t0 + i, record(slug, url, t0 + i, tags), rng.randrange(0, 1000)))
with db:
    for slug, at, rec, clicks in rows:
        db.execute(CLAIM, (slug, at, rec)).fetchall()
        if clicks:
            db.execute(ROLLUP, (slug, clicks))
with kv:
    kv.executemany("INSERT OR REPLACE INTO spin_key_value (store, key, value) VALUES ('default', ?, ?)",
                   [(f"link:{s}", r.encode()) for s, _, r, _ in rows])
print("    links:", db.execute("SELECT count(*) FROM links").fetchone()[0],
      "link_tags:", db.execute("SELECT count(*) FROM link_tags").fetchone()[0],
      "clicks:", db.execute("SELECT sum(clicks) FROM links").fetchone()[0])
PY

echo "==> timing ($CALLS calls each, after one warm-up)"
up
time_query() {
    local name="$1" path="$2"
    local body
    body=$(api "$BASE$path") || { echo "FAILED: $path" >&2; exit 1; }
    local count
    count=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("links", [])) if sys.argv[1] != "tags" else "-")' "$name" <<<"$body" 2>/dev/null || echo "-")
    local times=()
    for _ in $(seq "$CALLS"); do
        times+=("$(api -o /dev/null -w '%{time_total}' "$BASE$path")")
    done
    python3 - "$name" "$count" "${times[@]}" <<'PY'
import statistics, sys
name, count, ts = sys.argv[1], sys.argv[2], [float(t) * 1000 for t in sys.argv[3:]]
print(f"{name:<44} {count:>5} links   median {statistics.median(ts):6.1f} ms   min {min(ts):6.1f}   max {max(ts):6.1f}")
PY
}
# Cursors near the end of each order, as a page would return them.
SNAP=$(api "$BASE/api/links?sort=clicks&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"].split(".")[2])')
printf '%-44s %11s   %s\n' query result "time per call (curl, loopback)"
time_query "first page, by slug" "/api/links"
time_query "first page, newest first" "/api/links?sort=created"
time_query "first page, most clicks first" "/api/links?sort=clicks"
time_query "deep page, newest first (90,000 in)" "/api/links?sort=created&cursor=created.desc.$((1893456000 + 10000)).L010000"
time_query "deep page, by slug (90,000 in)" "/api/links?cursor=L090000"
time_query "deep page, most clicks first (near the end)" "/api/links?sort=clicks&cursor=clicks.desc.$SNAP.5.L050000"
time_query "tag filter (10% of links), most clicks" "/api/links?tag=t3&sort=clicks"
time_query "tag filter (10% of links), newest" "/api/links?tag=t3&sort=created"
time_query "tag filter (0.1% of links), newest" "/api/links?tag=rare&sort=created"
time_query "search: the one target URL, by slug" "/api/links?q=only-one.example.org/the-one"
time_query "search: the one target URL, most clicks" "/api/links?q=only-one.example.org/the-one&sort=clicks"
time_query "search: 1 in 10 URLs (\"/7\"), newest" "/api/links?q=docs/7&sort=created"
time_query "tags" "/api/tags"
