# Shared by scripts that need a running assetkg server (bench-service.sh, real-clients.sh):
# `start_server DIR` loads the bundled KB into a store in DIR, indexes it, writes a service
# configuration with a reader and a curator token, and serves it on a free loopback port in the
# background. It sets SERVER_URL, SERVER_PID, READER_TOKEN and CURATOR_TOKEN; `stop_server`
# stops it. MODEL (a model directory) chooses the embedding model; the base model by default.

BIN=${BIN:-target/debug/assetkg}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() {
  local dir=$1
  local model_args=()
  [ -n "${MODEL:-}" ] && model_args=(--model "$MODEL")
  mkdir -p "$dir"
  "$BIN" --data-dir "$dir" load > "$dir/load.log"
  "$BIN" --data-dir "$dir" "${model_args[@]}" index
  READER_TOKEN=$("$BIN" token --name reader-client --role reader 2>/dev/null)
  CURATOR_TOKEN=$("$BIN" token --name curator-client --role curator 2>/dev/null)
  local reader_sha curator_sha
  reader_sha=$(printf %s "$READER_TOKEN" | sha256sum | cut -d' ' -f1)
  curator_sha=$(printf %s "$CURATOR_TOKEN" | sha256sum | cut -d' ' -f1)
  cat > "$dir/service.toml" <<TOML
anonymous_read = true

[[tokens]]
name = "reader-client"
role = "reader"
sha256 = "$reader_sha"

[[tokens]]
name = "curator-client"
role = "curator"
sha256 = "$curator_sha"
TOML
  local port
  port=$(free_port)
  SERVER_URL="http://127.0.0.1:$port"
  "$BIN" --data-dir "$dir" "${model_args[@]}" serve --bind "127.0.0.1:$port" \
    --service-config "$dir/service.toml" > "$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 240); do
    if curl -fsS "$SERVER_URL/readyz" > /dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2> /dev/null; then
      echo "the server exited; its log:" >&2
      cat "$dir/server.log" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "the server did not become ready in 120 s; its log:" >&2
  cat "$dir/server.log" >&2
  return 1
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2> /dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
  fi
}
