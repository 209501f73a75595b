//! The callback check (issue 13 point 3): one platform-signed `cloud/auth/result` for a random
//! `authId`, taken apart stage by stage — resolve, TCP connect, TLS handshake, HTTP, JSON
//! envelope, the member's code, the answer's signature — each timed, the first failure with
//! its [`Cause`]. The member is expected to verify the platform's signature and answer with an
//! error of its own (it knows no such `authId`).
//!
//! It uses the same TLS trust ([`super::tls`]), envelope and answer reading
//! ([`super::client`]) as routed calls, so a passing check means routed calls get through. It
//! runs blocking (std sockets and a rustls connection) with the member timeout as its total
//! budget; callers run it off the async workers. It records nothing: `domain::systems` audits
//! the act.

use super::cause::Cause;
use super::client::{self, InteropError};
use crate::keys::Keyring;
use crate::store::systems::SystemRecord;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Resolve,
    Connect,
    Tls,
    Http,
    Envelope,
    MemberCode,
    Signature,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Resolve => "域名解析",
            Stage::Connect => "TCP 连接",
            Stage::Tls => "TLS 握手",
            Stage::Http => "HTTP 请求",
            Stage::Envelope => "JSON 应答",
            Stage::MemberCode => "成员应答码",
            Stage::Signature => "应答签名",
        }
    }
}

/// One stage's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageResult {
    pub stage: Stage,
    pub ok: bool,
    pub ms: u64,
    /// What was found (passed) or why it failed.
    pub note: String,
}

/// The whole check: the stages run, up to and including the first failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub app_id: String,
    pub url: String,
    pub stages: Vec<StageResult>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        !self.stages.is_empty() && self.stages.iter().all(|s| s.ok)
    }

    pub fn first_failure(&self) -> Option<&StageResult> {
        self.stages.iter().find(|s| !s.ok)
    }

    /// One line for an audit entry or a log: passed, or the failing stage and its cause.
    pub fn summary(&self) -> String {
        match self.first_failure() {
            None => format!("回调检查通过（{}）", self.url),
            Some(f) => format!("回调检查失败于{}：{}", f.stage.label(), f.note),
        }
    }
}

/// The member codes that mean it could not authenticate the platform's call.
fn platform_not_accepted(code: &str) -> Option<&'static str> {
    Some(match code {
        "10002" => "成员不接受接口版本 1.0",
        "20001" => "成员认为 appId 不是它自己的：核对登记的 appId",
        "20003" => {
            "成员未能验证平台签名：应使用平台证书（GET /api/v1/platform/certificate）的公钥与签名者 ID 1234567812345678"
        }
        "20004" => "成员认为 time 超出时间窗口：核对双方时钟",
        "20005" => "成员认为 nonce 重放",
        _ => return None,
    })
}

/// Header under which a member may sign its answer, as the platform signs its own.
const ANSWER_SIGNATURE: &str = "x-hutong-signature";
/// Largest head of an HTTP answer read.
const MAX_HEAD: usize = 16 * 1024;

struct Run {
    report: CheckReport,
    deadline: Instant,
    budget_ms: u64,
}

impl Run {
    /// Time left, or the timeout cause.
    fn left(&self) -> Result<Duration, Cause> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Cause::Timeout(self.budget_ms))
    }

    /// Runs one stage and records it; `None` once it failed.
    fn stage<T>(
        &mut self,
        stage: Stage,
        f: impl FnOnce(&Self) -> Result<(T, String), Cause>,
    ) -> Option<T> {
        let started = Instant::now();
        let outcome = self.left().and_then(|_| f(self));
        let ms = started.elapsed().as_millis() as u64;
        let (ok, note, value) = match outcome {
            Ok((v, note)) => (true, note, Some(v)),
            Err(c) => (false, c.to_string(), None),
        };
        self.report.stages.push(StageResult {
            stage,
            ok,
            ms,
            note,
        });
        value
    }
}

/// Runs the check against `member`'s registered callback within `timeout`.
pub fn check_callback(keys: &Keyring, member: &SystemRecord, timeout: Duration) -> CheckReport {
    let url = match client::callback_base(member) {
        Ok(base) => format!("{}/cloud/auth/result", base.trim_end_matches('/')),
        Err(_) => String::new(),
    };
    let mut run = Run {
        report: CheckReport {
            app_id: member.app_id.clone(),
            url: url.clone(),
            stages: Vec::new(),
        },
        deadline: Instant::now() + timeout,
        budget_ms: timeout.as_millis() as u64,
    };
    let _ = run_stages(&mut run, keys, member, &url);
    run.report
}

