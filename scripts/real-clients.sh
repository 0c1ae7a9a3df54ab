#!/usr/bin/env bash
# Standard clients, unchanged, against a real assetkg server: SPARQLWrapper and rdflib's
# SPARQLStore on /sparql (SELECT, ASK, CONSTRUCT, and an UPDATE with a curator's bearer token),
# and the gql GraphQL client on /graphql (schema introspection, then queries validated against
# it, and a mutation). Exits non-zero when any check fails.
#
# Usage: ./scripts/real-clients.sh   (after `cargo build`; uses models/ from fetch-models.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-server.sh

VENV=target/clients/venv
# Pinned client versions (PyPI).
PINS=(SPARQLWrapper==2.0.0 rdflib==7.6.0 gql==4.4.0 requests==2.34.2 requests-toolbelt==1.0.0)

echo "real-clients: [1/3] Python clients (${PINS[*]})"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
STAMP="$VENV/.pins"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "${PINS[*]}" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
  echo "${PINS[*]}" > "$STAMP"
fi

echo "real-clients: [2/3] a server over the bundled KB"
DATA=$(mktemp -d)
trap 'stop_server; rm -rf "$DATA"' EXIT
start_server "$DATA"

echo "real-clients: [3/3] the clients against $SERVER_URL"
"$VENV/bin/python" scripts/real_clients.py "$SERVER_URL" "$READER_TOKEN" "$CURATOR_TOKEN"
