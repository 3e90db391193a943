#!/bin/sh
# The breaking-change gate: fails when CURRENT (openapi.yaml) would break a client built
# from RELEASED (docs/openapi-released.yaml, the spec of the last release), unless
# CURRENT's info.version moved to another major version. Needs npx (Node); run by `make lint`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root="$here/../.."
released=${1:-$root/docs/openapi-released.yaml}
current=${2:-$root/openapi.yaml}
# Breaks accepted since the release, one finding a line as the gate prints it (# comments).
accepted=${3:-$root/docs/openapi-accepted-breaks.txt}

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

compared=$(mktemp -d)
trap 'rm -rf "$compared"' EXIT
# gate_variants.py leaves out what never breaks a client and splits long anyOf/oneOf
# lists into pairs openapi-diff can finish; it prints what it judges itself.
"${PYTHON:-python3}" "$here/gate_variants.py" "$released" "$current" "$compared" >"$compared/found"
for old in "$compared"/*-released.json; do
    new=${old%-released.json}-current.json
    report=${old%-released.json}.report
    if timeout "${GATE_TIMEOUT:-300}" npx --yes "openapi-diff@${OPENAPI_DIFF_VERSION:-0.24.1}" \
        "$old" "$new" >"$report" 2>&1; then
        continue
    fi
    if ! grep -q '"breakingDifferencesFound": true\|"type": "breaking"' "$report"; then
        echo "breaking-change gate: openapi-diff could not compare the specs:" >&2
        cat "$report" >&2
        exit 2
    fi
    node -e '
        const text = require("fs").readFileSync(process.argv[1], "utf8");
        const found = JSON.parse(text.slice(text.indexOf("{")));
        for (const change of found.breakingDifferences || []) {
            const sides = [...(change.sourceSpecEntityDetails || []), ...(change.destinationSpecEntityDetails || [])];
            console.log(`${change.code}: ${[...new Set(sides.map((side) => side.location))].join(", ")}`);
        }' "$report" >>"$compared/found"
done
sort -u "$compared/found" >"$compared/all"
if [ -f "$accepted" ]; then
    grep -v '^[[:space:]]*\(#\|$\)' "$accepted" >"$compared/accepted" || true
    grep -v -x -F -f "$compared/accepted" "$compared/all" >"$compared/found" || true
else
    cp "$compared/all" "$compared/found"
fi
if [ ! -s "$compared/found" ]; then
    echo "openapi.yaml breaks no client of the released spec"
    exit 0
fi
echo "openapi.yaml breaks clients of the released spec (version $released_major.x):" >&2
sed 's/^/  /' "$compared/found" >&2
echo "Undo the change, bump info.version's major, or accept it in $accepted (see README, Cutting a release)." >&2
exit 1
