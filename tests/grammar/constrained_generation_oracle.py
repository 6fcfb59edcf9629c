#!/usr/bin/env python3
"""Constrained generations against an independent validator: every output of
constrained_generation_dump must finish by itself ("stop"), parse as JSON (Python's json), and
validate against its schema with the `jsonschema` package (formats checked where it can).

Usage: constrained_generation_oracle.py DUMP_TOOL VOCAB.gguf SCHEMA_DIR RUNS_PER_CASE MAX_TOKENS
Exit 77 (skipped) when the vocabulary is absent, or jsonschema is missing outside CI.
"""
import json
import os
import pathlib
import subprocess
import sys


def main():
    tool, vocab, schema_dir, runs, max_tokens = sys.argv[1:6]
    if not pathlib.Path(vocab).exists():
        print(f"SKIP: {vocab} not found (../shared/data absent)")
        return 77
    try:
        import jsonschema
    except ImportError:
        print("jsonschema (python3-jsonschema, scripts/install-deps.sh) is not installed")
        return 1 if os.environ.get("CI") == "true" else 77
    schemas = {}
    for path in sorted(pathlib.Path(schema_dir).glob("*.json")):
        schemas[path.name] = json.loads(path.read_text())["schema"]
    out = subprocess.run([tool, vocab, schema_dir, runs, max_tokens], check=True, capture_output=True, text=True).stdout
    failures = []
    count = 0
    tokens = 0
    # split("\n"), not splitlines(): the texts may hold U+2028 and other characters splitlines() breaks at.
    for line in out.split("\n"):
        if not line:
            continue
        r = json.loads(line)
        count += 1
        tokens += r["tokens"]
        where = f'{r["case"]} run {r["run"]}'
        if r["finish"] != "stop":
            failures.append(f'{where}: finished by "{r["finish"]}" after {r["tokens"]} tokens: {r["text"][:200]!r}')
            continue
        try:
            value = json.loads(r["text"])
        except ValueError as e:
            failures.append(f'{where}: not JSON ({e}): {r["text"][:300]!r}')
            continue
        if r["case"] == "json_object":
            if not isinstance(value, dict):
                failures.append(f"{where}: JSON mode produced a {type(value).__name__}, not an object")
            continue
        schema = schemas[r["case"]]
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value))
        if errors:
            failures.append(f'{where}: invalid ({errors[0].message}): {r["text"][:300]!r}')
    expected = (len(schemas) + 1) * int(runs)
    if count != expected:
        failures.append(f"expected {expected} generations, got {count}")
    print(f"{count} constrained generations ({tokens} tokens) over {len(schemas)} schemas and JSON mode: "
          f"{count - len(failures)} valid")
    for f in failures[:20]:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
