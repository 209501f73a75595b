//! Why a member callback failed, typed (issue 13 point 2): the one translation of network,
//! TLS, certificate and answer failures into Chinese sentences, used by routed calls and by
//! the callback check alike.
//!
//! Each cause has two renderings: [`Cause`]'s `Display`, the full reason for the log, the audit
//! entry and the console (it may name the member's host and address), and [`Cause::public`],
//! what the requester of a routed call is told — the same kind of fault without addresses and
//! never a library's text. Library errors are read here by type, never by their message.

use std::error::Error as StdError;
use std::sync::Arc;

/// Why the member's TLS server certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertCause {
    #[error("证书为 CA 证书，不能直接作为服务器证书")]
    CaAsEndEntity,
    #[error("证书不包含回调主机名 {0}")]
    NotForHost(String),
    #[error("证书已过期")]
    Expired,
    #[error("证书尚未生效")]
    NotYetValid,
    /// A pinned (self-signed, registered) certificate exists and the member presented another.
    #[error("证书与登记的回调证书不一致")]
    PinMismatch,
    #[error("证书不受信任：{0}")]
    Untrusted(String),
}

impl CertCause {
    /// The cause inside a rustls error, so it travels through the handshake unchanged.
    pub fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            Arc::new(self),
        )))
    }

    fn public(&self) -> String {
        match self {
            CertCause::NotForHost(_) => "证书不包含回调主机名".into(),
            other => other.to_string(),
        }
    }

    fn from_certificate_error(e: &rustls::CertificateError, host: &str) -> CertCause {
        use rustls::CertificateError as C;
        match e {
            C::Other(o) => match o.0.downcast_ref::<CertCause>() {
                Some(c) => c.clone(),
                None => CertCause::Untrusted("证书未通过校验".into()),
            },
            C::Expired | C::ExpiredContext { .. } => CertCause::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => CertCause::NotYetValid,
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                CertCause::NotForHost(host.to_string())
            }
            C::UnknownIssuer => CertCause::Untrusted(UNKNOWN_ISSUER.into()),
            C::BadSignature => CertCause::Untrusted("证书的签名无法用签发者公钥验证".into()),
            C::Revoked => CertCause::Untrusted("证书已被吊销".into()),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                CertCause::Untrusted("证书的扩展密钥用途不含服务器认证（serverAuth）".into())
            }
            C::BadEncoding => CertCause::Untrusted("证书编码无效".into()),
            C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => CertCause::Untrusted(
                "证书的签名算法不受支持（TLS 证书须为 RSA、ECDSA 或 Ed25519）".into(),
            ),
            _ => CertCause::Untrusted("证书未通过校验".into()),
        }
    }
}

/// The untrusted-chain reason: neither the operating system's roots nor the registered CA.
pub const UNKNOWN_ISSUER: &str = "签发者既不在操作系统的根证书中，也不是登记的回调 CA 证书";

