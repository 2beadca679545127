#!/usr/bin/env python3
"""Helper for loadtest/run-local.sh: create links, plan the traffic, read stats, reconcile.

Stdlib only. Subcommands (run-local.sh calls them in this order):

  create       create N links lt-<run>-001.. through the API      -> links.json
  plan         split REQUESTS into bounded oha runs (the mix)       -> plan.json, plan.tsv
  fetch-stats  read /api/links/{slug}/stats until stable            -> stats/<slug>.json
  report       count what oha got per run, compare with the stats, print, exit 0/1

`report` works on files only, so it can be tested on recorded output
(loadtest/tests/fixtures/). Exit codes: 0 all clicks accounted for; 1 a click is
missing or extra (or stats are unreadable); 2 bad input (missing run output...).

Only loopback targets are accepted (127.0.0.0/8, ::1, localhost).
"""
import argparse
import ipaddress
import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TRAFFIC = os.path.join(HERE, "traffic.json")
KINDS = ("human", "bot")
REDIRECT_STATUSES = {301, 302, 307, 308}


# --- small utilities -----------------------------------------------------------

def die(msg, code=2):
    print(f"reconcile: {msg}", file=sys.stderr)
    sys.exit(code)


def require_loopback(base_url):
    u = urllib.parse.urlsplit(base_url)
    if u.scheme not in ("http", "https") or not u.hostname:
        die(f"BASE_URL must be http(s)://host:port, got {base_url!r}")
    host = u.hostname
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    die(f"refusing non-loopback target {host!r}: this kit only drives 127.0.0.1/::1/localhost")


