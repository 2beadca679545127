#!/usr/bin/env python3
"""Back up and restore the shortener's file stores while the app runs.

  backup.py backup  --clicks CLICKS.db --kv KV.db --out DIR
  backup.py restore --from DIR --clicks CLICKS.db --kv KV.db [--force]

Both stores of the default runtime config are SQLite files (deploy/app/runtime.toml:
/data/clicks.db for clicks and the link registry, /data/kv.db for Spin's key-value
store, table spin_key_value(store, key, value) with the links under `link:<slug>`).

backup copies each with SQLite's online backup API in one step: one read
transaction per file. The click database is in WAL mode, where a reader never
blocks a writer, so redirects keep committing their clicks during the copy. The
key-value file is in rollback-journal mode: a link create/delete waits for the
copy of that (small) file, the redirect path only reads it. The key-value file
is copied first, then the clicks: a link created between the two copies is in
the click registry without its record (its slug stays taken; re-create it under
another slug), never the reverse. Each copy is checked (PRAGMA integrity_check)
and described in DIR/manifest.json (sha256, schema version, counts).

restore checks the manifest and the copies, then puts them in place of the
targets (stop the app first; a target that exists is refused without --force,
and its -wal/-shm files are removed with it).

Stdlib only. Redis (links) and sqld (clicks) have their own backups: see
deploy/README.md "Backups".
"""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import sys

MANIFEST = "manifest.json"
FILES = {"kv": "kv.db", "clicks": "clicks.db"}


def die(msg, code=1):
    print("backup.py: " + msg, file=sys.stderr)
    sys.exit(code)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def integrity(conn, what):
    result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        die("%s: integrity_check says %r" % (what, result))


def scalar(conn, sql, default=None):
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return default


def describe(kind, path):
    conn = sqlite3.connect(path)
    try:
        integrity(conn, path)
        info = {"file": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": sha256(path)}
        if kind == "clicks":
            info["schema_version"] = scalar(conn, "SELECT max(version) FROM schema_migrations")
            info["links"] = scalar(conn, "SELECT count(*) FROM links", 0)
            info["clicks"] = scalar(conn, "SELECT count(*) FROM clicks", 0)
        else:
            info["keys"] = scalar(conn, "SELECT count(*) FROM spin_key_value", 0)
            info["links"] = scalar(conn, "SELECT count(*) FROM spin_key_value WHERE key LIKE 'link:%'", 0)
        return info
    finally:
        conn.close()


def copy_online(source, dest):
    if not os.path.isfile(source):
        die("%s does not exist" % source, 2)
    # A long busy timeout: a writer may hold the lock for one statement.
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        # pages=-1: the whole file in one step, i.e. one consistent snapshot.
        # (Several steps would restart whenever the app commits in between.)
        src.backup(dst, pages=-1)
    finally:
        dst.close()
        src.close()


def backup(args):
    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(os.path.join(args.out, MANIFEST)):
        die("%s already holds a backup" % args.out, 2)
    started = datetime.datetime.now(datetime.timezone.utc)
    manifest = {"created_at": started.isoformat(timespec="seconds"), "stores": {}}
    for kind, source in (("kv", args.kv), ("clicks", args.clicks)):  # kv first, see above
        dest = os.path.join(args.out, FILES[kind])
        copy_online(source, dest)
        manifest["stores"][kind] = dict(describe(kind, dest), source=os.path.abspath(source))
    elapsed = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    manifest["seconds"] = round(elapsed, 3)
    with open(os.path.join(args.out, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    c, k = manifest["stores"]["clicks"], manifest["stores"]["kv"]
    print("backup: %d links (%d records), %d clicks, schema v%s -> %s in %.2fs"
          % (c["links"], k["links"], c["clicks"], c["schema_version"], args.out, elapsed))


def restore(args):
    try:
        manifest = json.load(open(os.path.join(args.src, MANIFEST)))
    except OSError as e:
        die("no backup in %s: %s" % (args.src, e), 2)
    for kind, target in (("kv", args.kv), ("clicks", args.clicks)):
        info = manifest["stores"][kind]
        copy = os.path.join(args.src, info["file"])
        if sha256(copy) != info["sha256"]:
            die("%s does not match its manifest (sha256)" % copy)
        conn = sqlite3.connect(copy)
        integrity(conn, copy)
        conn.close()
        stale = [p for p in (target, target + "-wal", target + "-shm", target + "-journal") if os.path.exists(p)]
        if stale and not args.force:
            die("%s exists: stop the app and pass --force to replace it" % target, 2)
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        tmp = target + ".restoring"
        shutil.copyfile(copy, tmp)
        for p in stale:
            os.remove(p)
        os.replace(tmp, target)
    c = manifest["stores"]["clicks"]
    print("restore: %d links, %d clicks (backup of %s) -> %s, %s"
          % (c["links"], c["clicks"], manifest["created_at"], args.clicks, args.kv))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="copy both stores while the app runs")
    b.add_argument("--clicks", required=True, help="the click database (e.g. /data/clicks.db)")
    b.add_argument("--kv", required=True, help="Spin's key-value file (e.g. /data/kv.db)")
    b.add_argument("--out", required=True, help="a new directory for the backup")
    r = sub.add_parser("restore", help="put a backup in place (app stopped)")
    r.add_argument("--from", dest="src", required=True, help="a directory written by backup")
    r.add_argument("--clicks", required=True)
    r.add_argument("--kv", required=True)
    r.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args()
    backup(args) if args.command == "backup" else restore(args)


if __name__ == "__main__":
    main()
