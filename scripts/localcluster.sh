#!/usr/bin/env bash
# A real local Patroni cluster on loopback: one etcd, three Patroni nodes managing PostgreSQL,
# all run as the `postgres` user (PostgreSQL refuses root), data on tmpfs (/dev/shm).
#
#   localcluster.sh install                  apt packages + the Patroni venv (idempotent)
#   localcluster.sh up [--callback-url URL --router-bin PATH --secret-file FILE] [--sync]
#                                            start; prints the cluster dir (use it below)
#   localcluster.sh down DIR                 stop what `up` started and remove DIR
#   localcluster.sh info DIR                 the cluster as JSON (nodes, ports)
#   localcluster.sh leader DIR               the member whose /primary answers 200 (or nothing)
#   localcluster.sh kill DIR NODE            host loss: kill -9 Patroni and the postmaster
#   localcluster.sh start DIR NODE           start a node again (it rejoins)
#   localcluster.sh freeze|thaw DIR NODE     SIGSTOP / SIGCONT the node's Patroni
#   localcluster.sh etcd-stop|etcd-start DIR stop / start etcd
#   localcluster.sh switchover DIR [NODE]    patronictl switchover to NODE (default: any replica)
#   localcluster.sh standby-up DIR           a standby cluster `pgdr` (dr1, dr2) replicating from
#                                            the current leader: the DR region's cluster
#   localcluster.sh standby-promote DIR      promote it (remove `standby_cluster` from its config)
#
# Every PID started is recorded in DIR and only those are ever signalled; DIR is removed only
# if it carries the marker this script wrote; a taken port is an error.
set -euo pipefail

VENV=${PATRONI_VENV:-/opt/patroni-router/patroni-venv}
PATRONI_VERSION=4.1.5
SCOPE=pgha
NODES=(pg1 pg2 pg3)
DR_SCOPE=pgdr
DR_NODES=(dr1 dr2)
MARKER=.patroni-router-localcluster
RUNAS=(setpriv --reuid=postgres --regid=postgres --init-groups)

die() { echo "localcluster: $*" >&2; exit 1; }
log() { echo "localcluster: $*" >&2; }

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/postgres" ] || die "PostgreSQL not installed: run '$0 install'"
  echo "$d"
}

cmd_install() {
  local need=()
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
  command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
  /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
  command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "need root to install: ${need[*]}"
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql package creates it)"
  if ! "$VENV/bin/patroni" --version 2>/dev/null | grep -q "$PATRONI_VERSION"; then
    log "creating the Patroni venv in $VENV (readable by postgres, on /usr/bin/python3)"
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "patroni[etcd3]==$PATRONI_VERSION" psycopg2-binary
    chmod -R a+rX "$(dirname "$VENV")"
  fi
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_dir() {
  [ -n "${1:-}" ] && [ -d "$1" ] && [ -f "$1/$MARKER" ] || die "${1:-(none)} is not a cluster dir made by this script"
}

get() { cat "$1/$2"; }

node_port() { get "$1" "$2.api_port"; }

# Start one Patroni node as postgres; record its PID.
start_node() {
  local dir=$1 node=$2
  if [ -f "$dir/$node.pid" ] && kill -0 "$(cat "$dir/$node.pid")" 2>/dev/null; then
    die "$node is already running"
  fi
  port_taken "$(node_port "$dir" "$node")" && die "port $(node_port "$dir" "$node") of $node is taken"
  "${RUNAS[@]}" env PATH="$VENV/bin:/usr/bin:/bin" "$VENV/bin/patroni" "$dir/$node.yml" \
    >>"$dir/$node.log" 2>&1 &
  echo $! >"$dir/$node.pid"
}

start_etcd() {
  local dir=$1
  local cp pp
  cp=$(get "$dir" etcd.client_port); pp=$(get "$dir" etcd.peer_port)
  port_taken "$cp" && die "etcd port $cp is taken"
  "${RUNAS[@]}" etcd --name e1 --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "e1=http://127.0.0.1:$pp" --log-level warn >>"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$cp/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "etcd did not start (see $dir/etcd.log)"
}

