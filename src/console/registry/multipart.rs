//! Bounded reading of the console's multipart forms: text parts and at most one file part,
//! with limits on the number of parts, each text part's size and the file's size.

use crate::console::ConsoleError;
use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use std::collections::HashMap;

/// Largest text part of a multipart form (CSRF token, PEM textarea).
const MAX_TEXT_PART: usize = 64 * 1024;
const MAX_PARTS: usize = 8;

pub(super) struct MultipartForm {
    pub(super) texts: HashMap<String, String>,
    pub(super) file: Option<(String, Vec<u8>)>,
}

/// Reads a multipart form with text parts and at most one file part named `file_field`.
pub(super) async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    file_field: &str,
    max_file: usize,
) -> Result<MultipartForm, ConsoleError> {
    let too_large = || ConsoleError::Invalid(format!("文件过大（上限 {max_file} 字节）"));
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ConsoleError::Invalid("表单格式错误".into()));
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > max_file + MAX_PARTS * MAX_TEXT_PART
    {
        return Err(too_large());
    }
    let mut mp = Multipart::new(req.headers(), payload);
    let mut form = MultipartForm {
        texts: HashMap::new(),
        file: None,
    };
    let mut parts = 0;
    while let Some(field) = mp.next().await {
        let mut field = field.map_err(|_| ConsoleError::Invalid("表单格式错误".into()))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ConsoleError::Invalid("表单部分过多".into()));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name == file_field {
            let file_name: String = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .unwrap_or("document")
                .chars()
                .take(255)
                .collect();
            let bytes = field
                .bytes(max_file)
                .await
                .map_err(|_| too_large())?
                .map_err(|_| ConsoleError::Invalid("文件读取失败".into()))?;
            form.file = Some((file_name, bytes.to_vec()));
        } else {
            let bytes = field
                .bytes(MAX_TEXT_PART)
                .await
                .map_err(|_| ConsoleError::Invalid(format!("字段 {name} 过长")))?
                .map_err(|_| ConsoleError::Invalid("表单读取失败".into()))?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ConsoleError::Invalid(format!("字段 {name} 不是 UTF-8 文本")))?;
            form.texts.insert(name, text);
        }
    }
    Ok(form)
}

impl MultipartForm {
    pub(super) fn csrf(&self) -> &str {
        self.texts.get("csrf").map(String::as_str).unwrap_or("")
    }
}
