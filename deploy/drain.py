#!/usr/bin/env python3
"""Take one app replica out of Caddy's load balancing, and put it back.

  drain.py out --replica 127.0.0.2:3002 [--drain-dir DIR] [--gate-port 3999] [--admin URL] [--interval S]
  drain.py in  --replica 127.0.0.2:3002 [the same options]

For a rolling restart without a failed request behind deploy/caddy/Caddyfile.replicas
(deploy/README.md, "Rolling restart"): out, stop the replica, start it, in; then
the next replica. The defaults are that Caddyfile's.

out writes the replica's drain file (DIR/<its IP>), checks that Caddy's health
gate now answers 503 for it, waits two health intervals (Caddy's next check
fails and it stops choosing the replica), then waits until Caddy reports no
request in flight to it (GET /reverse_proxy/upstreams on the admin API, three
zeros in a row). Caddy's config is never changed, so nothing is reloaded.

in waits until the replica's own /health answers 200, removes the drain file,
checks that the gate answers 200 for it, and waits two health intervals, so
Caddy sends it requests again before the next replica goes out.

Stdlib only.
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def die(msg, code=1):
    print("drain.py: " + msg, file=sys.stderr)
    sys.exit(code)


def status(url):
    """The HTTP status of GET url, 0 when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def until(what, test, timeout):
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            die("%s: not within %ss" % (what, timeout), 3)
        time.sleep(0.05)


def in_flight(admin, replica):
    """Requests Caddy has in flight to `replica` (0 when it is in no pool)."""
    try:
        with urllib.request.urlopen(admin.rstrip("/") + "/reverse_proxy/upstreams", timeout=5) as reply:
            hosts = json.load(reply)
    except OSError as e:
        die("GET %s/reverse_proxy/upstreams: %s (is Caddy's admin API on?)" % (admin, e))
    return sum(h.get("num_requests", 0) for h in hosts or [] if h.get("address") == replica)


def parts(args):
    host, _, port = args.replica.rpartition(":")
    if not host or not port.isdigit():
        die("--replica is host:port, as in the Caddyfile's upstreams: %r" % args.replica, 2)
    return host, os.path.join(args.drain_dir, host), "http://%s:%d/health" % (host, args.gate_port)


def out(args):
    host, flag, gate = parts(args)
    os.makedirs(args.drain_dir, exist_ok=True)
    with open(flag, "w") as f:
        f.write("draining since %s\n" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    until("the gate answering 503 for %s (%s)" % (host, gate), lambda: status(gate) == 503, args.timeout)
    time.sleep(2 * args.interval)
    started = time.monotonic()
    zeros = 0
    while zeros < 3:
        zeros = zeros + 1 if in_flight(args.admin, args.replica) == 0 else 0
        if time.monotonic() - started > args.timeout:
            die("%s still has requests in flight after %ss" % (args.replica, args.timeout), 3)
        time.sleep(0.05)
    print("out: %s drained (Caddy sends it nothing, none in flight)" % args.replica)


def back(args):
    host, flag, gate = parts(args)
    own = "http://%s/health" % args.replica
    until("%s answering 200" % own, lambda: status(own) == 200, args.timeout)
    if os.path.exists(flag):
        os.remove(flag)
    until("the gate answering 200 for %s (%s)" % (host, gate), lambda: status(gate) == 200, args.timeout)
    time.sleep(2 * args.interval)
    print("in: %s healthy and back in" % args.replica)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("out", "take a replica out and wait for its requests"),
                           ("in", "put a healthy replica back")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--replica", required=True, help="its address in the Caddyfile's upstreams (host:port)")
        p.add_argument("--drain-dir", default="/var/lib/shortener/drain", help="the gate's drain directory")
        p.add_argument("--gate-port", type=int, default=3999, help="the health gate's port (health_port)")
        p.add_argument("--admin", default="http://127.0.0.1:2019", help="Caddy's admin API")
        p.add_argument("--interval", type=float, default=1.0, help="Caddy's health_interval, in seconds")
        p.add_argument("--timeout", type=float, default=60, help="seconds to wait for each step")
    args = parser.parse_args()
    out(args) if args.command == "out" else back(args)


if __name__ == "__main__":
    main()
