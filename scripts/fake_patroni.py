#!/usr/bin/env python3
"""A FAKE Patroni REST API (not Patroni): serves /patroni and /cluster for a few members of a
healthy cluster on loopback, for `make invoke-local` where no real cluster runs.
The end-to-end tests and `make demo` use real Patroni.

    fake_patroni.py --scope pgha --leader pg1 pg1=18101 pg2=18102 pg3=18103
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scope", default="pgha")
    ap.add_argument("--leader", required=True)
    ap.add_argument("members", nargs="+", help="NAME=PORT")
    args = ap.parse_args()
    members = [m.split("=", 1) for m in args.members]

    def cluster():
        out = []
        for name, port in members:
            m = {"name": name, "host": "127.0.0.1", "port": 5432, "timeline": 1,
                 "api_url": f"http://127.0.0.1:{port}/patroni"}
            if name == args.leader:
                m.update(role="leader", state="running")
            else:
                m.update(role="replica", state="streaming", lag=0)
            out.append(m)
        return {"members": out, "scope": args.scope}

    def handler_for(name):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/patroni":
                    role = "primary" if name == args.leader else "replica"
                    body = {"state": "running", "role": role, "timeline": 1,
                            "patroni": {"version": "fake", "scope": args.scope, "name": name}}
                elif self.path == "/cluster":
                    body = cluster()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass
        return Handler

    servers = [ThreadingHTTPServer(("127.0.0.1", int(port)), handler_for(name)) for name, port in members]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
