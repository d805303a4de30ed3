#!/usr/bin/env bash
# Run the function locally under `cargo lambda watch` (the Lambda runtime emulator; no Docker)
# against moto and the testbed (examples/testbed.rs: a FAKE Patroni cluster `pgha`, pg1..pg3
# each on its own loopback address, pg1 leading; it also creates the moto side and the router
# config), and invoke sample events with `cargo lambda invoke`.
#   scripts/with-moto.sh scripts/invoke-local.sh [events/FILE.json ...]   (make invoke-local)
# Before the first function URL event, pg2 takes over (through the testbed's control port), as
# the signed sample says. Webhook events are re-signed first with the README's test secret by
# `patroni-router notify --resign-event`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
venv=$here/.venv
cl=$venv/bin/cargo-lambda
target=${CARGO_TARGET_DIR:-$here/target}
router=$target/debug/patroni-router
testbed=$target/debug/examples/testbed
: "${AWS_ENDPOINT_URL:?run through scripts/with-moto.sh (make invoke-local does)}"
for b in "$router" "$testbed"; do
  [ -x "$b" ] || { echo "invoke-local: $b missing: run 'make invoke-local' (it builds it)" >&2; exit 1; }
done
export ROUTER_WEBHOOK_SECRET=patroni-router-test-secret-0123456789
events=("$@")
[ ${#events[@]} -gt 0 ] || events=(events/plan.json events/scheduled.json events/reconcile.json \
  events/webhook-unsigned.json events/webhook-malformed.json events/webhook-signed.json)

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d -t router-invoke.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Any free port per node: never in the way of a bench's testbed on 8008.
"$testbed" serve --clusters 1 --scope pgha --port 0 --ready-file "$work/testbed.json" \
  --moto-config "$work/router.json" 2>"$work/testbed.log" &
pids+=($!)
for _ in $(seq 1 300); do
  [ -f "$work/testbed.json" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/testbed.log" >&2; exit 1; }
  sleep 0.1
done
[ -f "$work/testbed.json" ] || { echo "invoke-local: the testbed did not get ready" >&2; exit 1; }
control=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["control"])' "$work/testbed.json")

port=$(free_port)
echo "==> cargo lambda watch on 127.0.0.1:$port (builds the function on first use)"
"$cl" lambda watch -A 127.0.0.1 -P "$port" \
  --env-var "ROUTER_CONFIG_FILE=$work/router.json" \
  --env-var "ROUTER_WEBHOOK_SECRET=$ROUTER_WEBHOOK_SECRET" \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" \
  --env-var "AWS_REGION=$AWS_REGION,AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
  >"$work/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done

failed_over=
for ev in "${events[@]}"; do
  payload=$ev
  if [ -z "$failed_over" ] && grep -q '"requestContext"' "$ev"; then
    echo "==> Patroni fails over: pg2 leads (POST $control/clusters/pgha/leader/pg2)"
    curl -fsS -X POST "$control/clusters/pgha/leader/pg2" >/dev/null
    failed_over=1
  fi
  if grep -q '"x-router-signature"' "$ev"; then
    payload=$work/$(basename "$ev")
    "$router" notify --resign-event "$ev" >"$payload"
  fi
  echo "==> cargo lambda invoke patroni-router --data-file $ev"
  # The first invoke waits for the build; give it time.
  if ! "$cl" lambda invoke -A 127.0.0.1 -P "$port" --data-file "$payload" patroni-router \
      >"$work/out.json" 2>"$work/err.txt"; then
    cat "$work/err.txt" >&2; tail -20 "$work/watch.log" >&2; exit 1
  fi
  "$venv/bin/python" - "$work/out.json" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
if "statusCode" in out:
    body = json.loads(out.get("body") or "null")
    print(f"    HTTP {out['statusCode']}: " + (body.get("error") if isinstance(body, dict) and "error" in body
          else f"reconciled, primary {body['clusters'][0]['decision'].get('primary')}, "
               f"{len(body['clusters'][0]['changes'])} change(s)"))
else:
    for c in out.get("clusters", []):
        d = c["decision"]
        print(f"    {out['mode']}: {c['scope']}: {d['kind']} {d.get('primary') or ''} - {d['reason']}")
        for ch in c["changes"]:
            print(f"      {ch['action']} {ch['target']} -> {ch['status']}")
PY
done
