#!/usr/bin/env python3
"""`make bench-lag`: routing lag on the real local cluster (scripts/localcluster.sh), through
each path alone: the webhook (the Lambda under cargo-lambda's emulator, called by Patroni's
on_role_change -> `patroni-router notify`) and `watch --interval 1s`. Several switchovers and
kill -9 host losses per path. Lag = the new primary answers /primary 200 -> moto holds it in
the target group and the record. Writes BENCH_OUT/lag.json (default target/bench/; nothing
under bench/ changes). Run through scripts/with-moto.sh.
"""
import json
import os
import secrets
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import demo  # noqa: E402  (the demo's helpers: cluster, moto, processes, measurement)

CARGO_LAMBDA = os.path.join(demo.ROOT, ".venv/bin/cargo-lambda")
OUT = os.environ.get("BENCH_OUT") or os.path.join(demo.TARGET, "bench")
SWITCHOVERS = int(os.environ.get("LAG_SWITCHOVERS", "4"))
KILLS = int(os.environ.get("LAG_KILLS", "2"))


def measure(path, nodes, aws, config_path, cluster_dir):
    lags = {"switchover": [], "kill -9": []}
    for _ in range(SWITCHOVERS):
        old = demo.primaries(nodes)[0]
        to = next(n["name"] for n in nodes if n["name"] != old)
        subprocess.Popen([demo.LC, "switchover", cluster_dir, to], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        new, lag = demo.routed_lag(nodes, aws, old, config_path, f"{path}: switchover", 60)
        lags["switchover"].append(lag * 1000)
        print(f"{path}: switchover {old} -> {new}: {lag * 1000:.0f} ms", flush=True)
        time.sleep(4)
    for _ in range(KILLS):
        old = demo.primaries(nodes)[0]
        subprocess.run([demo.LC, "kill", cluster_dir, old], check=True)
        new, lag = demo.routed_lag(nodes, aws, old, config_path, f"{path}: kill -9", 90)
        lags["kill -9"].append(lag * 1000)
        print(f"{path}: kill -9 {old} -> {new}: {lag * 1000:.0f} ms", flush=True)
        subprocess.run([demo.LC, "start", cluster_dir, old], check=True)
        time.sleep(8)  # the old host rejoins as a replica
    return lags


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
        "ROUTER_CONFIG_FILE": config_path, "ROUTER_WEBHOOK_SECRET_FILE": secret_file})
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
            all_values = sorted(values)
            out[f"{path} / {kind}"] = {
                "runs": len(values), "median_ms": round(statistics.median(values)),
                "max_ms": round(all_values[-1]), "values_ms": [round(v) for v in values]}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "lag.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    try:
        main()
    finally:
        demo.cleanup()
