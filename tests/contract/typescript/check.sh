#!/bin/sh
# Generates TypeScript types from openapi.yaml with openapi-typescript and an SDK with
# @hey-api/openapi-ts, and type-checks client.ts, fetch_flow.ts (openapi-fetch) and
# heyapi_flow.ts against them with tsc --strict. Needs npx
# (Node); run by `make lint`. Given BASE_URL USER PASSWORD REMOTE_URL CSV_ZIP_BASE64
# SLOW_URL, it
# then runs both flows against that live server (tests/contract/test_typescript_clients.py).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
spec="$here/../../../openapi.yaml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/client.ts" "$here/flow_support.ts" "$here/fetch_flow.ts" "$here/heyapi_flow.ts" "$work/"
printf '{"private": true, "type": "module"}\n' >"$work/package.json"
(cd "$work" && npm install --silent --no-audit --no-fund \
    "openapi-fetch@${OPENAPI_FETCH_VERSION:-0.17.0}")
npx --yes "openapi-typescript@${OPENAPI_TYPESCRIPT_VERSION:-7.13.0}" "$spec" -o "$work/ferry.d.ts"
(cd "$work" && npx --yes -p "typescript@${TYPESCRIPT_VERSION:-5.9.3}" tsc --strict --target es2022 \
    --module es2022 --moduleResolution bundler --lib es2022,dom \
    --outDir out client.ts fetch_flow.ts)
# The SDK imports its modules without extensions: compiled to CommonJS, Node finds them.
(cd "$work" && npx --yes -p "typescript@${TYPESCRIPT_VERSION:-5.9.3}" \
    -p "@hey-api/openapi-ts@${HEY_API_VERSION:-0.99.0}" openapi-ts -i "$spec" -o heyapi >/dev/null)
(cd "$work" && npx --yes -p "typescript@${TYPESCRIPT_VERSION:-5.9.3}" tsc --strict --target es2022 \
    --module commonjs --moduleResolution node10 --lib es2022,dom,dom.iterable --outDir out-cjs heyapi_flow.ts)
printf '{"type": "commonjs"}\n' >"$work/out-cjs/package.json"
echo "client.ts, fetch_flow.ts and heyapi_flow.ts type-check against the clients generated from openapi.yaml"
if [ "$#" -eq 6 ]; then
    node "$work/out/fetch_flow.js" "$@"
    node "$work/out-cjs/heyapi_flow.js" "$@"
fi