write_node_config() {
  local dir=$1 node=$2 sync=$3 callback=$4 scope=${5:-$SCOPE} standby=${6:-}
  local api pg
  api=$(node_port "$dir" "$node"); pg=$(get "$dir" "$node.pg_port")
  cat >"$dir/$node.yml" <<EOF
scope: $scope
name: $node
log:
  level: WARNING
restapi:
  listen: 127.0.0.1:$api
  connect_address: 127.0.0.1:$api
etcd3:
  hosts: 127.0.0.1:$(get "$dir" etcd.client_port)
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: $sync
$standby
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_connections: 50
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 64MB
        shared_buffers: 32MB
        # DSM segments in the data dir (tmpfs), so a kill -9 leaves nothing behind in /dev/shm.
        dynamic_shared_memory_type: mmap
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 md5
    - host all all 127.0.0.1/32 md5
postgresql:
  listen: 127.0.0.1:$pg
  connect_address: 127.0.0.1:$pg
  data_dir: $dir/data/$node
  bin_dir: $(pg_bin)
  pgpass: $dir/$node.pgpass
  authentication:
    replication: {username: replicator, password: replicator-local}
    superuser: {username: postgres, password: postgres-local}
    rewind: {username: rewinder, password: rewinder-local}
  parameters:
    unix_socket_directories: $dir/sock
$callback
EOF
}

cmd_up() {
  local callback_url="" router_bin="" secret_file="" sync=false
  while [ $# -gt 0 ]; do
    case $1 in
      --callback-url) callback_url=$2; shift 2 ;;
      --router-bin) router_bin=$2; shift 2 ;;
      --secret-file) secret_file=$2; shift 2 ;;
      --sync) sync=true; shift ;;
      *) die "up: unknown option $1" ;;
    esac
  done
  [ -x "$VENV/bin/patroni" ] || die "Patroni venv missing: run '$0 install'"
  local dir
  dir=$(mktemp -d /dev/shm/patroni-router.XXXXXX)
  touch "$dir/$MARKER"
  mkdir -p "$dir/data" "$dir/sock" "$dir/bin"
  echo "$(free_port)" >"$dir/etcd.client_port"
  echo "$(free_port)" >"$dir/etcd.peer_port"
  for n in "${NODES[@]}"; do
    echo "$(free_port)" >"$dir/$n.api_port"
    echo "$(free_port)" >"$dir/$n.pg_port"
  done
  local callback=""
  if [ -n "$callback_url" ]; then
    [ -x "$router_bin" ] || die "--router-bin must be the patroni-router binary"
    [ -f "$secret_file" ] || die "--secret-file must name the webhook secret file"
    cp "$router_bin" "$dir/bin/patroni-router"
    cp "$secret_file" "$dir/webhook-secret"
    chmod 0400 "$dir/webhook-secret"
  fi
  chown -R postgres:postgres "$dir"
  chmod 0700 "$dir"
  for n in "${NODES[@]}"; do
    if [ -n "$callback_url" ]; then
      cat >"$dir/$n.callback.sh" <<EOF
#!/bin/sh
# Patroni runs: <this> ACTION ROLE SCOPE
ROUTER_WEBHOOK_SECRET_FILE=$dir/webhook-secret exec $dir/bin/patroni-router notify --url $callback_url --node $n --attempts 3 "\$@" >>$dir/$n.callback.log 2>&1
EOF
      chmod 0755 "$dir/$n.callback.sh"
      callback="  callbacks:
    on_role_change: $dir/$n.callback.sh"
    fi
    write_node_config "$dir" "$n" "$sync" "$callback"
    : >"$dir/$n.pgpass"
    chmod 0600 "$dir/$n.pgpass"
  done
  chown -R postgres:postgres "$dir"
  start_etcd "$dir"
  for n in "${NODES[@]}"; do start_node "$dir" "$n"; done
  wait_healthy "$dir" 90 || { cmd_down "$dir" >/dev/null 2>&1 || true; die "cluster did not come up"; }
  echo "$dir"
}

