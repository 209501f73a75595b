#!/usr/bin/env python3
"""A Hutong platform client for seal-system vendors, in plain Python with PyPI `gmssl`.

It signs every request as the integration guide says (canonical string, SM2 with SM3 and the
signer ID 1234567812345678, DER, Base64) and checks `X-Hutong-Signature` on every answer
with the platform certificate. Run `python3 hutong_client.py --help`.

    python3 -m pip install gmssl
"""

import argparse
import base64
import binascii
import json
import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request

from gmssl import func, sm2, sm3

SIGNER_ID = b"1234567812345678"
SM2_N = int(sm2.default_ecc_table["n"], 16)
SM2_CURVE_OID = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301
# SubjectPublicKeyInfo of an SM2 key up to the 04||X||Y point: id-ecPublicKey + SM2 curve.
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


# --- canonical string (guide §2) ---------------------------------------------------------


def canonical_string(params: dict) -> str:
    """Every parameter except `sign`, without None and "", sorted by name bytes."""
    parts = []
    for name in sorted((k for k in params if k != "sign"), key=lambda k: k.encode("utf-8")):
        value = params[name]
        if value is None or value == "":
            continue
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        else:  # arrays and objects: compact JSON, keys in the order sent
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        parts.append(f"{name}={text}")
    return "&".join(parts)


# --- SM3 / SM2 -------------------------------------------------------------------------------


def sm3_digest(data: bytes) -> bytes:
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))


def _crypt(private_hex=None, public_hex=None) -> sm2.CryptSM2:
    c = sm2.CryptSM2(private_key=private_hex, public_key=public_hex or "")
    c.public_key = public_hex or ""  # the constructor strips leading '0'/'4' digits
    return c


def public_key_of(private_hex: str) -> str:
    """X||Y (hex) of the private key d."""
    c = _crypt(private_hex)
    return c._kg(int(private_hex, 16), sm2.default_ecc_table["g"])


def generate_private_key() -> str:
    return "%064x" % (secrets.randbelow(SM2_N - 2) + 1)


def z_a(public_hex: str) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA) with ID 1234567812345678."""
    t = sm2.default_ecc_table
    return sm3_digest(
        len(SIGNER_ID * 8).to_bytes(2, "big")
        + SIGNER_ID
        + bytes.fromhex(t["a"] + t["b"] + t["g"] + public_hex)
    )


def message_digest(public_hex: str, message: bytes) -> bytes:
    """e = SM3(Z_A || M): what an SM2 signature with SM3 actually signs."""
    return sm3_digest(z_a(public_hex) + message)


def _der_int(v: int) -> bytes:
    b = v.to_bytes((v.bit_length() + 8) // 8, "big")  # a leading 0 keeps it positive
    return b"\x02" + bytes([len(b)]) + b


def der_signature(rs_hex: str) -> bytes:
    """DER SEQUENCE { r INTEGER, s INTEGER } of gmssl's r||s hex."""
    body = _der_int(int(rs_hex[:64], 16)) + _der_int(int(rs_hex[64:], 16))
    return b"\x30" + bytes([len(body)]) + body


def sign_digest(private_hex: str, e: bytes) -> bytes:
    """DER SM2 signature over a ready digest e (no further hashing)."""
    c = _crypt(private_hex, public_key_of(private_hex))
    while True:
        # A fresh k from `secrets` (gmssl's own default uses the `random` module).
        rs = c.sign(e, "%064x" % (secrets.randbelow(SM2_N - 2) + 1))
        if rs:
            return der_signature(rs)


def sign(private_hex: str, message: bytes) -> str:
    """Base64 DER SM2-with-SM3 signature (ID 1234567812345678) of `message`."""
    e = message_digest(public_key_of(private_hex), message)
    return base64.b64encode(sign_digest(private_hex, e)).decode("ascii")


# --- a minimal DER reader: a certificate's public key and an SM2 signature ----------------


