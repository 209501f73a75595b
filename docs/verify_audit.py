#!/usr/bin/env python3
"""Verify a Hutong audit-log export (SPEC §6.1) with the platform certificate alone.

Written from the specification, independently of the appliance's code. Needs Python 3.9+
and the public `gmssl` package (pure Python SM2/SM3):

    python3 -m pip install gmssl
    python3 verify_audit.py --cert platform.crt audit.jsonl

A log that spans a platform key rotation (`hutong keys rotate platform`) has checkpoints
signed by the old key before the switch and by the new key after it; give every certificate,
`--cert` repeated or a directory of them (e.g. a copy of the data directory's `keys/`, which
holds `platform.crt` and the replaced `platform-<fingerprint>.crt`). Each checkpoint is
checked with the certificate its origin names; the region never changes, a replaced
certificate never signs again after its successor has, and a checkpoint never comes from an
older certificate (earlier notBefore) than the one before it, or than an anchor signed
before it.

Exit status 0 when every line verifies, 1 at the first line that does not (named on stderr),
2 for a usage error.
"""

import argparse
import base64
import binascii
import calendar
import json
import os
import sys

from gmssl import func, sm2, sm3

SM2_N = int(sm2.default_ecc_table["n"], 16)
SM2_OID = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301 (SM2 curve)


def sm3_digest(data: bytes) -> bytes:
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))


def leaf_hash(leaf: bytes) -> bytes:
    return sm3_digest(b"\x00" + leaf)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sm3_digest(b"\x01" + left + right)


# --- a minimal DER reader: enough for a certificate's public key and an SM2 signature ---


def der_read(buf: bytes, pos: int):
    """Returns (tag, content, next position) of the element at pos."""
    if pos + 2 > len(buf):
        raise ValueError("DER truncated")
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(buf):
            raise ValueError("DER length")
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + length > len(buf):
        raise ValueError("DER truncated")
    return tag, buf[pos : pos + length], pos + length


def der_children(content: bytes):
    out, pos = [], 0
    while pos < len(content):
        tag, body, pos = der_read(content, pos)
        out.append((tag, body))
    return out


def tbs_fields(cert_der: bytes):
    """serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ..."""
    tag, cert, _ = der_read(cert_der, 0)
    if tag != 0x30:
        raise ValueError("not a certificate")
    tbs_tag, tbs = der_children(cert)[0]
    fields = der_children(tbs)
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    return fields


def certificate_not_before_ms(cert_der: bytes) -> int:
    """notBefore (UTC ms): a later one is a later generation of the platform key."""
    tag, when = der_children(tbs_fields(cert_der)[3][1])[0]
    text = when.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ (RFC 5280: YY below 50 is 20YY)
        year = int(text[:2])
        text = str(2000 + year if year < 50 else 1900 + year) + text[2:]
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError("the certificate's notBefore is not a time")
    if len(text) != 15 or not text.endswith("Z"):
        raise ValueError("the certificate's notBefore is not YYYYMMDDHHMMSSZ")
    parts = (text[0:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])
    return calendar.timegm(tuple(int(x) for x in parts)) * 1000


def certificate_public_key(cert_der: bytes) -> str:
    """The SM2 public key X||Y (hex) of an X.509 certificate."""
    spki_tag, spki = tbs_fields(cert_der)[5]
    alg, key = der_children(spki)
    if SM2_OID not in alg[1]:
        raise ValueError("the certificate's key is not an SM2 key")
    if key[0] != 0x03 or len(key[1]) != 66 or key[1][0:2] != b"\x00\x04":
        raise ValueError("unexpected SM2 public key encoding")
    return key[1][2:].hex()


