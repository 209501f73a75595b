#!/usr/bin/env python3
"""Check a Hutong backup file (SPEC §6.2, docs/backup.md) with the platform certificate alone.

Written from the format's description, independently of the appliance's code. It checks the
structure, the SM3 digest over the file and the platform's SM2 signature of it; the body stays
encrypted (opening it needs the KEK, which only the appliance's key store holds). Needs
Python 3.9+ and the public `gmssl` package, and verify_audit.py beside it:

    python3 -m pip install gmssl
    python3 verify_backup.py --cert platform.crt hutong-20261203-020000-000.hbk

After `hutong keys rotate platform`, older backups are signed by the old key: give every
certificate (`--cert` repeated, or a directory such as a copy of `keys/`); the one the
header names is used.

Exit status 0 when the file verifies, 1 when it does not (the reason on stderr), 2 for a
usage error.
"""

import argparse
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_audit import certificate_ders, certificate_public_key, sm2_verify, sm3_digest  # noqa: E402

MAGIC = b"HUTBAK\x00\x01"
END = 0xFFFFFFFF
TAG = 16


class Bad(Exception):
    pass


def take(buf: bytes, pos: int, n: int):
    if pos + n > len(buf):
        raise Bad("truncated at byte %d" % pos)
    return buf[pos : pos + n], pos + n


def check(data: bytes, cert_ders):
    if data[:6] != MAGIC[:6]:
        raise Bad("not a Hutong backup (magic)")
    if data[:8] != MAGIC:
        raise Bad("unsupported format version %d" % data[7])
    pos = 8
    raw, pos = take(data, pos, 4)
    header_json, pos = take(data, pos, int.from_bytes(raw, "big"))
    header = json.loads(header_json)
    chunk_max = header["chunkBytes"] + TAG
    chunks = 0
    while True:
        raw, pos = take(data, pos, 4)
        n = int.from_bytes(raw, "big")
        if n == END:
            break
        if not TAG <= n <= chunk_max:
            raise Bad("chunk %d has a length of %d bytes" % (chunks, n))
        _, pos = take(data, pos, n)
        chunks += 1
    signed_end = pos
    digest, pos = take(data, pos, 32)
    if sm3_digest(data[:signed_end]) != digest:
        raise Bad("the SM3 digest does not match: the file was changed")
    raw, pos = take(data, pos, 2)
    signature, pos = take(data, pos, int.from_bytes(raw, "big"))
    if pos != len(data):
        raise Bad("bytes after the signature")
    in_file = base64.b64decode(header["platformCert"])
    if sm3_digest(in_file).hex() != header["platformCertSm3"]:
        raise Bad("the header's certificate does not match its fingerprint")
    cert_der = in_file
    if cert_ders is not None:
        named = [c for c in cert_ders if sm3_digest(c).hex() == header["platformCertSm3"]]
        if not named:
            raise Bad("signed by another platform certificate (SM3 %s)" % header["platformCertSm3"])
        cert_der = named[0]
    key = certificate_public_key(cert_der)
    if not sm2_verify(key, digest, base64.b64encode(signature).decode()):
        raise Bad("the platform signature does not verify")
    return header, chunks, digest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cert",
        action="append",
        help="platform certificate (PEM or DER) or a directory of them, repeatable; "
        "default: the one in the file",
    )
    ap.add_argument("backup")
    args = ap.parse_args()
    try:
        data = open(args.backup, "rb").read()
        cert = certificate_ders(args.cert) if args.cert else None
    except (OSError, ValueError) as e:
        print("cannot read: %s" % e, file=sys.stderr)
        return 2
    try:
        header, chunks, digest = check(data, cert)
    except (Bad, ValueError, KeyError) as e:
        print("backup does not verify: %s" % e, file=sys.stderr)
        return 1
    print("backup verifies: created %s, audit tree size %d (root %s), %d chunks, SM3 %s"
          % (header["createdAt"], header["auditTreeSize"], header["auditRoot"], chunks, digest.hex()))
    if cert is None:
        print("checked with the certificate inside the file: compare its SM3 %s with the platform's"
              % header["platformCertSm3"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
