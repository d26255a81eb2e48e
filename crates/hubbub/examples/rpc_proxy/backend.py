#!/usr/bin/env python3
"""The query workbench's backend in Python: answers the hub's RPC proxy.

The hub POSTs every `rpc` call whose method starts with `query.` here
(`[[rpc.proxy]]` in hub.toml beside this file) as
`{method, data, user_id, connection_id}`. This backend reports each stage
of the query by publishing `query_progress` events to `query:<query_id>`
through the hub's HTTP API (the client subscribed to it before calling),
then answers `{"data": ...}`; a bad call answers
`{"error": {"code": ..., "message": ...}}`.

    python3 backend.py --port 9100 --hub http://127.0.0.1:8080 [--api-key KEY]

Standard library only. Prints `listening on HOST:PORT` once it serves.
"""

import argparse
import json
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAGES = ["parsing", "validating", "executing", "formatting"]


def publish(args, channel, event_type, data):
    body = json.dumps({"channel": channel, "event_type": event_type, "data": data}).encode()
    req = urllib.request.Request(
        args.hub.rstrip("/") + "/api/publish",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    if args.api_key:
        req.add_header("Authorization", "Bearer " + args.api_key)
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def run_query(args, call):
    data = call.get("data") or {}
    sql = str(data.get("sql", "")).strip()
    query_id = str(data.get("query_id", ""))
    if not sql or not query_id:
        return {"error": {"code": "bad_request", "message": "data needs sql and query_id"}}
    channel = "query:" + query_id
    for i, stage in enumerate(STAGES):
        publish(args, channel, "query_progress", {"stage": stage, "progress": i / len(STAGES)})
        if stage == "validating" and not sql.lower().startswith("select"):
            return {"error": {"code": "forbidden", "message": "this workbench only reads: select ..."}}
        time.sleep(args.step_ms / 1000)
    publish(args, channel, "query_progress", {"stage": "completed", "progress": 1.0})
    return {"data": {"sql": sql, "user_id": call.get("user_id"),
                     "columns": ["n", "square"], "rows": [[n, n * n] for n in (1, 2, 3)]}}


def handler(args):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            try:
                call = json.loads(self.rfile.read(length))
                if call.get("method") == "query.run":
                    answer = run_query(args, call)
                else:
                    answer = {"error": {"code": "not_found", "message": "no method " + str(call.get("method"))}}
            except Exception as e:  # a bug here must still answer
                answer = {"error": {"code": "internal", "message": str(e)}}
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--hub", default="http://127.0.0.1:8080")
    p.add_argument("--api-key", default=None)
    p.add_argument("--step-ms", type=int, default=20)
    args = p.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), handler(args))
    print("listening on %s:%d" % server.server_address[:2], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