def certificate_ders(paths):
    """Every certificate in the files and directories given (directories: *.crt and *.pem)."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.endswith((".crt", ".pem")))
            out.extend(certificate_der(os.path.join(path, n)) for n in names)
        else:
            out.append(certificate_der(path))
    if not out:
        raise ValueError("no certificate given")
    return out


def certificate_der(path: str) -> bytes:
    raw = open(path, "rb").read()
    if b"-----BEGIN" in raw:
        text = raw.decode("ascii")
        body = text.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
        return base64.b64decode("".join(body.split()))
    return raw


def sm2_signature_hex(der_sig: bytes) -> str:
    tag, seq, end = der_read(der_sig, 0)
    if tag != 0x30 or end != len(der_sig):
        raise ValueError("signature is not a DER SEQUENCE")
    parts = der_children(seq)
    if len(parts) != 2 or any(t != 0x02 for t, _ in parts):
        raise ValueError("signature is not SEQUENCE { r INTEGER, s INTEGER }")
    r, s = (int.from_bytes(v, "big") for _, v in parts)
    if not (0 < r < SM2_N and 0 < s < SM2_N):
        raise ValueError("signature value out of range")
    return "%064x%064x" % (r, s)


def sm2_verify(public_key_hex: str, message: bytes, signature_b64: str) -> bool:
    try:
        sig = sm2_signature_hex(base64.b64decode(signature_b64, validate=True))
    except (ValueError, binascii.Error):
        return False
    verifier = sm2.CryptSM2(private_key=None, public_key=public_key_hex)
    verifier.public_key = public_key_hex  # the constructor strips leading '0'/'4' digits
    return bool(verifier.verify_with_sm3(sig, message))  # ID 1234567812345678


# --- the tree: RFC 9162 compact range ---


class Frontier:
    def __init__(self, size=0, hashes=None):
        self.size = size
        self.hashes = list(hashes or [])

    def push(self, h: bytes):
        s = self.size
        while s & 1:
            h = node_hash(self.hashes.pop(), h)
            s >>= 1
        self.hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return sm3_digest(b"")
        acc = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            acc = node_hash(h, acc)
        return acc


def jcs(value) -> str:
    """RFC 8785 for the values a leaf holds (objects, strings, integers, null)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def parse_checkpoint(text: str):
    if not text.endswith("\n"):
        return None
    lines = text[:-1].split("\n")
    if len(lines) != 4:
        return None
    origin, size, root, at = lines
    if not (size.isdigit() and at.isdigit()) or str(int(size)) != size:
        return None
    try:
        root = base64.b64decode(root, validate=True)
    except binascii.Error:
        return None
    if len(root) != 32:
        return None
    return origin, int(size), root, int(at)


class Failure(Exception):
    pass


