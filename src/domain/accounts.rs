//! Console accounts: password policy (等保 2.0 level 3), argon2id hashing, lockout, and the
//! bootstrap security administrator printed once at first start.

use super::DomainError;
use super::audit;
use super::audit_event::{Action, Actor, ActorKind, Outcome};
use crate::domain::vocab::Role;
use crate::store::Store;
use crate::store::accounts::AccountRecord;
use crate::time::now_ms;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

pub const LOCKOUT_FAILURES: u32 = 5;
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;
pub const BOOTSTRAP_USERNAME: &str = "secadmin";

/// At least 12 characters with three of: lower case, upper case, digits, symbols.
pub fn check_password_policy(password: &str) -> Result<(), DomainError> {
    let n = password.chars().count();
    if !(12..=128).contains(&n) {
        return Err(DomainError::Invalid("密码长度须为 12–128 个字符".into()));
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|&&b| b).count() < 3 {
        return Err(DomainError::Invalid(
            "密码须包含大写字母、小写字母、数字、符号中的至少三类".into(),
        ));
    }
    Ok(())
}

fn check_username(username: &str) -> Result<(), DomainError> {
    let ok = (3..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(
            "用户名须为 3–64 位字母、数字、下划线、连字符或点".into(),
        ))
    }
}

pub fn hash_password(password: &str) -> Result<String, DomainError> {
    let salt = crate::crypto::sm::random_bytes::<16>();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DomainError::Invalid(format!("密码散列失败: {e}")))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates an account; administrators created by another administrator must change their
/// password at first login.
pub fn create_account(
    store: &Store,
    username: &str,
    role: Role,
    password: &str,
    must_change_password: bool,
    actor: &Actor,
) -> Result<AccountRecord, DomainError> {
    let res = insert_account(store, username, role, password, must_change_password);
    audit::audited(store, actor, Action::AccountCreate, username, res, |r| {
        (r.username.clone(), r.role.as_str().into())
    })
}

fn insert_account(
    store: &Store,
    username: &str,
    role: Role,
    password: &str,
    must_change_password: bool,
) -> Result<AccountRecord, DomainError> {
    check_username(username)?;
    check_password_policy(password)?;
    let rec = AccountRecord {
        username: username.to_string(),
        role,
        password_hash: hash_password(password)?,
        must_change_password,
        disabled: false,
        failed_logins: 0,
        locked_until_ms: 0,
        created_ms: now_ms(),
        second_factor: Default::default(),
    };
    store.insert_account(&rec).map_err(|e| match e {
        crate::store::StoreError::Conflict => {
            DomainError::Conflict(format!("用户名 {username} 已存在"))
        }
        other => other.into(),
    })?;
    Ok(rec)
}

/// A random password that satisfies the policy (bootstrap and resets).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let bytes = crate::crypto::sm::random_bytes::<16>();
    let body: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    // Guarantee all four classes whatever the random draw.
    format!("Hk7-{body}")
}

/// Creates the first security administrator when no account exists; returns its one-time
/// password so the caller can print it once.
pub fn bootstrap(store: &Store) -> Result<Option<(String, String)>, DomainError> {
    if store.has_accounts()? {
        return Ok(None);
    }
    let password = generate_password();
    create_account(
        store,
        BOOTSTRAP_USERNAME,
        Role::Security,
        &password,
        true,
        &Actor::system(),
    )?;
    Ok(Some((BOOTSTRAP_USERNAME.to_string(), password)))
}

#[derive(Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Ok(AccountRecord),
    Locked { until_ms: i64 },
    Failed,
}

/// Checks a password, counting failures and locking the account after five for 15 minutes.
pub fn login(store: &Store, username: &str, password: &str) -> Result<LoginOutcome, DomainError> {
    let Some(mut rec) = store.get_account(username)? else {
        // Same work as a real check, so timing does not reveal which usernames exist.
        let _ = password_matches(
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            password,
        );
        return Ok(LoginOutcome::Failed);
    };
    let now = now_ms();
    if rec.locked_until_ms > now {
        return Ok(LoginOutcome::Locked {
            until_ms: rec.locked_until_ms,
        });
    }
    if rec.disabled || !password_matches(&rec.password_hash, password) {
        return count_failure(store, rec, now);
    }
    // With a second factor the count starts again only after the second step: a known password
    // must not wipe out failed codes.
    if rec.failed_logins != 0 && !rec.second_factor.is_enrolled() {
        rec.failed_logins = 0;
        store.put_account(&rec)?;
    }
    Ok(LoginOutcome::Ok(rec))
}