# One leader and every other member streaming.
wait_healthy() {
  local dir=$1 secs=$2 n0
  n0=$(node_port "$dir" "${NODES[0]}")
  for _ in $(seq 1 $((secs * 5))); do
    if curl -fsS "http://127.0.0.1:$n0/cluster" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)["members"]
leaders = [x for x in m if x["role"] == "leader" and x["state"] == "running"]
streaming = [x for x in m if x["role"] in ("replica", "sync_standby") and x["state"] == "streaming"]
sys.exit(0 if len(leaders) == 1 and len(streaming) == len(m) - 1 and len(m) == 3 else 1)' 2>/dev/null; then
      return 0
    fi
    printf '.' >&2
    sleep 0.2
  done
  return 1
}

# A standby cluster of two nodes in the same etcd (another scope) that replicates from the
# current leader of the main cluster: its leader is a `standby_leader`.
cmd_standby_up() {
  local dir=$1 leader src n
  check_dir "$dir"
  leader=$(cmd_leader "$dir")
  [ -n "$leader" ] || die "standby-up: the main cluster has no leader"
  src=$(get "$dir" "$leader.pg_port")
  for n in "${DR_NODES[@]}"; do
    echo "$(free_port)" >"$dir/$n.api_port"
    echo "$(free_port)" >"$dir/$n.pg_port"
    write_node_config "$dir" "$n" false "" "$DR_SCOPE" "    standby_cluster:
      host: 127.0.0.1
      port: $src
      create_replica_methods: [basebackup]"
    : >"$dir/$n.pgpass"
    chmod 0600 "$dir/$n.pgpass"
  done
  chown -R postgres:postgres "$dir"
  for n in "${DR_NODES[@]}"; do start_node "$dir" "$n"; done
  local api
  api=$(node_port "$dir" "${DR_NODES[0]}")
  for _ in $(seq 1 450); do
    if curl -fsS "http://127.0.0.1:$api/cluster" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)["members"]
lead = [x for x in m if x["role"] == "standby_leader" and x["state"] in ("running", "streaming")]
rest = [x for x in m if x["role"] == "replica" and x["state"] == "streaming"]
sys.exit(0 if len(lead) == 1 and len(rest) == len(m) - 1 and len(m) == 2 else 1)' 2>/dev/null; then
      return 0
    fi
    for n in "${DR_NODES[@]}"; do
      kill -0 "$(cat "$dir/$n.pid")" 2>/dev/null || die "$n exited (see $dir/$n.log)"
    done
    printf '.' >&2
    sleep 0.2
  done
  die "the standby cluster did not come up (see $dir/dr*.log)"
}

# Promotion: remove `standby_cluster` from the standby cluster's dynamic config (PATCH /config
# with null deletes the key), as `patronictl edit-config` would.
cmd_standby_promote() {
  local dir=$1
  check_dir "$dir"
  curl -fsS -X PATCH -H 'Content-Type: application/json' -d '{"standby_cluster": null}' \
    "http://127.0.0.1:$(node_port "$dir" "${DR_NODES[0]}")/config" >/dev/null
}

cmd_info() {
  local dir=$1
  check_dir "$dir"
  /usr/bin/python3 - "$dir" "${NODES[@]}" <<'PY'
import json, sys
d, nodes = sys.argv[1], sys.argv[2:]
rd = lambda f: open(f"{d}/{f}").read().strip()
import os
node = lambda n: {"name": n, "api_url": f"http://127.0.0.1:{rd(n + '.api_port')}", "pg_port": int(rd(n + ".pg_port"))}
out = {"dir": d, "scope": "pgha", "etcd": f"http://127.0.0.1:{rd('etcd.client_port')}",
       "nodes": [node(n) for n in nodes]}
dr = [n for n in ("dr1", "dr2") if os.path.exists(f"{d}/{n}.api_port")]
if dr:
    out["standby"] = {"scope": "pgdr", "nodes": [node(n) for n in dr]}
print(json.dumps(out))
PY
}

