#!/bin/sh
# Installs Rocket.Chat's TypeScript client, @rocket.chat/api-client, with the typings of
# its endpoints, type-checks rocketchat_flow.ts against them with tsc --strict and runs
# it against a live server: rocketchat_check.sh BASE ADMIN PASSWORD MEMBER MEMBER_PASSWORD
# (tests/contract/test_rocketchat_api_client.py). Needs npm (Node).
#
# @rocket.chat/ui-kit, which the typings need, publishes a dependency on typia in Yarn's
# `patch:` form, which npm cannot install (EUNSUPPORTEDPROTOCOL); the override names the
# same typia release as a plain version.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/rocketchat_flow.ts" "$work/"
printf '{"private": true, "overrides": {"typia": "%s"}}\n' "${TYPIA_VERSION:-9.7.2}" >"$work/package.json"
(cd "$work" && npm install --silent --no-audit --no-fund \
    "@rocket.chat/api-client@${RC_API_CLIENT_VERSION:-0.2.57}" "typescript@${TYPESCRIPT_VERSION:-5.9.3}")
# The GET endpoints the typings offer for the families a client reads an import with.
node -e '
    const fs = require("fs"), path = require("path");
    const root = path.join(process.argv[1], "node_modules/@rocket.chat/rest-typings/dist/v1");
    const files = [];
    const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).forEach((entry) =>
        entry.isDirectory() ? walk(path.join(dir, entry.name))
            : entry.name.endsWith(".d.ts") && files.push(path.join(dir, entry.name)));
    walk(root);
    const found = new Set();
    for (const file of files) {
        for (const match of fs.readFileSync(file, "utf8").matchAll(/ {4}\x27(\/v1\/(?:users|channels|groups|im|dm|rooms|roles|chat|subscriptions)\.[A-Za-z.]+)\x27: \{([\s\S]*?)\n {4}\};/g)) {
            if (match[2].includes("GET:")) found.add(match[1]);
        }
    }
    fs.writeFileSync(path.join(process.argv[1], "endpoints.json"), JSON.stringify([...found].sort()));
' "$work"
(cd "$work" && ./node_modules/.bin/tsc --strict --skipLibCheck --target es2022 --module commonjs \
    --moduleResolution node10 --lib es2022,dom --outDir out rocketchat_flow.ts)
node "$work/out/rocketchat_flow.js" "$@" "$work/endpoints.json"
