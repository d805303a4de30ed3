#!/usr/bin/env bash
# Run a command with moto (the AWS emulator) on a free loopback port, then stop moto.
#   scripts/with-moto.sh cargo test
# Exports AWS_ENDPOINT_URL and dummy credentials so the real AWS SDK talks to moto only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
moto="${MOTO_SERVER:-$here/.venv/bin/moto_server}"
[ -x "$moto" ] || { echo "with-moto: $moto not found: run 'make venv' first" >&2; exit 1; }

port=$("$here/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t moto.XXXXXX.log)
"$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT INT TERM

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then echo "with-moto: moto exited:" >&2; cat "$log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "with-moto: moto did not start on port $port" >&2; cat "$log" >&2; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1
unset AWS_PROFILE AWS_SESSION_TOKEN
echo "with-moto: moto on $AWS_ENDPOINT_URL (pid $moto_pid)" >&2
"$@"
