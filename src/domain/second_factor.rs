//! Second factors of console and portal accounts: TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30 s,
//! one step of tolerance either way, no replay), single-use recovery codes kept as salted SM3
//! digests, and an SM2 certificate whose key signs a login challenge.
//!
//! The TOTP secret is sealed under the platform-owned data key [`KEY_OWNER`] (wrapped by that
//! owner's tenant KEK in the key store, as vendor personal fields are under theirs). This module owns the rules; the pending-login record
//! and its cookie are the console's (`console::session`).

use super::DomainError;
use super::accounts::{self, LoginOutcome};
use super::audit;
use super::audit_event::{Action, Actor, ActorKind, Outcome};
use crate::crypto::sm;
use crate::domain::vocab::Role;
use crate::keys::KeyProvider;
use crate::store::Store;
use crate::store::accounts::{AccountRecord, TotpFactor};
use crate::store::seals::Field;
use crate::time::now_ms;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use zeroize::Zeroizing;

/// The data key that seals every TOTP secret.
pub const KEY_OWNER: &str = "platform:second-factor";
pub const TOTP_DIGITS: u32 = 6;
pub const TOTP_STEP_SECS: u64 = 30;
pub const RECOVERY_CODES: usize = 10;
/// The issuer shown by authenticator apps.
const ISSUER: &str = "Hutong";

/// HOTP (RFC 4226) value of `counter`: HMAC-SHA1, dynamic truncation, 6 digits.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret) else {
        // HMAC takes keys of any length; unreachable, and a wrong code is the safe answer.
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    bin % 10u32.pow(TOTP_DIGITS)
}

/// The RFC 6238 time step of a UTC time in milliseconds.
pub fn time_step(now_ms: i64) -> u64 {
    u64::try_from(now_ms.max(0)).unwrap_or(0) / 1000 / TOTP_STEP_SECS
}

/// The step `code` is valid for among now−1, now, now+1 that is later than `last_step`;
/// `None` when the code is wrong or replayed.
pub fn check_totp(secret: &[u8], code: &str, now_ms: i64, last_step: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let now = time_step(now_ms);
    let mut found = None;
    // Every candidate is computed, so the time taken says nothing about which one matched.
    for step in [now.saturating_sub(1), now, now + 1] {
        if hotp(secret, step) == want && step > last_step && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 Base32 without padding (what authenticator apps take).
pub fn base32_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// RFC 4648 Base32 (padding, spaces and case ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = match c.to_ascii_uppercase() {
            u @ 'A'..='Z' => u as u32 - 'A' as u32,
            d @ '2'..='7' => d as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(username: &str, secret_b32: &str) -> String {
    let label: String = username
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "otpauth://totp/{ISSUER}:{label}?secret={secret_b32}&issuer={ISSUER}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}"
    )
}

/// The QR code of `text` as an SVG `data:` URI, rendered here (no external service).
pub fn qr_data_uri(text: &str) -> Result<String, DomainError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| DomainError::Invalid(format!("二维码生成失败: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// A recovery code as typed: spaces and dashes dropped, lower case.
fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .take(64)
        .collect()
}

fn recovery_digest(salt: &[u8], code: &str) -> String {
    let mut input = salt.to_vec();
    input.extend_from_slice(code.as_bytes());
    sm::sm3_hex(&input)
}

/// Ten fresh codes (`xxxxx-xxxxx`, about 50 bits each) and their stored salted digests.
pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut stored = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let raw = sm::random_bytes::<10>();
        let code: String = raw
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect();
        let salt = sm::random_bytes::<16>();
        stored.push(format!(
            "{}${}",
            hex::encode(salt),
            recovery_digest(&salt, &code)
        ));
        shown.push(format!("{}-{}", &code[..5], &code[5..]));
    }
    (shown, stored)
}

/// The index of the stored digest `code` matches.
fn find_recovery(stored: &[String], code: &str) -> Option<usize> {
    let code = normalise_recovery(code);
    if code.len() != 10 {
        return None;
    }
    stored.iter().position(|s| {
        s.split_once('$').is_some_and(|(salt, digest)| {
            hex::decode(salt).is_ok_and(|salt| {
                crate::crypto::ct_eq(recovery_digest(&salt, &code).as_bytes(), digest.as_bytes())
            })
        })
    })
}

/// Whether this account must enrol before it may do anything: every administrator, and
/// vendors when the configuration requires TOTP.
pub fn must_enrol(rec: &AccountRecord, vendors_require_totp: bool) -> bool {
    let required = rec.role != Role::Vendor || vendors_require_totp;
    required
        && if rec.role == Role::Vendor {
            rec.second_factor.totp.is_none()
        } else {
            !rec.second_factor.is_enrolled()
        }
}

