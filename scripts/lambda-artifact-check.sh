#!/usr/bin/env bash
# The deploy artefact, checked as users get it: the Lambda zip's size, and that very bootstrap
# run in Lambda mode against the Lambda Runtime API emulator for one scheduled event.
#   scripts/lambda-artifact-check.sh target/lambda/patroni-router/bootstrap.zip   (.ci/run)
# An arm64 zip on an x86_64 host runs under qemu-user (qemu-user-static + the arm64 glibc of
# libc6-arm64-cross, apt-installed here when missing). The config points at nothing reachable:
# the run must answer with a fail-static report (no_primary) and an EMF metrics line.
# Every process started here is stopped by its PID.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
zip=${1:?usage: lambda-artifact-check.sh BOOTSTRAP_ZIP}
max_bytes=${MAX_ZIP_BYTES:-10485760}
venv=$here/.venv
cl=$venv/bin/cargo-lambda
[ -x "$cl" ] || { echo "lambda-artifact-check: $cl not found: make venv" >&2; exit 1; }

size=$(stat -c %s "$zip")
awk -v z="$zip" -v s="$size" -v m="$max_bytes" \
  'BEGIN { printf "lambda-artifact-check: %s: %d bytes (%.2f MiB, limit %.0f MiB)\n", z, s, s / 1048576, m / 1048576 }'
if [ "$size" -gt "$max_bytes" ]; then
  echo "lambda-artifact-check: FAILED - the zip is over $max_bytes bytes" >&2
  exit 1
fi

work=$(mktemp -d -t lambda-artifact.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$venv/bin/python" - "$zip" "$work" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.namelist() == ["bootstrap"], f"the zip must hold exactly 'bootstrap', holds {z.namelist()}"
z.extract("bootstrap", sys.argv[2])
PY
chmod +x "$work/bootstrap"
# ELF e_machine (offset 18, little endian): 183 = aarch64, 62 = x86_64.
machine=$(od -An -t u2 -j 18 -N 2 "$work/bootstrap" | tr -d ' ')
case "$machine" in 183) arch=aarch64 ;; 62) arch=x86_64 ;; *) echo "unknown ELF machine $machine" >&2; exit 1 ;; esac
run=("$work/bootstrap")
if [ "$arch" != "$(uname -m)" ]; then
  [ "$arch" = aarch64 ] || { echo "lambda-artifact-check: cannot run $arch on $(uname -m)" >&2; exit 1; }
  if ! command -v qemu-aarch64-static >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
    echo "lambda-artifact-check: installing qemu-user-static and libc6-arm64-cross (to run the arm64 binary)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static libc6-arm64-cross >/dev/null
  fi
  run=(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$work/bootstrap")
fi
echo "lambda-artifact-check: bootstrap is $arch, run as: ${run[*]}"

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
dead=$(free_port) # nothing listens here: Patroni and AWS are both unreachable
"$cl" lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >"$work/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

config=$(cat <<JSON
{"patroni": {"request_timeout": "500ms", "poll_deadline": "1s"},
 "aws": {"max_attempts": 1, "attempt_timeout": "1s"},
 "clusters": [{"scope": "pgha",
   "nodes": [{"name": "pg1", "api_url": "http://127.0.0.1:$dead", "address": "10.0.1.10"}],
   "target_group": {"arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef", "port": 5432}}]}
JSON
)
# The environment Lambda gives a function (plus an AWS endpoint that refuses connections).
env -i PATH="$PATH" AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" \
  AWS_LAMBDA_FUNCTION_NAME=_ AWS_LAMBDA_FUNCTION_VERSION='$LATEST' AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 \
  AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/_ AWS_LAMBDA_LOG_STREAM_NAME=check LAMBDA_TASK_ROOT="$work" \
  AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_ENDPOINT_URL="http://127.0.0.1:$dead" ROUTER_CONFIG="$config" \
  "${run[@]}" >"$work/stdout" 2>"$work/stderr" &
pids+=($!)

t0=$(date +%s.%N)
if ! timeout 120 "$cl" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" \
    --data-file events/scheduled.json _ >"$work/answer.json" 2>"$work/invoke.err"; then
  echo "lambda-artifact-check: FAILED - the invoke did not answer" >&2
  cat "$work/invoke.err" "$work/stderr" >&2; tail -20 "$work/emulator.log" >&2
  exit 1
fi
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
"$venv/bin/python" - "$work/answer.json" "$work/stdout" "$took" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
cluster = answer["clusters"][0]
kind = cluster["decision"]["kind"]
assert kind == "no_primary", f"expected a fail-static no_primary decision, got {kind}: {answer}"
emf = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{") and '"_aws"' in l]
assert emf and emf[0].get("DecisionNoPrimary") == 1, f"no EMF line with DecisionNoPrimary=1 on stdout: {emf}"
print(f"lambda-artifact-check: OK - scheduled event answered in {sys.argv[3]} s: {cluster['scope']}: "
      f"{kind} ({cluster['decision'].get('reason', '')}), {len(emf)} EMF line(s)")
PY
