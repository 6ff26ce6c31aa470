#!/usr/bin/python3
"""cloud_server.py - loopback fakes of four cloud secret managers, for akctl import/pull tests.

  /aws/                         AWS Secrets Manager GetSecretValue (POST, JSON 1.1). Every request's SigV4
                                signature is VERIFIED with botocore (sigv4_oracle.verify): recomputed over
                                the headers the client signed at the X-Amz-Date it sent, and compared with
                                its Authorization header byte for byte; InvalidSignatureException if not.
  /gcp/v1/projects/P/secrets/S/versions/V:access    Google Secret Manager (payload.data + dataCrc32c)
  /computeMetadata/v1/instance/service-accounts/default/token   GCE metadata server token
  /azure/VAULT/secrets/NAME[/VERSION]?api-version=7.4           Azure Key Vault
  /vault/v1/MOUNT/data/PATH     HashiCorp Vault KV v2

Usage: cloud_server.py --state STATE.json [--log LOG.jsonl]
Prints the port on the first line of stdout, then serves on 127.0.0.1 until killed. STATE is re-read on
every request, so a test rotates a secret or switches an error mode by rewriting it:
  {"aws":   {"region": "us-east-1", "credentials": {"AKID": {"secret": "...", "token": null}},
             "secrets": {"NAME": "string value"}, "mode": null, "allow_skew": false},
   "gcp":   {"token": "...", "metadata_token": (default: token), "secrets": {"projects/P/secrets/S": {"1": "v1", "2": "v2"} | "value"},
             "mode": null},
   "azure": {"token": "...", "secrets": {"VAULT/NAME": "value", "VAULT/NAME/VERSION": "value"}, "mode": null},
   "vault": {"token": "...", "namespace": null, "secrets": {"MOUNT/PATH": {"field": "value"}}, "mode": null}}
Modes (per provider): "500" internal error, "badjson" a 200 with a broken body, "drop" close without an
answer, "slow" wait 3 s first, "deny" 403 (AWS: AccessDeniedException), and for gcp "badcrc" (a wrong
dataCrc32c), "nocrc" (none). Each request is appended to LOG as one JSON line (method, path, headers, body).
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigv4_oracle  # noqa: E402


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-cloud/1"

    def log_message(self, fmt, *args):  # quiet: the JSON log is the record
        pass

    # --- plumbing -------------------------------------------------------------------------------------
    def state(self):
        with open(self.server.state_path) as f:
            return json.load(f)

    def record(self, body):
        if not self.server.log_path:
            return
        entry = {"method": self.command, "path": self.path,
                 "headers": [[k, v] for k, v in self.headers.items()],
                 "body": body.decode("utf-8", "replace")}
        with open(self.server.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def reply(self, status, obj, ctype="application/json", extra=None):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def mode(self, conf):
        """Apply an error mode; True if the request was answered here."""
        m = conf.get("mode")
        if m == "slow":
            time.sleep(3)
            return False
        if m == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if m == "500":
            self.reply(500, {"error": {"code": 500, "message": "internal error", "status": "INTERNAL"}})
            return True
        if m == "badjson":
            self.reply(200, b'{"value": "unterminated')
            return True
        return False

    def do_GET(self):
        self.handle_any(b"")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.handle_any(self.rfile.read(n) if n else b"")

    def handle_any(self, body):
        self.record(body)
        path = urllib.parse.urlsplit(self.path).path
        try:
            st = self.state()
            if path.startswith("/aws/"):
                return self.aws(st.get("aws", {}), body)
            if path.startswith("/gcp/"):
                return self.gcp(st.get("gcp", {}), path[len("/gcp"):])
            if path == "/computeMetadata/v1/instance/service-accounts/default/token":
                return self.metadata(st.get("gcp", {}))
            if path.startswith("/azure/"):
                return self.azure(st.get("azure", {}), path[len("/azure/"):])
            if path.startswith("/vault/v1/"):
                return self.vault(st.get("vault", {}), path[len("/vault/v1/"):])
            self.reply(404, {"error": "no such fake endpoint"})
        except BrokenPipeError:
            pass

    # --- AWS Secrets Manager --------------------------------------------------------------------------
    def aws_error(self, status, typ, msg):
        self.reply(status, {"__type": typ, "message": msg}, "application/x-amz-json-1.1")

    def aws(self, conf, body):
        h = {k.lower(): v for k, v in self.headers.items()}  # first of duplicates is what get() gives
        for k in h:
            h[k] = self.headers.get(k)
        auth = sigv4_oracle.parse_authorization(h.get("authorization"))
        if auth is None:
            return self.aws_error(400, "MissingAuthenticationTokenException",
                                  "Missing Authentication Token")
        akid, date, region, service, term = (auth["credential"].split("/") + [""] * 5)[:5]
        creds = conf.get("credentials", {}).get(akid)
        token = h.get("x-amz-security-token")
        if creds is None or (creds.get("token") or None) != token:
            return self.aws_error(400, "UnrecognizedClientException",
                                  "The security token included in the request is invalid.")
        need = {"host", "x-amz-date", "x-amz-target"} | ({"x-amz-security-token"} if token else set())
        if not need <= set(auth["signedheaders"]) or service != "secretsmanager" or \
                term != "aws4_request" or region != conf.get("region", "us-east-1"):
            return self.aws_error(400, "IncompleteSignatureException",
                                  f"Credential scope or signed headers wrong: {auth['credential']}")
        try:
            when = datetime.datetime.strptime(h.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
        except ValueError:
            return self.aws_error(400, "IncompleteSignatureException", "bad X-Amz-Date")
        if not conf.get("allow_skew") and abs((datetime.datetime.utcnow() - when).total_seconds()) > 900:
            return self.aws_error(400, "InvalidSignatureException", "Signature expired")
        url = "http://" + h["host"] + self.path
        ok, _, canonical, sts = sigv4_oracle.verify(self.command, url, h, body, akid, creds["secret"],
                                                    token, region, service)
        if not ok:
            # AWS quotes its canonical request (security token included) in this message: clients
            # must not show it whole.
            return self.aws_error(400, "InvalidSignatureException",
                                  "The request signature we calculated does not match the signature "
                                  "you provided. Check your AWS Secret Access Key and signing method. "
                                  "Consult the service documentation for details.\n\nThe Canonical "
                                  f"String for this request should have been\n'{canonical}'\n\nThe "
                                  f"String-to-Sign should have been\n'{sts}'\n")
        if h.get("x-amz-target") != "secretsmanager.GetSecretValue" or \
                h.get("content-type") != "application/x-amz-json-1.1":
            return self.aws_error(400, "UnknownOperationException", "bad target or content type")
        if conf.get("mode") == "deny":
            return self.aws_error(400, "AccessDeniedException",
                                  "User: arn:aws:iam::123456789012:user/test is not authorized to "
                                  "perform: secretsmanager:GetSecretValue")
        if self.mode(conf):
            return
        try:
            sid = json.loads(body)["SecretId"]
        except (ValueError, KeyError, TypeError):
            return self.aws_error(400, "SerializationException", "bad body")
        value = conf.get("secrets", {}).get(sid)
        if value is None:
            return self.aws_error(400, "ResourceNotFoundException",
                                  "Secrets Manager can't find the specified secret.")
        self.reply(200, {"ARN": f"arn:aws:secretsmanager:{region}:123456789012:secret:{sid}-AbCdEf",
                         "Name": sid, "VersionId": "01234567-89ab-cdef-0123-456789abcdef",
                         "SecretString": value, "VersionStages": ["AWSCURRENT"],
                         "CreatedDate": 1.7e9}, "application/x-amz-json-1.1")

    # --- Google ---------------------------------------------------------------------------------------
    def gcp_error(self, status, code, msg):
        self.reply(status, {"error": {"code": status, "message": msg, "status": code}})

    def bearer_ok(self, conf):
        return self.headers.get("Authorization") == "Bearer " + conf.get("token", "\0")

    def metadata(self, conf):
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.reply(403, b"Missing Metadata-Flavor:Google header.", "text/html")
        if conf.get("metadata") == "down":
            return self.reply(503, b"unavailable", "text/plain")
        self.reply(200, {"access_token": conf.get("metadata_token", conf.get("token", "")), "expires_in": 3599,
                         "token_type": "Bearer"})

    def gcp(self, conf, path):
        if not path.endswith(":access") or not path.startswith("/v1/"):
            return self.gcp_error(404, "NOT_FOUND", "bad method")
        if not self.bearer_ok(conf):
            return self.gcp_error(401, "UNAUTHENTICATED",
                                  "Request had invalid authentication credentials.")
        if conf.get("mode") == "deny":
            return self.gcp_error(403, "PERMISSION_DENIED",
                                  "Permission 'secretmanager.versions.access' denied")
        if self.mode(conf):
            return
        name = path[len("/v1/"):-len(":access")]
        parts = name.split("/")
        if len(parts) != 6:
            return self.gcp_error(400, "INVALID_ARGUMENT", "bad name")
        versions = conf.get("secrets", {}).get("/".join(parts[:4]))
        if isinstance(versions, str):
            versions = {"1": versions}
        ver = parts[5]
        if versions and ver == "latest":
            ver = max(versions, key=int)
        if not versions or ver not in versions:
            return self.gcp_error(404, "NOT_FOUND",
                                  f"Secret [{'/'.join(parts[:4])}] not found or has no versions.")
        data = versions[ver].encode()
        payload = {"data": base64.b64encode(data).decode()}
        crc = crc32c(data)
        if conf.get("mode") == "badcrc":
            crc ^= 1
        if conf.get("mode") != "nocrc":
            payload["dataCrc32c"] = str(crc)
        self.reply(200, {"name": f"projects/123456789012/secrets/{parts[3]}/versions/{ver}",
                         "payload": payload})

    # --- Azure Key Vault ------------------------------------------------------------------------------
    def azure(self, conf, path):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if q.get("api-version") != ["7.4"]:
            return self.reply(400, {"error": {"code": "BadParameter", "message": "api-version"}})
        if not self.bearer_ok(conf):
            return self.reply(401, {"error": {"code": "Unauthorized", "message":
                                              "AKV10000: Request is missing a Bearer or PoP token."}},
                              extra={"WWW-Authenticate": 'Bearer authorization="https://login.'
                                     'microsoftonline.com/tenant", resource="https://vault.azure.net"'})
        if conf.get("mode") == "deny":
            return self.reply(403, {"error": {"code": "Forbidden", "message":
                                              "The user does not have secrets get permission."}})
        if self.mode(conf):
            return
        parts = path.split("/")  # VAULT, "secrets", NAME[, VERSION]
        if len(parts) not in (3, 4) or parts[1] != "secrets":
            return self.reply(404, {"error": {"code": "NotFound", "message": "bad path"}})
        key = "/".join([parts[0]] + parts[2:])
        value = conf.get("secrets", {}).get(key)
        if value is None:
            return self.reply(404, {"error": {"code": "SecretNotFound", "message":
                                              f"A secret with (name/id) {parts[2]} was not found in "
                                              f"this key vault."}})
        self.reply(200, {"value": value, "id": f"https://{parts[0]}.vault.azure.net/secrets/{parts[2]}/"
                         "0123456789abcdef0123456789abcdef", "attributes": {"enabled": True}})

    # --- Vault KV v2 ----------------------------------------------------------------------------------
    def vault(self, conf, path):
        if self.headers.get("X-Vault-Token") != conf.get("token", "\0"):
            return self.reply(403, {"errors": ["permission denied"]})
        if conf.get("namespace") and self.headers.get("X-Vault-Namespace") != conf["namespace"]:
            return self.reply(403, {"errors": ["permission denied"]})
        if conf.get("mode") == "deny":
            return self.reply(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
        if self.mode(conf):
            return
        raw = urllib.parse.unquote(path)
        mount, _, rest = raw.partition("/")
        if not rest.startswith("data/"):
            return self.reply(404, {"errors": []})
        data = conf.get("secrets", {}).get(mount + "/" + rest[len("data/"):])
        if data is None:
            return self.reply(404, {"errors": []})
        self.reply(200, {"request_id": "r-1", "lease_id": "", "renewable": False, "lease_duration": 0,
                         "data": {"data": data, "metadata": {"version": 1, "destroyed": False}}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    srv.state_path = a.state
    srv.log_path = a.log
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