fn data_key(store: &Store, provider: &dyn KeyProvider) -> Result<Zeroizing<[u8; 16]>, DomainError> {
    Ok(store.data_key(provider, KEY_OWNER)?)
}

fn open_secret(
    store: &Store,
    provider: &dyn KeyProvider,
    field: &Field,
) -> Result<Zeroizing<Vec<u8>>, DomainError> {
    let b32 = Zeroizing::new(field.open(|| store.data_key(provider, KEY_OWNER))?);
    base32_decode(&b32)
        .map(Zeroizing::new)
        .ok_or_else(|| DomainError::Store(crate::store::StoreError::Corrupt("totp secret".into())))
}

fn account(store: &Store, username: &str) -> Result<AccountRecord, DomainError> {
    store
        .get_account(username)?
        .ok_or_else(|| DomainError::NotFound(format!("账户 {username} 不存在")))
}

/// The secret the enrolment page shows (Base32): the one already offered if the account has
/// one waiting, else a new 160-bit secret, stored sealed until a code confirms it.
pub fn enrolment_secret(
    store: &Store,
    provider: &dyn KeyProvider,
    username: &str,
) -> Result<String, DomainError> {
    let mut rec = account(store, username)?;
    if rec.second_factor.totp.is_some() {
        return Err(DomainError::Conflict("动态口令已启用".into()));
    }
    if let Some(f) = &rec.second_factor.totp_pending {
        let secret = open_secret(store, provider, f)?;
        return Ok(base32_encode(&secret));
    }
    let secret = Zeroizing::new(sm::random_bytes::<20>());
    let b32 = base32_encode(&secret[..]);
    rec.second_factor.totp_pending = Some(Field::seal(&*data_key(store, provider)?, &b32));
    store.put_account(&rec)?;
    Ok(b32)
}

/// Recovery codes handed out by an enrolment: only on an account that has none left.
fn issue_recovery_codes(rec: &mut AccountRecord) -> Option<Vec<String>> {
    if !rec.second_factor.recovery_codes.is_empty() {
        return None;
    }
    let (shown, stored) = new_recovery_codes();
    rec.second_factor.recovery_codes = stored;
    Some(shown)
}

/// Confirms the offered secret with its first code; recorded as `account.second_factor_enrol`.
/// Returns the recovery codes to show once (none if the account still has some).
pub fn confirm_totp(
    store: &Store,
    provider: &dyn KeyProvider,
    actor: &Actor,
    code: &str,
) -> Result<Option<Vec<String>>, DomainError> {
    let res = (|| {
        let mut rec = account(store, &actor.id)?;
        let pending = rec
            .second_factor
            .totp_pending
            .clone()
            .ok_or_else(|| DomainError::Invalid("请先打开启用页面获取密钥".into()))?;
        let secret = open_secret(store, provider, &pending)?;
        let now = now_ms();
        let step = check_totp(&secret, code, now, 0)
            .ok_or_else(|| DomainError::Invalid("动态口令错误，请核对手机时间后重试".into()))?;
        rec.second_factor.totp = Some(TotpFactor {
            secret: pending,
            last_step: step,
            enrolled_ms: now,
        });
        rec.second_factor.totp_pending = None;
        let codes = issue_recovery_codes(&mut rec);
        store.put_account(&rec)?;
        Ok(codes)
    })();
    audit::audited(
        store,
        actor,
        Action::SecondFactorEnrol,
        &actor.id,
        res,
        |_| (actor.id.clone(), "动态口令".into()),
    )
}

/// What [`register_certificate`] accepts: a PEM SM2 certificate valid now.
fn parse_sm2_cert(pem: &str) -> Result<crate::crypto::x509::CertInfo, DomainError> {
    if pem.len() > 16 * 1024 {
        return Err(DomainError::Invalid("证书过大".into()));
    }
    let (label, der) =
        sm::pem_decode(pem).map_err(|_| DomainError::Invalid("请粘贴 PEM 格式的证书".into()))?;
    if label != "CERTIFICATE" {
        return Err(DomainError::Invalid(
            "请粘贴 PEM 格式的证书（CERTIFICATE）".into(),
        ));
    }
    let info = crate::crypto::x509::CertInfo::parse(&der)
        .map_err(|e| DomainError::Invalid(format!("证书无法解析: {e}")))?;
    sm::sm2_public_key_from_cert_der(&der)
        .map_err(|_| DomainError::Invalid("证书的公钥不是 SM2 公钥".into()))?;
    if !info.is_valid_at(now_ms()) {
        return Err(DomainError::Invalid("证书不在有效期内".into()));
    }
    Ok(info)
}