def api(base_url, token, method, path, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("User-Agent", "shortener-loadtest/1 (reconcile.py)")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")[:300]}


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


# --- create ------------------------------------------------------------------------

def slug_for(run_id, i):
    return f"lt-{run_id}-{i + 1:03d}"


def cmd_create(a):
    require_loopback(a.base_url)
    if not a.token:
        die("ADMIN_TOKEN is required")
    slugs = []
    for i in range(a.links):
        slug = slug_for(a.run_id, i)
        st, body = api(a.base_url, a.token, "POST", "/api/links",
                       {"url": f"https://example.com/loadtest/{a.run_id}/{i + 1:03d}", "slug": slug})
        if st == 409:
            die(f"slug {slug} already exists: use a fresh RUN_ID")
        if st != 201:
            die(f"POST /api/links for {slug} answered {st}: {body}")
        slugs.append(slug)
    write_json(a.out, {"run_id": a.run_id, "base_url": a.base_url, "links": slugs})
    print(f"created {len(slugs)} links {slugs[0]} .. {slugs[-1]}")


# --- plan ------------------------------------------------------------------------------

def split(total, weights):
    """Largest-remainder split of `total` into integers proportional to weights."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [int(math.floor(x)) for x in raw]
    rest = total - sum(out)
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[:rest]:
        out[i] += 1
    return out


def make_plan(slugs, run_id, requests, traffic, seed=1, zipf_s=1.1, bot_share=0.2,
              head_share=0.05, unknown_share=0.03, chunk=250):
    """Bounded oha runs. One run = one URL, one method, one UA, one Referer, n requests."""
    rnd = random.Random(seed)
    n_unknown = round(requests * unknown_share)
    n_head = round(requests * head_share)
    n_get = requests - n_unknown - n_head
    weights = [1 / (i + 1) ** zipf_s for i in range(len(slugs))]
    runs = []

    def add(target, slug, method, kind, n):
        while n > 0:
            take = min(n, chunk)
            pool = traffic["bots"] if kind == "bot" else traffic["humans"]
            runs.append({
                "id": f"r{len(runs) + 1:04d}",
                "target": target,
                "slug": slug,
                "method": method,
                "kind": kind,
                "ua": rnd.choice(pool),
                "referer": rnd.choice(traffic["referrers"]),
                "n": take,
            })
            n -= take

    for i, n_link in enumerate(split(n_get, weights)):
        n_bot, n_hum = split(n_link, [bot_share, 1 - bot_share]) if n_link else (0, 0)
        add("link", slugs[i], "GET", "human", n_hum)
        add("link", slugs[i], "GET", "bot", n_bot)
    # HEAD and unknown slugs: spread over links/kinds, never expected as clicks.
    for j, n in enumerate(split(n_head, [1] * min(len(slugs), 4))):
        add("link", slugs[j], "HEAD", KINDS[j % 2], n)
    for j, n in enumerate(split(n_unknown, [1, 1])):
        add("unknown", f"lt-{run_id}-nope-{j + 1}", "GET", KINDS[j % 2], n)
    rnd.shuffle(runs)  # interleave kinds and links across the parallel batches
    return runs


def cmd_plan(a):
    links = load_json(a.links)
    traffic = load_json(a.traffic)
    runs = make_plan(links["links"], links["run_id"], a.requests, traffic, seed=a.seed,
                     zipf_s=a.zipf_s, bot_share=a.bot_share, head_share=a.head_share,
                     unknown_share=a.unknown_share, chunk=a.chunk)
    if len(runs) > a.max_runs:
        die(f"plan has {len(runs)} runs (> {a.max_runs}); raise --chunk or lower REQUESTS")
    write_json(a.out, {"run_id": links["run_id"], "base_url": links["base_url"], "runs": runs})
    # TSV for the shell loop; '-' stands for "no Referer" (IFS would swallow empty fields).
    with open(a.tsv, "w", encoding="utf-8") as f:
        for r in runs:
            for field in (r["ua"], r["referer"]):
                if "\t" in field or "\n" in field:
                    die("tabs/newlines are not allowed in UA or referrer")
            f.write("\t".join([r["id"], r["method"], r["slug"], r["ua"], r["referer"] or "-", str(r["n"])]) + "\n")
    print(f"planned {sum(r['n'] for r in runs)} requests in {len(runs)} oha runs")


# --- fetch-stats ------------------------------------------------------------------

def read_all_stats(base_url, token, slugs):
    out = {}
    for slug in slugs:
        st, body = api(base_url, token, "GET", f"/api/links/{slug}/stats")
        out[slug] = body if st == 200 and isinstance(body, dict) else {"_http_status": st, "_body": body}
    return out


def cmd_fetch_stats(a):
    links = load_json(a.links)
    require_loopback(links["base_url"])
    os.makedirs(a.out_dir, exist_ok=True)
    prev = None
    for attempt in range(a.max_polls):
        if attempt or a.settle > 0:
            time.sleep(a.settle)
        cur = read_all_stats(links["base_url"], a.token, links["links"])
        if cur == prev:
            break
        prev = cur
    else:
        print(f"warning: stats still changing after {a.max_polls} reads", file=sys.stderr)
    for slug, body in prev.items():
        write_json(os.path.join(a.out_dir, f"{slug}.json"), body)
    print(f"read stats of {len(prev)} links")


# --- report (pure, file based) -----------------------------------------------------

def parse_oha(doc):
    """oha --output-format json -> {'statuses': {int: n}, 'errors': {msg: n}, 'rps', 'p50', 'p99', 'total_s'}"""
    statuses = {int(k): int(v) for k, v in (doc.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): int(v) for k, v in (doc.get("errorDistribution") or {}).items()}
    summary = doc.get("summary") or {}
    lat = doc.get("latencyPercentiles") or {}
    return {
        "statuses": statuses,
        "errors": errors,
        "rps": summary.get("requestsPerSec"),
        "total_s": summary.get("total"),
        "p50": lat.get("p50"),
        "p99": lat.get("p99"),
    }


def tally(plan, run_results):
    """Per slug and kind: served (3xx to GET), plus HEAD/unknown/error counters."""
    links = {}
    agg = {"requests": 0, "answered": 0, "errors": 0, "unexpected": 0,
           "head": 0, "unknown_404": 0, "statuses": {}}
    for r in plan["runs"]:
        res = run_results.get(r["id"])
        if res is None:
            continue
        answered = sum(res["statuses"].values())
        errs = sum(res["errors"].values())
        agg["requests"] += answered + errs
        agg["answered"] += answered
        agg["errors"] += errs
        for s, n in res["statuses"].items():
            agg["statuses"][s] = agg["statuses"].get(s, 0) + n
        redirects = sum(n for s, n in res["statuses"].items() if s in REDIRECT_STATUSES)
        if r["target"] == "unknown":
            not_found = res["statuses"].get(404, 0)
            agg["unknown_404"] += not_found
            agg["unexpected"] += answered - not_found
            continue
        slot = links.setdefault(r["slug"], {k: {"served": 0, "uncertain": 0} for k in KINDS})
        agg["unexpected"] += answered - redirects
        if r["method"] == "HEAD":
            agg["head"] += answered
            continue
        slot[r["kind"]]["served"] += redirects
        # No answer (timeout, reset): the server may have recorded it or not.
        slot[r["kind"]]["uncertain"] += errs
    return links, agg


def reconcile(slugs, served, stats):
    rows, problems = [], []
    for slug in slugs:
        s = served.get(slug, {k: {"served": 0, "uncertain": 0} for k in KINDS})
        st = stats.get(slug)
        ok_stats = isinstance(st, dict) and isinstance(st.get("humans"), int) and isinstance(st.get("bots"), int)
        row = {"slug": slug, "ok": ok_stats}
        if not ok_stats:
            problems.append(f"{slug}: stats not available ({(st or {}).get('_http_status', 'no file')})")
        for k in KINDS:
            rec = (st["humans"] if k == "human" else st["bots"]) if ok_stats else None
            d = None if rec is None else rec - s[k]["served"]
            row[k] = {"served": s[k]["served"], "recorded": rec, "uncertain": s[k]["uncertain"], "delta": d}
            if d:
                row["ok"] = False
                what = f"{-d} click(s) missing" if d < 0 else f"{d} extra click(s)"
                unc = f", {s[k]['uncertain']} unanswered" if s[k]["uncertain"] else ""
                problems.append(f"{slug} {k}: {what} (served {s[k]['served']}, recorded {rec}{unc})")
        if ok_stats and st["humans"] + st["bots"] != st.get("total", st["humans"] + st["bots"]):
            row["ok"] = False
            problems.append(f"{slug}: total {st.get('total')} != humans {st['humans']} + bots {st['bots']}")
        rows.append(row)
    return rows, problems


def format_table(rows, problems):
    w = max([4] + [len(r["slug"]) for r in rows])
    cols = ["hum.served", "hum.rec", "bot.served", "bot.rec", "unansw."]
    head = f"{'slug':<{w}}  " + " ".join(f"{c:>10}" for c in cols) + "  result"
    out = [head, "-" * len(head)]
    tot = [0, 0, 0, 0, 0]
    for r in rows:
        h, b = r["human"], r["bot"]
        vals = [h["served"], h["recorded"], b["served"], b["recorded"], h["uncertain"] + b["uncertain"]]
        for i, v in enumerate(vals):
            tot[i] += v or 0
        if r["ok"]:
            verdict = "ok"
        else:
            parts = []
            for k in KINDS:
                d = r[k]["delta"]
                if d is None:
                    parts.append(f"{k} ?")
                elif d < 0:
                    parts.append(f"{k} missing {-d}")
                elif d > 0:
                    parts.append(f"{k} extra {d}")
            verdict = "MISMATCH " + ", ".join(parts or ["total"])
        out.append(f"{r['slug']:<{w}}  " + " ".join(f"{'?' if v is None else v:>10}" for v in vals) + f"  {verdict}")
    out.append("-" * len(head))
    out.append(f"{'total':<{w}}  " + " ".join(f"{v:>10}" for v in tot) + "  "
               + ("ALL MATCH" if not problems else f"{len(problems)} PROBLEM(S)"))
    return "\n".join(out)


def weighted_median(pairs):
    pairs = sorted((v, w) for v, w in pairs if v is not None and w)
    total = sum(w for _, w in pairs)
    acc = 0
    for v, w in pairs:
        acc += w
        if acc * 2 >= total:
            return v
    return None


def build_report(plan, run_results, stats, wall_seconds=None):
    slugs = sorted({r["slug"] for r in plan["runs"] if r["target"] == "link"} | set(stats))
    served, agg = tally(plan, run_results)
    rows, problems = reconcile(slugs, served, stats)
    weights = [(res, next((r["n"] for r in plan["runs"] if r["id"] == rid), 0)) for rid, res in run_results.items()]
    return {
        "run_id": plan.get("run_id"),
        "requests": agg["requests"],
        "answered": agg["answered"],
        "errors": agg["errors"],
        "unexpected_status": agg["unexpected"],
        "head_requests": agg["head"],
        "unknown_404": agg["unknown_404"],
        "statuses": {str(k): v for k, v in sorted(agg["statuses"].items())},
        "rps": (agg["requests"] / wall_seconds) if wall_seconds else None,
        # oha reports percentiles per run; the overall figures are a request-weighted
        # median of the runs' p50s and the worst p99 of any run (conservative).
        "p50_ms": _ms(weighted_median((res["p50"], n) for res, n in weights)),
        "p99_ms": _ms(max((res["p99"] for res, _ in weights if res["p99"] is not None), default=None)),
        "rows": rows,
        "problems": problems,
        "ok": not problems,
    }


def _ms(v):
    return None if v is None else v * 1000.0


def format_report(rep):
    f = lambda v, unit="": "-" if v is None else (f"{v:.1f}{unit}" if isinstance(v, float) else f"{v}{unit}")
    lines = [
        f"=== shortener local load test, run {rep['run_id']} ===",
        f"requests     {rep['requests']} ({rep['answered']} answered, {rep['errors']} without answer)",
        f"requests/s   {f(rep['rps'])} (all requests / wall-clock time of the traffic phase)",
        f"latency      p50 {f(rep['p50_ms'], ' ms')}  p99 {f(rep['p99_ms'], ' ms')}"
        "  (p50: request-weighted median of the runs', p99: worst run's)",
        f"errors       {rep['errors']} transport, {rep['unexpected_status']} unexpected status"
        f"  (statuses: {', '.join(f'{k}x{v}' for k, v in rep['statuses'].items()) or '-'})",
        f"not counted  {rep['head_requests']} HEAD, {rep['unknown_404']} 404 on unknown slugs",
        "",
        "clicks: recorded (stats API) vs redirects served (3xx to GET), per link; HEAD and 404 never count",
        format_table(rep["rows"], rep["problems"]),
    ]
    lines += [f"  ! {p}" for p in rep["problems"]]
    lines.append("RESULT: " + ("OK, every served redirect was recorded exactly once"
                               if rep["ok"] else "FAIL, clicks missing or extra"))
    return "\n".join(lines)


def load_runs(plan, runs_dir):
    results, missing = {}, []
    for r in plan["runs"]:
        p = os.path.join(runs_dir, f"{r['id']}.json")
        try:
            results[r["id"]] = parse_oha(load_json(p))
        except (OSError, ValueError) as e:
            missing.append(f"{r['id']}: {e}")
    return results, missing


def load_stats(stats_dir, slugs):
    out = {}
    for slug in slugs:
        p = os.path.join(stats_dir, f"{slug}.json")
        if os.path.exists(p):
            out[slug] = load_json(p)
    return out


def cmd_report(a):
    plan = load_json(a.plan)
    run_results, missing = load_runs(plan, a.runs)
    if missing:
        for m in missing:
            print(f"missing/invalid oha output {m}", file=sys.stderr)
        die(f"{len(missing)} oha run(s) have no usable output; cannot reconcile", 2)
    slugs = sorted({r["slug"] for r in plan["runs"] if r["target"] == "link"})
    if a.links:
        slugs = sorted(set(slugs) | set(load_json(a.links)["links"]))
    stats = load_stats(a.stats, slugs)
    for s in slugs:
        stats.setdefault(s, None)
    rep = build_report(plan, run_results, stats, wall_seconds=a.wall_seconds)
    print(format_report(rep))
    if a.json:
        write_json(a.json, rep)
    return 0 if rep["ok"] else 1


# --- check ---------------------------------------------------------------------------

def cmd_check(a):
    require_loopback(a.base_url)
    try:
        with urllib.request.urlopen(a.base_url.rstrip("/") + "/health", timeout=5) as r:
            if r.status != 200:
                die(f"GET /health answered {r.status}")
    except (urllib.error.URLError, OSError) as e:
        die(f"GET {a.base_url}/health failed ({e}): is `spin up` running?")
    print(f"{a.base_url} is up")


# --- cleanup -----------------------------------------------------------------------

def cmd_cleanup(a):
    links = load_json(a.links)
    require_loopback(links["base_url"])
    for slug in links["links"]:
        api(links["base_url"], a.token, "DELETE", f"/api/links/{slug}")
    print(f"deleted {len(links['links'])} links")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    token = os.environ.get("ADMIN_TOKEN", "")

    c = sub.add_parser("check", help="loopback guard + GET /health")
    c.add_argument("--base-url", default=os.environ.get("BASE_URL", "http://127.0.0.1:3000"))
    c.set_defaults(fn=cmd_check)

    c = sub.add_parser("create")
    c.add_argument("--base-url", default=os.environ.get("BASE_URL", "http://127.0.0.1:3000"))
    c.add_argument("--token", default=token)
    c.add_argument("--run-id", required=True)
    c.add_argument("--links", type=int, default=20)
    c.add_argument("--out", required=True)
    c.set_defaults(fn=cmd_create)

    c = sub.add_parser("plan")
    c.add_argument("--links", required=True, help="links.json from create")
    c.add_argument("--traffic", default=TRAFFIC)
    c.add_argument("--requests", type=int, default=5000)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--zipf-s", type=float, default=1.1)
    c.add_argument("--bot-share", type=float, default=0.2)
    c.add_argument("--head-share", type=float, default=0.05)
    c.add_argument("--unknown-share", type=float, default=0.03)
    c.add_argument("--chunk", type=int, default=250, help="max requests per oha run")
    c.add_argument("--max-runs", type=int, default=400)
    c.add_argument("--out", required=True)
    c.add_argument("--tsv", required=True)
    c.set_defaults(fn=cmd_plan)

    c = sub.add_parser("fetch-stats")
    c.add_argument("--links", required=True)
    c.add_argument("--token", default=token)
    c.add_argument("--out-dir", required=True)
    c.add_argument("--settle", type=float, default=1.0, help="seconds between reads")
    c.add_argument("--max-polls", type=int, default=10)
    c.set_defaults(fn=cmd_fetch_stats)

    c = sub.add_parser("report")
    c.add_argument("--plan", required=True)
    c.add_argument("--runs", required=True, help="directory of <run-id>.json oha outputs")
    c.add_argument("--stats", required=True, help="directory of <slug>.json stats responses")
    c.add_argument("--links", help="links.json (adds links that got no traffic)")
    c.add_argument("--wall-seconds", type=float)
    c.add_argument("--json", help="also write the report as JSON here")
    c.set_defaults(fn=cmd_report)

    c = sub.add_parser("cleanup")
    c.add_argument("--links", required=True)
    c.add_argument("--token", default=token)
    c.set_defaults(fn=cmd_cleanup)

    a = p.parse_args(argv)
    return a.fn(a) or 0


if __name__ == "__main__":
    sys.exit(main())
