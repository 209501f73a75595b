//! The one bounded reader of `multipart/form-data` uploads, shared by the API's document
//! verification and the console's forms: text parts and at most one file part, with limits on
//! the number of parts, each text part's size, the file's size and the declared length.
//!
//! It reads and bounds only; each surface words [`FormError`] in its own language.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

/// How much of an upload is read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file: usize,
    pub max_text: usize,
    pub max_parts: usize,
}

/// An upload: its text parts in order, and the file part (its name, its bytes) if sent.
#[derive(Debug, Default)]
pub struct Form {
    pub texts: Vec<(String, String)>,
    pub file: Option<(String, Vec<u8>)>,
}

impl Form {
    /// The last text part named `name`.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.texts
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("not multipart/form-data")]
    NotMultipart,
    #[error("malformed multipart body")]
    Malformed,
    #[error("too many parts")]
    TooManyParts,
    #[error("file larger than {0} bytes")]
    FileTooLarge(usize),
    #[error("text part {0} too long")]
    TextTooLong(String),
    #[error("text part {0} is not UTF-8")]
    NotUtf8(String),
    #[error("upload stalled")]
    Stalled,
}

/// A failed part read: the stalled body is told apart from a malformed one.
fn part_error(e: actix_multipart::MultipartError) -> FormError {
    match e {
        actix_multipart::MultipartError::Payload(p) if super::body_timeout::is_timeout(&p) => {
            FormError::Stalled
        }
        _ => FormError::Malformed,
    }
}

/// Reads the upload of `req`; the part named `file_field` is the file.
pub async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    file_field: &str,
    limits: Limits,
) -> Result<Form, FormError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(FormError::NotMultipart);
    }
    // A declared length beyond what the limits allow is refused before anything is read.
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limits.max_file + limits.max_parts * limits.max_text
    {
        return Err(FormError::FileTooLarge(limits.max_file));
    }
    let mut mp = Multipart::new(req.headers(), payload);
    let mut form = Form::default();
    let mut parts = 0;
    while let Some(field) = mp.next().await {
        let mut field = field.map_err(part_error)?;
        parts += 1;
        if parts > limits.max_parts {
            return Err(FormError::TooManyParts);
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
                .bytes(limits.max_file)
                .await
                .map_err(|_| FormError::FileTooLarge(limits.max_file))?
                .map_err(part_error)?;
            form.file = Some((file_name, bytes.to_vec()));
        } else {
            let bytes = field
                .bytes(limits.max_text)
                .await
                .map_err(|_| FormError::TextTooLong(name.clone()))?
                .map_err(part_error)?;
            let text =
                String::from_utf8(bytes.to_vec()).map_err(|_| FormError::NotUtf8(name.clone()))?;
            form.texts.push((name, text));
        }
    }
    Ok(form)
}