/// Registers the account holder's SM2 certificate; recorded as `account.second_factor_enrol`.
/// Returns the recovery codes to show once (none if the account still has some).
pub fn register_certificate(
    store: &Store,
    actor: &Actor,
    pem: &str,
) -> Result<Option<Vec<String>>, DomainError> {
    let res = (|| {
        let mut rec = account(store, &actor.id)?;
        if rec.role == Role::Vendor {
            return Err(DomainError::Forbidden("接入单位账户使用动态口令".into()));
        }
        let info = parse_sm2_cert(pem)?;
        rec.second_factor.cert_pem = Some(pem.trim().to_string());
        let codes = issue_recovery_codes(&mut rec);
        store.put_account(&rec)?;
        Ok((codes, info.serial_hex))
    })();
    audit::audited(
        store,
        actor,
        Action::SecondFactorEnrol,
        &actor.id,
        res,
        |(_, sn)| (actor.id.clone(), format!("SM2 证书 {sn}")),
    )
    .map(|(codes, _)| codes)
}

/// What the second step was given.
pub struct Proof<'a> {
    /// A TOTP code or a recovery code.
    pub code: &'a str,
    /// Base64 of the DER SM2 signature of `challenge`.
    pub signature: &'a str,
    pub challenge: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Ok(AccountRecord),
    /// Wrong proof; the message says which kind.
    Failed(String),
    Locked {
        until_ms: i64,
    },
}

fn refused_actor(username: &str) -> Actor {
    Actor {
        kind: ActorKind::Admin,
        id: username.to_string(),
        role: None,
    }
}

/// The second step of a login after the password: a TOTP code, a recovery code or the SM2
/// signature of the challenge. A failure counts towards the account lockout exactly as a wrong
/// password does; every outcome is recorded as `console.login`.
pub fn second_step(
    store: &Store,
    provider: &dyn KeyProvider,
    username: &str,
    proof: &Proof,
) -> Result<StepOutcome, DomainError> {
    let mut rec = account(store, username)?;
    let now = now_ms();
    if rec.locked_until_ms > now {
        audit::record(
            store,
            &refused_actor(username),
            Action::ConsoleLogin,
            Outcome::Locked,
            username,
            "账户已锁定",
        )?;
        return Ok(StepOutcome::Locked {
            until_ms: rec.locked_until_ms,
        });
    }
    let (verdict, detail) = check_proof(store, provider, &mut rec, proof, now)?;
    if verdict {
        rec.failed_logins = 0;
        store.put_account(&rec)?;
        let actor = Actor::account(&rec.username, rec.role);
        if detail == "恢复码" {
            audit::record(
                store,
                &actor,
                Action::RecoveryCodeUse,
                Outcome::Ok,
                username,
                format!("剩余 {} 个", rec.second_factor.recovery_codes.len()),
            )?;
        }
        audit::record(
            store,
            &actor,
            Action::ConsoleLogin,
            Outcome::Ok,
            username,
            detail,
        )?;
        return Ok(StepOutcome::Ok(rec));
    }
    audit::record(
        store,
        &refused_actor(username),
        Action::ConsoleLogin,
        Outcome::Denied,
        username,
        detail.clone(),
    )?;
    match accounts::count_failure(store, rec, now)? {
        LoginOutcome::Locked { until_ms } => Ok(StepOutcome::Locked { until_ms }),
        _ => Ok(StepOutcome::Failed(detail)),
    }
}