/// Why one callback failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Cause {
    #[error("未登记 https 回调地址")]
    NoCallbackUrl,
    #[error("回调地址 {0} 无效")]
    BadCallbackUrl(String),
    #[error("登记的回调 CA 证书无法使用")]
    BadCallbackCa,
    #[error("域名 {0} 解析失败")]
    Dns(String),
    #[error("连接 {0} 被拒绝（端口未监听或被防火墙拒绝）")]
    ConnectRefused(String),
    #[error("连接 {0} 超时")]
    ConnectTimeout(String),
    #[error("连接 {0} 失败：{1}")]
    Connect(String, &'static str),
    #[error("TLS 握手失败：{0}")]
    Certificate(CertCause),
    #[error("TLS 握手失败：对方发送 TLS 警报 {0}")]
    TlsAlert(String),
    #[error("TLS 握手失败：对方不是 TLS 服务（回调地址的端口是否为 HTTPS？）")]
    NotTls,
    #[error("TLS 握手失败：{0}")]
    Tls(&'static str),
    #[error("未在 {0} 毫秒内应答")]
    Timeout(u64),
    #[error("HTTP 交换失败：{0}")]
    Http(&'static str),
    #[error("应答无法解析（HTTP 状态 {status}）：{why}")]
    Unparsable { status: u16, why: &'static str },
    #[error("应答的签名未通过验证：{0}")]
    SignatureMismatch(String),
    /// The member answered that it could not authenticate the platform's call.
    #[error("成员系统未接受平台的调用：{0}")]
    PlatformRefused(&'static str),
}

impl Cause {
    /// What the requester of a routed call is told: the kind of fault, no host or address.
    pub fn public(&self) -> String {
        match self {
            Cause::Dns(_) => "域名解析失败".into(),
            Cause::ConnectRefused(_) => "连接被拒绝".into(),
            Cause::ConnectTimeout(_) => "连接超时".into(),
            Cause::Connect(_, why) => format!("连接失败：{why}"),
            Cause::BadCallbackUrl(_) => "登记的回调地址无效".into(),
            Cause::Certificate(c) => format!("TLS 握手失败：{}", c.public()),
            other => other.to_string(),
        }
    }

    /// The cause of a failed outbound request: walks the error's sources for the typed errors
    /// below reqwest (our resolver's, I/O, rustls), whatever wraps them.
    pub fn from_request_error(e: &reqwest::Error, host: &str, target: &str) -> Cause {
        let mut next: Option<&(dyn StdError + 'static)> = Some(e);
        while let Some(err) = next {
            if let Some(d) = err.downcast_ref::<DnsFailure>() {
                return Cause::Dns(d.0.clone());
            }
            if let Some(t) = err.downcast_ref::<rustls::Error>() {
                return Cause::from_tls(t, host);
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return Cause::from_io(io, host, target);
            }
            next = err.source();
        }
        if e.is_connect() {
            Cause::Connect(target.to_string(), "网络错误")
        } else if e.is_body() || e.is_decode() {
            Cause::Http("读取应答失败")
        } else {
            Cause::Http("对方在应答前关闭了连接，或 HTTP 报文无效")
        }
    }

    /// The cause of an I/O error while connecting or talking TLS; an `io::Error` hides the
    /// error it wraps from `source()`, so that one is looked at here.
    pub fn from_io(e: &std::io::Error, host: &str, target: &str) -> Cause {
        use std::io::ErrorKind as K;
        if let Some(inner) = e.get_ref() {
            if let Some(t) = inner.downcast_ref::<rustls::Error>() {
                return Cause::from_tls(t, host);
            }
            if let Some(d) = inner.downcast_ref::<DnsFailure>() {
                return Cause::Dns(d.0.clone());
            }
            // Connectors wrap the TLS stream's I/O error in another one.
            if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                return Cause::from_io(io, host, target);
            }
        }
        let target = target.to_string();
        match e.kind() {
            K::ConnectionRefused => Cause::ConnectRefused(target),
            K::TimedOut | K::WouldBlock => Cause::ConnectTimeout(target),
            K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
                Cause::Connect(target, "连接被对方中断")
            }
            K::NetworkUnreachable | K::HostUnreachable => Cause::Connect(target, "网络不可达"),
            K::AddrNotAvailable => Cause::Connect(target, "地址不可用"),
            K::InvalidData => Cause::NotTls,
            _ => Cause::Connect(target, "网络错误"),
        }
    }

    /// The cause of a failed TLS handshake.
    pub fn from_tls(e: &rustls::Error, host: &str) -> Cause {
        use rustls::Error as E;
        match e {
            E::InvalidCertificate(c) => {
                Cause::Certificate(CertCause::from_certificate_error(c, host))
            }
            E::AlertReceived(a) => Cause::TlsAlert(alert_text(*a)),
            E::InvalidMessage(_) | E::InappropriateMessage { .. } => Cause::NotTls,
            E::PeerIncompatible(_) => {
                Cause::Tls("双方的 TLS 版本或密码套件不兼容（平台支持 TLS 1.2 与 1.3）")
            }
            E::NoCertificatesPresented => Cause::Tls("对方没有出示服务器证书"),
            E::PeerMisbehaved(_) => Cause::Tls("对方违反 TLS 协议"),
            _ => Cause::Tls("连接未能建立"),
        }
    }
}

/// A TLS alert as a person reads it: what it usually means, and its protocol name.
fn alert_text(a: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let (why, name) = match a {
        A::HandshakeFailure => ("握手失败", "handshake_failure"),
        A::ProtocolVersion => ("协议版本不被对方接受", "protocol_version"),
        A::CertificateRequired => ("对方要求客户端证书", "certificate_required"),
        A::UnrecognisedName => ("对方不认识请求的主机名（SNI）", "unrecognized_name"),
        A::InternalError => ("对方内部错误", "internal_error"),
        A::AccessDenied => ("对方拒绝访问", "access_denied"),
        A::InsufficientSecurity => ("对方认为安全参数不足", "insufficient_security"),
        A::DecodeError => ("对方无法解析握手消息", "decode_error"),
        _ => ("对方终止了握手", "alert"),
    };
    format!("{name}（{why}）")
}

/// A host name that did not resolve; raised by the client's resolver so it is told apart from
/// other connect failures.
#[derive(Debug, Clone, thiserror::Error)]
#[error("域名 {0} 解析失败")]
pub struct DnsFailure(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_form_names_no_host_or_address() {
        let causes = [
            Cause::Dns("member.internal".into()),
            Cause::ConnectRefused("10.1.2.3:9443".into()),
            Cause::ConnectTimeout("10.1.2.3:9443".into()),
            Cause::Connect("10.1.2.3:9443".into(), "网络不可达"),
            Cause::BadCallbackUrl("https://10.1.2.3:x".into()),
            Cause::Certificate(CertCause::NotForHost("10.1.2.3".into())),
        ];
        for c in causes {
            assert!(c.to_string().contains("10.1.2.3") || c.to_string().contains("internal"));
            let p = c.public();
            assert!(!p.contains("10.1.2.3") && !p.contains("internal"), "{p}");
        }
    }

    #[test]
    fn certificate_errors_become_their_chinese_reasons() {
        use rustls::CertificateError as C;
        let tls = |c: C| Cause::from_tls(&rustls::Error::InvalidCertificate(c), "127.0.0.1");
        assert_eq!(
            tls(C::NotValidForName).to_string(),
            "TLS 握手失败：证书不包含回调主机名 127.0.0.1"
        );
        assert_eq!(tls(C::Expired).to_string(), "TLS 握手失败：证书已过期");
        assert_eq!(
            tls(C::UnknownIssuer).to_string(),
            format!("TLS 握手失败：证书不受信任：{UNKNOWN_ISSUER}")
        );
        let ours = CertCause::PinMismatch.into_rustls();
        assert_eq!(
            Cause::from_tls(&ours, "h").to_string(),
            "TLS 握手失败：证书与登记的回调证书不一致"
        );
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, ours);
        assert_eq!(
            Cause::from_io(&wrapped, "h", "h:1"),
            Cause::Certificate(CertCause::PinMismatch)
        );
        let twice = std::io::Error::other(wrapped);
        assert_eq!(
            Cause::from_io(&twice, "h", "h:1"),
            Cause::Certificate(CertCause::PinMismatch)
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            Cause::from_io(&refused, "h", "h:1"),
            Cause::ConnectRefused("h:1".into())
        );
    }
}
