//! `POST /api/v1/document/verify` (SPEC §3.10): multipart upload of a PDF or OFD; the common
//! parameters are text parts and the `file` part enters the canonical string as its SM3.

use super::envelope::{authenticate, durable, finish, meter, request_id};
use super::error::ApiError;
use crate::app::AppState;
use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::time::Instant;

const MAX_TEXT_PART: usize = 64 * 1024;
const MAX_PARTS: usize = 64;

struct Upload {
    params: Map<String, Value>,
    file: Vec<u8>,
    file_name: String,
}

async fn read_upload(mut mp: Multipart, max_file: usize) -> Result<Upload, ApiError> {
    let mut params = Map::new();
    let mut file = None;
    let mut file_name = String::new();
    let mut parts = 0;
    while let Some(field) = mp.next().await {
        let mut field = field.map_err(|_| ApiError::invalid("multipart 请求体格式错误"))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::invalid("multipart 部分过多"));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            file_name = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .unwrap_or("document")
                .chars()
                .take(255)
                .collect();
            let bytes = field
                .bytes(max_file)
                .await
                .map_err(|_| ApiError::too_large(max_file))?
                .map_err(|_| ApiError::invalid("文件读取失败"))?;
            file = Some(bytes.to_vec());
        } else {
            let bytes = field
                .bytes(MAX_TEXT_PART)
                .await
                .map_err(|_| ApiError::invalid(format!("参数 {name} 过长")))?
                .map_err(|_| ApiError::invalid("请求体读取失败"))?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::invalid(format!("参数 {name} 不是 UTF-8 文本")))?;
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
    }
    let file = file.ok_or_else(|| ApiError::invalid("参数 file 缺失"))?;
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

pub async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let rid = request_id(&req);
    let outcome = async {
        let is_multipart = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
        if !is_multipart {
            return Err(ApiError::invalid("Content-Type 必须为 multipart/form-data"));
        }
        let max = state.config.api.max_file_bytes;
        if let Some(len) = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            && len > max + MAX_PARTS * MAX_TEXT_PART
        {
            return Err(ApiError::too_large(max));
        }
        let upload = read_upload(Multipart::new(req.headers(), payload), max).await?;
        let auth = authenticate(&state, upload.params)?;
        let st = state.clone();
        let result = web::block(move || {
            crate::domain::documents::verify(&st.store, &st.config, &upload.file, &upload.file_name)
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
        durable(&state).await?;
        outcome
    }
    .await;
    finish(&state, &rid, "document/verify", started, outcome)
}
