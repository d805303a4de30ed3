#!/usr/bin/env bash
# Patroni callback -> patroni-router webhook, for nodes without the patroni-router binary.
# Needs only bash, curl and openssl. Patroni appends ACTION ROLE SCOPE:
#
#   postgresql:
#     callbacks:
#       on_role_change: /usr/local/bin/patroni-callback.sh --url https://ID.lambda-url.REGION.on.aws/ --node pg1
#
# The shared secret comes from $ROUTER_WEBHOOK_SECRET or the file named by
# $ROUTER_WEBHOOK_SECRET_FILE, never from the command line. Note: it is handed to openssl as an
# argument, so other local users could see it in the process list for a few milliseconds;
# where that matters, use `patroni-router notify` instead.
# Exits 0 on a 2xx answer, 1 otherwise; at most 3 attempts, each a fresh request.
set -euo pipefail

usage() { echo "usage: $0 --url URL [--node NAME] [--timeout SECONDS] ACTION ROLE SCOPE" >&2; exit 2; }
url=${ROUTER_WEBHOOK_URL:-}
node=${ROUTER_NODE:-$(hostname)}
timeout=12
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --url) url=${2:-}; shift 2 ;;
    --node) node=${2:-}; shift 2 ;;
    --timeout) timeout=${2:-}; shift 2 ;;
    *) usage ;;
  esac
done
[[ $# -eq 3 && -n $url ]] || usage
action=$1 role=$2 scope=$3

# Values go into JSON unescaped: accept only what Patroni and sane names use.
for v in "$action" "$role" "$scope" "$node"; do
  [[ $v =~ ^[A-Za-z0-9_.@:-]{1,128}$ ]] || { echo "patroni-callback: refusing odd value '$v'" >&2; exit 1; }
done

secret=${ROUTER_WEBHOOK_SECRET:-}
if [[ -z $secret && -n ${ROUTER_WEBHOOK_SECRET_FILE:-} ]]; then
  secret=$(<"$ROUTER_WEBHOOK_SECRET_FILE")
fi
[[ ${#secret} -ge 16 ]] || { echo "patroni-callback: set ROUTER_WEBHOOK_SECRET or ROUTER_WEBHOOK_SECRET_FILE (16+ bytes)" >&2; exit 1; }

delay=0.2
for attempt in 1 2 3; do
  ts=$(date +%s)
  nonce=$(openssl rand -hex 16)
  body=$(printf '{"action":"%s","role":"%s","scope":"%s","node":"%s","timestamp":%s,"nonce":"%s"}' \
    "$action" "$role" "$scope" "$node" "$ts" "$nonce")
  sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -mac HMAC -macopt "key:$secret" | awk '{print $NF}')
  status=$(curl -sS -o /dev/null -w '%{http_code}' --max-time "$timeout" -X POST \
    -H 'Content-Type: application/json' -H "X-Router-Timestamp: $ts" -H "X-Router-Signature: v1=$sig" \
    --data-binary "$body" "$url" || true)
  case $status in
    2??) exit 0 ;;
    429|5??|000) ;;                    # worth another try
    *) echo "patroni-callback: $url answered HTTP $status" >&2; exit 1 ;;
  esac
  [[ $attempt -lt 3 ]] && sleep "$delay" && delay=0.6
done
echo "patroni-callback: $url: no success after 3 attempts (last HTTP $status)" >&2
exit 1