fn run_stages(run: &mut Run, keys: &Keyring, member: &SystemRecord, url: &str) -> Option<()> {
    let app_id = member.app_id.as_str();
    let (host, target, request_path) = match request_target(url) {
        Ok(t) => t,
        Err(cause) => {
            // Nothing to resolve: the registration itself is the first failure.
            run.stage(Stage::Resolve, |_| Err::<((), String), _>(cause));
            return None;
        }
    };
    let addrs: Vec<SocketAddr> = run.stage(Stage::Resolve, |_| {
        let found: Vec<SocketAddr> = target
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        if found.is_empty() {
            return Err(Cause::Dns(host.clone()));
        }
        let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
        Ok((found, format!("{host} → {}", shown.join("、"))))
    })?;
    let sock = run.stage(Stage::Connect, |r| {
        let mut last = Cause::ConnectRefused(target.clone());
        for a in &addrs {
            match TcpStream::connect_timeout(a, r.left()?) {
                Ok(s) => return Ok((s, format!("已连接 {a}"))),
                Err(e) => last = Cause::from_io(&e, &host, &a.to_string()),
            }
        }
        Err(last)
    })?;
    let mut tls = run.stage(Stage::Tls, |r| {
        let config = client::member_tls_config(member).map_err(cause_of)?;
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| Cause::BadCallbackUrl(url.to_string()))?;
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| Cause::from_tls(&e, &host))?;
        let mut sock = sock;
        timeouts(&sock, r.left()?);
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)
                .map_err(|e| Cause::from_io(&e, &host, &target))?;
        }
        let version = conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let note = format!("{version}，服务器证书已通过校验");
        Ok((rustls::StreamOwned::new(conn, sock), note))
    })?;
    let mut fields = Map::new();
    fields.insert(
        "authId".into(),
        Value::String(hex::encode(crate::crypto::sm::random_bytes::<16>())),
    );
    fields.insert("sealCode".into(), Value::String("CALLBACKCHECK".into()));
    let body = client::envelope(keys, app_id, fields);
    let answer = run.stage(Stage::Http, |r| {
        timeouts(tls.get_ref(), r.left()?);
        let answer = exchange(&mut tls, (&host, &target), &request_path, &body, r)?;
        let note = format!("HTTP {}，应答 {} 字节", answer.status, answer.body.len());
        Ok((answer, note))
    })?;
    let read = client::read_answer(app_id, answer.status, &answer.body);
    let refusal = run.stage(Stage::Envelope, |_| match read {
        Ok(_) => Ok((None, "code 0".into())),
        Err(InteropError::Refused { code, message, .. }) => {
            let note = format!("code {code}：{message}");
            Ok((Some(code), note))
        }
        Err(e) => Err(cause_of(e)),
    })?;
    run.stage(Stage::MemberCode, |_| match refusal.as_deref() {
        None => Ok((
            (),
            "成员对随机 authId 答复成功：请检查其 authId 校验".into(),
        )),
        Some(code) => match platform_not_accepted(code) {
            Some(why) => Err(Cause::PlatformRefused(why)),
            None => Ok(((), format!("成员验证了平台签名并以 {code} 拒绝随机 authId"))),
        },
    })?;
    run.stage(Stage::Signature, |_| {
        answer_signature(member, &answer).map(|note| ((), note))
    })?;
    Some(())
}

/// The host, `host:port` and request path of the callback URL.
fn request_target(url: &str) -> Result<(String, String, String), Cause> {
    if url.is_empty() {
        return Err(Cause::NoCallbackUrl);
    }
    let bad = || Cause::BadCallbackUrl(url.to_string());
    let (host, target) = client::host_and_target(url).ok_or_else(bad)?;
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    Ok((host, target, path))
}

/// Checks the member's signature on its answer when it sent one (SPEC does not require it).
fn answer_signature(member: &SystemRecord, answer: &HttpAnswer) -> Result<String, Cause> {
    let Some(sig) = &answer.signature else {
        return Ok("应答未签名（平台不要求成员对应答签名）".into());
    };
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .map_err(|_| Cause::SignatureMismatch("X-Hutong-Signature 不是标准 Base64".into()))?;
    let verified = member.public_keys.iter().any(|pem| {
        crate::crypto::sm::sm2_public_key_from_pem(pem)
            .is_ok_and(|k| crate::crypto::sm::sm2_verify(&k, &answer.body, &sig).is_ok())
    });
    if verified {
        Ok("X-Hutong-Signature 可用成员登记的公钥验证".into())
    } else {
        Err(Cause::SignatureMismatch(
            "X-Hutong-Signature 不能用成员登记的公钥验证".into(),
        ))
    }
}

fn cause_of(e: InteropError) -> Cause {
    e.cause()
        .cloned()
        .unwrap_or(Cause::Http("成员应答无法使用"))
}

fn timeouts(sock: &TcpStream, left: Duration) {
    let _ = sock.set_read_timeout(Some(left));
    let _ = sock.set_write_timeout(Some(left));
}

