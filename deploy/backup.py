#!/usr/bin/env python3
"""Back up and restore the shortener's file stores while the app runs.

  backup.py backup  --clicks CLICKS.db --kv KV.db [--unrecorded UNRECORDED.db] --out DIR
  backup.py restore --from DIR --clicks CLICKS.db --kv KV.db [--unrecorded UNRECORDED.db] [--force]

The stores of the default runtime config are three SQLite files
(deploy/app/runtime.toml): /data/clicks.db (clicks, rollups, the link
registry), /data/unrecorded.db (the tally of clicks served while clicks.db
refused writes) and /data/kv.db (Spin's key-value store, table
spin_key_value(store, key, value), the link records under `link:<slug>`).
--unrecorded defaults to unrecorded.db beside --clicks, where runtime.toml
puts it.

backup copies each with SQLite's online backup API in one step: one read
transaction per file. clicks.db and unrecorded.db are in WAL mode, where a
reader never blocks a writer, so redirects keep committing during the copy.
kv.db is in rollback-journal mode: a link create/delete waits for the copy of
that (small) file; the redirect path only reads it.

The files are copied one after the other, so a link created, deleted or
re-created between two copies is in one copy and not in the other. Both
backup and restore therefore reconcile the registry (links in clicks.db) with
the records (link:* in kv.db): a link is kept when its registry row and its
record are both there with the same slug and creation second (a record that
does not decode is matched on its slug alone: the app counts it as corrupt);
a record without such a row is dropped, and so is a row without such a record
(with its clicks and rollups, by the app's own delete trigger, which moves its
totals to retired_clicks). clicks.db is copied first, kv.db last, so what is
kept is every link that existed from the first copy to the last one, with its
clicks as of the first copy and its record as of the last; a link created or
deleted during the backup is left out whole, never half. (A link deleted and
re-created within the same second under the same slug cannot be told from
itself; its record then goes with the other generation's row.)

Each copy is checked (PRAGMA integrity_check) and described in
DIR/manifest.json (sha256, schema version, counts).

restore refuses while any target is open by another process (the app running:
Spin keeps kv.db open as long as it runs, clicks.db while it serves); it asks
the kernel for a write lease, which it grants only when no one else has the
file open, even from another container on the same volume, and also looks
for holders in /proc. Then it checks the manifest and the copies, reconciles
them as above and puts them in place of the targets (a target that exists is
refused without --force; its -wal/-shm/-journal files are removed with it).

Stdlib only. Redis (links) and sqld (clicks) have their own backups: see
deploy/README.md "Backups".
"""
import argparse
import datetime
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import sys

MANIFEST = "manifest.json"
FILES = {"clicks": "clicks.db", "unrecorded": "unrecorded.db", "kv": "kv.db"}
# Copy order: the registry first, the records last (see above).
ORDER = ("clicks", "unrecorded", "kv")
# fcntl.F_SETLEASE is Linux's F_LINUX_SPECIFIC_BASE (1024) + 0.
F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)


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
        elif kind == "unrecorded":
            info["rows"] = scalar(conn, "SELECT count(*) FROM unrecorded_clicks", 0)
            info["clicks"] = scalar(conn, "SELECT coalesce(sum(clicks), 0) FROM unrecorded_clicks", 0)
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


def record_created(value):
    """The creation time (unix seconds) of a link record, None when it does not decode."""
    try:
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value).decode("utf-8")
        created = json.loads(value)["created_at"]
        return int(datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None


def reconcile(kv_path, clicks_path):
    """Keeps only whole links in a pair of copies (see the module's doc).

    Returns the slugs of the records and of the registry rows dropped."""
    clicks = sqlite3.connect(clicks_path)
    kv = sqlite3.connect(kv_path)
    try:
        rows = dict(clicks.execute("SELECT slug, created_at FROM links").fetchall())
        records = kv.execute("SELECT rowid, key, value FROM spin_key_value WHERE key LIKE 'link:%'").fetchall()
        kept, dropped_records = set(), []
        for rowid, key, value in records:
            slug = key[len("link:"):]
            created = record_created(value)
            if slug in rows and (created is None or created == rows[slug]):
                kept.add(slug)
            else:
                dropped_records.append(slug)
                kv.execute("DELETE FROM spin_key_value WHERE rowid = ?", (rowid,))
        dropped_rows = sorted(set(rows) - kept)
        for slug in dropped_rows:
            # The links_delete trigger removes its clicks and rollups, as the app's delete does.
            clicks.execute("DELETE FROM links WHERE slug = ?", (slug,))
        kv.commit()
        clicks.commit()
        for conn in (kv, clicks):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sorted(dropped_records), dropped_rows
    finally:
        kv.close()
        clicks.close()


def openers(real):
    """Processes of this host (this PID namespace) with `real` open."""
    pids = set()
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == real:
                    pids.add(int(pid))
            except OSError:
                pass
    return sorted(pids)


def holders(path):
    """Why `path` is open by another process (a sentence), or None."""
    if not os.path.exists(path):
        return None
    pids = openers(os.path.realpath(path))
    named = (" (process %s)" % ", ".join(map(str, pids))) if pids else ""
    # The kernel grants a write lease only when no other descriptor of the
    # file is open anywhere, also in another container sharing the volume.
    # Someone opening the file while the lease is held makes the kernel
    # signal the holder (SIGIO, fatal by default): ignore it, the lease is
    # let go at once anyway.
    if hasattr(signal, "SIGIO"):
        signal.signal(signal.SIGIO, signal.SIG_IGN)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_WRLCK)
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EBUSY):
            return "%s is open by another process%s" % (path, named)
        # EACCES/EPERM (not the file's owner), EINVAL (no leases on this
        # file system): only /proc can tell.
        print("backup.py: warning: cannot test %s with a lease (%s); only this host's /proc was checked"
              % (path, e.strerror), file=sys.stderr)
    finally:
        os.close(fd)
    return ("%s is open%s" % (path, named)) if pids else None


