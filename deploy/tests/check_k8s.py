#!/usr/bin/env python3
"""Validates deploy/k8s/ (SpinKube) without a cluster.

- Core objects (Namespace, Secret, Service, StatefulSet) against Kubernetes'
  own schemas with `kubernetes-validate --strict` (PyPI), version K8S_VERSION.
- The SpinApp against the openAPIV3Schema of the vendored CRD
  (deploy/k8s/schema/core.spinkube.dev_spinapps-v0.6.1.yaml), made strict the
  way the API server's strict field validation is: an unknown field fails.
  A deliberately misspelt copy must fail too, or the check proves nothing.
- Cross-references: the runtime-config Secret the SpinApp loads exists, has the
  key spin-operator mounts (runtime-config.toml), parses as TOML with Redis and
  libSQL stores on Services defined here; every SpinApp variable is declared in
  spin.toml; kustomization.yaml lists every manifest.
- The click outbox: with the click database on libsql (shared by every pod) the
  SpinApp sets click_outbox "true", and the `unrecorded` database (each pod's
  outbox) is on a volume of the pod's own (a generic ephemeral volume: one
  claim per pod; SpinApp has no volumeClaimTemplates).

Needs kubernetes-validate, jsonschema (a check-jsonschema dependency), PyYAML,
Python 3.11+ (tomllib).
"""
import copy
import glob
import os
import subprocess
import sys
import tomllib

import jsonschema
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")
CRD = os.path.join(K8S, "schema", "core.spinkube.dev_spinapps-v0.6.1.yaml")
K8S_VERSION = "1.33.0"

errors = []


def fail(msg):
    errors.append(msg)
    print("  FAIL: " + msg)


def strict(schema):
    """additionalProperties: false wherever properties are listed (unless the
    schema preserves unknown fields or already says what extra keys may be)."""
    if isinstance(schema, dict):
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def documents():
    docs = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(open(path)):
            if doc:
                docs.append((os.path.basename(path), doc))
    return docs


def check_outbox(name, app, config):
    variables = {v["name"]: v for v in app["spec"].get("variables", [])}
    outbox = variables.get("click_outbox", {}).get("value")
    databases = config.get("sqlite_database", {})
    shared = databases.get("default", {}).get("type") == "libsql"
    if shared and outbox != "true":
        fail("%s: the click database is libsql (shared by every pod): set variable click_outbox to \"true\", got %r"
             % (name, outbox))
    if not shared and outbox == "true":
        fail("%s: click_outbox \"true\" with a local click database" % name)
    if not shared:
        return
    path = os.path.normpath(databases.get("unrecorded", {}).get("path", ""))
    mounts = [m for m in app["spec"].get("volumeMounts", [])
              if path.startswith(m.get("mountPath", "").rstrip("/") + "/")]
    mount = max(mounts, key=lambda m: len(m["mountPath"]), default=None)
    volumes = {v["name"]: v for v in app["spec"].get("volumes", [])}
    volume = volumes.get(mount["name"]) if mount else None
    if volume is None:
        fail("%s: the unrecorded database %s (each pod's click outbox) is on no volume: on the container's "
             "filesystem its clicks go with the container" % (name, path))
    elif "ephemeral" not in volume:
        kind = next((k for k in volume if k != "name"), "?")
        fail("%s: the unrecorded database %s is on volume type %s: want a generic ephemeral volume (one claim per "
             "pod; a persistentVolumeClaim is one claim for every pod, an emptyDir the node's disk, gone with the pod)"
             % (name, path, kind))
    else:
        print("  unrecorded database %s on the per-pod ephemeral volume %r" % (path, volume["name"]))


def main():
    docs = documents()
    by_kind = {}
    for name, doc in docs:
        by_kind.setdefault(doc["kind"], []).append((name, doc))

    core_files = sorted({name for name, doc in docs if doc["apiVersion"] != "core.spinkube.dev/v1alpha1"})
    print("core objects: kubernetes-validate --strict -k %s %s" % (K8S_VERSION, " ".join(core_files)))
    result = subprocess.run(["kubernetes-validate", "--strict", "--quiet", "-k", K8S_VERSION]
                            + [os.path.join(K8S, f) for f in core_files])
    if result.returncode != 0:
        fail("kubernetes-validate rejected a core object")

    crd = next(d for d in yaml.safe_load_all(open(CRD)) if d)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    validator = jsonschema.Draft7Validator(schema)
    apps = by_kind.get("SpinApp", [])
    if len(apps) != 1:
        fail("want exactly one SpinApp, found %d" % len(apps))
    for name, app in apps:
        print("SpinApp %s (%s) against the vendored CRD schema (strict)" % (app["metadata"]["name"], name))
        for err in validator.iter_errors(app):
            fail("%s: %s at %s" % (name, err.message, "/".join(map(str, err.absolute_path))))
        misspelt = copy.deepcopy(app)
        misspelt["spec"]["replica"] = misspelt["spec"].pop("replicas", 1)
        if validator.is_valid(misspelt):
            fail("the strict CRD schema accepts a misspelt field (spec.replica): the check is not strict")

        # Cross-references.
        secret_name = app["spec"].get("runtimeConfig", {}).get("loadFromSecret")
        secrets = {d["metadata"]["name"]: d for _, d in by_kind.get("Secret", [])}
        services = {d["metadata"]["name"] for _, d in by_kind.get("Service", [])}
        secret = secrets.get(secret_name)
        if not secret:
            fail("runtimeConfig.loadFromSecret %r names no Secret in deploy/k8s" % secret_name)
        else:
            text = (secret.get("stringData") or {}).get("runtime-config.toml")
            if text is None:
                fail("Secret %s has no runtime-config.toml key (spin-operator mounts that key)" % secret_name)
            else:
                config = tomllib.loads(text)
                kv = config.get("key_value_store", {}).get("default", {})
                db = config.get("sqlite_database", {}).get("default", {})
                if kv.get("type") != "redis" or db.get("type") != "libsql":
                    fail("runtime config: want KV type redis and SQLite type libsql, got %r / %r"
                         % (kv.get("type"), db.get("type")))
                for url in (kv.get("url", ""), db.get("url", "")):
                    host = url.split("://", 1)[-1].split(":", 1)[0].split(".", 1)[0]
                    if host not in services:
                        fail("runtime config URL %r: no Service %r in deploy/k8s" % (url, host))
                check_outbox(name, app, config)
        declared = set(tomllib.load(open(os.path.join(ROOT, "spin.toml"), "rb")).get("variables", {}))
        for var in app["spec"].get("variables", []):
            if var["name"] not in declared:
                fail("SpinApp variable %r is not declared in spin.toml [variables]" % var["name"])

    kustomization = yaml.safe_load(open(os.path.join(K8S, "kustomization.yaml")))
    listed = set(kustomization.get("resources", []))
    present = {os.path.basename(p) for p in glob.glob(os.path.join(K8S, "*.yaml"))} - {"kustomization.yaml"}
    if listed != present:
        fail("kustomization.yaml resources %s != manifests %s" % (sorted(listed), sorted(present)))

    print("k8s: %d objects checked, %s" % (len(docs), "%d FAILED" % len(errors) if errors else "all valid"))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