struct HttpAnswer {
    status: u16,
    body: Vec<u8>,
    signature: Option<String>,
}

/// One HTTP/1.1 POST with `Connection: close` and its answer (Content-Length, chunked, or to
/// the end of the stream), bounded in size.
fn exchange(
    stream: &mut (impl Read + Write),
    (host, target): (&str, &str),
    path: &str,
    body: &[u8],
    run: &Run,
) -> Result<HttpAnswer, Cause> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            Cause::Http("等待应答超时")
        }
        _ => Cause::from_io(&e, host, target),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: hutong-callback-check\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    stream.flush().map_err(io)?;
    let limit = MAX_HEAD + client::MAX_ANSWER_BYTES + 64 * 1024;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(done) = parse_answer(&buf)? {
            return Ok(done);
        }
        // A member trickling bytes does not stretch the budget.
        run.left()?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            // A peer that closes without close_notify ends the answer like EOF.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            return parse_to_end(&buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > limit {
            return Err(Cause::Unparsable {
                status: 0,
                why: "应答过大",
            });
        }
    }
}

struct Head<'a> {
    status: u16,
    headers: Vec<(String, &'a str)>,
    body_at: usize,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head<'_>>, Cause> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(Cause::Http("HTTP 应答头过大"));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| Cause::Http("HTTP 应答头无效"))?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|l| l.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or(Cause::Http("对方的应答不是 HTTP/1.x"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    Ok(Some(Head {
        status,
        headers,
        body_at: end + 4,
    }))
}

impl Head<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    fn answer(&self, body: Vec<u8>) -> HttpAnswer {
        HttpAnswer {
            status: self.status,
            body,
            signature: self.header(ANSWER_SIGNATURE).map(str::to_string),
        }
    }
}

/// The answer once `buf` holds all of it; `None` while more is needed.
fn parse_answer(buf: &[u8]) -> Result<Option<HttpAnswer>, Cause> {
    let Some(head) = parse_head(buf)? else {
        return Ok(None);
    };
    let rest = &buf[head.body_at..];
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        return Ok(dechunk(rest)?.map(|b| head.answer(b)));
    }
    match head.header("content-length") {
        Some(v) => {
            let len: usize = v.parse().map_err(|_| Cause::Http("Content-Length 无效"))?;
            Ok((rest.len() >= len).then(|| head.answer(rest[..len].to_vec())))
        }
        None => Ok(None),
    }
}

/// The answer at the end of the stream: what `parse_answer` could not finish is incomplete,
/// except a body delimited by the end of the stream.
fn parse_to_end(buf: &[u8]) -> Result<HttpAnswer, Cause> {
    if let Some(a) = parse_answer(buf)? {
        return Ok(a);
    }
    match parse_head(buf)? {
        Some(head)
            if head.header("content-length").is_none()
                && head.header("transfer-encoding").is_none() =>
        {
            Ok(head.answer(buf[head.body_at..].to_vec()))
        }
        _ => Err(Cause::Http("对方在应答完成前关闭了连接")),
    }
}

/// A chunked body, once its last chunk arrived.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, Cause> {
    let bad = Cause::Http("分块（chunked）应答无效");
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|_| bad.clone())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad.clone())?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size.saturating_add(2) {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_length_chunks_or_end_of_stream() {
        let by_len =
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Hutong-Signature: c2ln\r\n\r\nbodyextra";
        let a = parse_answer(by_len).unwrap().unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"body"[..]));
        assert_eq!(a.signature.as_deref(), Some("c2ln"));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n";
        let a = parse_answer(chunked).unwrap().unwrap();
        assert_eq!((a.status, a.body.as_slice()), (404, &b"abcde"[..]));
        assert!(
            parse_answer(&chunked[..chunked.len() - 7])
                .unwrap()
                .is_none()
        );
        let to_end = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n{}";
        assert!(parse_answer(to_end).unwrap().is_none());
        assert_eq!(parse_to_end(to_end).unwrap().body, b"{}");
        assert!(parse_to_end(&by_len[..40]).is_err());
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[test]
    fn the_summary_names_the_first_failing_stage() {
        let r = CheckReport {
            app_id: "HT1".into(),
            url: "https://m.example/cloud/auth/result".into(),
            stages: vec![
                StageResult {
                    stage: Stage::Resolve,
                    ok: true,
                    ms: 1,
                    note: String::new(),
                },
                StageResult {
                    stage: Stage::Connect,
                    ok: false,
                    ms: 2,
                    note: "连接 m.example:443 被拒绝".into(),
                },
            ],
        };
        assert!(!r.passed());
        assert_eq!(
            r.summary(),
            "回调检查失败于TCP 连接：连接 m.example:443 被拒绝"
        );
    }
}
