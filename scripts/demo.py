#!/usr/bin/env python3
"""`make demo`: a real local Patroni cluster (etcd + 3 Patroni nodes + PostgreSQL), moto as
AWS, and patroni-router routing a switchover and a kill -9 of the primary, live.

The router runs as a service, `patroni-router serve --interval 1s`, the way a team without
Lambda runs it (ECS, EKS, a systemd unit):
  - its `POST /webhook` receives the Patroni `on_role_change` callbacks sent by
    `patroni-router notify` (the same signed format as the Lambda function URL): the fast path;
  - its watch loop reconciles every second: the safety net;
  - its `GET /metrics` is shown at the end (decisions, primary changes, lag, durations).
Everything is torn down at the end, and on Ctrl-C. Run through scripts/with-moto.sh.
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
# ROUTER_BIN: another build of the router (make bench-lag measures the release build users run).
BIN = os.environ.get("ROUTER_BIN") or os.path.join(TARGET, "debug/patroni-router")
TESTBED = os.path.join(TARGET, "debug/examples/testbed")
LC = os.path.join(ROOT, "scripts/localcluster.sh")
TTY = sys.stdout.isatty()
BOLD, DIM, GREEN, YELLOW, RESET = (("\033[1m", "\033[2m", "\033[32m", "\033[33m", "\033[0m") if TTY
                                   else ("", "", "", "", ""))

procs = []
cluster_dir = None
workdir = tempfile.mkdtemp(prefix="router-demo.")


def say(msg):
    print(f"{BOLD}==> {msg}{RESET}", flush=True)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(args, env=None, log=None):
    out = open(os.path.join(workdir, log), "w") if log else subprocess.DEVNULL
    p = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    procs.append(p)
    return p


def cleanup():
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    if cluster_dir:
        subprocess.run([LC, "down", cluster_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", workdir])


def moto_world(nodes, config_path):
    """The AWS side in moto for these Patroni nodes (a VPC, one instance per node, an NLB target
    group, a private hosted zone) and the router config for them: `examples/testbed.rs moto`."""
    subprocess.run(["cargo", "build", "--quiet", "--example", "testbed"], cwd=ROOT, check=True)
    subprocess.run([TESTBED, "moto", "--out", config_path, "--scope", "pgha"]
                   + [f"--node={n['name']}={n['api_url']}" for n in nodes], check=True)


def primaries(nodes):
    out = []
    for n in nodes:
        try:
            with urllib.request.urlopen(n["api_url"] + "/primary", timeout=0.4) as r:
                if r.status == 200:
                    out.append(n["name"])
        except Exception:
            pass
    return out


class Aws:
    def __init__(self, config):
        c = config["clusters"][0]
        self.tg = c["target_group"]["arn"]
        self.zone = c["dns"]["hosted_zone_id"]
        self.record = c["dns"]["record_name"]
        self.by_instance = {n["instance_id"]: n["name"] for n in c["nodes"]}
        self.by_address = {n["address"]: n["name"] for n in c["nodes"]}
        self.elb = boto3.client("elbv2")
        self.r53 = boto3.client("route53")

    def targets(self):
        d = self.elb.describe_target_health(TargetGroupArn=self.tg)["TargetHealthDescriptions"]
        return sorted(self.by_instance.get(t["Target"]["Id"], t["Target"]["Id"]) for t in d)

    def record_points_at(self):
        rs = self.r53.list_resource_record_sets(HostedZoneId=self.zone, StartRecordName=self.record,
                                                StartRecordType="A", MaxItems="1")["ResourceRecordSets"]
        if not rs or rs[0]["Name"] != self.record:
            return []
        return [self.by_address.get(v["Value"], v["Value"]) for v in rs[0].get("ResourceRecords", [])]


def view(config_path, aws, headline):
    """One screen: the cluster as Patroni and the router see it, and where AWS routes."""
    out = subprocess.run([BIN, "status", "--config", config_path, "--output", "json"],
                         capture_output=True, text=True)
    lines = [f"{BOLD}{headline}{RESET}"]
    try:
        c = json.loads(out.stdout)["clusters"][0]
    except (ValueError, KeyError, IndexError):
        lines.append("  (status unavailable)")
        c = None
    if c:
        lines.append(f"  {'member':<7} {'role':<15} {'state':<10} {'TL':>3} {'lag':>8}")
        for n in c["nodes"]:
            role = n.get("role") or "unreachable"
            mark = f" {GREEN}*{RESET}" if c["decision"].get("primary") == n["name"] else ""
            lines.append(f"  {n['name']:<7} {role:<15} {n.get('state') or '-':<10} "
                         f"{str(n.get('timeline') or '-'):>3} {str(n.get('lag', '-')):>8}{mark}")
        d = c["decision"]
        lines.append(f"  decision: {YELLOW}{d['kind']}{RESET} {d.get('primary') or ''} - {DIM}{d['reason']}{RESET}")
    lines.append(f"  target group -> {', '.join(aws.targets()) or '(empty)'}    "
                 f"{aws.record} -> {', '.join(aws.record_points_at()) or '(none)'}")
    if TTY:
        print("\033[H\033[J" + "\n".join(lines), flush=True)
    else:
        print("\n".join(lines), flush=True)


def routed_lag(nodes, aws, old, config_path, headline, bound):
    """Wait for a new primary, then for AWS to route it. Returns (new, seconds)."""
    t0 = time.monotonic()
    promoted_at = new = None
    last_view = 0.0
    while time.monotonic() - t0 < bound:
        now = time.monotonic()
        if new is None:
            p = primaries(nodes)
            if len(p) == 1 and p[0] != old:
                new, promoted_at = p[0], time.monotonic()
        elif aws.targets() == [new] and aws.record_points_at() == [new]:
            return new, time.monotonic() - promoted_at
        else:
            continue  # promoted: ask AWS again at once (the lag's resolution is one round trip)
        if now - last_view > 1.0:
            waited = f"{now - t0:4.1f}s"
            status = "waiting for Patroni to promote a replica" if new is None else f"{new} promoted"
            view(config_path, aws, f"{headline} - {status} ({waited})")
            last_view = now
        time.sleep(0.02)
    raise SystemExit(f"demo: no routed primary after {bound}s")


def main():
    global cluster_dir
    if not os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1:"):
        raise SystemExit("demo: run through scripts/with-moto.sh (make demo does)")
    secret_file = os.path.join(workdir, "webhook-secret")
    with open(secret_file, "w") as f:
        f.write(secrets.token_hex(32))
    os.chmod(secret_file, 0o600)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/webhook"

    say("Starting etcd, 3 Patroni nodes and PostgreSQL on loopback (as postgres, data on /dev/shm)")
    r = subprocess.run([LC, "up", "--callback-url", url, "--router-bin", BIN, "--secret-file", secret_file],
                       stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit("demo: the cluster did not start")
    cluster_dir = r.stdout.strip()
    print()
    info = json.loads(subprocess.check_output([LC, "info", cluster_dir], text=True))
    nodes = info["nodes"]

    say("Creating the AWS side in moto: VPC, 3 instances, NLB target group, private hosted zone")
    config_path = os.path.join(workdir, "router.json")
    moto_world(nodes, config_path)
    config = json.load(open(config_path))
    aws = Aws(config)

    say(f"Starting the router: `serve --listen 127.0.0.1:{port} --interval 1s` (webhook {url})")
    start([BIN, "serve", "--config", config_path, "--listen", f"127.0.0.1:{port}", "--interval", "1s"],
          env={"ROUTER_WEBHOOK_SECRET_FILE": secret_file}, log="serve.log")
    t0 = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=0.5) as r:
                if r.status == 200:
                    break
        except Exception:
            pass
        if time.monotonic() - t0 > 30:
            raise SystemExit("demo: the router did not start; see " + os.path.join(workdir, "serve.log"))
        time.sleep(0.1)

    leader = primaries(nodes)[0]
    t0 = time.monotonic()
    while aws.targets() != [leader] and time.monotonic() - t0 < 30:
        time.sleep(0.2)
    for _ in range(3):
        view(config_path, aws, f"Steady state: {leader} is primary and routed")
        time.sleep(1)

    results = []
    replica = next(n["name"] for n in nodes if n["name"] != leader)
    say(f"Switchover {leader} -> {replica} (patronictl)")
    subprocess.Popen([LC, "switchover", cluster_dir, replica], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    new, lag = routed_lag(nodes, aws, leader, config_path, "Switchover", 60)
    results.append(("switchover", leader, new, lag))
    view(config_path, aws, f"Switchover done: {new} routed {lag * 1000:.0f} ms after it answered /primary")
    time.sleep(3)

    leader = new
    say(f"kill -9 of {leader}'s Patroni and postmaster (a host loss); Patroni waits for the leader "
        "lock to expire (ttl 20 s)")
    subprocess.run([LC, "kill", cluster_dir, leader], check=True)
    new, lag = routed_lag(nodes, aws, leader, config_path, f"Host loss of {leader}", 90)
    results.append(("kill -9", leader, new, lag))
    view(config_path, aws, f"Failover done: {new} routed {lag * 1000:.0f} ms after it answered /primary")
    time.sleep(2)

    print()
    say("Results (routing lag: the new primary answers /primary 200 -> AWS holds it, target group and record)")
    for what, old, new, lag in results:
        print(f"  {what:<11} {old} -> {new}: {lag * 1000:6.0f} ms")
    calls = sum(1 for line in open(os.path.join(workdir, "serve.log")) if "webhook accepted" in line)
    print(f"  webhooks accepted by `serve`: {calls} (Patroni on_role_change -> patroni-router notify)")
    print()
    say(f"GET {base}/metrics (excerpt)")
    with urllib.request.urlopen(f"{base}/metrics", timeout=2) as r:
        metrics = r.read().decode()
    wanted = ("patroni_router_decisions_total", "patroni_router_primary_changes_total",
              "patroni_router_replication_lag_bytes", "patroni_router_reconciles_total",
              "patroni_router_reconcile_duration_seconds_count", "patroni_router_webhook_requests_total",
              "patroni_router_apply_errors_total")
    for line in metrics.splitlines():
        if line.startswith(wanted) and not (line.split("{")[0].endswith("_total") and line.endswith(" 0")):
            print(f"  {line}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        say("Tearing down (cluster, router, moto)")
        cleanup()
