//! The request/response envelope of SPEC §2 around every platform interface: bounded body
//! read, JSON parse, authentication, the `{code, message, data}` body, `X-Request-Id`,
//! `X-Hutong-Signature` over the exact body bytes, metrics, and the call's one audit entry
//! (SPEC §6.1, kind `api`): written before the answer, durable with the call's writes; if it
//! cannot be written the call is answered `50000`. An act that can carry the entry in its own
//! transaction takes it with [`audit_in_act`] (no entry, no act).

use super::error::ApiError;
use crate::app::AppState;
use crate::audit::entry::{self, Draft};
use crate::gateway::Authenticated;
use crate::interop::client::MEMBER_MS;
use crate::protocol::Code;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::future::Future;
use std::time::Instant;

pub const REQUEST_ID: &str = "X-Request-Id";

/// The `data` of a successful answer: a JSON value, or the seals of a query, serialised
/// straight into the body from their parts rendered once per seal version.
pub enum Reply {
    Value(Value),
    Seals(Vec<crate::domain::seals::QueriedSeal>),
}

impl From<Value> for Reply {
    fn from(v: Value) -> Self {
        Reply::Value(v)
    }
}

impl serde::Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Value(v) => v.serialize(s),
            Reply::Seals(list) => list.serialize(s),
        }
    }
}

tokio::task_local! {
    /// The audit facts of the call being served.
    static CALL: RefCell<Call>;
}

/// What the audit entry of one API call says, gathered while the call runs.
#[derive(Clone)]
pub struct Call {
    interface: &'static str,
    request_id: String,
    client: Option<String>,
    started: Instant,
    /// The appId the request claims (also for refused calls).
    app_id: String,
    params_digest: Option<String>,
    /// The act wrote the entry in its own transaction.
    in_act: bool,
}

impl Call {
    pub fn new(req: &HttpRequest, interface: &'static str, rid: &str, started: Instant) -> Self {
        Call {
            interface,
            request_id: rid.to_string(),
            client: req.peer_addr().map(|a| a.ip().to_string()),
            started,
            app_id: String::new(),
            params_digest: None,
            in_act: false,
        }
    }

    /// Notes the parsed parameters: the claimed appId and the digest of the canonical string
    /// with personal data masked.
    pub fn saw_params(&mut self, params: &Map<String, Value>) {
        self.app_id = params
            .get("appId")
            .and_then(Value::as_str)
            .map(|s| s.chars().take(64).collect())
            .unwrap_or_default();
        let masked: Map<String, Value> = params
            .iter()
            .map(|(k, v)| (k.clone(), mask_field(k, v)))
            .collect();
        self.params_digest = Some(crate::crypto::sm::sm3_hex(
            crate::protocol::canonical_string(&masked).as_bytes(),
        ));
    }

    fn draft(&self, code: Code, detail: &str) -> Draft {
        let result = match code {
            Code::Ok => entry::Result::Ok,
            Code::Internal => entry::Result::Error,
            // Every other code is the platform refusing the request.
            _ => entry::Result::Denied,
        };
        Draft {
            at_ms: crate::time::now_ms(),
            kind: entry::Kind::Api,
            action: action_name(self.interface),
            actor: entry::Actor {
                kind: "system".into(),
                id: self.app_id.clone(),
                role: None,
            },
            target: String::new(),
            result,
            code: code.as_str().parse().ok(),
            request_id: Some(self.request_id.clone()),
            client: self.client.clone(),
            latency_ms: Some(self.started.elapsed().as_millis() as i64),
            params_digest: self.params_digest.clone(),
            detail: crate::domain::audit_event::Detail::new(detail)
                .as_str()
                .to_string(),
        }
    }
}

/// `seal/filing` → `seal.filing`.
pub fn action_name(interface: &str) -> String {
    interface.replace('/', ".")
}