def der_read(buf: bytes, pos: int):
    """(tag, content, next position) of the element at pos."""
    if pos + 2 > len(buf):
        raise ValueError("DER truncated")
    tag, length, pos = buf[pos], buf[pos + 1], pos + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(buf):
            raise ValueError("DER length")
        length, pos = int.from_bytes(buf[pos : pos + n], "big"), pos + n
    if pos + length > len(buf):
        raise ValueError("DER truncated")
    return tag, buf[pos : pos + length], pos + length


def der_children(content: bytes):
    out, pos = [], 0
    while pos < len(content):
        tag, body, pos = der_read(content, pos)
        out.append((tag, body))
    return out


def spki_public_key(spki: bytes) -> str:
    alg, key = der_children(spki)
    if SM2_CURVE_OID not in alg[1]:
        raise ValueError("not an SM2 public key")
    if key[0] != 0x03 or len(key[1]) != 66 or key[1][:2] != b"\x00\x04":
        raise ValueError("unexpected SM2 public key encoding")
    return key[1][2:].hex()


def certificate_public_key(cert_der: bytes) -> str:
    """X||Y (hex) of the SM2 key in an X.509 certificate."""
    _, cert, _ = der_read(cert_der, 0)
    fields = der_children(der_children(cert)[0][1])
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    return spki_public_key(fields[5][1])


def pem_body(text: str, label: str) -> bytes:
    body = text.split(f"-----BEGIN {label}-----")[1].split(f"-----END {label}-----")[0]
    return base64.b64decode("".join(body.split()))


def public_key_pem(public_hex: str) -> str:
    b64 = base64.b64encode(SPKI_PREFIX + b"\x04" + bytes.fromhex(public_hex)).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def rs_hex(signature: bytes) -> str:
    """r||s hex of a DER or 64-byte raw SM2 signature."""
    if len(signature) == 64:
        return signature.hex()
    tag, seq, end = der_read(signature, 0)
    parts = der_children(seq)
    if tag != 0x30 or end != len(signature) or len(parts) != 2 or any(t != 2 for t, _ in parts):
        raise ValueError("signature is not SEQUENCE { r INTEGER, s INTEGER }")
    r, s = (int.from_bytes(v, "big") for _, v in parts)
    if not (0 < r < SM2_N and 0 < s < SM2_N):
        raise ValueError("signature value out of range")
    return "%064x%064x" % (r, s)


def verify_digest(public_hex: str, e: bytes, signature: bytes) -> bool:
    try:
        return bool(_crypt(None, public_hex).verify(rs_hex(signature), e))
    except (ValueError, IndexError):
        return False


def verify(public_hex: str, message: bytes, signature_b64: str) -> bool:
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    return verify_digest(public_hex, message_digest(public_hex, message), sig)


# --- the platform client ---------------------------------------------------------------------


class PlatformError(Exception):
    pass


class Client:
    """Signs requests with the system's key and checks every answer's platform signature."""

    def __init__(self, base_url, app_id, private_hex, platform_cert_pem, tls_ca=None):
        self.base = base_url.rstrip("/")
        self.app_id = app_id
        self.private_hex = private_hex
        self.platform_key = certificate_public_key(pem_body(platform_cert_pem, "CERTIFICATE"))
        self.tls = ssl.create_default_context(cafile=tls_ca)

    def envelope(self, fields: dict) -> dict:
        params = {
            "version": "1.0",
            "appId": self.app_id,
            "time": str(int(time.time() * 1000)),
            "nonce": secrets.randbelow(100_000_000),
        }
        params.update(fields)
        params["sign"] = sign(self.private_hex, canonical_string(params).encode("utf-8"))
        return params

    def _send(self, path, body: bytes, content_type: str):
        req = urllib.request.Request(
            self.base + path, data=body, method="POST", headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, context=self.tls, timeout=30) as resp:
                status, headers, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:  # 4xx/5xx still carry a signed answer
            status, headers, raw = e.code, e.headers, e.read()
        signature = headers.get("X-Hutong-Signature", "")
        if not verify(self.platform_key, raw, signature):
            raise PlatformError(f"{path}: X-Hutong-Signature does not verify")
        return status, json.loads(raw)

    def call(self, path: str, fields: dict):
        """POSTs `fields` in the signed envelope; (HTTP status, verified answer)."""
        body = json.dumps(self.envelope(fields), ensure_ascii=False).encode("utf-8")
        return self._send(path, body, "application/json")

    def verify_document(self, file_name: str, content: bytes):
        """document/verify: the `file` part is signed as the hex SM3 of its bytes."""
        params = self.envelope({"file": sm3_digest(content).hex()})
        del params["file"]
        boundary = "----hutong" + secrets.token_hex(12)
        out = []
        for name, value in params.items():
            out.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                .encode("utf-8")
            )
        out.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{file_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode("utf-8")
            + content
            + b"\r\n"
        )
        out.append(f"--{boundary}--\r\n".encode())
        return self._send(
            "/api/v1/document/verify", b"".join(out), f"multipart/form-data; boundary={boundary}"
        )


