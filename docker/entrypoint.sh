#!/bin/sh
# Container entrypoint: load the bundled KB (each file's fact graphs replace the graphs of the
# same name, so curation edits made through the API survive a restart), then serve. The index is
# brought in line with the graph when the server starts. ASSETKG_SKIP_LOAD=1 serves the graph as
# it is (e.g. a replica of a graph another instance already loaded).
set -eu
if [ "${ASSETKG_SKIP_LOAD:-0}" != 1 ]; then
  assetkg load
fi
exec assetkg serve "$@"
