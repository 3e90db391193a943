#!/bin/sh
# Generates TypeScript types from openapi.yaml with openapi-typescript and type-checks
# client.ts against them with tsc --strict. Needs npx (Node); run by `make lint`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
spec="$here/../../../openapi.yaml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/client.ts" "$work/client.ts"
npx --yes "openapi-typescript@${OPENAPI_TYPESCRIPT_VERSION:-7.13.0}" "$spec" -o "$work/ferry.d.ts"
npx --yes -p "typescript@${TYPESCRIPT_VERSION:-5.9.3}" tsc --noEmit --strict --target es2022 \
    --module es2022 --moduleResolution bundler --lib es2022,dom "$work/client.ts"
echo "client.ts type-checks against the types generated from openapi.yaml"
