#!/usr/bin/env bash
# Load benchmark of the service (a script, not a test): GraphQL `search` and `recommend` at
# concurrency 32 for 30 s each with the `oha` load generator (crates.io), against a server over
# the bundled KB on this machine, next to the single-core query-embedding limit measured in the
# same run (examples/embed_rate.rs pinned to core 0). Writes docs/service-bench.{md,json}.
# Server and embedding probe are dev-profile builds by default, the build `make run` serves and
# the tests use (PROFILE=release for the Docker image's build; its first build of the
# dependencies takes about an hour on two cores).
#
# Usage: ./scripts/bench-service.sh   [CONCURRENCY=32 DURATION=30s MODEL=models/assetkg-minilm
#                                      PROFILE=dev|release OUT=docs/service-bench SKIP_BUILD=1]
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-dev}
case "$PROFILE" in
  release) BUILD_DIR=target/release ;;
  dev) BUILD_DIR=target/debug ;;
  *) echo "PROFILE must be release or dev" >&2; exit 2 ;;
esac
BIN=$BUILD_DIR/assetkg
source scripts/lib-server.sh

OHA_VERSION=1.16.0
CONCURRENCY=${CONCURRENCY:-32}
DURATION=${DURATION:-30s}
OUT=${OUT:-docs/service-bench}
TOOLS=target/tools
if [ -z "${MODEL:-}" ] && [ -f models/assetkg-minilm/model.safetensors ]; then
  MODEL=models/assetkg-minilm
fi
export MODEL

step() { echo "bench-service: $*"; }

step "[1/7] build, models, oha $OHA_VERSION"
[ "${SKIP_BUILD:-}" = 1 ] || cargo build --profile "$PROFILE" --bins --example embed_rate
./scripts/fetch-models.sh
if [ "$("$TOOLS/bin/oha" --version 2>/dev/null | awk '{print $2}')" != "$OHA_VERSION" ]; then
  cargo install oha --version "$OHA_VERSION" --locked --root "$TOOLS"
fi
OHA="$TOOLS/bin/oha"

step "[2/7] single-core embedding limit (${MODEL:-base model})"
EMBED=$(taskset -c 0 "$BUILD_DIR/examples/embed_rate" --model "${MODEL:-models/all-MiniLM-L6-v2}" --seconds 10)
echo "$EMBED"

step "[3/7] server over the bundled KB"
DATA=$(mktemp -d)
trap 'stop_server; rm -rf "$DATA"' EXIT
start_server "$DATA"

# Distinct request bodies, one per line (oha -Z sends them in turn): 64 search texts, and FM2S
# recommendations for every (failure mode, asset) the experts judged, so that no answer repeats.
curl -fsS "$SERVER_URL/sparql" -H 'accept: application/sparql-results+json' --data-urlencode \
  'query=SELECT DISTINCT ?fault ?asset WHERE { ?j akg:judgedFailureMode/skos:prefLabel ?fault ; akg:judgedAsset/skos:prefLabel ?asset }' \
  > "$DATA/pairs.json"
python3 - "$DATA" <<'PY'
import json, sys
data = sys.argv[1]
subjects = ["bearing", "seal", "impeller", "winding", "valve", "gearbox", "coupling", "rotor"]
symptoms = ["wear", "leak", "noise", "overheating", "vibration", "cracking", "fouling", "misalignment"]
# `search` selects what the index holds; `search-entity` also each hit's entity, which the
# server then reads from the store.
selections = {"search": "score iri label", "search-entity": "score entity { iri label definition }"}
for name, selection in selections.items():
    with open(f"{data}/{name}.lines", "w") as out:
        for s in subjects:
            for y in symptoms:
                q = '{ search(text: "%s %s", kinds: [SENSOR, FAILURE_MODE], mode: HYBRID, limit: 10) { %s } }' % (s, y, selection)
                out.write(json.dumps({"query": q}) + "\n")
pairs = json.load(open(f"{data}/pairs.json"))["results"]["bindings"]
with open(f"{data}/recommend.lines", "w") as out:
    for p in pairs:
        q = ('{ recommend(task: FM2S, query: %s, asset: %s, limit: 10) '
             '{ items { score graphLinked entity { iri } explanation { summary } } } }') % (
            json.dumps(p["fault"]["value"]), json.dumps(p["asset"]["value"]))
        out.write(json.dumps({"query": q}) + "\n")
