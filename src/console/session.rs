//! Console sessions, cookies and CSRF tokens.
//!
//! Sessions live in the store (`store::sessions`) so every worker sees them and a restart does
//! not silently extend them; the store keys them by a digest of the cookie value. This module
//! owns the policy (idle and age limits, rotation, cookies); it never touches storage itself.
//! Each session carries its own CSRF token. Anonymous forms (login, registration) use a
//! double-submit token in a separate short-lived cookie.
//!
//! A correct password alone opens no session: an account with a second factor gets a pending
//! login (its own random id in its own 5-minute cookie, its own CSRF token, at most
//! [`PENDING_ATTEMPTS`] tries) and the session is created only after the second step. A
//! pending login is stored beside the sessions but is never accepted as one.

use super::ConsoleError;
use crate::app::AppState;
use crate::crypto::sm;
use crate::domain::vocab::Role;
use crate::store::sessions::{PendingLogin, SessionRecord};
use crate::store::{Store, StoreError};
use crate::time::now_ms;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::{Ready, ready};

pub const SESSION_COOKIE: &str = "__Host-hutong_session";
pub const PRE_COOKIE: &str = "__Host-hutong_form";
/// 等保: sessions end after 15 minutes without activity.
pub const IDLE_MS: i64 = 15 * 60 * 1000;
/// Hard cap on a session's life whatever the activity.
const MAX_AGE_MS: i64 = 12 * 60 * 60 * 1000;
pub const PENDING_COOKIE: &str = "__Host-hutong_login";
/// A pending login (password proven, second step not yet) lives five minutes.
pub const PENDING_MS: i64 = 5 * 60 * 1000;
/// Second-step attempts per pending login; then it is dropped and the password is asked again.
pub const PENDING_ATTEMPTS: u32 = 5;

fn expired(rec: &SessionRecord, now: i64) -> bool {
    if rec.pending.is_some() {
        return now - rec.created_ms > PENDING_MS;
    }
    now - rec.last_seen_ms > IDLE_MS || now - rec.created_ms > MAX_AGE_MS
}

pub fn random_token() -> String {
    hex::encode(sm::random_bytes::<32>())
}

/// Constant-time comparison, so a token cannot be guessed byte by byte from timing.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Starts a fresh session (a new token every login: session rotation); returns the cookie value.
pub fn create(store: &Store, username: &str) -> Result<String, StoreError> {
    start(store, username, None)
}

/// Starts the pending login of `username` after a correct password; returns its cookie value.
pub fn create_pending(store: &Store, username: &str) -> Result<String, StoreError> {
    let pending = PendingLogin {
        attempts: 0,
        challenge: format!("hutong-login:{}", hex::encode(sm::random_bytes::<16>())),
    };
    start(store, username, Some(pending))
}

fn start(
    store: &Store,
    username: &str,
    pending: Option<PendingLogin>,
) -> Result<String, StoreError> {
    let token = random_token();
    let now = now_ms();
    prune(store, now)?;
    let rec = SessionRecord {
        username: username.to_string(),
        csrf: random_token(),
        created_ms: now,
        last_seen_ms: now,
        pending,
    };
    store.put_session(&token, &rec)?;
    Ok(token)
}

/// The live pending login of a request's cookie; an expired one is deleted.
pub fn pending(
    store: &Store,
    req: &HttpRequest,
) -> Result<Option<(String, SessionRecord)>, StoreError> {
    let Some(token) = cookie(req, PENDING_COOKIE).filter(|t| t.len() == 64) else {
        return Ok(None);
    };
    let Some(rec) = store.get_session(&token)? else {
        return Ok(None);
    };
    if rec.pending.is_none() {
        return Ok(None);
    }
    if expired(&rec, now_ms()) {
        store.remove_session(&token)?;
        return Ok(None);
    }
    Ok(Some((token, rec)))
}

/// Counts a failed second-step attempt; `false` (and the pending login is gone) once
/// [`PENDING_ATTEMPTS`] have been used.
pub fn pending_failed(
    store: &Store,
    token: &str,
    mut rec: SessionRecord,
) -> Result<bool, StoreError> {
    let Some(p) = rec.pending.as_mut() else {
        return Ok(false);
    };
    p.attempts += 1;
    if p.attempts >= PENDING_ATTEMPTS {
        store.remove_session(token)?;
        return Ok(false);
    }
    store.put_session(token, &rec)?;
    Ok(true)
}

pub fn pending_cookie(token: &str) -> String {
    format!(
        "{PENDING_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        PENDING_MS / 1000
    )
}

/// Drops sessions nobody came back to; done at each sign-in so the keyspace stays small.
fn prune(store: &Store, now: i64) -> Result<(), StoreError> {
    store.retain_sessions(|r| !expired(r, now))?;
    Ok(())
}

pub fn destroy(store: &Store, token: &str) -> Result<(), StoreError> {
    store.remove_session(token)
}

