#!/usr/bin/python3
"""A fake model-provider API on loopback for akagent's tests (stdlib only; run by /usr/bin/python3).

Usage: provider_server.py --log FILE [--tls CERT KEY] [--port-file FILE]
Prints the port it listens on (127.0.0.1, ephemeral) as one line on stdout, then serves until killed.

What it answers is chosen by a marker in the key ("...-fake-<behaviour>-...") or, for any key, by a
first path component "/fake-<behaviour>/" (then stripped), so a test picks a status with --base-url:
  ok (default)  200 {"data":[...]} with a request-id header
  s401 s402 s403 s404 s500 s529   the provider's error JSON with that status
  s429          429 rate_limit_error, retry-after: 1, every time
  s429once      429 with retry-after: 1 the first time this key asks, then 200 (proves one retry)
  sleepN        wait N seconds, then 200 (sleep1 for the concurrency test, sleep30 for timeouts)
  drop          close the connection without answering
  huge          200 with a 10 MB body and its Content-Length; hugechunked: no length, close-delimited
  badjson       200 with a body that is not JSON
  redirect      302 to another URL
  leak          401 echoing the key in request-id, error.type and error.message (must be scrubbed)
No key at all: 401. Anthropic-style errors when the request has anthropic-version or x-api-key,
OpenAI-style ({"error":{"type","code"}}) otherwise. POST /v1/messages answers a minimal message, or with
"stream": true a server-sent event stream (chunked) in Anthropic's shape, whose model name picks a pace:
  gated-NAME    after the first text delta, wait (up to 60 s) for the file LOG.gate-NAME to exist;
                the connection closing meanwhile ends the stream ("STREAM aborted") at once
  slow          400 deltas 50 ms apart (a client can leave in the middle)
and "STREAM done" or "STREAM aborted" is appended to the log when the stream ends.

Every request is appended to the log: "REQ METHOD TARGET", one "H Name: value" line per header, then a
blank line, so tests can assert that a key never appears in a request line (it does appear in headers).
"""
import argparse
import json
import os
import re
import select
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_LOCK = threading.Lock()
SEEN_LOCK = threading.Lock()
SEEN = {}
COUNTER = [0]

