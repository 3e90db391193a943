#!/bin/sh
# Fails when Redocly's agent-readiness score of SPEC (openapi.yaml) falls below FLOOR
# (90): the median operation's score, so one careless operation does not move it, but
# a schema shared by many (an envelope, a room, a user) that loses its bounds does.
# Needs npx (Node); run by `make lint`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
spec=${1:-$here/../../openapi.yaml}
floor=${FLOOR:-90}
report=$(mktemp)
noise=$(mktemp)
trap 'rm -f "$report" "$noise"' EXIT
if ! npx --yes "@redocly/cli@${REDOCLY_SCORE_VERSION:-2.77.0}" score "$spec" --format json >"$report" 2>"$noise"; then
    cat "$noise" >&2
    exit 2
fi
"${PYTHON:-python3}" - "$report" "$floor" <<'PY'
import json
import sys

score = json.load(open(sys.argv[1]))["agentReadiness"]
floor = float(sys.argv[2])
print(f"Redocly agent readiness {score}/100 (floor {floor:g})")
sys.exit(0 if score >= floor else 1)
PY