def companions(target):
    return [target + suffix for suffix in ("", "-wal", "-shm", "-journal")]


def backup(args):
    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(os.path.join(args.out, MANIFEST)):
        die("%s already holds a backup" % args.out, 2)
    started = datetime.datetime.now(datetime.timezone.utc)
    manifest = {"created_at": started.isoformat(timespec="seconds"), "stores": {}}
    sources = {"clicks": args.clicks, "unrecorded": args.unrecorded, "kv": args.kv}
    for kind in ORDER:  # clicks first, kv last: see above
        copy_online(sources[kind], os.path.join(args.out, FILES[kind]))
    dropped_records, dropped_rows = reconcile(os.path.join(args.out, FILES["kv"]), os.path.join(args.out, FILES["clicks"]))
    for kind in ORDER:
        dest = os.path.join(args.out, FILES[kind])
        manifest["stores"][kind] = dict(describe(kind, dest), source=os.path.abspath(sources[kind]))
    manifest["split_links_dropped"] = {"records": dropped_records, "registry_rows": dropped_rows}
    elapsed = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    manifest["seconds"] = round(elapsed, 3)
    with open(os.path.join(args.out, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    c, k, u = (manifest["stores"][kind] for kind in ("clicks", "kv", "unrecorded"))
    print("backup: %d links (%d records), %d clicks, %d unrecorded, schema v%s -> %s in %.2fs"
          "; links changed during the backup, left out: %d"
          % (c["links"], k["links"], c["clicks"], u["clicks"], c["schema_version"], args.out, elapsed,
             len(set(dropped_records) | set(dropped_rows))))


def restore(args):
    try:
        manifest = json.load(open(os.path.join(args.src, MANIFEST)))
    except OSError as e:
        die("no backup in %s: %s" % (args.src, e), 2)
    targets = {"clicks": args.clicks, "unrecorded": args.unrecorded, "kv": args.kv}
    kinds = [kind for kind in ORDER if kind in manifest["stores"]]
    if "unrecorded" not in kinds:
        print("backup.py: warning: this backup has no unrecorded.db (an older backup.py); %s is left as it is"
              % args.unrecorded, file=sys.stderr)
    # Nothing is touched while the app (or anything else) has a target open,
    # --force or not.
    busy = [why for kind in kinds for why in map(holders, companions(targets[kind])) if why]
    if busy:
        die("refusing to restore while the app runs: %s. Stop the app first (docker compose stop app)."
            % "; ".join(busy), 3)
    for kind in kinds:
        target = targets[kind]
        if any(os.path.exists(p) for p in companions(target)) and not args.force:
            die("%s exists: stop the app and pass --force to replace it" % target, 2)
    tmps = {}
    try:
        for kind in kinds:
            info = manifest["stores"][kind]
            copy = os.path.join(args.src, info["file"])
            if sha256(copy) != info["sha256"]:
                die("%s does not match its manifest (sha256)" % copy)
            conn = sqlite3.connect(copy)
            integrity(conn, copy)
            conn.close()
            target = targets[kind]
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            tmps[kind] = target + ".restoring"
            shutil.copyfile(copy, tmps[kind])
        # Backups by an older backup.py were not reconciled; this one's are
        # already, and then nothing is dropped.
        dropped_records, dropped_rows = reconcile(tmps["kv"], tmps["clicks"])
        for kind in kinds:
            target = targets[kind]
            for p in companions(target):
                if os.path.exists(p):
                    os.remove(p)
            os.replace(tmps.pop(kind), target)
    finally:
        for tmp in tmps.values():
            for p in companions(tmp):
                if os.path.exists(p):
                    os.remove(p)
    c = manifest["stores"]["clicks"]
    dropped = set(dropped_records) | set(dropped_rows)
    print("restore: %d links, %d clicks (backup of %s) -> %s; %d split links left out%s"
          % (c["links"] - len(dropped_rows), c["clicks"], manifest["created_at"],
             ", ".join(targets[k] for k in kinds), len(dropped), (": " + ", ".join(sorted(dropped))) if dropped else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="copy the stores while the app runs")
    b.add_argument("--clicks", required=True, help="the click database (e.g. /data/clicks.db)")
    b.add_argument("--kv", required=True, help="Spin's key-value file (e.g. /data/kv.db)")
    b.add_argument("--unrecorded", help="the unrecorded-clicks tally (default: unrecorded.db beside --clicks)")
    b.add_argument("--out", required=True, help="a new directory for the backup")
    r = sub.add_parser("restore", help="put a backup in place (app stopped)")
    r.add_argument("--from", dest="src", required=True, help="a directory written by backup")
    r.add_argument("--clicks", required=True)
    r.add_argument("--kv", required=True)
    r.add_argument("--unrecorded", help="default: unrecorded.db beside --clicks")
    r.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args()
    if args.unrecorded is None:
        args.unrecorded = os.path.join(os.path.dirname(os.path.abspath(args.clicks)), FILES["unrecorded"])
    backup(args) if args.command == "backup" else restore(args)


if __name__ == "__main__":
    main()
