#!/usr/bin/env python3
"""Recompute every test vector of github.com/signoff/approval independently.

An implementation of docs/FORMATS.md in Python, standard library only:
the action and payload hashes, the audit chain and its checkpoint, the
approval artifacts and the decision tokens of this directory. It prints
one line and exits 0 when every value matches, and lists each mismatch
and exits 1 otherwise.

    python3 verify.py [DIR]     (DIR defaults to this file's directory)
"""

import base64
import datetime
import decimal
import hashlib
import json
import os
import re
import sys

# --- RFC 8785 (JSON Canonicalization Scheme) --------------------------------


def es6_number(x):
    """A double as ECMAScript's Number.prototype.toString writes it (RFC 8785 3.2.2.3)."""
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    if x == 0:
        return "0"
    sign, x = ("-", -x) if x < 0 else ("", x)
    # repr gives the shortest digits that read back as x, as ECMAScript does.
    digits, exp = decimal.Decimal(repr(x)).normalize().as_tuple()[1:]
    ds = "".join(map(str, digits))
    n = len(ds) + exp  # x = 0.ds * 10**n
    if len(ds) <= n <= 21:
        out = ds + "0" * (n - len(ds))
    elif 0 < n <= 21:
        out = ds[:n] + "." + ds[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + ds
    else:
        e = n - 1
        out = ds[0] + ("." + ds[1:] if len(ds) > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return sign + out


SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jcs_string(s):
    out = []
    for c in s:
        if c in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[c])
        elif c < " ":
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def utf16_key(s):
    return s.encode("utf-16-be")


def jcs(v):
    """The canonical JSON text of a parsed value (numbers as int, float or Decimal)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return jcs_string(v)
    if isinstance(v, (int, float, decimal.Decimal)):
        return es6_number(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=utf16_key)
        return "{" + ",".join(jcs_string(k) + ":" + jcs(v[k]) for k in keys) + "}"
    raise TypeError(type(v))


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


# --- Payload and action hashes -----------------------------------------------


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key")
        d[k] = v
    return d


def _reject(name):
    raise ValueError("not JSON: " + name)


def _numbers(v):
    if isinstance(v, decimal.Decimal):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from _numbers(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _numbers(x)


def payload_hash(p):
    """SHA-256 of the canonical form of a JSON payload, of the bytes otherwise; "" for none."""
    if not p:
        return ""
    try:
        value = json.loads(p.decode("utf-8"), parse_float=decimal.Decimal, parse_int=decimal.Decimal,
                           parse_constant=_reject, object_pairs_hook=_no_duplicates)
        # A number that a double does not hold exactly keeps the raw bytes.
        for n in _numbers(value):
            if decimal.Decimal(es6_number(n)) != n:
                raise ValueError("number changes through a double")
        canonical = jcs(value).encode("utf-8")  # fails on a lone surrogate
    except (ValueError, UnicodeError, OverflowError, decimal.InvalidOperation):
        return sha256_hex(p)
    return sha256_hex(canonical)


def payload_of(a):
    """The payload bytes of an action in the outputs' form (payload, payload_text, payload_base64)."""
    if "payload_text" in a:
        return a["payload_text"].encode("utf-8")
    if "payload_base64" in a:
        return base64.b64decode(a["payload_base64"], validate=True)
    if "payload" in a:  # a JSON value, hashed in canonical form whatever its spelling
        return jcs(a["payload"]).encode("utf-8")
    return b""


def action_canonical(a, ph):
    """The object the action hash covers: the identity fields, empty ones left out."""
    obj = {"name": a["name"], "requested_by": a["requested_by"]}
    for k in ("initiator", "run_id", "step_id", "constraints", "metadata", "risk"):
        if a.get(k):
            obj[k] = a[k]
    if a.get("cost") is not None:
        obj["cost"] = {"amount": a["cost"]["amount"], "currency": a["cost"].get("currency", "")}
    if a.get("tags"):
        obj["tags"] = sorted(set(a["tags"]), key=utf16_key)
    if a.get("diff"):
        obj["diff"] = [{"path": f["path"], "old_path": f.get("old_path", ""),
                        "hunks": [dict(body=h.get("body", ""), old_start=h.get("old_start", 0), old_lines=h.get("old_lines", 0),
                                       new_start=h.get("new_start", 0), new_lines=h.get("new_lines", 0))
                                  for h in f.get("hunks") or []]}
                       for f in a["diff"]]
    if ph:
        obj["payload_sha256"] = ph
    return jcs(obj)


def action_hashes(a):
    ph = payload_hash(payload_of(a))
    return sha256_hex(action_canonical(a, ph).encode("utf-8")), ph


# --- Times --------------------------------------------------------------------

TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def parse_time(s):
    """An RFC 3339 UTC time, as (seconds since the epoch, nanoseconds)."""
    m = TIME.match(s)
    if not m:
        raise ValueError("not an RFC 3339 UTC time: " + s)
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()), int((m.group(2) or "").ljust(9, "0"))