/// Ends every session of `username` (disabled account, password reset).
pub fn destroy_all_of(store: &Store, username: &str) -> Result<(), StoreError> {
    store.retain_sessions(|r| r.username != username)?;
    Ok(())
}

/// `Set-Cookie` value for the session: host-only, HTTPS-only, invisible to scripts, never sent
/// on cross-site requests.
pub fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

pub fn form_cookie(token: &str) -> String {
    format!("{PRE_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600")
}

pub fn expired_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The signed-in administrator or vendor of a request.
#[derive(Debug, Clone)]
pub struct Auth {
    pub username: String,
    pub role: Role,
    pub csrf: String,
    pub must_change_password: bool,
    /// The account has yet to enrol its required second factor.
    pub must_enrol: bool,
    pub token: String,
}

impl Auth {
    /// The role check every page and action makes; also sends accounts that must change their
    /// password to do that first.
    pub fn require(&self, role: Role) -> Result<(), ConsoleError> {
        self.require_enrolled()?;
        if self.role != role {
            return Err(ConsoleError::Forbidden);
        }
        Ok(())
    }

    /// First the forced password change, then the second-factor enrolment.
    pub fn require_enrolled(&self) -> Result<(), ConsoleError> {
        if self.must_change_password {
            return Err(ConsoleError::MustChangePassword);
        }
        if self.must_enrol {
            return Err(ConsoleError::MustEnrol);
        }
        Ok(())
    }

    /// One of `roles`.
    pub fn require_one_of(&self, roles: &[Role]) -> Result<(), ConsoleError> {
        self.require_enrolled()?;
        if !roles.contains(&self.role) {
            return Err(ConsoleError::Forbidden);
        }
        Ok(())
    }

    /// Any administrator role (not a vendor).
    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        self.require_enrolled()?;
        if self.role == Role::Vendor {
            return Err(ConsoleError::Forbidden);
        }
        Ok(())
    }

    pub fn check_csrf(&self, token: &str) -> Result<(), ConsoleError> {
        if tokens_equal(&self.csrf, token) {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }
}

fn load(req: &HttpRequest) -> Result<Auth, ConsoleError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ConsoleError::Internal("应用状态缺失".into()))?;
    let token = cookie(req, SESSION_COOKIE).ok_or(ConsoleError::Unauthenticated)?;
    authenticate(&state.store, token, state.config.portal.require_totp)
}

/// Resolves a session token: unknown, idle-expired, over-age or disabled-account sessions end.
/// A pending login is no session.
fn authenticate(
    store: &Store,
    token: String,
    vendors_require_totp: bool,
) -> Result<Auth, ConsoleError> {
    let Some(rec) = store.get_session(&token)?.filter(|r| r.pending.is_none()) else {
        return Err(ConsoleError::Unauthenticated);
    };
    let now = now_ms();
    if expired(&rec, now) {
        store.remove_session(&token)?;
        return Err(ConsoleError::Unauthenticated);
    }
    // The account is read on every request so a disabled account loses access at once.
    let account = match store.get_account(&rec.username)? {
        Some(a) if !a.disabled => a,
        _ => {
            store.remove_session(&token)?;
            return Err(ConsoleError::Unauthenticated);
        }
    };
    let touched = SessionRecord {
        last_seen_ms: now,
        ..rec.clone()
    };
    store.put_session(&token, &touched)?;
    let must_enrol = crate::domain::second_factor::must_enrol(&account, vendors_require_totp);
    Ok(Auth {
        username: account.username,
        role: account.role,
        csrf: rec.csrf,
        must_change_password: account.must_change_password,
        must_enrol,
        token,
    })
}

impl FromRequest for Auth {
    type Error = ConsoleError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(load(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::accounts::create_account;

    #[test]
    fn sessions_end_after_fifteen_idle_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        create_account(
            &store,
            "op1",
            Role::Operator,
            "Console-Pass-123",
            false,
            &crate::domain::audit_event::Actor::cli(),
        )
        .unwrap();
        let token = create(&store, "op1").unwrap();
        let auth = authenticate(&store, token.clone(), false).unwrap();
        assert_eq!((auth.username.as_str(), auth.role), ("op1", Role::Operator));
        assert!(matches!(
            authenticate(&store, random_token(), false),
            Err(ConsoleError::Unauthenticated)
        ));

        // 14 minutes idle: still valid (and the visit renews it).
        let age = |mins: i64| {
            let mut rec = store.get_session(&token).unwrap().unwrap();
            rec.last_seen_ms = now_ms() - mins * 60 * 1000;
            store.put_session(&token, &rec).unwrap();
        };
        age(14);
        assert!(authenticate(&store, token.clone(), false).is_ok());
        age(16);
        assert!(matches!(
            authenticate(&store, token.clone(), false),
            Err(ConsoleError::Unauthenticated)
        ));
        assert!(
            store.get_session(&token).unwrap().is_none(),
            "expired session is deleted"
        );
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("", "a"));
    }
}
