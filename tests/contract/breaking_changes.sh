#!/bin/sh
# The breaking-change gate: fails when CURRENT (openapi.yaml) would break a client built
# from RELEASED (docs/openapi-released.yaml, the spec of the last release), unless
# CURRENT's info.version moved to another major version. Needs npx (Node); run by `make lint`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root="$here/../.."
released=${1:-$root/docs/openapi-released.yaml}
current=${2:-$root/openapi.yaml}

major() { sed -n 's/^  version: *"\{0,1\}\([0-9][0-9]*\)\..*/\1/p' "$1" | head -n 1; }
released_major=$(major "$released")
current_major=$(major "$current")
if [ -z "$released_major" ] || [ -z "$current_major" ]; then
    echo "breaking-change gate: no info.version in $released or $current" >&2
    exit 2
fi
if [ "$current_major" != "$released_major" ]; then
    echo "info.version's major moved ($released_major -> $current_major): breaking changes are allowed"
    exit 0
fi

report=$(mktemp)
compared=$(mktemp -d)
trap 'rm -rf "$report" "$compared"' EXIT
# Examples, links and prose never break a client: both sides are compared without them,
# which keeps the documents openapi-diff dereferences small.
for side in released current; do
    eval "source=\$$side"
    "${PYTHON:-python3}" - "$source" "$compared/$side.json" <<'PY'
import json
import sys

import yaml

DROPPED = {"example", "examples", "links", "summary", "externalDocs"}


def contract(node, parent=""):
    if isinstance(node, dict):
        if parent == "properties":  # here a key is a field's name, whatever it is called
            return {key: contract(value, key) for key, value in node.items()}
        # A response must keep a description: an empty one.
        return {
            key: "" if key == "description" else contract(value, key)
            for key, value in node.items()
            if key not in DROPPED
        }
    if isinstance(node, list):
        return [contract(item) for item in node]
    return node


with open(sys.argv[1]) as source:
    spec = yaml.safe_load(source)
with open(sys.argv[2], "w") as target:
    json.dump(contract(spec), target)
PY
done
if npx --yes "openapi-diff@${OPENAPI_DIFF_VERSION:-0.24.1}" "$compared/released.json" "$compared/current.json" >"$report" 2>&1; then
    echo "openapi.yaml breaks no client of the released spec"
    exit 0
fi
if grep -q '"breakingDifferencesFound": true\|"type": "breaking"' "$report"; then
    echo "openapi.yaml breaks clients of the released spec (version $released_major.x):" >&2
    node -e '
        const text = require("fs").readFileSync(process.argv[1], "utf8");
        const found = JSON.parse(text.slice(text.indexOf("{")));
        for (const change of found.breakingDifferences || []) {
            const sides = [...(change.sourceSpecEntityDetails || []), ...(change.destinationSpecEntityDetails || [])];
            console.log(`  ${change.code}: ${[...new Set(sides.map((side) => side.location))].join(", ")}`);
        }' "$report" >&2
    echo "Undo the change, or bump info.version's major (see README, Cutting a release)." >&2
    exit 1
fi
echo "breaking-change gate: openapi-diff could not compare the specs:" >&2
cat "$report" >&2
exit 2