def fetch_platform_certificate(base_url: str, tls_ca=None) -> str:
    ctx = ssl.create_default_context(cafile=tls_ca)
    with urllib.request.urlopen(base_url.rstrip("/") + "/api/v1/platform/certificate", context=ctx) as r:
        return r.read().decode("ascii")


# --- command line ----------------------------------------------------------------------------


def report(step, status, answer, **extra):
    """One JSON line per call, for people and for the tests that run this example."""
    print(json.dumps({"step": step, "status": status, "answer": answer, **extra}, ensure_ascii=False))
    sys.stdout.flush()


def cmd_keygen(args):
    os.makedirs(args.out, exist_ok=True)
    d = generate_private_key()
    key_path = os.path.join(args.out, "key.hex")
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(d + "\n")
    with open(os.path.join(args.out, "public.pem"), "w") as f:
        f.write(public_key_pem(public_key_of(d)))
    print(os.path.join(args.out, "public.pem"))


def client_from(args) -> Client:
    key = open(args.key).read().strip()
    cert = open(args.platform_cert).read() if args.platform_cert else fetch_platform_certificate(args.base, args.tls_ca)
    return Client(args.base, args.app_id, key, cert, args.tls_ca)


def cmd_demo(args):
    """system/info, seal/filing, seal/query and document/verify, each answer verified."""
    c = client_from(args)
    status, answer = c.call("/api/v1/system/info", {})
    report("system/info", status, answer)
    if args.seal:
        seal = open(args.seal, "rb").read()
        status, answer = c.call(
            "/api/v1/seal/filing",
            {
                "code": args.business_code,
                "name": args.seal_name,
                "sealType": "01",
                "certNumber": args.cert_number,
                "possessor": args.possessor,
                "possessorCertNo": args.org_code,
                "possessorType": 1,
                "bizType": 1,
                "certType": args.cert_type,
                "sealData": base64.b64encode(seal).decode("ascii"),
            },
        )
        report("seal/filing", status, answer)
    status, answer = c.call("/api/v1/seal/query", {"orgCode": args.org_code, "sealType": "0"})
    report("seal/query", status, answer)
    if args.document:
        content = open(args.document, "rb").read()
        status, answer = c.verify_document(os.path.basename(args.document), content)
        report("document/verify", status, answer)


def cmd_cloud_sign(args):
    """The requester's side of routed cloud signing: query → apply → poll → sign → check."""
    c = client_from(args)
    status, answer = c.call(
        "/api/v1/seal/query", {"orgCode": args.org_code, "sealType": "0", "certType": 2}
    )
    report("seal/query", status, answer)
    seal = next(s for s in answer["data"] if s["sealCode"] == args.seal_code)
    signer_cert = base64.b64decode(seal["certList"][0]["signPublicKey"])
    signer_key = certificate_public_key(signer_cert)

    status, answer = c.call(
        "/api/v1/cloud/auth/apply",
        {"sealCode": args.seal_code, "mobile": args.mobile, "name": args.signer_name, "orgCode": args.org_code},
    )
    report("cloud/auth/apply", status, answer)
    if answer["code"] != "0":
        return 1
    auth_id = answer["data"]["authId"]
    deadline = time.time() + args.wait
    while True:
        status, answer = c.call("/api/v1/cloud/auth/result", {"authId": auth_id, "sealCode": args.seal_code})
        if answer["code"] != "30007" or time.time() > deadline:
            break
        time.sleep(0.2)
    report("cloud/auth/result", status, answer)
    if answer["code"] != "0":
        return 1
    auth_code = answer["data"]["authCode"]

    message = args.message.encode("utf-8")
    e = message_digest(signer_key, message)
    status, answer = c.call(
        "/api/v1/cloud/sign",
        {
            "sealCode": args.seal_code,
            "authId": auth_id,
            "authCode": auth_code,
            "type": "P1",
            "docHash": base64.b64encode(e).decode("ascii"),
            "credentNo": args.credent_no,
            "orgCode": args.org_code,
            "signId": seal["signId"],
            "hashType": 4,
        },
    )
    ok = answer["code"] == "0" and verify_digest(
        signer_key, e, base64.b64decode(answer["data"]["signData"])
    )
    report("cloud/sign", status, answer, signDataVerified=ok)
    return 0 if answer["code"] != "0" or ok else 1


