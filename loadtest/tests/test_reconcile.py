"""Tests for loadtest/reconcile.py on recorded output (oha JSON + stats API responses).

    python3 -m pytest loadtest/tests -q

fixtures/recorded-ok/         a real run of run-local.sh (oha 1.16.0) against
                              tests/standin_server.py: every click accounted for
fixtures/recorded-count-head/ same, with the stand-in started with --count-head
                              (a server that wrongly counts HEAD requests)
The end-to-end tests at the bottom need `oha` on PATH and are skipped otherwise.
"""
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LOADTEST = os.path.dirname(HERE)
FIXTURES = os.path.join(HERE, "fixtures")
sys.path.insert(0, LOADTEST)

import reconcile  # noqa: E402


def case_dir(name):
    return os.path.join(FIXTURES, name)


def run_report(d, capsys, stats_dir=None, runs_dir=None):
    rc = reconcile.main([
        "report",
        "--plan", os.path.join(d, "plan.json"),
        "--runs", runs_dir or os.path.join(d, "runs"),
        "--stats", stats_dir or os.path.join(d, "stats"),
        "--links", os.path.join(d, "links.json"),
        "--wall-seconds", "2.5",
    ])
    return rc, capsys.readouterr().out


@pytest.fixture
def recorded(tmp_path):
    """A writable copy of the recorded all-good run."""
    dst = tmp_path / "run"
    shutil.copytree(case_dir("recorded-ok"), dst)
    return str(dst)


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def plan_of(d):
    return load(os.path.join(d, "plan.json"))


def busiest_link(d):
    """(slug, served humans, served bots) of the link with the most GET traffic."""
    plan = plan_of(d)
    runs, _ = reconcile.load_runs(plan, os.path.join(d, "runs"))
    served, _ = reconcile.tally(plan, runs)
    slug = max(served, key=lambda s: served[s]["human"]["served"] + served[s]["bot"]["served"])
    return slug, served[slug]["human"]["served"], served[slug]["bot"]["served"]


def bump(d, slug, humans=0, bots=0):
    p = os.path.join(d, "stats", f"{slug}.json")
    st = load(p)
    st["humans"] += humans
    st["bots"] += bots
    st["total"] += humans + bots
    save(p, st)


# --- recorded output ------------------------------------------------------------

def test_recorded_fixture_is_realistic():
    d = case_dir("recorded-ok")
    plan = plan_of(d)
    kinds = {(r["target"], r["method"], r["kind"]) for r in plan["runs"]}
    assert ("link", "GET", "human") in kinds and ("link", "GET", "bot") in kinds
    assert ("link", "HEAD", "human") in kinds or ("link", "HEAD", "bot") in kinds
    assert any(t == "unknown" for t, _, _ in kinds)
    sample = load(os.path.join(d, "runs", plan["runs"][0]["id"] + ".json"))
    # oha --output-format json schema (oha 1.16.0 printer.rs)
    for key in ("summary", "latencyPercentiles", "statusCodeDistribution", "errorDistribution", "rps", "details"):
        assert key in sample
    assert {"successRate", "total", "requestsPerSec"} <= set(sample["summary"])


def test_all_matched_exits_0(capsys):
    rc, out = run_report(case_dir("recorded-ok"), capsys)
    assert rc == 0, out
    assert "ALL MATCH" in out
    assert "RESULT: OK" in out
    assert "requests/s" in out and "p50" in out and "p99" in out


def test_missing_click_fails_and_names_the_link(recorded, capsys):
    slug, hum, _ = busiest_link(recorded)
    assert hum > 0
    bump(recorded, slug, humans=-1)
    rc, out = run_report(recorded, capsys)
    assert rc == 1
    assert f"{slug} human: 1 click(s) missing (served {hum}, recorded {hum - 1})" in out
    assert "MISMATCH human missing 1" in out
    assert "RESULT: FAIL" in out


def test_extra_click_fails(recorded, capsys):
    slug, _, bots = busiest_link(recorded)
    bump(recorded, slug, bots=+2)
    rc, out = run_report(recorded, capsys)
    assert rc == 1
    assert f"{slug} bot: 2 extra click(s)" in out


