#!/usr/bin/env python3
"""Re-stamp a webhook sample event so it verifies now: a fresh timestamp and nonce in the body
(when the body has them) and a new X-Router-Signature over "<timestamp>.<body>".

    ROUTER_WEBHOOK_SECRET=... scripts/sign-event.py events/webhook-signed.json > /tmp/signed.json

The events in events/ are signed with the README's test secret at a fixed time, so they are
stale (401) until re-stamped: the router refuses timestamps more than 5 minutes off.
Events without a signature header are passed through with a fresh timestamp only.
"""
import hashlib
import hmac
import json
import os
import secrets
import sys
import time


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        event = json.load(f)
    now = int(time.time())
    body = event.get("body") or ""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "timestamp" in doc:
        doc["timestamp"] = now
        doc["nonce"] = secrets.token_hex(16)
        body = json.dumps(doc, separators=(",", ":"))
        event["body"] = body
    headers = event.setdefault("headers", {})
    if "x-router-signature" in headers:
        secret = os.environ.get("ROUTER_WEBHOOK_SECRET", "")
        if not secret:
            print("sign-event: set ROUTER_WEBHOOK_SECRET", file=sys.stderr)
            return 2
        headers["x-router-timestamp"] = str(now)
        mac = hmac.new(secret.encode(), f"{now}.{body}".encode(), hashlib.sha256)
        headers["x-router-signature"] = "v1=" + mac.hexdigest()
    json.dump(event, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
