#!/usr/bin/env python3
"""Checks a component's imports (from `wasm-tools component wit`) against spin.toml.

  check_imports.py WIT_TEXT_FILE --manifest spin.toml --otel yes|no

Every import must be either a WASI platform interface the Rust std / SDK uses,
or a Spin capability that spin.toml grants to every component that runs this
wasm. Granted capabilities that the component never imports are reported too
(spin.toml should grant only what is used).
"""
import argparse
import re
import sys
import tomllib

# Interfaces that need no grant in spin.toml.
PLATFORM = re.compile(
    r"^wasi:(cli|clocks|io|random|filesystem)/[\w-]+@[\d.]+$|^wasi:http/types@0\.3\.\d+$"
)
# Spin capability -> (manifest key that grants it, what the grant must hold).
GRANTS = {
    "spin:key-value/key-value": "key_value_stores",
    "spin:sqlite/sqlite": "sqlite_databases",
    "spin:variables/variables": "variables",
}
# The store labels the app opens (src/lib.rs STORE_LABEL, src/unrecorded.rs TALLY_LABEL).
LABELS = {"key_value_stores": ["default"], "sqlite_databases": ["default", "unrecorded"]}
OTEL = "wasi:otel/"
OUTBOUND = ("wasi:http/client", "wasi:http/outgoing-handler", "wasi:sockets/", "spin:redis", "spin:postgres", "spin:mysql", "spin:mqtt", "fermyon:spin/llm")


def imports_of(wit_text):
    return sorted(set(re.findall(r"^\s*import\s+([\w:/.@-]+);", wit_text, re.M)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wit")
    ap.add_argument("--manifest", default="spin.toml")
    ap.add_argument("--otel", choices=["yes", "no"], required=True)
    args = ap.parse_args()
    with open(args.wit) as f:
        imports = imports_of(f.read())
    with open(args.manifest, "rb") as f:
        manifest = tomllib.load(f)
    components = manifest.get("component", {})
    problems = []
    if not imports:
        problems.append("no imports found: is this a component's WIT?")

    for name, comp in components.items():
        if comp.get("allowed_outbound_hosts"):
            problems.append(f"component {name} grants outbound hosts {comp['allowed_outbound_hosts']}: none are used")
        granted = {
            "key_value_stores": comp.get("key_value_stores", []),
            "sqlite_databases": comp.get("sqlite_databases", []),
            "variables": list(comp.get("variables", {})),
        }
        for iface, key in GRANTS.items():
            used = any(i.startswith(iface + "@") for i in imports)
            if used and not granted[key]:
                problems.append(f"component {name} imports {iface} but spin.toml grants no {key}")
            if key != "variables" and granted[key] and not used:
                problems.append(f"component {name} grants {key}={granted[key]} that the wasm never uses")
            if key != "variables" and granted[key] and granted[key] != LABELS[key]:
                problems.append(f"component {name} grants {key}={granted[key]}; the app uses {LABELS[key]}")

    for i in imports:
        if PLATFORM.match(i):
            continue
        if any(i.startswith(g + "@") for g in GRANTS):
            continue
        if i.startswith(OTEL):
            if args.otel == "no":
                problems.append(f"{i}: the no-otel build must not import wasi:otel (it would not load on a plain `spin up`)")
            continue
        if i.startswith(OUTBOUND):
            problems.append(f"{i}: outbound access is imported but spin.toml grants none")
            continue
        problems.append(f"{i}: not a platform interface and not granted by spin.toml")
    if args.otel == "yes" and not any(i.startswith(OTEL + "tracing@") for i in imports):
        problems.append("the otel build does not import wasi:otel/tracing")

    print(f"imports ({'otel' if args.otel == 'yes' else 'no otel'}):")
    for i in imports:
        print(f"  {i}")
    if problems:
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        return 1
    print(f"ok: {len(imports)} imports match spin.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
