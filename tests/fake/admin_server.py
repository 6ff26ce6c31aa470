#!/usr/bin/python3
"""A fake of the providers' admin APIs on loopback for akagent's tests (stdlib only).

Usage: admin_server.py --state FILE --log FILE --tls CERT KEY --port-file FILE

The state file (JSON, re-read on every request, so a test can change it) holds:
  anthropic_admin_key, openai_admin_key   the only admin keys accepted
  keys         Anthropic api_keys: [{"id","name","hint","status"}]
  openai_keys  OpenAI project api_keys: [{"id","name","hint"}] (shown as redacted_value)
  project      the OpenAI project id that exists
  sa_key       the key a new OpenAI service account gets
  usage        [{"provider":"anthropic"|"openai","day":N (days before today, UTC),"key_id",
                 "input","output","cache_read","cache_create"}]

Every request is checked for its provider's auth headers (Anthropic: x-api-key and
anthropic-version: 2023-06-01; OpenAI: Authorization: Bearer); a wrong or missing one gets that
provider's 401 error. Lists page two items (keys) or two buckets (usage) at a time, whatever limit
asks, so every client must follow the pages. Each request appends "REQ METHOD TARGET AUTH ok|bad" to the
log (no header values: tests check no secret lands anywhere but the headers). A key deactivated by POST
stays inactive for the server's lifetime; a created service account's key joins openai_keys.
"""
import argparse
import datetime
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATUS = {}        # id -> status set by POST
CREATED = []       # OpenAI keys made by service account creation
PAGE = 2