/// Counts one failed login (wrong password or wrong second factor) and locks the account after
/// [`LOCKOUT_FAILURES`] for [`LOCKOUT_MS`]; recorded as `account.lockout` when it locks.
pub(crate) fn count_failure(
    store: &Store,
    mut rec: AccountRecord,
    now: i64,
) -> Result<LoginOutcome, DomainError> {
    rec.failed_logins += 1;
    if rec.failed_logins >= LOCKOUT_FAILURES {
        rec.locked_until_ms = now + LOCKOUT_MS;
        rec.failed_logins = 0;
        store.put_account(&rec)?;
        let actor = Actor::account(&rec.username, rec.role);
        audit::record(
            store,
            &actor,
            Action::AccountLockout,
            Outcome::Locked,
            &rec.username,
            "",
        )?;
        return Ok(LoginOutcome::Locked {
            until_ms: rec.locked_until_ms,
        });
    }
    store.put_account(&rec)?;
    Ok(LoginOutcome::Failed)
}

/// Changes another administrator's account (never one's own, never a vendor's).
fn update_admin(
    store: &Store,
    user: &str,
    actor: &Actor,
    change: impl FnOnce(&mut AccountRecord),
) -> Result<(), DomainError> {
    if user == actor.id {
        return Err(DomainError::Invalid("不能对自己的账户执行此操作".into()));
    }
    let mut rec = store
        .get_account(user)?
        .filter(|a| a.role != Role::Vendor)
        .ok_or_else(|| DomainError::NotFound(format!("管理员账户 {user} 不存在")))?;
    change(&mut rec);
    store.put_account(&rec)?;
    Ok(())
}

/// Disables or re-enables an administrator, clearing any lockout; recorded as
/// `account.disable` / `account.enable`. The caller ends the account's sessions.
pub fn set_disabled(
    store: &Store,
    user: &str,
    disabled: bool,
    actor: &Actor,
) -> Result<(), DomainError> {
    let res = update_admin(store, user, actor, |a| {
        a.disabled = disabled;
        a.failed_logins = 0;
        a.locked_until_ms = 0;
    });
    let action = if disabled {
        Action::AccountDisable
    } else {
        Action::AccountEnable
    };
    audit::audited(store, actor, action, user, res, |()| {
        (user.to_string(), String::new())
    })
}

/// Clears an administrator's lockout (failed logins and lock time) and nothing else; recorded
/// as `account.unlock`. The recovery path of a locked-out sole security administrator: the
/// CLI reaches it only through the control socket (0600, the service user's) or the store,
/// so it needs root or the service user on the server.
pub fn unlock(store: &Store, user: &str, actor: &Actor) -> Result<(), DomainError> {
    let res = update_admin(store, user, actor, |a| {
        a.failed_logins = 0;
        a.locked_until_ms = 0;
    });
    audit::audited(store, actor, Action::AccountUnlock, user, res, |()| {
        (user.to_string(), String::new())
    })
}

/// An administrator as `hutong admin list` shows it; never a secret or a hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminSummary {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    /// UTC ms until which logins are refused; `None` when not locked.
    pub locked_until_ms: Option<i64>,
    pub must_change_password: bool,
    pub second_factor_enrolled: bool,
    pub created_ms: i64,
}

/// Every administrator (vendors are the portal's), by username.
pub fn list_admins(store: &Store) -> Result<Vec<AdminSummary>, DomainError> {
    let now = crate::time::now_ms();
    let mut out: Vec<AdminSummary> = store
        .list_accounts()?
        .into_iter()
        .filter(|a| a.role != Role::Vendor)
        .map(|a| AdminSummary {
            locked_until_ms: (a.locked_until_ms > now).then_some(a.locked_until_ms),
            second_factor_enrolled: a.second_factor.is_enrolled(),
            username: a.username,
            role: a.role,
            disabled: a.disabled,
            must_change_password: a.must_change_password,
            created_ms: a.created_ms,
        })
        .collect();
    out.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(out)
}

