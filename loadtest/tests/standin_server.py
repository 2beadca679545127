#!/usr/bin/env python3
"""A tiny stand-in for the shortener, just enough to run loadtest/run-local.sh end to end.

Implements the API contract's subset the load test touches: GET /health,
POST /api/links, GET /api/links/{slug}, GET /api/links/{slug}/stats,
DELETE /api/links/{slug}, GET|HEAD /{slug}. In-memory, stdlib only, loopback only.

Fault injection (to prove the reconciliation catches them):
  --drop-every K    do not record every K-th click (clicks go missing)
  --double-every K  record every K-th click twice (extra clicks)
  --count-head      record a click for HEAD too (the bug the kit must catch)
  --bot-as-human    file bot clicks as human ones (totals still agree)

Bot classification is a crude token match, NOT the isbot crate; good enough for
the UA lists in loadtest/traffic.json.

    python3 loadtest/tests/standin_server.py --port 3999 --token secret
"""
import argparse
import json
import re
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{3,64}$")
BOT_RE = re.compile(
    r"bot|crawl|spider|slurp|curl|wget|python-requests|python-urllib|go-http-client|"
    r"headlesschrome|facebookexternalhit|slack|okhttp|java/",
    re.I,
)


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.links = {}  # slug -> {"url", "created_at", "humans", "bots"}
        self.click_seq = 0


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin"
    sys_version = ""

    def log_message(self, fmt, *a):  # quiet
        pass

    @property
    def st(self) -> State:
        return self.server.state

    def send(self, status, body=None, headers=None, head=False):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and not head:
            self.wfile.write(data)

    def err(self, status, code, msg, head=False):
        self.send(status, {"error": {"code": code, "message": msg}}, head=head)

    def authed(self):
        if self.headers.get("Authorization") == f"Bearer {self.st.args.token}":
            return True
        self.err(401, "unauthorized", "missing or bad admin token")
        return False

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw or b"{}")

    # --- routes -----------------------------------------------------------
    def do_POST(self):
        if self.path != "/api/links":
            return self.err(404, "not_found", "no such route")
        if not self.authed():
            return
        try:
            b = self.body_json()
        except ValueError:
            return self.err(400, "bad_json", "body is not JSON")
        slug, url = b.get("slug"), b.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return self.err(422, "invalid_url", "url must be http(s)")
        if not isinstance(slug, str) or not SLUG_RE.match(slug):
            return self.err(422, "invalid_slug", "slug must match [A-Za-z0-9_-]{3,64}")
        with self.st.lock:
            if slug in self.st.links:
                return self.err(409, "slug_taken", f"slug {slug} exists")
            self.st.links[slug] = {"url": url, "created_at": now(), "humans": 0, "bots": 0}
        host = self.headers.get("Host", "127.0.0.1")
        self.send(201, {"slug": slug, "short_url": f"http://{host}/{slug}", "url": url,
                        "created_at": self.st.links[slug]["created_at"], "expires_at": None})

    def do_DELETE(self):
        m = re.match(r"^/api/links/([^/]+)$", self.path)
        if not m:
            return self.err(404, "not_found", "no such route")
        if not self.authed():
            return
        with self.st.lock:
            gone = self.st.links.pop(m.group(1), None)
        if gone is None:
            return self.err(404, "not_found", "no such link")
        self.send(204)

    def do_HEAD(self):
        self.redirect(head=True)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            return self.send(200, {"status": "ok", "checks": {"sqlite": "ok", "kv": "ok"}})
        if path.startswith("/api/"):
            if not self.authed():
                return
            m = re.match(r"^/api/links/([^/]+)(/stats)?$", path)
            if not m:
                return self.err(404, "not_found", "no such route")
            with self.st.lock:
                link = self.st.links.get(m.group(1))
                link = dict(link) if link else None
            if link is None:
                return self.err(404, "not_found", "no such link")
            total = link["humans"] + link["bots"]
            if m.group(2):
                today = datetime.now(timezone.utc).date().isoformat()
                return self.send(200, {
                    "slug": m.group(1), "total": total, "humans": link["humans"],
                    "bots": link["bots"], "unique_visitors": min(total, 1),
                    "daily": [{"date": today, "clicks": total}] if total else [],
                    "referrers": [], "browsers": [], "operating_systems": [],
                })
            return self.send(200, {"slug": m.group(1), "short_url": f"/{m.group(1)}",
                                   "url": link["url"], "created_at": link["created_at"],
                                   "expires_at": None, "clicks": total})
        self.redirect(head=False)

    def redirect(self, head):
        slug = self.path.split("?", 1)[0].lstrip("/")
        a = self.st.args
        with self.st.lock:
            link = self.st.links.get(slug)
            if link is None:
                pass
            elif not head or a.count_head:
                self.st.click_seq += 1
                seq = self.st.click_seq
                n = 1
                if a.drop_every and seq % a.drop_every == 0:
                    n = 0
                if a.double_every and seq % a.double_every == 0:
                    n = 2
                bot = bool(BOT_RE.search(self.headers.get("User-Agent", "")))
                if a.bot_as_human:
                    bot = False
                link["bots" if bot else "humans"] += n
        if link is None:
            return self.err(404, "not_found", "no such link", head=head)
        self.send(302, None, {"Location": link["url"], "Cache-Control": "private, max-age=0"}, head=head)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=3999)
    p.add_argument("--token", default="secret")
    p.add_argument("--drop-every", type=int, default=0)
    p.add_argument("--double-every", type=int, default=0)
    p.add_argument("--count-head", action="store_true")
    p.add_argument("--bot-as-human", action="store_true")
    args = p.parse_args(argv)
    ThreadingHTTPServer.request_queue_size = 512  # default 5 makes oha's connection bursts wait for SYN retries
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    print(f"standin listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