def verify(lines, cert_ders):
    keys = {sm3_digest(der).hex()[:16]: certificate_public_key(der) for der in cert_ders}
    born = {sm3_digest(der).hex()[:16]: certificate_not_before_ms(der) for der in cert_ders}
    # origins: those seen in order, the last in force; anchor: its (origin, at).
    state = {"origins": [], "anchor": None}
    tree = Frontier()
    entries = checkpoints = 0
    since_checkpoint = 0

    def check_checkpoint(cp, where, ordered=True):
        if not isinstance(cp, dict) or not isinstance(cp.get("text"), str):
            raise Failure(f"{where}: malformed checkpoint")
        parsed = parse_checkpoint(cp["text"])
        if parsed is None:
            raise Failure(f"{where}: the checkpoint text is not four canonical lines")
        origin = parsed[0]
        parts = origin.split("/")
        if len(parts) != 3 or parts[0] != "hutong":
            raise Failure(f"{where}: origin {origin!r} is not hutong/<region>/<fingerprint>")
        key = keys.get(parts[2])
        if key is None:
            raise Failure(f"{where}: origin {origin!r} names none of the given certificates")
        if not sm2_verify(key, cp["text"].encode("utf-8"), cp.get("signature", "")):
            raise Failure(f"{where}: the signature does not verify with that certificate")
        # An anchor is signed when the log is pruned, by the key in force then, over an
        # older size: it says nothing about which key came first.
        if not ordered:
            state["anchor"] = (origin, parsed[3])
            return parsed
        seen = state["origins"]
        if seen and seen[-1] != origin:
            if seen[-1].split("/")[1] != parts[1]:
                raise Failure(f"{where}: origin {origin!r} has another region than {seen[-1]!r}")
            if origin in seen:
                raise Failure(f"{where}: origin {origin!r} signs again after it was replaced")
            # A rotation only goes forward: the certificate taking over is newer (later
            # notBefore), so a retired key cannot take over again even where the export
            # shows nothing it signed before.
            if born[parts[2]] < born[seen[-1].split("/")[2]]:
                raise Failure(
                    f"{where}: origin {origin!r} has an older certificate than {seen[-1]!r}, "
                    f"which replaced it"
                )
        anchor = state["anchor"]
        if anchor is not None:
            a_origin, a_at = anchor
            if a_origin.split("/")[1] != parts[1]:
                raise Failure(f"{where}: origin {origin!r} has another region than the anchor's")
            # Signed after the anchor, by a key older than the anchor's: a retired key.
            if parsed[3] > a_at and born[parts[2]] < born[a_origin.split("/")[2]]:
                raise Failure(
                    f"{where}: origin {origin!r} has an older certificate than the anchor's "
                    f"{a_origin!r}, and signed after it"
                )
        if not seen or seen[-1] != origin:
            seen.append(origin)
        return parsed

    for number, line in enumerate(lines, 1):
        where = f"line {number}"
        line = line.rstrip("\n")
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise Failure(f"{where}: not JSON")
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "anchor":
            if number != 1:
                raise Failure(f"{where}: an anchor may only be the first line")
            size = obj.get("treeSize")
            try:
                hashes = [base64.b64decode(h, validate=True) for h in obj.get("frontier", [])]
            except (binascii.Error, TypeError):
                raise Failure(f"{where}: anchor frontier is not Base64")
            if not isinstance(size, int) or size < 1 or len(hashes) != bin(size).count("1"):
                raise Failure(f"{where}: anchor frontier does not match treeSize")
            if any(len(h) != 32 for h in hashes):
                raise Failure(f"{where}: anchor hash is not 32 bytes")
            anchor = Frontier(size, hashes)
            _, cp_size, cp_root, _ = check_checkpoint(
                obj.get("checkpoint"), where + " (anchor)", ordered=False
            )
            if cp_size != size or cp_root != anchor.root():
                raise Failure(f"{where}: anchor frontier does not give its checkpoint's root")
            tree = anchor
            checkpoints += 1
        elif kind == "entry":
            seq = obj.get("seq")
            if seq != tree.size:
                raise Failure(f"{where}: entry seq {seq} where {tree.size} was expected")
            try:
                leaf = base64.b64decode(obj.get("leaf", ""), validate=True)
                fields = json.loads(leaf.decode("utf-8"))
            except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError):
                raise Failure(f"{where}: entry {seq}: leaf is not Base64 JSON")
            if not isinstance(fields, dict) or fields.get("seq") != seq:
                raise Failure(f"{where}: entry {seq}: the leaf's own seq differs")
            if jcs(fields).encode("utf-8") != leaf:
                raise Failure(f"{where}: entry {seq}: the leaf is not RFC 8785 canonical JSON")
            tree.push(leaf_hash(leaf))
            entries += 1
            since_checkpoint += 1
        elif kind == "checkpoint":
            _, size, root, _ = check_checkpoint(obj, where)
            if size != tree.size:
                raise Failure(f"{where}: checkpoint of size {size} after {tree.size} entries")
            if root != tree.root():
                raise Failure(
                    f"{where}: checkpoint at size {size}: the recomputed root differs "
                    f"(an entry before it was altered)"
                )
            checkpoints += 1
            since_checkpoint = 0
        else:
            raise Failure(f"{where}: unknown line type {kind!r}")
    return entries, checkpoints, since_checkpoint


def main():
    p = argparse.ArgumentParser(description="Verify a Hutong audit-log export (SPEC §6.1).")
    p.add_argument(
        "--cert",
        required=True,
        action="append",
        help="platform certificate (PEM or DER) or a directory of them; repeat for the "
        "certificates of earlier platform keys",
    )
    p.add_argument("export", help="the export file (JSON Lines)")
    args = p.parse_args()
    try:
        certs = certificate_ders(args.cert)
        with open(args.export, encoding="utf-8") as f:
            entries, checkpoints, unsigned = verify(f, certs)
    except (OSError, ValueError, IndexError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"OK: {entries} entries, {checkpoints} checkpoints verified", end="")
    print(f"; {unsigned} entries after the last checkpoint are not yet signed" if unsigned else "")


if __name__ == "__main__":
    main()
