//! The one mapping from every lower module's error to the codes of SPEC §2
//! ([`crate::protocol::Code`]). The API answers with it and the console renders through it, so
//! the same fault gets the same verdict everywhere. Messages are Chinese sentences that name the
//! parameter or state; internals (storage texts, paths) go to the log here and never into a
//! message.
//!
//! Must not decide rules: it translates decisions already taken in `domain`, `gateway`,
//! `interop` and `verify`.

use crate::domain::DomainError;
use crate::domain::documents::VerifyError;
use crate::gateway::GatewayError;
use crate::interop::InteropError;
use crate::protocol::Code;
use crate::store::StoreError;
use crate::verify::DocumentError;
use actix_web::http::StatusCode;

/// The message of every internal failure before [`ApiError::internal`] adds the request id.
const INTERNAL: &str = "平台内部错误";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// The full reason for the call's audit entry, when it says more than `message` (a failed
    /// member callback's cause, naming the member's host); never sent to the caller.
    pub audit_detail: String,
    /// The answer's `data` when a refusal carries some (else the empty string).
    pub data: Option<Box<serde_json::Value>>,
    /// An HTTP status other than the code's, for faults of the transport rather than of the
    /// request (a body that stopped arriving is `408`, with the parameter code).
    pub http_status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            audit_detail: String::new(),
            data: None,
            http_status: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.http_status.unwrap_or_else(|| {
            StatusCode::from_u16(self.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }

    /// The request body stalled past `server.body_timeout_secs`: `408`, code `10001`.
    pub fn body_timeout(secs: u64) -> Self {
        Self {
            http_status: Some(StatusCode::REQUEST_TIMEOUT),
            ..Self::new(
                Code::InvalidParameter,
                format!("请求体传输超时：超过 {secs} 秒未收到后续数据"),
            )
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidParameter, message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            Code::TooLarge,
            format!("请求体或文件超过大小上限（{limit} 字节）"),
        )
    }

    /// An internal failure whose details were logged where it was caught; the answer gets the
    /// request id from [`super::envelope::finish`].
    pub fn internal_fault() -> Self {
        Self::new(Code::Internal, INTERNAL)
    }

    /// An internal failure: the message carries the request id only; details go to the log.
    pub fn internal(request_id: &str) -> Self {
        Self::new(Code::Internal, format!("{INTERNAL}，请求编号 {request_id}"))
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let code = match &e {
            GatewayError::Missing(_) | GatewayError::Invalid { .. } => Code::InvalidParameter,
            GatewayError::Version(_) | GatewayError::VersionNotString => Code::UnsupportedVersion,
            GatewayError::UnknownApp(_) => Code::UnknownApp,
            GatewayError::NotActive(_) => Code::SystemNotActive,
            GatewayError::BadSignature {
                canonical: Some(canonical),
            } => {
                let mut e = ApiError::new(Code::BadSignature, e.to_string());
                e.data = Some(Box::new(serde_json::json!({ "canonical": canonical })));
                return e;
            }
            GatewayError::BadSignature { canonical: None } => Code::BadSignature,
            GatewayError::StaleTime(_) => Code::StaleTime,
            GatewayError::Replay(_) => Code::Replay,
            GatewayError::RateLimited => Code::RateLimited,
            GatewayError::Store(_) => {
                tracing::error!(error = %e, "storage failure during authentication");
                return ApiError::internal_fault();
            }
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Interop(e) => e.into(),
            DomainError::HomeAnswer(m) => ApiError {
                audit_detail: m.clone(),
                ..ApiError::new(Code::HomeBadAnswer, m)
            },
            DomainError::Store(s) => s.into(),
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        ApiError::internal_fault()
    }
}

impl From<InteropError> for ApiError {
    fn from(e: InteropError) -> Self {
        // `interop` decides the code (40001–40003) and logged the full cause; the requester
        // gets the public form, the audit entry the full one.
        ApiError {
            audit_detail: e.detail(),
            ..ApiError::new(e.code(), e.to_string())
        }
    }
}

impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> Self {
        VerifyError::Document(e).into()
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Document(DocumentError::TooLarge(n)) => ApiError::too_large(n),
            VerifyError::Store(s) => s.into(),
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::Cause;

    #[test]
    fn a_storage_fault_is_internal_and_its_text_stays_in_the_log() {
        let e = ApiError::from(StoreError::Corrupt("trust/0001: /var/lib/hutong".into()));
        assert_eq!(e.code, Code::Internal);
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("/var/lib"), "{}", e.message);
        let e = ApiError::from(VerifyError::Store(StoreError::Corrupt("x".into())));
        assert_eq!(e.code, Code::Internal);
    }

    #[test]
    fn a_member_failure_tells_the_requester_the_kind_and_the_audit_the_host() {
        use crate::interop::CertCause;
        let e = ApiError::from(InteropError::Unreachable(
            "HT1".into(),
            Cause::Certificate(CertCause::NotForHost("10.0.0.7".into())),
        ));
        assert_eq!(e.code, Code::HomeUnreachable);
        assert_eq!(
            e.message,
            "印章所属系统 HT1 无法访问：TLS 握手失败：证书不包含回调主机名"
        );
        assert_eq!(
            e.audit_detail,
            "回调失败：TLS 握手失败：证书不包含回调主机名 10.0.0.7"
        );
    }

    #[test]
    fn member_failures_keep_their_codes() {
        let e = ApiError::from(InteropError::Timeout("A1".into(), Cause::Timeout(3000)));
        assert_eq!((e.code, e.status().as_u16()), (Code::HomeTimeout, 504));
        let e = ApiError::from(InteropError::BadAnswer(
            "A1".into(),
            Cause::SignatureMismatch("签名无效".into()),
        ));
        assert_eq!(e.code, Code::HomeBadAnswer);
        let e = ApiError::from(InteropError::Degraded("A1".into()));
        assert_eq!(e.code, Code::HomeUnreachable);
    }

    #[test]
    fn document_errors_keep_their_codes() {
        assert_eq!(
            ApiError::from(DocumentError::UnsupportedFormat).code,
            Code::UnsupportedFormat
        );
        assert_eq!(
            ApiError::from(DocumentError::TooLarge(5)).code,
            Code::TooLarge
        );
    }

    #[test]
    fn a_stalled_body_is_a_parameter_fault_answered_408() {
        let e = ApiError::body_timeout(10);
        assert_eq!((e.code, e.status().as_u16()), (Code::InvalidParameter, 408));
        assert!(e.message.contains("10 秒"), "{}", e.message);
    }

    #[test]
    fn a_version_of_the_wrong_type_is_told_the_expected_string() {
        let e = ApiError::from(GatewayError::VersionNotString);
        assert_eq!(e.code, Code::UnsupportedVersion);
        assert_eq!(e.message, "参数 version 应为字符串 \"1.0\"");
    }
}