cmd_leader() {
  local dir=$1 n
  check_dir "$dir"
  for n in "${NODES[@]}"; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$(node_port "$dir" "$n")/primary")" = 200 ]; then
      echo "$n"
    fi
  done
}

signal_pid_file() {
  local sig=$1 f=$2
  [ -f "$f" ] || return 0
  local pid
  pid=$(head -n 1 "$f")
  [ -n "$pid" ] && kill "-$sig" "$pid" 2>/dev/null || true
}

postmaster_pidfile() { echo "$1/data/$2/postmaster.pid"; }

cmd_kill() {
  local dir=$1 node=$2
  check_dir "$dir"
  # The postmaster detaches from Patroni: a host loss takes both.
  local pm
  pm=$(head -n 1 "$(postmaster_pidfile "$dir" "$node")" 2>/dev/null || true)
  signal_pid_file KILL "$dir/$node.pid"
  [ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null || true
  rm -f "$dir/$node.pid"
}

cmd_down() {
  local dir=$1
  check_dir "$dir"
  local n pm
  for n in "${NODES[@]}" "${DR_NODES[@]}"; do
    signal_pid_file CONT "$dir/$n.pid"
    signal_pid_file TERM "$dir/$n.pid"
  done
  for _ in $(seq 1 50); do
    local alive=0
    for n in "${NODES[@]}" "${DR_NODES[@]}"; do
      [ -f "$dir/$n.pid" ] && kill -0 "$(cat "$dir/$n.pid")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for n in "${NODES[@]}" "${DR_NODES[@]}"; do
    signal_pid_file KILL "$dir/$n.pid"
    pm=$(head -n 1 "$(postmaster_pidfile "$dir" "$n")" 2>/dev/null || true)
    [ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null || true
  done
  signal_pid_file CONT "$dir/etcd.pid"
  signal_pid_file TERM "$dir/etcd.pid"
  sleep 0.3
  signal_pid_file KILL "$dir/etcd.pid"
  rm -rf "$dir"
}

cmd_switchover() {
  local dir=$1 to=${2:-}
  check_dir "$dir"
  local args=(switchover --force)
  [ -n "$to" ] && args+=(--candidate "$to")
  "${RUNAS[@]}" "$VENV/bin/patronictl" -c "$dir/${NODES[0]}.yml" "${args[@]}" >&2
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    install) cmd_install ;;
    up) cmd_up "$@" ;;
    down) cmd_down "${1:?DIR}" ;;
    info) cmd_info "${1:?DIR}" ;;
    leader) cmd_leader "${1:?DIR}" ;;
    kill) cmd_kill "${1:?DIR}" "${2:?NODE}" ;;
    start) check_dir "${1:?DIR}"; start_node "$1" "${2:?NODE}" ;;
    freeze) check_dir "${1:?DIR}"; signal_pid_file STOP "$1/${2:?NODE}.pid" ;;
    thaw) check_dir "${1:?DIR}"; signal_pid_file CONT "$1/${2:?NODE}.pid" ;;
    etcd-stop) check_dir "${1:?DIR}"; signal_pid_file TERM "$1/etcd.pid"; sleep 0.5; signal_pid_file KILL "$1/etcd.pid" ;;
    etcd-start) check_dir "${1:?DIR}"; start_etcd "$1" ;;
    switchover) cmd_switchover "${1:?DIR}" "${2:-}" ;;
    standby-up) cmd_standby_up "${1:?DIR}" ;;
    standby-promote) cmd_standby_promote "${1:?DIR}" ;;
    *) sed -n '2,23p' "$0" >&2; exit 2 ;;
  esac
}

main "$@"
