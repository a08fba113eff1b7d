#!/usr/bin/env python3
"""Print every property path of runtime-spec's config schema, Linux parts.

Usage: python3 tools/spec-fields.py SCHEMA_DIR > tests/data/runtime-spec-1.3-config-paths.txt
where SCHEMA_DIR is the schema/ directory of a runtime-spec checkout at the
tag to describe (v1.3.0). `$ref`s are followed across files; `[]` stands for
an array element, `*` for a map key. The sections of other platforms
(solaris, windows, vm, zos, freebsd) are left out. tests/every_field.rs
checks that husk's field table covers exactly this list.
"""
import json
import os
import sys

OTHER_PLATFORMS = ("solaris", "windows", "vm", "zos", "freebsd")


def main(schema_dir):
    docs = {}

    def load(name):
        if name not in docs:
            with open(os.path.join(schema_dir, name)) as f:
                docs[name] = json.load(f)
        return docs[name]

    def resolve(node, cur):
        while isinstance(node, dict) and "$ref" in node:
            name, _, frag = node["$ref"].partition("#")
            cur = name or cur
            node = load(cur)
            for part in frag.strip("/").split("/"):
                if part:
                    node = node[part]
        return node, cur

    out = []

    def walk(node, cur, path, depth):
        node, cur = resolve(node, cur)
        if depth > 12 or not isinstance(node, dict):
            return
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, []):
                walk(sub, cur, path, depth + 1)
        for key, sub in node.get("properties", {}).items():
            p = f"{path}.{key}" if path else key
            if p.split(".")[0] in OTHER_PLATFORMS:
                continue
            if p not in out:
                out.append(p)
            walk(sub, cur, p, depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], cur, path + "[]", depth + 1)
        for sub in node.get("patternProperties", {}).values():
            walk(sub, cur, path + ".*", depth + 1)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], cur, path + ".*", depth + 1)

    walk(load("config-schema.json"), "config-schema.json", "", 0)
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