def six_digits(s):
    """A time as the audit hash writes it: UTC, exactly six fractional digits."""
    secs, nanos = parse_time(s)
    t = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (nanos // 1000)


def before(a, b):
    return parse_time(a) < parse_time(b)


# --- Audit events ----------------------------------------------------------------


def event_canonical(e):
    obj = {"seq": e["seq"], "type": e["type"], "at": six_digits(e["at"]), "prev_hash": e["prev_hash"]}
    for k in ("request_id", "actor", "on_behalf_of", "policies", "verdict", "reason", "conditions",
              "action_hash", "payload_hash", "passkey", "checkpoint"):
        if e.get(k):
            obj[k] = e[k]
    return jcs(obj)


# --- Ed25519 verification (RFC 8032, section 5.1.7) ---------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _x(y, sign):
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P or (x == 0 and sign):
        return None
    return P - x if x & 1 != sign else x


def _point(b):
    y = int.from_bytes(b, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = None if y >= P else _x(y, sign)
    if x is None:
        raise ValueError("not a point")
    return (x, y, 1, x * y % P)


def _add(p, q):  # extended coordinates, RFC 8032 section 5.1.4
    a, b = (p[1] - p[0]) * (q[1] - q[0]) % P, (p[1] + p[0]) * (q[1] + q[0]) % P
    c, d = 2 * p[3] * q[3] * D % P, 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, p)
        p, s = _add(p, p), s >> 1
    return q


def _encode(p):
    zi = pow(p[2], P - 2, P)
    x, y = p[0] * zi % P, p[1] * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


_BY = 4 * pow(5, P - 2, P) % P
B = (_x(_BY, 0), _BY, 1, _x(_BY, 0) * _BY % P)


def ed25519_public(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    return _encode(_mul(a, B))


def ed25519_verify(pub, msg, sig):
    if len(pub) != 32 or len(sig) != 64:
        return False
    try:
        a, r = _point(pub), _point(sig[:32])
    except ValueError:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + pub + msg).digest(), "little") % L
    return _encode(_mul(s, B)) == _encode(_add(r, _mul(k, a)))


def b64url(s):
    if "=" in s:
        raise ValueError("padded")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def key_id(pub):
    return base64.urlsafe_b64encode(hashlib.sha256(pub).digest()[:8]).decode().rstrip("=")


# --- Artifacts and tokens -------------------------------------------------------

ARTIFACT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")  # no trailing zeros


def verify_artifact(art, action, keys, at):
    """The outcome of verifying an artifact, in the order the Go code checks."""
    try:
        obj = json.loads(art, parse_float=decimal.Decimal, object_pairs_hook=_no_duplicates)
        sig = obj.pop("sig")
        body = jcs(obj)
        times = [obj["expires_at"], obj["issued_at"]] + [v["at"] for v in obj["votes"]]
        if (art.rstrip(" \t\r\n") != body[:-1] + ',"sig":' + jcs_string(sig) + "}" or obj["v"] != 1
                or not all(ARTIFACT_TIME.match(t) for t in times)):
            return "malformed"
    except (ValueError, KeyError, TypeError):
        return "malformed"
    pub = next((k for k in keys if key_id(k) == obj["kid"]), None)
    if pub is None:
        return "unknown_key"
    if not ed25519_verify(pub, b"approval-artifact-v1\n" + body.encode("utf-8"), b64url(sig)):
        return "signature"
    if not before(at, obj["expires_at"]):
        return "expired"
    ah, ph = action_hashes(action)
    if ph != obj["payload_hash"]:
        return "payload_mismatch"
    if ah != obj["action_hash"]:
        return "action_mismatch"
    return "ok"


