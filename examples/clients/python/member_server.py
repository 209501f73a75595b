#!/usr/bin/env python3
"""A minimal member callback server (integration guide §6) in plain Python with `gmssl`.

The platform routes cross-system cloud signing to the seal's home system: it POSTs
`cloud/auth/apply`, `cloud/auth/result` and `cloud/sign` in the request envelope, with
`appId` = this system's appId and `sign` made with the platform's key. This server checks
that envelope exactly as the platform checks its members, confirms the signer's intention
after `--confirm-delay` seconds (a real system would wait for the signer), signs digests with
the seal signer's key and signs each answer body with its own key (`X-Hutong-Signature`).

    python3 member_server.py --listen 127.0.0.1:9443 --cert tls.pem --tls-key tls-key.pem \
        --platform-cert platform.pem --app-id HT... --key key.hex --signer-key signer.hex
"""

import argparse
import base64
import json
import secrets
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import hutong_client as hc


class Refusal(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class Member:
    def __init__(self, args):
        self.app_id = args.app_id
        self.platform_key = hc.certificate_public_key(
            hc.pem_body(open(args.platform_cert).read(), "CERTIFICATE")
        )
        self.key = open(args.key).read().strip()
        self.signer_key = open(args.signer_key).read().strip()
        self.confirm_delay = args.confirm_delay
        self.window_ms = args.time_window * 1000
        self.lock = threading.Lock()
        self.nonces = {}  # nonce -> time seen (ms)
        self.auths = {}  # our authId -> {sealCode, created, authCode}

    def authenticate(self, body: bytes) -> dict:
        """The platform's envelope: version, our appId, time window, signature, then nonce."""
        try:
            p = json.loads(body)
        except ValueError:
            raise Refusal("10001", "请求体不是有效的 JSON")
        if not isinstance(p, dict):
            raise Refusal("10001", "请求体必须是 JSON 对象")
        if p.get("version") != "1.0":
            raise Refusal("10002", "不支持的接口版本")
        if p.get("appId") != self.app_id:
            raise Refusal("20001", "appId 不是本系统")
        now = int(time.time() * 1000)
        try:
            sent = int(p.get("time", ""))
        except ValueError:
            raise Refusal("10001", "参数 time 无效")
        if abs(now - sent) > self.window_ms:
            raise Refusal("20004", "时间戳 time 超出允许的时间窗口")
        if not hc.verify(self.platform_key, hc.canonical_string(p).encode("utf-8"), p.get("sign", "")):
            raise Refusal("20003", "平台签名验证失败")
        nonce = p.get("nonce")
        if not isinstance(nonce, int):
            raise Refusal("10001", "参数 nonce 缺失")
        with self.lock:
            self.nonces = {n: t for n, t in self.nonces.items() if now - t <= self.window_ms}
            if nonce in self.nonces:
                raise Refusal("20005", "nonce 已使用，请求被视为重放")
            self.nonces[nonce] = now
        return p

    @staticmethod
    def field(p, name):
        v = p.get(name)
        if not isinstance(v, str) or not v:
            raise Refusal("10001", f"参数 {name} 缺失")
        return v

    def auth_apply(self, p):
        seal_code = self.field(p, "sealCode")
        self.field(p, "mobile")
        auth_id = secrets.token_hex(16)
        with self.lock:
            self.auths[auth_id] = {"sealCode": seal_code, "created": time.time(), "authCode": None}
        return {"authUrl": f"https://member.example/confirm/{auth_id}", "clientType": "H5", "authId": auth_id}

    def auth_result(self, p):
        auth_id, seal_code = self.field(p, "authId"), self.field(p, "sealCode")
        with self.lock:
            a = self.auths.get(auth_id)
            if a is None or a["sealCode"] != seal_code:
                raise Refusal("30006", "authId 不存在或已过期")
            if time.time() - a["created"] < self.confirm_delay:
                raise Refusal("30007", "签署人尚未完成意愿认证")
            a["authCode"] = a["authCode"] or secrets.token_hex(16)
            return {"authCode": a["authCode"], "authId": auth_id}

    def cloud_sign(self, p):
        auth_id, auth_code = self.field(p, "authId"), self.field(p, "authCode")
        seal_code = self.field(p, "sealCode")
        with self.lock:
            a = self.auths.get(auth_id)
            if a is None or a["sealCode"] != seal_code or a["authCode"] != auth_code:
                raise Refusal("30007", "意愿认证未完成或 authCode 无效")
        if self.field(p, "type") != "P1" or p.get("hashType") != 4:
            raise Refusal("10001", "本示例仅支持 P1 与 hashType 4（SM3）")
        e = base64.b64decode(self.field(p, "docHash"))
        if len(e) != 32:
            raise Refusal("10001", "参数 docHash 应为 32 字节摘要的 Base64")
        # docHash is already e = SM3(Z || M): sign it without hashing again.
        signature = hc.sign_digest(self.signer_key, e)
        return {"type": "P1", "signData": base64.b64encode(signature).decode("ascii")}


ROUTES = {
    "/cloud/auth/apply": Member.auth_apply,
    "/cloud/auth/result": Member.auth_result,
    "/cloud/sign": Member.cloud_sign,
}


def handler_for(member: Member):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            route = ROUTES.get(self.path.rstrip("/"))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1024 * 1024))
            try:
                if route is None:
                    raise Refusal("10001", "接口不存在")
                answer = {"code": "0", "message": "成功", "data": route(member, member.authenticate(body))}
            except Refusal as r:
                answer = {"code": r.code, "message": r.message, "data": ""}
            raw = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("X-Hutong-Signature", hc.sign(member.key, raw))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, fmt, *a):
            sys.stderr.write("member: " + (fmt % a) + "\n")

    return Handler


def main(argv=None):
    p = argparse.ArgumentParser(description="Hutong member callback server example")
    p.add_argument("--listen", default="127.0.0.1:9443")
    p.add_argument("--cert", required=True, help="TLS certificate PEM")
    p.add_argument("--tls-key", required=True, help="TLS private key PEM")
    p.add_argument("--platform-cert", required=True)
    p.add_argument("--app-id", required=True, help="this system's appId at the platform")
    p.add_argument("--key", required=True, help="this system's SM2 private key (hex): signs answers")
    p.add_argument("--signer-key", required=True, help="the seal signer's SM2 private key (hex)")
    p.add_argument("--confirm-delay", type=float, default=1.0)
    p.add_argument("--time-window", type=int, default=300, help="seconds")
    args = p.parse_args(argv)

    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), handler_for(Member(args)))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.tls_key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    print(json.dumps({"listening": server.server_address[1]}))
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
