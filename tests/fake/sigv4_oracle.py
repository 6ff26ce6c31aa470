#!/usr/bin/python3
"""sigv4_oracle.py - AWS SigV4 by botocore (Debian's python3-botocore), at a pinned timestamp.

The reference every SigV4 check in the tests compares against: akctl-net does not sign requests itself,
libcurl does (CURLOPT_AWS_SIGV4), so what is checked is that libcurl's Authorization header equals,
byte for byte, the one botocore computes for the same request at the same X-Amz-Date.

  sigv4_oracle.py selftest
      botocore against AWS's published SigV4 test-suite answers (so the oracle itself is checked).
  sigv4_oracle.py sign --url URL --region R --service S --akid ID --secret-file F [--token-file F]
                       --date YYYYMMDDTHHMMSSZ [--method POST] [--header 'Name: value']... [--body-file F]
      print the Authorization header botocore computes (credentials come from files, not argv).

cloud_server.py imports verify() from here.
Run with /usr/bin/python3: the first python3 on PATH may be an install without Debian's botocore.
"""
import argparse
import datetime
import sys

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
except ImportError:  # pragma: no cover
    botocore = None


class _PinnedDatetime(datetime.datetime):
    pinned = None

    @classmethod
    def utcnow(cls):
        return cls.pinned


class _PinnedModule:
    """Stands in for the datetime module inside botocore.auth: only utcnow() is pinned."""
    datetime = _PinnedDatetime


def sign(method, url, headers, body, region, service, akid, secret, token, amz_date):
    """Authorization header, canonical request and string to sign, as botocore makes them at amz_date.

    headers: list of (name, value); every one of them is signed (botocore signs all but user-agent,
    expect and x-amzn-trace-id), plus X-Amz-Date and, with a token, X-Amz-Security-Token, which botocore
    sets itself."""
    if botocore is None:
        raise RuntimeError("botocore is not installed (Debian: python3-botocore)")
    creds = botocore.credentials.Credentials(akid, secret, token or None)
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        if name.lower() in ("x-amz-date", "x-amz-security-token", "authorization"):
            continue
        req.headers[name] = value
    signer = botocore.auth.SigV4Auth(creds, service, region)
    saved = botocore.auth.datetime
    _PinnedDatetime.pinned = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    botocore.auth.datetime = _PinnedModule
    try:
        signer.add_auth(req)
        canonical = signer.canonical_request(req)
        sts = signer.string_to_sign(req, canonical)
    finally:
        botocore.auth.datetime = saved
    return req.headers["Authorization"], canonical, sts


def parse_authorization(value):
    """{'credential': 'ID/DATE/REGION/SERVICE/aws4_request', 'signedheaders': [...], 'signature': hex}."""
    if not value or not value.startswith("AWS4-HMAC-SHA256 "):
        return None
    out = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        out[k.lower()] = v
    if not {"credential", "signedheaders", "signature"} <= out.keys():
        return None
    out["signedheaders"] = out["signedheaders"].split(";")
    return out


def verify(method, url, received_headers, body, akid, secret, token, region, service):
    """Recompute the signature of a received request with botocore over the headers the client says it
    signed, at the X-Amz-Date it sent, the way AWS does. Returns (ok, expected, canonical, sts)."""
    auth = received_headers.get("authorization", "")
    parsed = parse_authorization(auth)
    if parsed is None:
        return False, "", "", ""
    signed = [(h, received_headers[h]) for h in parsed["signedheaders"] if h in received_headers]
    expected, canonical, sts = sign(method, url, signed, body, region, service, akid, secret, token,
                                    received_headers.get("x-amz-date", ""))
    return expected == auth, expected, canonical, sts


# AWS SigV4 test suite (aws-sig-v4-test-suite): credentials and two requests with their published
# Authorization headers.
SUITE_AKID = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE = [
    ("get-vanilla", "GET", "https://example.amazonaws.com/", [("Host", "example.amazonaws.com")], b"",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("post-vanilla", "POST", "https://example.amazonaws.com/", [("Host", "example.amazonaws.com")], b"",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
]


def selftest():
    bad = 0
    for name, method, url, headers, body, want in SUITE:
        got, _, _ = sign(method, url, headers, body, "us-east-1", "service", SUITE_AKID, SUITE_SECRET,
                         None, "20150830T123600Z")
        if got != want:
            print(f"sigv4_oracle: {name}: botocore gives\n  {got}\nAWS publishes\n  {want}",
                  file=sys.stderr)
            bad += 1
    if bad == 0:
        print(f"sigv4_oracle: botocore {botocore.__version__ if hasattr(botocore, '__version__') else ''}"
              f" agrees with {len(SUITE)} AWS test-suite vectors")
    return 1 if bad else 0


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selftest")
    s = sub.add_parser("sign")
    s.add_argument("--method", default="POST")
    s.add_argument("--url", required=True)
    s.add_argument("--region", required=True)
    s.add_argument("--service", required=True)
    s.add_argument("--akid", required=True)
    s.add_argument("--secret-file", required=True)
    s.add_argument("--token-file")
    s.add_argument("--date", required=True)
    s.add_argument("--header", action="append", default=[])
    s.add_argument("--body-file")
    a = ap.parse_args()
    if botocore is None:
        print("sigv4_oracle: botocore is not installed (Debian: python3-botocore)", file=sys.stderr)
        return 77
    if a.cmd == "selftest":
        return selftest()
    secret = read_file(a.secret_file).decode().strip()
    token = read_file(a.token_file).decode().strip() if a.token_file else None
    body = read_file(a.body_file) if a.body_file else b""
    headers = []
    for h in a.header:
        n, _, v = h.partition(":")
        headers.append((n.strip(), v.strip()))
    auth, _, _ = sign(a.method, a.url, headers, body, a.region, a.service, a.akid, secret, token,
                      a.date)
    print(auth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