print(f"bench-service: {sum(1 for _ in open(f'{data}/search.lines'))} search and "
      f"{sum(1 for _ in open(f'{data}/recommend.lines'))} recommend request bodies")
PY

run() {
  local name=$1 lines=$2
  # A GraphQL error comes back with HTTP 200, which oha counts as a success, so a sample of
  # the bodies is checked here first.
  local answer
  while read -r body; do
    answer=$(curl -fsS -H 'content-type: application/json' -d "$body" "$SERVER_URL/graphql")
    if echo "$answer" | grep -q '"errors"'; then
      echo "$name returns errors: $answer" >&2
      exit 1
    fi
  done < <(awk 'NR % 16 == 1' "$lines")
  "$OHA" --no-tui --output-format json -z "$DURATION" -w -c "$CONCURRENCY" -m POST \
    -H 'content-type: application/json' -Z "$lines" "$SERVER_URL/graphql" > "$DATA/$name.json"
}

step "[4/7] search: concurrency $CONCURRENCY for $DURATION"
run search "$DATA/search.lines"
step "[5/7] search with entities: concurrency $CONCURRENCY for $DURATION"
run search-entity "$DATA/search-entity.lines"
step "[6/7] recommend: concurrency $CONCURRENCY for $DURATION"
run recommend "$DATA/recommend.lines"

step "[7/7] report $OUT.{md,json}"
python3 - "$DATA" "$EMBED" "$CONCURRENCY" "$DURATION" "$OUT" "$PROFILE" <<'PY'
import json, platform, subprocess, sys, datetime
data, embed, concurrency, duration, out, profile = sys.argv[1:7]
embed = json.loads(embed)
rows = []
for name in ["search", "search-entity", "recommend"]:
    r = json.load(open(f"{data}/{name}.json"))
    summary = r["summary"]
    pct = r["latencyPercentiles"]
    codes = r.get("statusCodeDistribution", {})
    errors = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(r.get("errorDistribution", {}).values())
    rows.append({
        "operation": name,
        "requests_per_second": summary["requestsPerSec"],
        "p50_ms": pct["p50"] * 1e3,
        "p99_ms": pct["p99"] * 1e3,
        "requests": sum(codes.values()),
        "errors": errors,
        "success_rate": summary["successRate"],
    })
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
report = {
    "date": datetime.date.today().isoformat(),
    "cpu": cpu, "cores": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
    "concurrency": int(concurrency), "duration": duration, "profile": profile,
    "model": embed["model"],
    "single_core_embedding_limit_qps": embed["queries_per_second"],
    "single_query_embedding_p50_ms": embed["p50_ms"],
    "operations": rows,
}
json.dump(report, open(f"{out}.json", "w"), indent=2)
lines = [
    "# Service load benchmark",
    "",
    f"`./scripts/bench-service.sh` on {report['date']}: {report['cores']} cores ({cpu}), one `assetkg serve` ({profile} build)",
    f"over the bundled KB (embedded Oxigraph + LanceDB index, model `{embed['model']}`), load from",
    f"`oha` at concurrency {concurrency} for {duration} per operation (GraphQL POST; the bodies cycle through",
    "64 distinct search texts and one FM2S recommendation per judged (failure mode, asset) pair; the",
    "server caches no answer and no embedding, so every request embeds its text).",
    "",
    "| operation | requests/s | p50 (ms) | p99 (ms) | requests | errors | × single-core embedding limit |",
    "|---|---:|---:|---:|---:|---:|---:|",
]
limit = embed["queries_per_second"]
for r in rows:
    lines.append(f"| {r['operation']} | {r['requests_per_second']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['requests']} | {r['errors']} | {r['requests_per_second'] / limit:.2f} |")
lines += [
    "",
    f"Single-core query-embedding limit, measured in the same run (`examples/embed_rate.rs` pinned to",
    f"core 0, one query at a time): **{limit:.1f} queries/s** ({embed['p50_ms']:.2f} ms per query, p50).",
    "`search` embeds one text per request (hybrid: vector + BM25, fused) and answers from the index",
    "alone; `search-entity` also selects each hit's entity (label, definition), read from the store;",
    "`recommend` embeds the query for entity resolution and again with the task instruction, runs",
    "the task's SPARQL and looks up graph paths with provenance for each item.",
]
open(f"{out}.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