def today():
    d = datetime.datetime.now(datetime.timezone.utc).date()
    return datetime.datetime(d.year, d.month, d.day, tzinfo=datetime.timezone.utc)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def state(self):
        with open(self.server.state_file) as f:
            return json.load(f)

    def send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", "req_fake")
        self.end_headers()
        self.wfile.write(body)

    def note(self, ok):
        with LOCK, open(self.server.log_file, "a") as f:
            f.write("REQ %s %s AUTH %s\n" % (self.command, self.path, "ok" if ok else "bad"))

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def page(self, items, after, id_key="id"):
        start = 0
        if after:
            ids = [i[id_key] for i in items]
            if after not in ids:
                return None
            start = ids.index(after) + 1
        chunk = items[start:start + PAGE]
        return {"data": chunk, "has_more": start + PAGE < len(items),
                "first_id": chunk[0][id_key] if chunk else None,
                "last_id": chunk[-1][id_key] if chunk else None}

    def handle_any(self):
        st = self.state()
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        path = u.path
        if path.startswith("/v1/organizations/"):
            ok = (self.headers.get("x-api-key") == st["anthropic_admin_key"] and
                  self.headers.get("anthropic-version") == "2023-06-01" and
                  self.headers.get("authorization") is None)
            self.note(ok)
            if not ok:
                return self.send(401, {"type": "error", "error": {"type": "authentication_error",
                                       "message": "invalid x-api-key"}, "request_id": "req_fake"})
            return self.anthropic(st, path, q)
        if path.startswith("/v1/organization/"):
            ok = self.headers.get("authorization") == "Bearer " + st["openai_admin_key"]
            self.note(ok)
            if not ok:
                return self.send(401, {"error": {"message": "Incorrect API key provided",
                                       "type": "invalid_request_error", "code": "invalid_api_key"}})
            return self.openai(st, path, q)
        self.note(False)
        return self.send(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def anthropic(self, st, path, q):
        if path == "/v1/organizations/api_keys" and self.command == "GET":
            keys = [{"id": k["id"], "type": "api_key", "name": k["name"],
                     "partial_key_hint": k["hint"], "status": STATUS.get(k["id"], k.get("status", "active")),
                     "workspace_id": None, "created_at": "2026-01-01T00:00:00Z",
                     "created_by": {"id": "user_fake", "type": "user"}} for k in st["keys"]]
            p = self.page(keys, q.get("after_id", [None])[0])
            if p is None:
                return self.send(400, {"type": "error", "error": {"type": "invalid_request_error",
                                       "message": "bad after_id"}})
            return self.send(200, p)
        if path.startswith("/v1/organizations/api_keys/") and self.command == "POST":
            kid = path.rsplit("/", 1)[1]
            try:
                body = json.loads(self.body())
            except ValueError:
                body = None
            if body != {"status": "inactive"}:
                return self.send(400, {"type": "error", "error": {"type": "invalid_request_error",
                                       "message": "bad body"}})
            for k in st["keys"]:
                if k["id"] == kid:
                    with LOCK:
                        STATUS[kid] = "inactive"
                    return self.send(200, {"id": kid, "type": "api_key", "name": k["name"],
                                           "partial_key_hint": k["hint"], "status": "inactive"})
            return self.send(404, {"type": "error", "error": {"type": "not_found_error",
                                   "message": "no such key"}})
        if path == "/v1/organizations/usage_report/messages" and self.command == "GET":
            if q.get("bucket_width") != ["1d"] or q.get("group_by[]") != ["api_key_id"]:
                return self.send(400, {"type": "error", "error": {"type": "invalid_request_error",
                                       "message": "want bucket_width=1d and group_by[]=api_key_id"}})
            start = datetime.datetime.strptime(q["starting_at"][0], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc)
            return self.usage(st, "anthropic", start, q.get("page", [None])[0])
        return self.send(404, {"type": "error", "error": {"type": "not_found_error", "message": "no"}})

    def usage(self, st, provider, start, page):
        buckets = []
        day = start
        end = today() + datetime.timedelta(days=1)
        while day < end:
            off = (today() - day).days
            res = []
            for e in st.get("usage", []):
                if e["provider"] != provider or e["day"] != off:
                    continue
                if provider == "anthropic":
                    res.append({"uncached_input_tokens": e["input"], "output_tokens": e["output"],
                                "cache_read_input_tokens": e["cache_read"],
                                "cache_creation": {"ephemeral_5m_input_tokens": e["cache_create"],
                                                   "ephemeral_1h_input_tokens": 0},
                                "server_tool_use": {"web_search_requests": 0},
                                "api_key_id": e["key_id"], "workspace_id": None, "model": None,
                                "service_tier": None, "context_window": None})
                else:
                    res.append({"object": "organization.usage.completions.result",
                                "input_tokens": e["input"] + e["cache_read"], "output_tokens": e["output"],
                                "input_cached_tokens": e["cache_read"], "num_model_requests": 1,
                                "project_id": None, "user_id": None, "api_key_id": e["key_id"],
                                "model": None, "batch": None})
            nxt = day + datetime.timedelta(days=1)
            if provider == "anthropic":
                buckets.append({"starting_at": day.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "ending_at": nxt.strftime("%Y-%m-%dT%H:%M:%SZ"), "results": res})
            else:
                buckets.append({"object": "bucket", "start_time": int(day.timestamp()),
                                "end_time": int(nxt.timestamp()), "results": res})
            day = nxt
        i = int(page[len("page_"):]) if page else 0
        chunk = buckets[i:i + PAGE]
        more = i + PAGE < len(buckets)
        out = {"data": chunk, "has_more": more, "next_page": ("page_%d" % (i + PAGE)) if more else None}
        if provider == "openai":
            out["object"] = "page"
        return self.send(200, out)

    def openai(self, st, path, q):
        proj = "/v1/organization/projects/%s" % st["project"]
        if path == proj + "/api_keys" and self.command == "GET":
            keys = [{"object": "organization.project.api_key", "redacted_value": k["hint"],
                     "name": k["name"], "id": k["id"], "created_at": 1711471533, "last_used_at": None,
                     "owner": {"type": "service_account"}} for k in st["openai_keys"] + CREATED]
            p = self.page(keys, q.get("after", [None])[0])
            if p is None:
                return self.send(400, {"error": {"message": "bad after", "type": "invalid_request_error"}})
            p["object"] = "list"
            return self.send(200, p)
        if path == proj + "/service_accounts" and self.command == "POST":
            try:
                body = json.loads(self.body())
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("name"), str) or set(body) != {"name"}:
                return self.send(400, {"error": {"message": "bad body", "type": "invalid_request_error"}})
            v = st["sa_key"]
            with LOCK:
                CREATED.append({"id": "key_new%d" % len(CREATED), "name": "Secret Key",
                                "hint": v[:11] + "..." + v[-4:]})
                kid = CREATED[-1]["id"]
            return self.send(201, {"object": "organization.project.service_account", "id": "svc_acct_fake",
                                   "name": body["name"], "role": "member", "created_at": 1711471533,
                                   "api_key": {"object": "organization.project.service_account.api_key",
                                               "value": v, "name": "Secret Key", "created_at": 1711471533,
                                               "id": kid}})
        if path == "/v1/organization/usage/completions" and self.command == "GET":
            if q.get("bucket_width") != ["1d"] or q.get("group_by") != ["api_key_id"]:
                return self.send(400, {"error": {"message": "want bucket_width=1d, group_by=api_key_id",
                                                 "type": "invalid_request_error"}})
            start = datetime.datetime.fromtimestamp(int(q["start_time"][0]), datetime.timezone.utc)
            return self.usage(st, "openai", start, q.get("page", [None])[0])
        return self.send(404, {"error": {"message": "no such project or path", "type": "invalid_request_error"}})

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tls", nargs=2, required=True)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.state_file, srv.log_file = a.state, a.log
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.tls[0], a.tls[1])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    import os
    os.rename(tmp, a.port_file)
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
