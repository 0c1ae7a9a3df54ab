#!/usr/bin/env bash
# Fetches the servers the deployment tests start on loopback, pinned by version (and sha256
# where a single file is fetched), into target/tools (idempotent):
#   target/tools/oxigraph-<v>/oxigraph   Oxigraph's SPARQL server (the `oxigraph-cli` binary, as
#                                        published on PyPI in the `oxigraph` wheel)
#   target/tools/moto-<v>/bin/moto_server an S3-compatible server (moto, PyPI) for LanceDB on S3
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${ASSETKG_TOOLS_DIR:-target/tools}"
OXIGRAPH_VERSION="0.5.13"
OXIGRAPH_WHEEL="oxigraph-0.5.13-py3-none-manylinux_2_28_x86_64.whl"
OXIGRAPH_SHA256="dbb295a905adda409f18ce154b1353d07d20954ca3ea65dc546fc153c95c2c05"
MOTO_VERSION="5.2.5"

say() { echo "fetch-test-servers: $*" >&2; }

oxigraph_dir="$TOOLS/oxigraph-$OXIGRAPH_VERSION"
if [ ! -x "$oxigraph_dir/oxigraph" ]; then
  say "downloading oxigraph==$OXIGRAPH_VERSION (the Oxigraph server binary) from PyPI"
  mkdir -p "$oxigraph_dir/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 \
    --dest "$oxigraph_dir/wheel" "oxigraph==$OXIGRAPH_VERSION"
  echo "$OXIGRAPH_SHA256  $oxigraph_dir/wheel/$OXIGRAPH_WHEEL" | sha256sum -c --status \
    || { say "error: $OXIGRAPH_WHEEL does not have the pinned sha256 $OXIGRAPH_SHA256"; exit 1; }
  python3 - "$oxigraph_dir/wheel/$OXIGRAPH_WHEEL" "$oxigraph_dir/oxigraph" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/oxigraph"))
    with z.open(name) as src, open(out, "wb") as dst:
        dst.write(src.read())
PY
  chmod +x "$oxigraph_dir/oxigraph"
  rm -rf "$oxigraph_dir/wheel"
fi

moto_dir="$TOOLS/moto-$MOTO_VERSION"
if [ ! -x "$moto_dir/bin/moto_server" ]; then
  say "installing moto[server]==$MOTO_VERSION (an S3-compatible server) from PyPI into $moto_dir"
  rm -rf "$moto_dir"
  python3 -m venv "$moto_dir"
  "$moto_dir/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
say "ok: $("$oxigraph_dir/oxigraph" --version), moto $MOTO_VERSION"