/// Checks one proof; `(true, kind)` or `(false, what was wrong)`. A used TOTP step and a used
/// recovery code are written into `rec` (saved by the caller).
fn check_proof(
    store: &Store,
    provider: &dyn KeyProvider,
    rec: &mut AccountRecord,
    proof: &Proof,
    now: i64,
) -> Result<(bool, String), DomainError> {
    let sig = proof.signature.trim();
    if !sig.is_empty() {
        let Some(pem) = &rec.second_factor.cert_pem else {
            return Ok((false, "账户未登记 SM2 证书".into()));
        };
        let Ok(info) = parse_sm2_cert(pem) else {
            return Ok((false, "登记的 SM2 证书已失效".into()));
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                sig.chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>(),
            )
            .ok()
            .filter(|d| d.len() <= 256);
        let ok = match (der, sm::sm2_public_key_from_cert_der(&info.der)) {
            (Some(der), Ok(key)) => sm::sm2_verify(&key, proof.challenge.as_bytes(), &der).is_ok(),
            _ => false,
        };
        return Ok(if ok {
            (true, "SM2 证书".into())
        } else {
            (false, "SM2 签名验证失败".into())
        });
    }
    let code = proof.code.trim();
    if code.is_empty() {
        return Ok((false, "未输入动态口令".into()));
    }
    if code.len() == TOTP_DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit()) {
        let Some(totp) = rec.second_factor.totp.as_mut() else {
            return Ok((false, "账户未启用动态口令".into()));
        };
        let secret = open_secret(store, provider, &totp.secret)?;
        return Ok(match check_totp(&secret, code, now, totp.last_step) {
            Some(step) => {
                totp.last_step = step;
                (true, "动态口令".into())
            }
            None => (false, "动态口令错误".into()),
        });
    }
    match find_recovery(&rec.second_factor.recovery_codes, code) {
        Some(i) => {
            rec.second_factor.recovery_codes.remove(i);
            Ok((true, "恢复码".into()))
        }
        None => Ok((false, "恢复码错误".into())),
    }
}

/// Removes every second factor and recovery code of `user` and ends its sessions; the account
/// enrols again at its next login. Recorded as `account.second_factor_reset`. A console
/// administrator cannot reset their own; the CLI may reset any account.
pub fn reset(store: &Store, user: &str, actor: &Actor) -> Result<(), DomainError> {
    let res = (|| {
        if actor.kind != ActorKind::Cli && actor.id == user {
            return Err(DomainError::Invalid("不能对自己的账户执行此操作".into()));
        }
        let mut rec = account(store, user)?;
        if actor.kind != ActorKind::Cli && rec.role == Role::Vendor {
            return Err(DomainError::NotFound(format!("管理员账户 {user} 不存在")));
        }
        rec.second_factor = Default::default();
        store.put_account(&rec)?;
        store.retain_sessions(|s| s.username != user)?;
        Ok(())
    })();
    audit::audited(store, actor, Action::SecondFactorReset, user, res, |()| {
        (user.to_string(), String::new())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the last 6 are ours).
    #[test]
    fn totp_matches_rfc_6238_appendix_b() {
        let secret = b"12345678901234567890";
        for (t, want8) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(secret, t / 30), want8 % 1_000_000, "T={t}");
            let ms = i64::try_from(t * 1000).unwrap();
            let code = format!("{:06}", want8 % 1_000_000);
            assert_eq!(check_totp(secret, &code, ms, 0), Some(t / 30));
        }
    }

    #[test]
    fn codes_are_accepted_one_step_either_way_and_never_twice() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111_000i64;
        let step = time_step(now);
        let code = |s: u64| format!("{:06}", hotp(secret, s));
        assert_eq!(check_totp(secret, &code(step - 1), now, 0), Some(step - 1));
        assert_eq!(check_totp(secret, &code(step + 1), now, 0), Some(step + 1));
        assert_eq!(check_totp(secret, &code(step + 2), now, 0), None);
        assert_eq!(check_totp(secret, &code(step - 2), now, 0), None);
        // Replay: the step already used, or any before it, is refused.
        assert_eq!(check_totp(secret, &code(step), now, step), None);
        assert_eq!(check_totp(secret, &code(step - 1), now, step), None);
        assert_eq!(check_totp(secret, "12345", now, 0), None);
        assert_eq!(check_totp(secret, "abcdef", now, 0), None);
    }

    #[test]
    fn base32_round_trips_rfc_4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base32_decode("MZ1").is_none());
    }

    #[test]
    fn recovery_codes_are_salted_digests_and_match_as_typed() {
        let (shown, stored) = new_recovery_codes();
        assert_eq!(
            (shown.len(), stored.len()),
            (RECOVERY_CODES, RECOVERY_CODES)
        );
        assert!(
            stored
                .iter()
                .all(|s| !s.contains(&shown[0].replace('-', "")))
        );
        assert_eq!(find_recovery(&stored, &shown[3]), Some(3));
        assert_eq!(
            find_recovery(
                &stored,
                &format!(" {} ", shown[4].to_uppercase().replace('-', ""))
            ),
            Some(4)
        );
        assert_eq!(find_recovery(&stored, "aaaaa-aaaaa"), None);
        assert!(
            qr_data_uri(&otpauth_uri("secadmin", "JBSWY3DPEHPK3PXP"))
                .unwrap()
                .starts_with("data:image/svg+xml;base64,")
        );
    }
}