def test_extra_click_on_the_least_popular_link_fails(recorded, capsys):
    links = load(os.path.join(recorded, "links.json"))["links"]
    quiet = links[-1]
    bump(recorded, quiet, humans=+1)
    rc, out = run_report(recorded, capsys)
    assert rc == 1
    assert f"{quiet} human: 1 extra click(s)" in out


def test_bots_and_humans_are_kept_apart(recorded, capsys):
    # One bot click filed as human: the link's total still matches, the kinds do not.
    slug, _, bots = busiest_link(recorded)
    assert bots > 0
    bump(recorded, slug, humans=+1, bots=-1)
    rc, out = run_report(recorded, capsys)
    assert rc == 1
    assert f"{slug} human: 1 extra click(s)" in out
    assert f"{slug} bot: 1 click(s) missing" in out


def test_head_and_404_are_never_expected_as_clicks():
    d = case_dir("recorded-ok")
    plan = plan_of(d)
    runs, missing = reconcile.load_runs(plan, os.path.join(d, "runs"))
    assert not missing
    served, agg = reconcile.tally(plan, runs)
    head_3xx = sum(runs[r["id"]]["statuses"].get(302, 0) for r in plan["runs"] if r["method"] == "HEAD")
    unknown_404 = sum(runs[r["id"]]["statuses"].get(404, 0) for r in plan["runs"] if r["target"] == "unknown")
    get_3xx = sum(runs[r["id"]]["statuses"].get(302, 0)
                  for r in plan["runs"] if r["method"] == "GET" and r["target"] == "link")
    assert head_3xx > 0 and unknown_404 > 0
    assert agg["head"] == head_3xx and agg["unknown_404"] == unknown_404
    expected = sum(v[k]["served"] for v in served.values() for k in ("human", "bot"))
    assert expected == get_3xx
    assert agg["requests"] == sum(r["n"] for r in plan["runs"])


def test_server_counting_head_is_caught(capsys):
    """Recorded against the stand-in with --count-head: HEADs show up as extra clicks."""
    d = case_dir("recorded-count-head")
    plan = plan_of(d)
    rc, out = run_report(d, capsys)
    assert rc == 1
    head_slugs = {r["slug"] for r in plan["runs"] if r["method"] == "HEAD"}
    assert head_slugs
    for slug in head_slugs:
        assert f"{slug} " in out and "extra click(s)" in out
    for slug in set(load(os.path.join(d, "links.json"))["links"]) - head_slugs:
        assert f"{slug} human: " not in out and f"{slug} bot: " not in out


def test_unreadable_stats_fail(recorded, capsys):
    slug, _, _ = busiest_link(recorded)
    save(os.path.join(recorded, "stats", f"{slug}.json"),
         {"_http_status": 500, "_body": {"error": {"code": "internal", "message": "boom"}}})
    rc, out = run_report(recorded, capsys)
    assert rc == 1
    assert f"{slug}: stats not available (500)" in out


def test_missing_oha_output_is_a_usage_error(recorded, capsys):
    first = plan_of(recorded)["runs"][0]["id"]
    os.remove(os.path.join(recorded, "runs", f"{first}.json"))
    with pytest.raises(SystemExit) as e:
        run_report(recorded, capsys)
    assert e.value.code == 2


def test_unanswered_requests_are_reported_not_expected(recorded, capsys):
    """oha errorDistribution entries (timeouts) are 'unanswered': never expected clicks."""
    plan = plan_of(recorded)
    r = next(r for r in plan["runs"] if r["method"] == "GET" and r["target"] == "link" and r["n"] >= 3)
    p = os.path.join(recorded, "runs", f"{r['id']}.json")
    doc = load(p)
    code = max(doc["statusCodeDistribution"], key=lambda k: doc["statusCodeDistribution"][k])
    doc["statusCodeDistribution"][code] -= 2
    doc["errorDistribution"] = {"timeout": 2}
    save(p, doc)
    # The server did record those two (it answered after oha gave up).
    rc, out = run_report(recorded, capsys)
    assert rc == 1
    assert f"{r['slug']} {r['kind']}: 2 extra click(s)" in out and "2 unanswered" in out
    # ...and if it did not record them, everything matches.
    bump(recorded, r["slug"], **({"humans": -2} if r["kind"] == "human" else {"bots": -2}))
    rc, out = run_report(recorded, capsys)
    assert rc == 0, out
    assert "2 without answer" in out


