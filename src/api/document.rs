//! `POST /api/v1/document/verify` (SPEC §3.10): multipart upload of a PDF or OFD; the common
//! parameters are text parts and the `file` part enters the canonical string as its SM3.

use super::envelope::{authenticate, finish, meter, request_id};
use super::error::ApiError;
use crate::app::AppState;
use crate::app::multipart::{self, Form, FormError, Limits};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};
use std::time::Instant;

const MAX_TEXT_PART: usize = 64 * 1024;
const MAX_PARTS: usize = 64;

struct Upload {
    params: Map<String, Value>,
    file: Vec<u8>,
    file_name: String,
}

/// The common parameters from the text parts, the file's SM3 as parameter `file`.
fn upload(form: Form) -> Result<Upload, ApiError> {
    let mut params = Map::new();
    for (name, text) in form.texts {
        // Multipart carries text only; `nonce` is an Integer in the standard.
        let value = if name == "nonce"
            && !text.is_empty()
            && text.len() <= 9
            && text.bytes().all(|b| b.is_ascii_digit())
        {
            Value::Number(text.parse::<u64>().unwrap_or(u64::MAX).into())
        } else {
            Value::String(text)
        };
        params.insert(name, value);
    }
    let (file_name, file) = form
        .file
        .ok_or_else(|| ApiError::invalid("参数 file 缺失"))?;
    params.insert(
        "file".into(),
        Value::String(crate::crypto::sm::sm3_hex(&file)),
    );
    Ok(Upload {
        params,
        file,
        file_name,
    })
}

fn form_error(e: FormError, timeout_secs: u64) -> ApiError {
    match e {
        FormError::Stalled => ApiError::body_timeout(timeout_secs),
        FormError::NotMultipart => ApiError::invalid("Content-Type 必须为 multipart/form-data"),
        FormError::Malformed => ApiError::invalid("multipart 请求体格式错误"),
        FormError::TooManyParts => ApiError::invalid("multipart 部分过多"),
        FormError::FileTooLarge(n) => ApiError::too_large(n),
        FormError::TextTooLong(name) => ApiError::invalid(format!("参数 {name} 过长")),
        FormError::NotUtf8(name) => ApiError::invalid(format!("参数 {name} 不是 UTF-8 文本")),
    }
}

pub async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let rid = request_id(&req);
    let call = super::envelope::Call::new(&req, "document/verify", &rid, started);
    super::envelope::with_call(call, async {
        let outcome = async {
            let limits = Limits {
                max_file: state.config.api.max_file_bytes,
                max_text: MAX_TEXT_PART,
                max_parts: MAX_PARTS,
            };
            let form = multipart::read(&req, payload, "file", limits)
                .await
                .map_err(|e| form_error(e, state.config.server.body_timeout_secs))?;
            let upload = upload(form)?;
            super::envelope::note_params(&upload.params);
            let auth = authenticate(&state, upload.params)?;
            let st = state.clone();
            let result = web::block(move || {
                crate::domain::documents::verify_upload(
                    &st.store,
                    &st.config,
                    upload.file,
                    &upload.file_name,
                )
            })
            .await
            .map_err(|_| ApiError::internal_fault());
            let outcome = result?.map_err(ApiError::from).and_then(|report| {
                serde_json::to_value(report).map_err(|_| ApiError::internal_fault())
            });
            meter(
                &state,
                &auth.system.app_id,
                "document/verify",
                outcome.is_ok(),
            );
            outcome
        }
        .await;
        finish(
            &state,
            &rid,
            "document/verify",
            started,
            outcome.map(Into::into),
        )
        .await
    })
    .await
}
