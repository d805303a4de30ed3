#!/usr/bin/env python3
"""`make bench-lag`: routing lag on the real local cluster (scripts/localcluster.sh), through
each path alone: the webhook (the Lambda under cargo-lambda's emulator, called by Patroni's
on_role_change -> `patroni-router notify`) and `watch --interval 1s`. LAG_RUNS (default 10)
switchovers, kill -9 host losses and SIGSTOPs of the primary's Patroni (its PostgreSQL stays
writable) per path. Lag = the new primary answers /primary 200 -> moto holds it in the target
group and the record: for that long routing pointed at a node that was not the primary.
Reports p50 / p99 / max per path and kind. Writes BENCH_OUT/lag.json and the function's log
BENCH_OUT/lag-function.log (default target/bench/; nothing under bench/ changes). Run through scripts/with-moto.sh.
"""
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import demo  # noqa: E402  (the demo's helpers: cluster, moto, processes, measurement)

CARGO_LAMBDA = os.path.join(demo.ROOT, ".venv/bin/cargo-lambda")
OUT = os.environ.get("BENCH_OUT") or os.path.join(demo.TARGET, "bench")
RUNS = int(os.environ.get("LAG_RUNS", "10"))


def switchover(nodes, cluster_dir, old):
    to = next(n["name"] for n in nodes if n["name"] != old)
    subprocess.Popen([demo.LC, "switchover", cluster_dir, to], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return lambda: time.sleep(4)


def kill(nodes, cluster_dir, old):
    subprocess.run([demo.LC, "kill", cluster_dir, old], check=True)
    return lambda: (subprocess.run([demo.LC, "start", cluster_dir, old], check=True), time.sleep(8))


def freeze(nodes, cluster_dir, old):
    subprocess.run([demo.LC, "freeze", cluster_dir, old], check=True)
    # Thawed, the old primary finds the lock taken and demotes itself; then it rejoins.
    return lambda: (subprocess.run([demo.LC, "thaw", cluster_dir, old], check=True), time.sleep(10))


KINDS = (("switchover", switchover, 60), ("kill -9", kill, 90), ("SIGSTOP", freeze, 90))


def measure(path, nodes, aws, config_path, cluster_dir):
    lags = {kind: [] for kind, _, _ in KINDS}
    for kind, act, bound in KINDS:
        for _ in range(RUNS):
            old = demo.primaries(nodes)[0]
            restore = act(nodes, cluster_dir, old)
            new, lag = demo.routed_lag(nodes, aws, old, config_path, f"{path}: {kind}", bound)
            lags[kind].append(lag * 1000)
            print(f"{path}: {kind} {old} -> {new}: {lag * 1000:.0f} ms", flush=True)
            restore()
    return lags


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    secret_file = os.path.join(demo.workdir, "webhook-secret")
    with open(secret_file, "w") as f:
        f.write(secrets.token_hex(32))
    port = demo.free_port()
    url = f"http://127.0.0.1:{port}/lambda-url/_/"
    r = subprocess.run([demo.LC, "up", "--callback-url", url, "--router-bin", demo.BIN, "--secret-file", secret_file],
                       stdout=subprocess.PIPE, text=True, check=True)
    demo.cluster_dir = r.stdout.strip()
    nodes = json.loads(subprocess.check_output([demo.LC, "info", demo.cluster_dir], text=True))["nodes"]
    config_path = os.path.join(demo.workdir, "router.json")
    demo.moto_world(nodes, config_path)
    aws = demo.Aws(json.load(open(config_path)))
    demo.view = lambda *a, **k: None  # no screen output here

    # Path 1: the webhook alone (no watch loop, no schedule).
    emulator = demo.start([CARGO_LAMBDA, "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(port)])
    time.sleep(1.5)
    function = demo.start([demo.BIN], env={
        "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt", "AWS_LAMBDA_FUNCTION_NAME": "_",
        "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "ROUTER_CONFIG_FILE": config_path, "ROUTER_WEBHOOK_SECRET_FILE": secret_file}, log="function.log")
    # The first routing: one reconcile by hand.
    subprocess.run([demo.BIN, "reconcile", "--config", config_path], check=True, stdout=subprocess.DEVNULL)
    webhook = measure("webhook", nodes, aws, config_path, demo.cluster_dir)
    for p in (function, emulator):
        p.terminate()
        p.wait()

    # Path 2: watch alone (the callbacks now fail: nothing listens).
    demo.start([demo.BIN, "watch", "--config", config_path, "--interval", "1s"])
    watch = measure("watch 1s", nodes, aws, config_path, demo.cluster_dir)

    out = {}
    for path, lags in (("webhook", webhook), ("watch 1s", watch)):
        for kind, values in lags.items():
            out[f"{path} / {kind}"] = {
                "runs": len(values), "p50_ms": round(statistics.median(values)),
                "p99_ms": round(pct(values, 99)), "max_ms": round(max(values)),
                "values_ms": [round(v) for v in values]}
    os.makedirs(OUT, exist_ok=True)
    # The function's own log: per failover, RoutingLag and its phases (EMF) and the callback's
    # confirmation (`callback: done waiting`): where the time went.
    shutil.copy(os.path.join(demo.workdir, "function.log"), os.path.join(OUT, "lag-function.log"))
    with open(os.path.join(OUT, "lag.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    try:
        main()
    finally:
        demo.cleanup()