def test_unexpected_status_is_not_a_click():
    plan = {"runs": [{"id": "a", "target": "link", "slug": "lt-x-001", "method": "GET", "kind": "human", "n": 10}]}
    runs = {"a": {"statuses": {302: 7, 500: 2, 429: 1}, "errors": {}, "rps": 1.0, "total_s": 1.0, "p50": 0.001, "p99": 0.002}}
    served, agg = reconcile.tally(plan, runs)
    assert served["lt-x-001"]["human"]["served"] == 7
    assert agg["unexpected"] == 3
    rows, problems = reconcile.reconcile(["lt-x-001"], served, {"lt-x-001": {"humans": 7, "bots": 0, "total": 7}})
    assert problems == [] and rows[0]["ok"]


# --- plan and guards ------------------------------------------------------------

def test_plan_mix_is_bounded_and_has_the_requested_shares():
    traffic = load(reconcile.TRAFFIC)
    slugs = [reconcile.slug_for("t", i) for i in range(20)]
    runs = reconcile.make_plan(slugs, "t", 10000, traffic, seed=7, chunk=250)
    total = sum(r["n"] for r in runs)
    assert total == 10000
    assert all(1 <= r["n"] <= 250 for r in runs)
    by = lambda f: sum(r["n"] for r in runs if f(r))
    assert by(lambda r: r["target"] == "unknown") == 300
    assert by(lambda r: r["method"] == "HEAD") == 500
    gets = by(lambda r: r["method"] == "GET" and r["target"] == "link")
    assert abs(by(lambda r: r["method"] == "GET" and r["target"] == "link" and r["kind"] == "bot") / gets - 0.2) < 0.01
    per = {s: by(lambda r, s=s: r["slug"] == s and r["method"] == "GET") for s in slugs}
    assert per[slugs[0]] > 5 * per[slugs[-1]] > 0  # Zipf-like
    for r in runs:
        assert r["ua"] in (traffic["bots"] if r["kind"] == "bot" else traffic["humans"])
    assert any(r["referer"] == "" for r in runs) and any(r["referer"] for r in runs)


@pytest.mark.parametrize("url", ["http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000", "http://127.0.0.2"])
def test_loopback_accepted(url):
    reconcile.require_loopback(url)


@pytest.mark.parametrize("url", ["http://10.0.0.5:3000", "http://example.com", "https://192.168.1.1", "ftp://127.0.0.1"])
def test_non_loopback_refused(url):
    with pytest.raises(SystemExit):
        reconcile.require_loopback(url)


# --- end to end against the stand-in (needs oha) ---------------------------------

OHA = shutil.which(os.environ.get("OHA", "oha"))
needs_oha = pytest.mark.skipif(OHA is None, reason="oha not on PATH (cargo install --locked oha)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standin(request):
    procs = []

    def start(*flags):
        port = free_port()
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "standin_server.py"),
                              "--port", str(port), "--token", "t0k", *flags],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(p)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("stand-in did not start")

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=5)


def run_local(base_url, tmp_path, **env):
    e = dict(os.environ, BASE_URL=base_url, ADMIN_TOKEN="t0k", LINKS="4", REQUESTS="600",
             CHUNK="120", CONNECTIONS="4", PARALLEL="3", OUT_DIR=str(tmp_path / "out"), OHA=OHA, SEED="3")
    e.update(env)
    return subprocess.run(["bash", os.path.join(LOADTEST, "run-local.sh")], env=e,
                          capture_output=True, text=True, timeout=300)


@needs_oha
def test_e2e_clean_server_passes(standin, tmp_path):
    p = run_local(standin(), tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ALL MATCH" in p.stdout


@needs_oha
@pytest.mark.parametrize("flag,expect", [
    ("--drop-every=50", "missing"),
    ("--double-every=50", "extra"),
    ("--count-head", "extra"),
    ("--bot-as-human", "missing"),
])
def test_e2e_faulty_server_fails(standin, tmp_path, flag, expect):
    p = run_local(standin(flag), tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "RESULT: FAIL" in p.stdout and expect in p.stdout


def test_run_local_refuses_non_loopback(tmp_path):
    e = dict(os.environ, BASE_URL="http://10.1.2.3:3000", ADMIN_TOKEN="x", OHA=sys.executable)
    p = subprocess.run(["bash", os.path.join(LOADTEST, "run-local.sh")], env=e, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "non-loopback" in p.stderr
