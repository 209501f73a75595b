//! The console's forms through the shared bounded reader ([`crate::app::multipart`]), its
//! refusals worded for the console.

use crate::app::multipart::{self, Form, FormError, Limits};
use crate::console::ConsoleError;
use actix_web::{HttpRequest, web};

/// Largest text part of a console form (CSRF token, PEM textarea).
const MAX_TEXT_PART: usize = 64 * 1024;
const MAX_PARTS: usize = 8;

/// Reads a console form with text parts and at most one file part named `file_field`.
pub(super) async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    file_field: &str,
    max_file: usize,
) -> Result<Form, ConsoleError> {
    let limits = Limits {
        max_file,
        max_text: MAX_TEXT_PART,
        max_parts: MAX_PARTS,
    };
    multipart::read(req, payload, file_field, limits)
        .await
        .map_err(|e| {
            ConsoleError::Invalid(match e {
                FormError::NotMultipart | FormError::Malformed => "表单格式错误".into(),
                FormError::TooManyParts => "表单部分过多".into(),
                FormError::FileTooLarge(n) => format!("文件过大（上限 {n} 字节）"),
                FormError::TextTooLong(name) => format!("字段 {name} 过长"),
                FormError::NotUtf8(name) => format!("字段 {name} 不是 UTF-8 文本"),
                FormError::Stalled => "上传超时：长时间未收到后续数据，请重试".into(),
            })
        })
}

/// The form's CSRF token ("" when absent, which the guard refuses).
pub(super) fn csrf(form: &Form) -> &str {
    form.text("csrf").unwrap_or("")
}
