//! Signed checkpoints (SPEC §6.1): the four-line text (origin, tree size, Base64 root, UTC ms),
//! signed SM2/SM3 by the platform key, DER, Base64. Making one records an `audit.checkpoint`
//! entry first, so the checkpoint covers its own entry and an idle log needs no further one.

use super::merkle::Hash;
use crate::crypto::sm;
use crate::domain::audit_event::{Action, Actor, Outcome};
use crate::keys::Keyring;
use crate::store::Store;
use crate::store::audit_log::SignedCheckpoint;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// `hutong/<region>/<first 16 hex of SM3(platform certificate DER)>`.
pub fn origin(region: &str, cert_der: &[u8]) -> String {
    let fp = sm::sm3_hex(cert_der);
    format!("hutong/{region}/{}", &fp[..16])
}

pub fn text(origin: &str, size: u64, root: &Hash, at_ms: i64) -> String {
    format!("{origin}\n{size}\n{}\n{at_ms}\n", B64.encode(root))
}

/// A checkpoint text's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub at_ms: i64,
}

/// Parses the four lines; `None` for anything else (extra lines, a missing final newline,
/// a root that is not 32 bytes).
pub fn parse(text: &str) -> Option<Parsed> {
    let body = text.strip_suffix('\n')?;
    let lines: Vec<&str> = body.split('\n').collect();
    let [origin, size, root, at] = lines.as_slice() else {
        return None;
    };
    let root: Hash = B64.decode(root).ok()?.try_into().ok()?;
    let size: u64 = size.parse().ok()?;
    let at_ms: i64 = at.parse().ok()?;
    // Only the canonical decimal forms, so one checkpoint has one text.
    if text != self::text(origin, size, &root, at_ms) {
        return None;
    }
    Some(Parsed {
        origin: origin.to_string(),
        size,
        root,
        at_ms,
    })
}

/// Checks the signature of a checkpoint with the platform's public key and parses it.
pub fn verify(cp: &SignedCheckpoint, key: &sm2::PublicKey) -> Option<Parsed> {
    let sig = B64.decode(&cp.signature).ok()?;
    sm::sm2_verify(key, cp.text.as_bytes(), &sig).ok()?;
    parse(&cp.text)
}

/// Checkpoints are made one at a time, and a platform key rotation holds them off while it
/// swaps the key: otherwise a checkpoint could read the tree under the old key and be stored
/// after the old key's last checkpoint with the new key's signature, and the log would show
/// the retired key signing after its successor.
static SIGNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Proof that checkpoint signing is held (see [`hold`]).
pub struct Held(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

/// Holds checkpoint signing off until the returned guard drops.
pub fn hold() -> Held {
    Held(SIGNING.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Records an `audit.checkpoint` entry, then signs and stores the checkpoint of the tree as
/// it then stands. Durable after the next commit.
pub fn make(
    store: &Store,
    keys: &Keyring,
    region: &str,
) -> Result<(u64, SignedCheckpoint), crate::domain::DomainError> {
    make_held(&hold(), store, keys, region)
}

/// [`make`] under a [`hold`] the caller keeps (a rotation's checkpoints on either side).
pub fn make_held(
    _held: &Held,
    store: &Store,
    keys: &Keyring,
    region: &str,
) -> Result<(u64, SignedCheckpoint), crate::domain::DomainError> {
    crate::domain::audit::record(
        store,
        &Actor::system(),
        Action::AuditCheckpoint,
        Outcome::Ok,
        "",
        "",
    )?;
    let f = store.audit_frontier()?;
    let cp = sign_held(store, keys, region, f.size, &f.root())?;
    Ok((f.size, cp))
}

/// Signs and stores the checkpoint of the tree of `size` whose root is `root` (the caller
/// computed it from the log), dated now. Pruning uses it for a size no checkpoint covers yet.
pub fn sign(
    store: &Store,
    keys: &Keyring,
    region: &str,
    size: u64,
    root: &Hash,
) -> Result<SignedCheckpoint, crate::store::StoreError> {
    let _held = hold();
    sign_held(store, keys, region, size, root)
}

fn sign_held(
    store: &Store,
    keys: &Keyring,
    region: &str,
    size: u64,
    root: &Hash,
) -> Result<SignedCheckpoint, crate::store::StoreError> {
    let at_ms = crate::time::now_ms();
    // One snapshot: the origin names the certificate of the key that signs, even while a
    // rotation swaps them.
    let platform = keys.platform();
    let text = text(&origin(region, platform.cert_der()), size, root, at_ms);
    let signature = B64.encode(platform.sign(text.as_bytes()));
    let cp = SignedCheckpoint { text, signature };
    store.put_audit_checkpoint(size, at_ms, &cp)?;
    Ok(cp)
}

/// Makes a checkpoint when entries arrived since the last one.
pub fn make_if_due(
    store: &Store,
    keys: &Keyring,
    region: &str,
) -> Result<Option<u64>, crate::domain::DomainError> {
    let held = hold();
    let size = store.audit_frontier()?.size;
    let last = store.last_audit_checkpoint()?.map(|(s, _)| s);
    if last == Some(size) {
        return Ok(None);
    }
    Ok(Some(make_held(&held, store, keys, region)?.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_four_lines_and_parses_only_in_canonical_form() {
        let root = [7u8; 32];
        let t = text(
            "hutong/340000/0123456789abcdef",
            12,
            &root,
            1_700_000_000_000,
        );
        assert_eq!(t.lines().count(), 4);
        assert!(t.ends_with("1700000000000\n"));
        let p = parse(&t).unwrap();
        assert_eq!((p.size, p.root, p.at_ms), (12, root, 1_700_000_000_000));
        assert!(parse(&t.replace("\n12\n", "\n012\n")).is_none());
        assert!(parse(t.trim_end()).is_none());
        assert!(parse(&format!("{t}x\n")).is_none());
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_a_forged_one_does_not() {
        let key = sm::Sm2KeyPair::generate();
        let t = text("hutong/340000/0123456789abcdef", 1, &[1; 32], 5);
        let cp = SignedCheckpoint {
            signature: B64.encode(key.sign(t.as_bytes())),
            text: t.clone(),
        };
        assert!(verify(&cp, &key.public_key()).is_some());
        let forged = SignedCheckpoint {
            text: t.replace("\n1\n", "\n2\n"),
            ..cp.clone()
        };
        assert!(verify(&forged, &key.public_key()).is_none());
        let other = sm::Sm2KeyPair::generate();
        assert!(verify(&cp, &other.public_key()).is_none());
    }
}
