//! The error codes of SPEC §2 and their HTTP statuses. Every error any lower module raises is
//! mapped here, in one place; messages are Chinese sentences that name the parameter or state
//! and never carry internals.

use crate::domain::DomainError;
use crate::gateway::GatewayError;
use actix_web::http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

/// HTTP status of each code (SPEC §2).
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "0" => StatusCode::OK,
        "10001" | "10002" => StatusCode::BAD_REQUEST,
        "10003" => StatusCode::PAYLOAD_TOO_LARGE,
        "10004" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "20001" | "20002" | "20003" | "20004" => StatusCode::UNAUTHORIZED,
        "20005" => StatusCode::CONFLICT,
        "20006" | "20007" => StatusCode::TOO_MANY_REQUESTS,
        "20008" => StatusCode::FORBIDDEN,
        "30001" => StatusCode::NOT_FOUND,
        "30002" | "30004" | "30005" | "30006" | "30007" => StatusCode::CONFLICT,
        "30003" => StatusCode::UNPROCESSABLE_ENTITY,
        "40001" | "40003" => StatusCode::BAD_GATEWAY,
        "40002" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("10001", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new("10003", format!("请求体或文件超过大小上限（{limit} 字节）"))
    }

    /// An internal failure: the message carries the request id only; details go to the log.
    pub fn internal(request_id: &str) -> Self {
        Self::new("50000", format!("平台内部错误，请求编号 {request_id}"))
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let code = match &e {
            GatewayError::Missing(_) | GatewayError::Invalid { .. } => "10001",
            GatewayError::Version(_) => "10002",
            GatewayError::UnknownApp(_) => "20001",
            GatewayError::NotActive(_) => "20002",
            GatewayError::BadSignature => "20003",
            GatewayError::StaleTime(_) => "20004",
            GatewayError::Replay(_) => "20005",
            GatewayError::RateLimited => "20006",
            GatewayError::Store(_) => "50000",
        };
        if code == "50000" {
            tracing::error!(error = %e, "storage failure during authentication");
            return ApiError::new(code, "平台内部错误");
        }
        ApiError::new(code, e.to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(m) => ApiError::new("10001", m),
            DomainError::NotFound(m) => ApiError::new("30001", m),
            DomainError::Conflict(m) => ApiError::new("30002", m),
            DomainError::Forbidden(m) => ApiError::new("20008", m),
            DomainError::SealInvalid(m) => ApiError::new("30003", m),
            DomainError::Duplicate(m) => ApiError::new("30004", m),
            DomainError::SignId(m) => ApiError::new("30005", m),
            DomainError::Quota(m) => ApiError::new("20007", m),
            DomainError::AuthId(m) => ApiError::new("30006", m),
            DomainError::NotConfirmed(m) => ApiError::new("30007", m),
            DomainError::HomeAnswer(m) => ApiError::new("40003", m),
            DomainError::Interop(e) => {
                tracing::info!(error = %e, "member callback failed");
                ApiError::new(e.code(), e.to_string())
            }
            DomainError::Store(s) => s.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        ApiError::new("50000", "平台内部错误")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_documented_status() {
        let table = [
            ("0", 200),
            ("10001", 400),
            ("10002", 400),
            ("10003", 413),
            ("10004", 415),
            ("20001", 401),
            ("20002", 401),
            ("20003", 401),
            ("20004", 401),
            ("20005", 409),
            ("20006", 429),
            ("20007", 429),
            ("20008", 403),
            ("30001", 404),
            ("30002", 409),
            ("30003", 422),
            ("30004", 409),
            ("30005", 409),
            ("30006", 409),
            ("30007", 409),
            ("40001", 502),
            ("40002", 504),
            ("40003", 502),
            ("50000", 500),
        ];
        for (code, status) in table {
            assert_eq!(status_of(code).as_u16(), status, "code {code}");
        }
    }
}