def cmd_check_vectors(args):
    """Checks the published test vectors (docs/test-vectors/) with this client's own code."""
    v = json.load(open(args.file, encoding="utf-8"))
    keys = {n: k["public"][2:] for n, k in v["keys"].items()}
    for name, k in v["keys"].items():
        assert public_key_of(k["private"]) == keys[name], f"{name}: public key"
        assert spki_public_key(der_children(pem_body(k["publicKeyPem"], "PUBLIC KEY"))[0][1]) == keys[name]
    for r in v["requests"]:
        c = canonical_string(r["params"])
        pub = keys[r["signedWith"]]
        assert c == r["canonical"], f"{r['name']}: canonical {c!r}"
        assert c.encode("utf-8").hex() == r["canonicalHex"]
        assert sm3_digest(c.encode("utf-8")).hex() == r["sm3OfCanonical"], r["name"]
        assert z_a(pub).hex() == r["zA"], r["name"]
        assert message_digest(pub, c.encode("utf-8")).hex() == r["e"], r["name"]
        assert verify(pub, c.encode("utf-8"), r["params"]["sign"]), f"{r['name']}: signature"
    print(f"{len(v['requests'])} vectors ok")


def main(argv=None):
    p = argparse.ArgumentParser(description="Hutong platform client example")
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen", help="make an SM2 key pair: key.hex (private) and public.pem")
    k.add_argument("--out", required=True)
    k.set_defaults(func=cmd_keygen)

    def common(sp):
        sp.add_argument("--base", required=True, help="https://platform:8443")
        sp.add_argument("--app-id", required=True)
        sp.add_argument("--key", required=True, help="the system's private key (hex file)")
        sp.add_argument("--platform-cert", help="platform certificate PEM (else fetched)")
        sp.add_argument("--tls-ca", help="CA file for the platform's HTTPS certificate")
        sp.add_argument("--org-code", required=True, help="possessor's unified social credit code")

    d = sub.add_parser("demo", help="system/info, seal/filing, seal/query, document/verify")
    common(d)
    d.add_argument("--seal", help="a DER SES_Seal to file")
    d.add_argument("--seal-name", default="合同专用章")
    d.add_argument("--possessor", default="某某科技有限公司")
    d.add_argument("--cert-number", default="")
    d.add_argument("--cert-type", type=int, default=2)
    d.add_argument("--business-code", default="biz-1")
    d.add_argument("--document", help="a signed PDF or OFD to verify")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("cloud-sign", help="sign a message with another system's cloud seal")
    common(s)
    s.add_argument("--seal-code", required=True)
    s.add_argument("--mobile", default="13812345678")
    s.add_argument("--signer-name", default="张三")
    s.add_argument("--credent-no", default="11010519491231002X")
    s.add_argument("--message", default="DER of an OFD TBS_Sign")
    s.add_argument("--wait", type=float, default=10.0, help="seconds to wait for intention")
    s.set_defaults(func=cmd_cloud_sign)

    v = sub.add_parser("check-vectors", help="check docs/test-vectors/vectors.json")
    v.add_argument("file")
    v.set_defaults(func=cmd_check_vectors)

    args = p.parse_args(argv)
    try:
        return args.func(args) or 0
    except PlatformError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