ANTHROPIC_ERRORS = {
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
OPENAI_ERRORS = {
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "unknown_url"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    529: ("server_error", "overloaded"),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider/1"

    def log_message(self, fmt, *args):  # quiet: the request log is ours
        pass

    def _log(self):
        with LOG_LOCK, open(self.server.log_path, "a", encoding="utf-8", errors="replace") as f:
            f.write("REQ %s %s\n" % (self.command, self.path))
            for k, v in self.headers.items():
                f.write("H %s: %s\n" % (k, v))
            f.write("\n")

    def _key(self):
        k = self.headers.get("x-api-key")
        if k:
            return k
        a = self.headers.get("authorization", "")
        if a.lower().startswith("bearer "):
            return a[7:]
        return a or self.headers.get("x-token")  # x-token: the generic provider's test header

    def _send(self, status, obj=None, raw=None, extra=()):
        COUNTER[0] += 1
        rid = "req_fake%06d" % COUNTER[0]
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        has_rid = False
        for k, v in extra:
            self.send_header(k, v)
            has_rid = has_rid or k == "request-id"
        if not has_rid:
            self.send_header("request-id", rid)
        self.end_headers()
        self.wfile.write(body)
        return rid

    def _error(self, status, anthropic_style, extra=()):
        if anthropic_style:
            obj = {"type": "error",
                   "error": {"type": ANTHROPIC_ERRORS.get(status, "api_error"), "message": "fake error"},
                   "request_id": None}
        else:
            t, c = OPENAI_ERRORS.get(status, ("server_error", None))
            obj = {"error": {"message": "fake error", "type": t, "param": None, "code": c}}
        self._send(status, obj, extra=extra)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, name, obj):
        self._chunk(("event: %s\ndata: %s\n\n" % (name, json.dumps(obj))).encode())

    def _stream(self, model):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", "req_fakestream")
        self.end_headers()
        words = ["hello", " from", " the", " stream"]
        if "slow" in model:
            words = ["x"] * 400
        try:
            self._event("message_start", {"type": "message_start", "message": {
                "id": "msg_fake02", "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 1}}})
            self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                                "content_block": {"type": "text", "text": ""}})
            for i, w in enumerate(words):
                self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                    "delta": {"type": "text_delta", "text": w}})
                if i == 0 and model.startswith("gated-"):
                    gate = self.server.log_path + ".gate-" + model[6:]
                    for _ in range(1200):
                        if os.path.exists(gate):
                            break
                        self._check_gone()
                        time.sleep(0.05)
                if "slow" in model:
                    time.sleep(0.05)
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
            self._event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                        "stop_sequence": None}, "usage": {"output_tokens": len(words) + 3}})
            self._event("message_stop", {"type": "message_stop"})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self._note("STREAM aborted")
            self.close_connection = True
            return
        self._note("STREAM done")

    def _check_gone(self):
        # While held at the gate: the proxy closing this connection means its client left.
        r, _, _ = select.select([self.connection], [], [], 0)
        if r:
            try:
                d = self.connection.recv(1)
            except (ssl.SSLError, OSError):
                d = b""
            if not d:
                raise BrokenPipeError("closed while gated")

    def _note(self, line):
        with LOG_LOCK, open(self.server.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def _ok(self):
        if self.command == "POST" and self.path.startswith("/v1/messages"):
            length = int(self.headers.get("content-length") or 0)
            req = json.loads(self.rfile.read(length) or b"{}")
            if req.get("stream"):
                self._stream(str(req.get("model", "claude-fake")))
                return
            self._send(200, {"id": "msg_fake01", "type": "message", "role": "assistant",
                             "model": req.get("model", "claude-fake"),
                             "content": [{"type": "text", "text": "hello from the fake"}],
                             "stop_reason": "end_turn", "stop_sequence": None,
                             "usage": {"input_tokens": 1, "output_tokens": 5}})
            return
        self._send(200, {"data": [{"type": "model", "id": "claude-fake-1", "display_name": "Fake",
                                   "created_at": "2025-01-01T00:00:00Z", "object": "model"}],
                         "has_more": False, "first_id": "claude-fake-1", "last_id": "claude-fake-1",
                         "object": "list"})

    def _handle(self):
        self._log()
        behaviour = None
        m = re.match(r"^/fake-([a-z0-9]+)(/.*)?$", self.path)
        if m:
            behaviour = m.group(1)
            self.path = m.group(2) or "/"
        key = self._key()
        anthropic_style = bool(self.headers.get("anthropic-version") or self.headers.get("x-api-key"))
        if key:
            km = re.search(r"-fake-([a-z0-9]+)-", key)
            if km and behaviour is None:
                behaviour = km.group(1)
        if behaviour is None:
            behaviour = "ok"
        if not key:
            self._error(401, anthropic_style)
            return
        sm = re.match(r"^sleep(\d+)$", behaviour)
        if sm:
            time.sleep(int(sm.group(1)))
            behaviour = "ok"
        if behaviour == "ok":
            self._ok()
        elif behaviour == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif behaviour == "huge":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(10 << 20))
            self.end_headers()
            chunk = b" " * 65536
            for _ in range(160):
                self.wfile.write(chunk)
        elif behaviour == "hugechunked":
            self.close_connection = True
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("connection", "close")
            self.end_headers()
            chunk = b" " * 65536
            for _ in range(160):
                self.wfile.write(chunk)
        elif behaviour == "badjson":
            self._send(200, raw=b"{\"data\": [not json")
        elif behaviour == "redirect":
            self._send(302, {}, extra=(("location", "http://127.0.0.1:9/elsewhere"),))
        elif behaviour == "leak":
            self._send(401, {"type": "error", "error": {"type": key, "message": "bad key " + key},
                             "request_id": key}, extra=(("request-id", key),))
        elif behaviour == "s429once":
            with SEEN_LOCK:
                first = key not in SEEN
                SEEN[key] = time.time()
            if first:
                self._error(429, anthropic_style, extra=(("retry-after", "1"),))
            else:
                self._ok()
        elif behaviour == "s429":
            self._error(429, anthropic_style, extra=(("retry-after", "1"),))
        elif re.match(r"^s\d{3}$", behaviour):
            self._error(int(behaviour[1:]), anthropic_style)
        else:
            self._error(400, anthropic_style)

    def _guarded(self):
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    do_GET = _guarded
    do_POST = _guarded


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # --all opens many connections at once
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # a client that timed out is not news
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--port-file")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.log_path = a.log
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(a.port_file + ".tmp", a.port_file)
    print(port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