/// Gives an administrator a new password (hashed by the caller off the async runtime) that
/// must be changed at the next login; recorded as `account.reset`.
pub fn reset_password(
    store: &Store,
    user: &str,
    password_hash: String,
    actor: &Actor,
) -> Result<(), DomainError> {
    let res = update_admin(store, user, actor, |a| {
        a.password_hash = password_hash;
        a.must_change_password = true;
        a.failed_logins = 0;
        a.locked_until_ms = 0;
    });
    audit::audited(store, actor, Action::AccountReset, user, res, |()| {
        (user.to_string(), String::new())
    })
}

/// Changes one's own password: the current one is checked through [`login`] (so failures
/// count toward the lockout), the new one against the policy; recorded as
/// `account.password_change`. The caller ends the account's other sessions.
pub fn change_password(
    store: &Store,
    actor: &Actor,
    current: &str,
    new: &str,
) -> Result<AccountRecord, DomainError> {
    let res = replace_password(store, &actor.id, current, new);
    audit::audited(store, actor, Action::PasswordChange, &actor.id, res, |r| {
        (r.username.clone(), String::new())
    })
}

fn replace_password(
    store: &Store,
    username: &str,
    current: &str,
    new: &str,
) -> Result<AccountRecord, DomainError> {
    if new == current {
        return Err(DomainError::Invalid("新密码不能与当前密码相同".into()));
    }
    check_password_policy(new)?;
    let mut rec = match login(store, username, current)? {
        LoginOutcome::Ok(rec) => rec,
        LoginOutcome::Locked { .. } => {
            return Err(DomainError::Invalid("账户已锁定，请稍后再试".into()));
        }
        LoginOutcome::Failed => return Err(DomainError::Invalid("当前密码不正确".into())),
    };
    rec.password_hash = hash_password(new)?;
    rec.must_change_password = false;
    store.put_account(&rec)?;
    Ok(rec)
}

/// A console sign-in's first step: [`login`], recorded as `console.login` with its outcome.
/// An account with a second factor is not signed in yet: `domain::second_factor::second_step`
/// follows.
pub fn sign_in(store: &Store, username: &str, password: &str) -> Result<LoginOutcome, DomainError> {
    let out = login(store, username, password)?;
    let mut detail = "";
    let (actor, outcome) = match &out {
        LoginOutcome::Ok(rec) => {
            if rec.second_factor.is_enrolled() {
                detail = "密码正确，待第二步验证";
            }
            (Actor::account(&rec.username, rec.role), Outcome::Ok)
        }
        other => {
            // The role of a refused sign-in is not revealed, not even to the log.
            let actor = Actor {
                kind: ActorKind::Admin,
                id: username.to_string(),
                role: None,
            };
            let outcome = match other {
                LoginOutcome::Locked { .. } => Outcome::Locked,
                _ => Outcome::Failed,
            };
            (actor, outcome)
        }
    };
    audit::record(
        store,
        &actor,
        Action::ConsoleLogin,
        outcome,
        username,
        detail,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_and_lockout() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("alllowercaseletters").is_err());
        assert!(check_password_policy("Good-Password-1").is_ok());
        assert!(check_password_policy(&generate_password()).is_ok());

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (user, pw) = bootstrap(&store).unwrap().unwrap();
        assert!(bootstrap(&store).unwrap().is_none(), "bootstrap runs once");
        assert!(
            matches!(login(&store, &user, &pw).unwrap(), LoginOutcome::Ok(r) if r.must_change_password)
        );
        for _ in 0..4 {
            assert_eq!(
                login(&store, &user, "Wrong-Password-1").unwrap(),
                LoginOutcome::Failed
            );
        }
        assert!(matches!(
            login(&store, &user, "Wrong-Password-1").unwrap(),
            LoginOutcome::Locked { .. }
        ));
        // Locked even with the right password.
        assert!(matches!(
            login(&store, &user, &pw).unwrap(),
            LoginOutcome::Locked { .. }
        ));
    }
}
