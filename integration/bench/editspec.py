#!/usr/bin/env python3
"""Turn the config.json that `runc spec` writes into a benchmark config.

    editspec.py CONFIG [--userns HOST_ID SIZE]  > new-config.json

No terminal, /bin/true as the entrypoint, exactly the namespaces pid, network,
ipc, uts and mount (plus user, with uid and gid mappings, given --userns).
"""
import argparse
import json
import sys

NAMESPACES = ["pid", "network", "ipc", "uts", "mount"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--userns", nargs=2, type=int, metavar=("HOST_ID", "SIZE"))
    args = parser.parse_args()

    with open(args.config) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config["hostname"] = "bench"
    linux = config["linux"]
    linux["namespaces"] = [{"type": t} for t in NAMESPACES]
    if args.userns:
        host_id, size = args.userns
        linux["namespaces"].append({"type": "user"})
        mapping = [{"containerID": 0, "hostID": host_id, "size": size}]
        linux["uidMappings"] = mapping
        linux["gidMappings"] = mapping
    json.dump(config, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