/// Masks the personal fields of SPEC's interfaces (possessor, possessorCertNo, userName,
/// mobilePhone, at any depth) as SPEC §6 shows them; other values are kept.
fn mask_value(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(mask_value).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), mask_field(k, v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn mask_field(key: &str, v: &Value) -> Value {
    use crate::domain::codes::{mask_id, mask_mobile, mask_name};
    match (key, v) {
        ("possessor" | "userName", Value::String(s)) => Value::String(mask_name(s)),
        ("possessorCertNo", Value::String(s)) => Value::String(mask_id(s)),
        ("mobilePhone", Value::String(s)) => Value::String(mask_mobile(s)),
        (_, other) => mask_value(other),
    }
}

/// Runs `fut` as the call `call`, so its act can take the audit entry.
pub async fn with_call<T>(call: Call, fut: impl Future<Output = T>) -> T {
    CALL.scope(RefCell::new(call), fut).await
}

pub fn note_params(params: &Map<String, Value>) {
    let _ = CALL.try_with(|c| c.borrow_mut().saw_params(params));
}

/// Whether API-call entries are skipped for a measurement (feature `bench-unaudited` and
/// `UNAUDITED_BENCH=1`); always `false` in a default build.
pub(crate) fn unaudited_bench() -> bool {
    cfg!(feature = "bench-unaudited") && std::env::var_os("UNAUDITED_BENCH").is_some()
}

/// The successful call's audit entry, for an act that writes it in its own transaction; the
/// envelope then writes none (unless the act fails, when it records the failure).
pub fn audit_in_act() -> Option<Draft> {
    CALL.try_with(|c| {
        let mut c = c.borrow_mut();
        c.in_act = true;
        c.draft(Code::Ok, "")
    })
    .ok()
}

/// Writes the call's entry (unless its act did) and makes it and the call's writes durable;
/// `false` when that failed and the call must be answered `50000`.
async fn audit_call(state: &AppState, code: Code, detail: &str) -> bool {
    let Ok(call) = CALL.try_with(|c| c.borrow().clone()) else {
        return durable(state).await.is_ok();
    };
    if unaudited_bench() {
        return durable(state).await.is_ok();
    }
    if !(call.in_act && code == Code::Ok)
        && let Err(e) = crate::domain::audit::api_call(&state.store, &call.draft(code, detail))
    {
        tracing::error!(error = %e, request_id = call.request_id, "audit entry not written");
        return false;
    }
    durable(state).await.is_ok()
}
pub const SIGNATURE: &str = "X-Hutong-Signature";

/// The client's `X-Request-Id` when it is a sane token, else a fresh one.
pub fn request_id(req: &HttpRequest) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(crate::crypto::sm::random_bytes::<16>()))
}