def verify_token(tok, pub, at, leeway=30):
    enc_payload, enc_sig = tok.split(".")
    payload, sig = b64url(enc_payload), b64url(enc_sig)
    claims = json.loads(payload)
    if payload.decode("utf-8") != jcs(claims) or claims["kid"] != key_id(pub):
        return "malformed", claims
    if not ed25519_verify(pub, payload, sig):
        return "signature", claims
    now = parse_time(at)[0]
    if claims["iat"] > now + leeway:
        return "malformed", claims
    if now > claims["exp"] + leeway:
        return "expired", claims
    return "ok", claims


# --- The vectors ------------------------------------------------------------------


def main(directory):
    def load(name):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            return json.load(f, parse_float=decimal.Decimal)

    bad = []

    def check(what, got, want):
        if got != want:
            bad.append("%s: got %r, want %r" % (what, got, want))

    # RFC 8032 section 7.1, TEST 1: the verifier accepts a known signature.
    t1 = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    s1 = bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                       "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    check("RFC 8032 test 1", ed25519_verify(t1, b"", s1), True)

    key = load("key.json")
    pub = bytes.fromhex(key["public_key_hex"])
    check("key from seed", ed25519_public(bytes.fromhex(key["seed_hex"])).hex(), key["public_key_hex"])
    check("kid", key_id(pub), key["kid"])

    actions = load("actions.json")["actions"]
    for v in actions:
        a = v["action"]
        ph = payload_hash(payload_of(a))
        check(v["title"] + ": payload hash", ph, v["payload_hash"])
        check(v["title"] + ": canonical", action_canonical(a, ph), v["canonical"])
        check(v["title"] + ": action hash", action_hashes(a)[0], v["action_hash"])

    events = load("audit.json")["events"]
    prev, checkpoints = "", 0
    for i, v in enumerate(events):
        e = v["event"]
        c = event_canonical(e)
        check("event %d: canonical" % e["seq"], c, v["canonical"])
        check("event %d: hash" % e["seq"], sha256_hex(c.encode("utf-8")), e["hash"])
        check("event %d: seq" % e["seq"], e["seq"], i + 1)
        check("event %d: prev_hash" % e["seq"], e["prev_hash"], prev)
        prev = e["hash"]
        if "checkpoint" in e:
            cp = e["checkpoint"]
            signed = "approval-audit-checkpoint-v1\n" + jcs(
                {"at": six_digits(e["at"]), "hash": cp["hash"], "kid": cp["kid"], "seq": cp["seq"]})
            check("checkpoint %d: signature" % e["seq"], ed25519_verify(pub, signed.encode("utf-8"), b64url(cp["sig"])), True)
            check("checkpoint %d: signed event" % e["seq"], events[int(cp["seq"]) - 1]["event"]["hash"], cp["hash"])
            checkpoints += 1

    artifacts, cases = load("artifacts.json")["artifacts"], 0
    for v in artifacts:
        obj = json.loads(v["artifact"])
        obj.pop("sig")
        check(v["title"] + ": signed bytes", "approval-artifact-v1\n" + jcs(obj), v["signed"])
        for c in v["cases"]:
            keys = [bytes.fromhex(k) for k in c["public_keys_hex"]]
            got = verify_artifact(c.get("artifact") or v["artifact"], c["action"], keys, c["at"])
            check(v["title"] + ": " + c["title"], got, c["expect"])
            cases += 1

    tokens = load("tokens.json")["tokens"]
    for v in tokens:
        got, claims = verify_token(v["token"], bytes.fromhex(v["public_key_hex"]), v["at"])
        check(v["title"], got, v["expect"])
        check(v["title"] + ": claims", claims, v["claims"])
        check(v["title"] + ": payload", b64url(v["token"].split(".")[0]).decode("utf-8"), v["payload"])

    if bad:
        print("verify.py: %d mismatches" % len(bad))
        for b in bad:
            print("  " + b)
        return 1
    print("verify.py: all %d audit hashes (%d checkpoint), %d actions, %d artifact cases and %d tokens reproduced"
          % (len(events), checkpoints, len(actions), cases, len(tokens)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))))
