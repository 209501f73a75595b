//! Seal registry search and seal pictures (系统管理员). Personal data is decrypted only to be
//! masked; the search itself is recorded, since it reveals who holds which seals.

use super::{MAX_RESULTS, blocking_err, picture_content_type, picture_response};
use crate::app::AppState;
use crate::console::admin::audit;
use crate::console::session::Auth;
use crate::console::views::Ctx;
use crate::console::{ConsoleError, fmt_time, html};
use crate::domain::audit_event::{Action, Outcome};
use crate::domain::vocab::{Role, SealState};
use crate::domain::{codes, seals as dseals};
use crate::ses::SesSeal;
use crate::store::seals::SealRecord;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub struct SealRow {
    pub seal_code: String,
    pub name: String,
    pub seal_type: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub app_id: String,
    pub system_name: String,
    pub possessor: String,
    pub possessor_cert_no: String,
    pub valid_from: String,
    pub valid_to: String,
    pub test_data: bool,
    pub has_picture: bool,
}

#[derive(Template)]
#[template(path = "seals.html")]
pub struct SealsPage {
    pub ctx: Ctx,
    pub by: String,
    pub q: String,
    pub searched: bool,
    pub rows: Vec<SealRow>,
    pub capped: bool,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    by: String,
    #[serde(default)]
    q: String,
}

fn state_class(s: SealState) -> &'static str {
    match s {
        SealState::Enabled => "online",
        SealState::Disabled => "testing",
        SealState::Revoked => "suspended",
    }
}

/// The seal's picture from its current version's `SES_Seal`.
fn current_picture(state: &AppState, rec: &SealRecord) -> Result<Option<Vec<u8>>, ConsoleError> {
    let Some(v) = rec.current() else {
        return Ok(None);
    };
    let Some(der) = state.store.seal_der(&v.digest)? else {
        return Ok(None);
    };
    Ok(SesSeal::decode(&der).ok().map(|s| s.picture.data))
}

/// A row with personal data masked: a person's name and ID number are decrypted only to be
/// masked here; an organisation's name and code are public. A destroyed tenant's fields are
/// gone and say so.
fn seal_row(state: &AppState, rec: &SealRecord) -> Result<SealRow, ConsoleError> {
    let provider = state.keys.provider();
    let person = rec.possessor_type == crate::domain::vocab::PossessorType::Person;
    let show = |f, mask: fn(&str) -> String| -> Result<String, ConsoleError> {
        Ok(
            match dseals::reveal_kept(&state.store, provider, &rec.app_id, f)? {
                Some(v) if person => mask(&v),
                Some(v) => v,
                None => "（已销毁）".to_string(),
            },
        )
    };
    let possessor = show(&rec.possessor, codes::mask_name)?;
    let cert_no = show(&rec.possessor_cert_no, codes::mask_id)?;
    let system_name = state
        .store
        .get_system(&rec.app_id)?
        .map(|s| s.name)
        .unwrap_or_default();
    let v = rec.current();
    Ok(SealRow {
        seal_code: rec.seal_code.clone(),
        name: rec.name.clone(),
        seal_type: rec.seal_type.clone(),
        state: rec.state.label(),
        state_class: state_class(rec.state),
        app_id: rec.app_id.clone(),
        system_name,
        possessor,
        possessor_cert_no: cert_no,
        valid_from: v.map(|v| fmt_time(v.valid_start_ms)).unwrap_or_default(),
        valid_to: v.map(|v| fmt_time(v.valid_end_ms)).unwrap_or_default(),
        test_data: rec.test_data,
        has_picture: current_picture(state, rec)?
            .is_some_and(|p| picture_content_type(&p).is_some()),
    })
}

/// Finds seal records: by org code through the salted index, by seal code directly, by name
/// with a scan that stops at [`MAX_RESULTS`] + 1 hits.
fn search(state: &AppState, by: &str, q: &str) -> Result<Vec<SealRecord>, ConsoleError> {
    let mut out = Vec::new();
    match by {
        "org" => {
            let key = dseals::org_key(&state.store, q)?;
            for code in state.store.seals_of_org(&key)? {
                if out.len() > MAX_RESULTS {
                    break;
                }
                if let Some(rec) = state.store.get_seal(&code)? {
                    out.push(rec);
                }
            }
        }
        "code" => {
            if let Some(rec) = state.store.get_seal(&q.to_ascii_uppercase())? {
                out.push(rec);
            }
        }
        "name" => {
            out = state
                .store
                .seals_where(MAX_RESULTS + 1, |rec| rec.name.contains(q))?;
        }
        _ => return Err(ConsoleError::Invalid("请选择查询方式".into())),
    }
    Ok(out)
}

pub(super) async fn seals_page(
    auth: Auth,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let q: String = query.q.trim().chars().take(128).collect();
    let by = if query.by.is_empty() {
        "org".to_string()
    } else {
        query.by.clone()
    };
    let mut page = SealsPage {
        ctx: Ctx::new(&auth, "/console/seals"),
        by: by.clone(),
        q: q.clone(),
        searched: !q.is_empty(),
        rows: Vec::new(),
        capped: false,
    };
    if q.is_empty() {
        return html(&page);
    }
    let st = state.clone();
    let (b, qq) = (by.clone(), q.clone());
    let found = web::block(move || -> Result<Vec<SealRow>, ConsoleError> {
        search(&st, &b, &qq)?
            .iter()
            .map(|r| seal_row(&st, r))
            .collect()
    })
    .await
    .map_err(blocking_err)?;
    // The search itself is recorded: it reveals who holds which seals. A person's ID number
    // is masked in the log as on the page.
    let target = if by == "org" {
        codes::mask_id(&q)
    } else {
        q.clone()
    };
    match found {
        Ok(mut rows) => {
            page.capped = rows.len() > MAX_RESULTS;
            rows.truncate(MAX_RESULTS);
            audit(
                &state,
                &auth,
                Action::SealSearch,
                &target,
                Outcome::Ok,
                &format!("方式={by}; 结果={}", rows.len()),
            );
            page.rows = rows;
            html(&page)
        }
        Err(e) => {
            audit(
                &state,
                &auth,
                Action::SealSearch,
                &target,
                Outcome::Failed,
                &e.to_string(),
            );
            Err(e)
        }
    }
}

pub(super) async fn seal_picture(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    auth.require(Role::Operator)?;
    let code = path.into_inner();
    let rec = state
        .store
        .get_seal(&code)?
        .ok_or_else(|| ConsoleError::NotFound(format!("印章 {code} 不存在")))?;
    let pic = current_picture(&state, &rec)?
        .ok_or_else(|| ConsoleError::NotFound("印章图片不可用".into()))?;
    picture_response(pic)
}