/// Reads at most `limit` bytes of body; `10003` beyond, `408` when it stalls.
pub async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    timeout_secs: u64,
) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if crate::app::body_timeout::is_timeout(&e) {
                ApiError::body_timeout(timeout_secs)
            } else {
                ApiError::invalid("请求体读取失败")
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Builds the signed response for `outcome`.
pub fn respond(
    state: &AppState,
    request_id: &str,
    outcome: Result<Reply, ApiError>,
) -> (HttpResponse, Code) {
    let (code, message, data, status) = match outcome {
        Ok(data) => (
            Code::Ok,
            "成功".to_string(),
            data,
            actix_web::http::StatusCode::OK,
        ),
        Err(e) => {
            let status = e.status();
            let data = e.data.map_or_else(|| Value::String(String::new()), |d| *d);
            (e.code, e.message, Reply::Value(data), status)
        }
    };
    let (body, signature) = state.signed_body(code.as_str(), &message, &data);
    let mut resp = HttpResponse::build(status);
    resp.insert_header((
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    ));
    resp.insert_header((REQUEST_ID, request_id.to_string()));
    resp.insert_header((SIGNATURE, signature));
    (resp.body(body), code)
}

/// The route of one JSON interface: `handler` gets the authenticated request and returns its
/// `data`; [`json_call`] does the rest of the envelope.
pub fn json_route<F, Fut, R>(interface: &'static str, handler: F) -> actix_web::Route
where
    F: Fn(web::Data<AppState>, Authenticated) -> Fut + Clone + 'static,
    Fut: Future<Output = Result<R, ApiError>> + 'static,
    R: Into<Reply> + 'static,
{
    web::post().to(
        move |state: web::Data<AppState>, req: HttpRequest, payload: web::Payload| {
            json_call(state, req, payload, interface, handler.clone())
        },
    )
}

/// Runs one JSON interface: body → parameters → authentication → `handler` → signed response.
pub async fn json_call<F, Fut, R>(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    interface: &'static str,
    handler: F,
) -> HttpResponse
where
    F: FnOnce(web::Data<AppState>, Authenticated) -> Fut,
    Fut: Future<Output = Result<R, ApiError>>,
    R: Into<Reply>,
{
    let started = Instant::now();
    let rid = request_id(&req);
    let work = async {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.to_ascii_lowercase().starts_with("application/json"))
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::invalid("Content-Type 必须为 application/json"));
        }
        let body = read_body(
            payload,
            state.config.api.max_json_bytes,
            state.config.server.body_timeout_secs,
        )
        .await?;
        let params = parse_params(&body)?;
        note_params(&params);
        let auth = authenticate(&state, params)?;
        let app_id = auth.system.app_id.clone();
        let result = handler(state.clone(), auth).await.map(Into::into);
        meter(&state, &app_id, interface, result.is_ok());
        // The nonce claim and whatever the handler wrote become durable in `finish`, with the
        // audit entry, before we answer.
        result
    };
    let call = Call::new(&req, interface, &rid, started);
    let (resp, member_ms) = with_call(
        call,
        MEMBER_MS.scope(std::cell::Cell::new(0.0), async {
            let outcome = work.await;
            let member_ms = MEMBER_MS.with(|ms| ms.get());
            (
                finish(&state, &rid, interface, started, outcome).await,
                member_ms,
            )
        }),
    )
    .await;
    let mut resp = resp;
    if member_ms > 0.0 {
        let total = started.elapsed().as_secs_f64() * 1000.0;
        if let Ok(v) =
            HeaderValue::from_str(&format!("total;dur={total:.2}, member;dur={member_ms:.2}"))
        {
            resp.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("server-timing"),
                v,
            );
        }
    }
    resp
}

/// Parses a JSON object body; nesting is bounded by serde_json's recursion limit.
pub fn parse_params(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("请求体必须是 JSON 对象")),
        Err(_) => Err(ApiError::invalid("请求体不是有效的 JSON")),
    }
}

/// Counts an authenticated call for its system; durable with the call's own writes.
pub fn meter(state: &AppState, app_id: &str, interface: &str, ok: bool) {
    crate::domain::metering::record_call(
        &state.store,
        app_id,
        interface,
        ok,
        crate::time::now_ms(),
    );
}

/// Group-committed flush of everything written so far.
pub async fn durable(state: &AppState) -> Result<(), ApiError> {
    state.durable().await.map_err(|e| {
        tracing::error!(error = %e, "flush failed");
        ApiError::internal_fault()
    })
}

pub fn authenticate(
    state: &AppState,
    params: Map<String, Value>,
) -> Result<Authenticated, ApiError> {
    Ok(state.gateway.authenticate(params, crate::time::now_ms())?)
}

/// Audits the call, makes its writes durable, signs the response, records metrics and logs
/// failures. Runs inside [`with_call`].
pub async fn finish(
    state: &AppState,
    rid: &str,
    interface: &'static str,
    started: Instant,
    outcome: Result<Reply, ApiError>,
) -> HttpResponse {
    let (code, detail) = match &outcome {
        Ok(_) => (Code::Ok, ""),
        Err(e) => (e.code, e.audit_detail.as_str()),
    };
    let outcome = if audit_call(state, code, detail).await {
        outcome
    } else {
        Err(ApiError::internal_fault())
    };
    let outcome = outcome.map_err(|e| {
        if e.code == Code::Internal {
            ApiError::internal(rid)
        } else {
            e
        }
    });
    let (resp, code) = respond(state, rid, outcome);
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    state.metrics.observe(interface, code.as_str(), elapsed_ms);
    if code != Code::Ok {
        tracing::info!(
            request_id = rid,
            interface,
            code = code.as_str(),
            elapsed_ms,
            "api call refused"
        );
    }
    resp
}
