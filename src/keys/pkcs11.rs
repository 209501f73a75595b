//! The `pkcs11` key provider: a non-extractable AES-256 KEK in an HSM (cryptoki).
//!
//! Owns: loading a PKCS#11 module once per process, choosing the token, the logged-in user
//! session, creating the KEK (`hutong init`), relabelling and destroying KEKs for a rotation
//! (`hutong keys rotate kek`) and AES-256-GCM wrapping inside the HSM.
//! Must not: hold key material of its own (plaintexts leave only as `Zeroizing`), sign with
//! the HSM (SM2 mechanisms are only reported), or finalise the module (other providers in
//! the process may share it).
//!
//! Blob format (self-describing): `b"HK1" || iv(12) || ciphertext || tag(16)`, where the
//! three magic bytes are also the GCM additional authenticated data, so a blob cannot be
//! re-labelled as another format without failing the tag.
//!
//! Tenant KEKs are AES-256 token objects of their own, non-extractable, labelled
//! `<kek_label>-tenant-<hex SM3(owner)>` with CKA_ID `SM3(owner)`, created by the first wrap
//! and removed with `C_DestroyObject`. Their blobs are `b"HKT" || iv || ciphertext || tag`
//! with AAD `b"HKT" || 0 || owner`.

use crate::time::now_ms;
use std::collections::HashMap;
use std::ffi::c_ulong;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::vendor_defined::CKM_VENDOR_DEFINED;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::{KeyError, KeyProvider, ProviderStatus, tenant_aad, tenant_key_name};
use crate::config::Pkcs11Section;

/// Leading bytes of every blob this provider makes; also the GCM AAD.
const MAGIC: &[u8; 3] = b"HK1";
/// Leading bytes of blobs under a tenant KEK.
const TENANT_MAGIC: &[u8; 3] = b"HKT";
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const TAG_BITS: u64 = (TAG_LEN * 8) as u64;
const KEK_BYTES: u64 = 32;
/// Prefix of the CKA_ID this provider gives a KEK: `b"HK" || created_ms(8, BE) || random(6)`.
/// Keeping the creation time in the ID lets `status()` report it without a side file.
const KEK_ID_PREFIX: &[u8; 2] = b"HK";
const KEK_ID_LEN: usize = 16;
/// Environment variable holding the user PIN (read by [`Pkcs11Config::from_section`]).
pub const PIN_ENV: &str = "HUTONG_HSM_PIN";

/// Everything needed to reach the KEK. `pin` is zeroised on drop and never printed.
#[derive(Clone)]
pub struct Pkcs11Config {
    pub module: PathBuf,
    pub token_label: Option<String>,
    pub slot: Option<u64>,
    pub pin: Zeroizing<String>,
    pub kek_label: String,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("slot", &self.slot)
            .field("pin", &"<redacted>")
            .field("kek_label", &self.kek_label)
            .finish()
    }
}

impl Pkcs11Config {
    /// Builds the provider configuration from `[keys.pkcs11]`, taking the PIN from
    /// `HUTONG_HSM_PIN`, else `pin_file`, else the inline `pin`.
    pub fn from_section(section: &Pkcs11Section) -> Result<Self, KeyError> {
        let env_pin = std::env::var(PIN_ENV).ok().map(Zeroizing::new);
        Self::from_section_with_pin(section, env_pin)
    }

    /// As [`Pkcs11Config::from_section`] with the environment PIN passed in (testable).
    pub fn from_section_with_pin(
        section: &Pkcs11Section,
        env_pin: Option<Zeroizing<String>>,
    ) -> Result<Self, KeyError> {
        let module = section.module.clone().ok_or_else(|| {
            KeyError::Config("keys.pkcs11.module (path of the PKCS#11 library) is required".into())
        })?;
        let pin = match (env_pin, &section.pin_file, &section.pin) {
            (Some(p), _, _) if !p.is_empty() => p,
            (_, Some(path), _) => read_pin_file(path)?,
            (_, None, Some(p)) if !p.is_empty() => {
                tracing::warn!(
                    "keys.pkcs11.pin is set in the configuration; prefer {PIN_ENV} or pin_file"
                );
                Zeroizing::new(p.clone())
            }
            _ => {
                return Err(KeyError::Config(format!(
                    "no HSM user PIN: set {PIN_ENV}, keys.pkcs11.pin_file or keys.pkcs11.pin"
                )));
            }
        };
        Ok(Self {
            module,
            token_label: section.token_label.clone(),
            slot: section.slot,
            pin,
            kek_label: section.kek_label.clone(),
        })
    }

    fn check(&self) -> Result<(), KeyError> {
        if self.kek_label.is_empty() {
            return Err(KeyError::Config(
                "keys.pkcs11.kek_label must not be empty".into(),
            ));
        }
        if self.pin.is_empty() {
            return Err(KeyError::Config(format!(
                "empty HSM user PIN (set {PIN_ENV} or keys.pkcs11.pin_file)"
            )));
        }
        Ok(())
    }
}

fn read_pin_file(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let mut text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| KeyError::Io(format!("PIN file {}: {e}", path.display())))?,
    );
    // Editors add a final newline; a PIN never ends in one.
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "PIN file {} is readable by group or others; chmod 0600 it",
                path.display()
            );
        }
    }
    if text.is_empty() {
        return Err(KeyError::Config(format!(
            "PIN file {} is empty",
            path.display()
        )));
    }
    Ok(text)
}

/// What the token and the KEK look like; shown by `hutong keys status`. Never key material.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pkcs11Details {
    pub module: String,
    /// Manufacturer, description and version reported by the module.
    pub library: String,
    pub slot_id: u64,
    pub token_label: String,
    pub token_model: String,
    pub token_serial: String,
    pub kek_label: String,
    /// CKA_ID of the KEK, hex.
    pub kek_id: String,
    pub kek_created_ms: Option<i64>,
    /// Every mechanism the token lists, by PKCS#11 name (`unknown xxxxxxxx` if vendor-specific).
    pub mechanisms: Vec<String>,
    /// Mechanisms recognised as SM2 by their vendor codes; empty if none.
    pub sm2_mechanisms: Vec<String>,
    /// Human-readable note on SM2 support (HSM-side signing is not implemented).
    pub sm2_note: String,
}

/// Attributes of the KEK that matter for the security claim; read back from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KekPolicy {
    pub token: bool,
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: Option<bool>,
    pub never_extractable: Option<bool>,
}

/// The live session and the KEK handle in it; guarded by the provider's mutex because a
/// PKCS#11 session must not be used by two threads at once.
struct Connection {
    session: Session,
    kek: ObjectHandle,
    /// Tenant KEK handles found in this session, by label.
    tenants: HashMap<String, ObjectHandle>,
}

pub struct Pkcs11Provider {
    conn: Mutex<Connection>,
    ctx: Pkcs11,
    cfg: Pkcs11Config,
    details: Pkcs11Details,
    last_used_ms: AtomicI64,
    /// A blob of random bytes sealed at open. SoftHSM2 reports a GCM tag mismatch as
    /// CKR_GENERAL_ERROR, indistinguishable from a real fault; if the canary still opens, the
    /// HSM is healthy and the failure was the caller's blob.
    canary: Canary,
}

struct Canary {
    iv: [u8; IV_LEN],
    sealed: Vec<u8>,
}

impl fmt::Debug for Pkcs11Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Provider")
            .field("details", &self.details)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Provider {
    /// Loads the module, logs in to the token and finds the KEK labelled `cfg.kek_label`.
    pub fn open(cfg: &Pkcs11Config) -> Result<Self, KeyError> {
        cfg.check()?;
        let ctx = load_module(&cfg.module)?;
        let target = select_slot(&ctx, cfg)?;
        // Read-write: tenant KEKs are token objects created and destroyed while serving.
        let session = open_logged_in(&ctx, &target, cfg, true)?;
        let mechanisms = token_mechanisms(&ctx, &target)?;
        let kek = find_kek(&session, &cfg.kek_label)?;
        let canary = self_test(&session, kek.handle)?;
        Ok(Self::assemble(
            ctx, cfg, target, session, kek, canary, mechanisms,
        ))
    }

    /// Generates the KEK on the token (`hutong init`); refuses if any object already
    /// carries `cfg.kek_label`, so an existing KEK — and every blob under it — is never lost.
    pub fn create_kek(cfg: &Pkcs11Config) -> Result<Self, KeyError> {
        Self::create_kek_with_id(cfg, new_kek_id()?)
    }

    /// [`Pkcs11Provider::create_kek`] with a CKA_ID chosen (and recorded) by the caller, so
    /// an interrupted `hutong init` recognises its own KEK afterwards.
    pub fn create_kek_with_id(cfg: &Pkcs11Config, id: Vec<u8>) -> Result<Self, KeyError> {
        cfg.check()?;
        let ctx = load_module(&cfg.module)?;
        let target = select_slot(&ctx, cfg)?;
        let session = open_logged_in(&ctx, &target, cfg, true)?;
        let mechanisms = token_mechanisms(&ctx, &target)?;
        let existing = session
            .find_objects(&[Attribute::Label(cfg.kek_label.as_bytes().to_vec())])
            .map_err(|e| hsm("searching for an existing KEK", e))?;
        if !existing.is_empty() {
            return Err(KeyError::Config(format!(
                "token {:?} already holds an object labelled {:?}; refusing to create another KEK",
                target.label, cfg.kek_label
            )));
        }
        let template = key_template(&cfg.kek_label, id, true);
        let handle = session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(|e| hsm("generating the AES-256 KEK", e))?;
        // Read it back the same way `open` does and try it once, so a token that silently
        // ignored part of the template fails now; the unusable key is removed again so that
        // a corrected `init` is not refused for the label.
        let checked = find_kek(&session, &cfg.kek_label)
            .and_then(|kek| Ok((self_test(&session, kek.handle)?, kek)));
        let (canary, kek) = match checked {
            Ok(ok) => ok,
            Err(e) => {
                if let Err(d) = session.destroy_object(handle) {
                    tracing::error!(error = %d, "could not remove the unusable new KEK");
                }
                return Err(e);
            }
        };
        tracing::info!(
            token = %target.label,
            kek_label = %cfg.kek_label,
            "created AES-256 KEK in the HSM"
        );
        Ok(Self::assemble(
            ctx, cfg, target, session, kek, canary, mechanisms,
        ))
    }

    fn assemble(
        ctx: Pkcs11,
        cfg: &Pkcs11Config,
        target: Target,
        session: Session,
        kek: FoundKek,
        canary: Canary,
        mechanisms: Vec<MechanismType>,
    ) -> Self {
        let sm2_mechanisms: Vec<String> = mechanisms
            .iter()
            .filter_map(|m| sm2_mechanism_name(**m).map(|n| format!("{n} (0x{:08x})", **m)))
            .collect();
        let vendor_count = mechanisms
            .iter()
            .filter(|m| ***m >= CKM_VENDOR_DEFINED)
            .count();
        let sm2_note = if !sm2_mechanisms.is_empty() {
            format!(
                "token lists SM2 mechanisms ({}); HSM-side SM2 signing is not implemented, the \
                 platform SM2 key is software-held and stored wrapped under the KEK",
                sm2_mechanisms.join(", ")
            )
        } else if vendor_count > 0 {
            format!(
                "no known SM2 mechanism code; {vendor_count} vendor-defined mechanisms listed \
                 (consult the vendor's PKCS#11 header); platform SM2 key stays wrapped under the KEK"
            )
        } else {
            "token offers no SM2 mechanism; platform SM2 key stays wrapped under the KEK".into()
        };
        let library = ctx
            .get_library_info()
            .map(|i| {
                format!(
                    "{} {} {}",
                    i.manufacturer_id().trim(),
                    i.library_description().trim(),
                    i.library_version()
                )
            })
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let details = Pkcs11Details {
            module: cfg.module.display().to_string(),
            library,
            slot_id: target.slot.id(),
            token_label: target.label.clone(),
            token_model: target.model.clone(),
            token_serial: target.serial.clone(),
            kek_label: cfg.kek_label.clone(),
            kek_id: hex::encode(&kek.id),
            kek_created_ms: created_ms_from_id(&kek.id),
            mechanisms: mechanisms.iter().map(|m| m.to_string()).collect(),
            sm2_mechanisms,
            sm2_note,
        };
        tracing::info!(
            module = %details.module,
            token = %details.token_label,
            slot = details.slot_id,
            kek = %details.kek_label,
            "{}",
            details.sm2_note
        );
        Self {
            conn: Mutex::new(Connection {
                session,
                kek: kek.handle,
                tenants: HashMap::new(),
            }),
            ctx,
            cfg: cfg.clone(),
            details,
            last_used_ms: AtomicI64::new(0),
            canary,
        }
    }

    /// Token, KEK and mechanism details for `hutong keys status` and the console.
    pub fn details(&self) -> &Pkcs11Details {
        &self.details
    }

    /// When the KEK last wrapped or unwrapped something (UTC ms), if ever in this process.
    pub fn last_used_ms(&self) -> Option<i64> {
        match self.last_used_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Reads the KEK's security attributes back from the token.
    pub fn kek_policy(&self) -> Result<KekPolicy, KeyError> {
        self.with_session(
            |s, kek| {
                s.get_attributes(
                    kek,
                    &[
                        AttributeType::Token,
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                        AttributeType::AlwaysSensitive,
                        AttributeType::NeverExtractable,
                    ],
                )
            },
            |e| hsm("reading KEK attributes", e),
        )
        .map(|attrs| policy_from(&attrs))
    }

    /// Runs `op` on the shared session; if the session was lost (HSM restart, network HSM
    /// reconnect, logout) it reconnects and logs in once, then retries.
    fn with_session<T>(
        &self,
        mut op: impl FnMut(&Session, ObjectHandle) -> Result<T, CkError>,
        on_err: impl Fn(CkError) -> KeyError,
    ) -> Result<T, KeyError> {
        self.with_conn(|c| op(&c.session, c.kek), on_err)
    }

    /// [`Pkcs11Provider::with_session`] with the whole connection (its tenant-key handles).
    fn with_conn<T>(
        &self,
        mut op: impl FnMut(&mut Connection) -> Result<T, CkError>,
        on_err: impl Fn(CkError) -> KeyError,
    ) -> Result<T, KeyError> {
        let mut conn = self.lock();
        match op(&mut conn) {
            Err(CkError::Pkcs11(rv, _)) if session_lost(rv) => {
                tracing::warn!(error = ?rv, "HSM session lost; reconnecting");
                // Back to the same token: without a configured label, "first initialised
                // token" could now be a different one.
                let mut cfg = self.cfg.clone();
                if cfg.token_label.is_none() {
                    cfg.slot = Some(self.details.slot_id);
                }
                let target = select_slot(&self.ctx, &cfg)?;
                let session = open_logged_in(&self.ctx, &target, &cfg, true)?;
                let kek = find_kek(&session, &cfg.kek_label)?;
                if hex::encode(&kek.id) != self.details.kek_id {
                    return Err(KeyError::Config(format!(
                        "the key labelled {:?} changed while Hutong was running (CKA_ID {} \
                         instead of {}); restart to use it",
                        cfg.kek_label,
                        hex::encode(&kek.id),
                        self.details.kek_id
                    )));
                }
                *conn = Connection {
                    session,
                    kek: kek.handle,
                    tenants: HashMap::new(),
                };
                op(&mut conn).map_err(on_err)
            }
            other => other.map_err(on_err),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-made PKCS#11 operation that
        // matters here: every operation is single-part and re-initialised on the next call.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn touch(&self) {
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
    }
}

impl Pkcs11Provider {
    /// Encrypts under `key(conn)` (the KEK or a tenant KEK) and frames the blob with `magic`.
    fn seal_blob(
        &self,
        magic: &[u8; 3],
        aad: &[u8],
        plaintext: &[u8],
        mut key: impl FnMut(&mut Connection) -> Result<ObjectHandle, CkError>,
        what: &str,
    ) -> Result<Vec<u8>, KeyError> {
        // IV from the OS RNG, not the HSM's: it keeps the lock short and does not depend on
        // the token having an RNG. Random 96-bit IVs are safe for the few wraps a key makes.
        let mut iv = [0u8; IV_LEN];
        getrandom::fill(&mut iv).map_err(|e| KeyError::Hsm(format!("OS random source: {e}")))?;
        let sealed = self.with_conn(
            |c| {
                let k = key(c)?;
                seal(&c.session, k, iv, aad, plaintext)
            },
            |e| hsm(what, e),
        )?;
        if sealed.len() != plaintext.len() + TAG_LEN {
            return Err(KeyError::Hsm(format!(
                "AES-GCM returned {} bytes for {} bytes of input",
                sealed.len(),
                plaintext.len()
            )));
        }
        self.touch();
        let mut blob = Vec::with_capacity(magic.len() + IV_LEN + sealed.len());
        blob.extend_from_slice(magic);
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Inverse of [`Pkcs11Provider::seal_blob`]; `key(conn)` is `None` when the key is gone.
    fn open_blob(
        &self,
        magic: &[u8; 3],
        aad: &[u8],
        wrapped: &[u8],
        mut key: impl FnMut(&mut Connection) -> Result<Option<ObjectHandle>, CkError>,
        missing: impl Fn() -> KeyError,
        what: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let (iv, sealed) = parse_blob_of(magic, wrapped)?;
        let canary = &self.canary;
        let plain = self.with_conn(
            |c| {
                let Some(k) = key(c)? else {
                    return Ok(Err(missing()));
                };
                let opened = open_sealed(&c.session, k, iv, aad, sealed);
                blob_or_fault(&c.session, c.kek, canary, opened).map(|p| p.ok_or(KeyError::Unwrap))
            },
            |e| hsm(what, e),
        )??;
        self.touch();
        Ok(plain)
    }

    fn tenant_label(&self, owner: &str) -> String {
        format!("{}-tenant-{}", self.cfg.kek_label, tenant_key_name(owner))
    }
}

/// A non-extractable AES-256 token key for encryption: the KEK (which may also wrap) or a
/// tenant KEK (which only encrypts and decrypts data keys).
fn key_template(label: &str, id: Vec<u8>, wrap: bool) -> [Attribute; 13] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(KEK_BYTES.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(wrap),
        Attribute::Unwrap(wrap),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id),
    ]
}

/// The handle of the tenant KEK labelled `label`, if the token has it.
fn find_tenant_key(conn: &mut Connection, label: &str) -> Result<Option<ObjectHandle>, CkError> {
    if let Some(h) = conn.tenants.get(label) {
        return Ok(Some(*h));
    }
    let found = conn.session.find_objects(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?;
    if let Some(h) = found.first() {
        conn.tenants.insert(label.to_string(), *h);
    }
    Ok(found.first().copied())
}

/// The tenant KEK labelled `label`, generated (non-extractable, on the token) if there is
/// none. Runs under the connection lock, so one process never makes two keys for one tenant.
fn tenant_key_or_create(
    conn: &mut Connection,
    label: &str,
    owner: &str,
) -> Result<ObjectHandle, CkError> {
    if let Some(h) = find_tenant_key(conn, label)? {
        return Ok(h);
    }
    let id = crate::crypto::sm::sm3(owner.as_bytes()).to_vec();
    let template = key_template(label, id, false);
    let handle = conn
        .session
        .generate_key(&Mechanism::AesKeyGen, &template)?;
    tracing::info!(label, "created a tenant key in the HSM");
    conn.tenants.insert(label.to_string(), handle);
    Ok(handle)
}

/// Sorts a failed GCM decryption into "the caller's blob" (`Ok(None)`) and a real fault.
fn blob_or_fault(
    session: &Session,
    kek: ObjectHandle,
    canary: &Canary,
    opened: Result<Zeroizing<Vec<u8>>, CkError>,
) -> Result<Option<Zeroizing<Vec<u8>>>, CkError> {
    match opened {
        Ok(plain) => Ok(Some(plain)),
        // A bad tag or a mangled length is the caller's blob, not an HSM fault.
        Err(CkError::Pkcs11(
            RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::DataInvalid
            | RvError::DataLenRange,
            _,
        )) => Ok(None),
        Err(e @ CkError::Pkcs11(RvError::GeneralError | RvError::FunctionFailed, _)) => {
            match open_sealed(session, kek, canary.iv, MAGIC, &canary.sealed) {
                Ok(_) => Ok(None),
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

impl KeyProvider for Pkcs11Provider {
    fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.seal_blob(MAGIC, MAGIC, plaintext, |c| Ok(c.kek), "AES-GCM encryption")
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let missing = || KeyError::KekMissing(self.cfg.kek_label.clone());
        let what = "AES-GCM decryption";
        self.open_blob(MAGIC, MAGIC, wrapped, |c| Ok(Some(c.kek)), missing, what)
    }

    fn status(&self) -> ProviderStatus {
        let d = &self.details;
        ProviderStatus {
            provider: "pkcs11".into(),
            module: Some(d.module.clone()),
            slot: Some(format!("{} (token {:?})", d.slot_id, d.token_label)),
            kek_id: format!("{} (CKA_ID {})", d.kek_label, d.kek_id),
            created_ms: d.kek_created_ms,
            last_used_ms: self.last_used_ms(),
        }
    }

    fn tenant_wrap(&self, owner: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let label = self.tenant_label(owner);
        let aad = tenant_aad(TENANT_MAGIC, owner);
        let key = |c: &mut Connection| tenant_key_or_create(c, &label, owner);
        self.seal_blob(
            TENANT_MAGIC,
            &aad,
            plaintext,
            key,
            "AES-GCM encryption under a tenant key",
        )
    }

    fn tenant_unwrap(&self, owner: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let label = self.tenant_label(owner);
        let aad = tenant_aad(TENANT_MAGIC, owner);
        let key = |c: &mut Connection| find_tenant_key(c, &label);
        let missing = || KeyError::TenantKeyMissing(tenant_key_name(owner));
        let what = "AES-GCM decryption under a tenant key";
        self.open_blob(TENANT_MAGIC, &aad, wrapped, key, missing, what)
    }

    fn kek_fingerprint(&self) -> String {
        self.details.kek_id.clone()
    }

    fn destroy_tenant_key(&self, owner: &str) -> Result<bool, KeyError> {
        let label = self.tenant_label(owner);
        self.with_conn(
            |c| {
                c.tenants.remove(&label);
                let found = c
                    .session
                    .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])?;
                for h in &found {
                    c.session.destroy_object(*h)?;
                }
                Ok(!found.is_empty())
            },
            |e| hsm("destroying a tenant key", e),
        )
    }
}

/// Splits a blob of the format marked `magic` into IV and ciphertext||tag; anything else is
/// `Unwrap`.
fn parse_blob_of<'a>(
    magic: &[u8; 3],
    wrapped: &'a [u8],
) -> Result<([u8; IV_LEN], &'a [u8]), KeyError> {
    let rest = wrapped.strip_prefix(magic).ok_or(KeyError::Unwrap)?;
    if rest.len() < IV_LEN + TAG_LEN {
        return Err(KeyError::Unwrap);
    }
    let (iv, sealed) = rest.split_at(IV_LEN);
    let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| KeyError::Unwrap)?;
    Ok((iv, sealed))
}

/// AES-256-GCM inside the HSM; returns ciphertext || tag.
fn seal(
    session: &Session,
    key: ObjectHandle,
    mut iv: [u8; IV_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CkError> {
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
    session.encrypt(&Mechanism::AesGcm(params), key, plaintext)
}

/// Inverse of [`seal`]; the plaintext goes straight into zeroised memory.
fn open_sealed(
    session: &Session,
    key: ObjectHandle,
    mut iv: [u8; IV_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CkError> {
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
    session
        .decrypt(&Mechanism::AesGcm(params), key, sealed)
        .map(Zeroizing::new)
}

/// Seals and opens random bytes under the KEK at start, so a token whose GCM is broken or a
/// key that cannot encrypt fails `open` instead of the first real wrap; keeps the result as
/// the canary.
fn self_test(session: &Session, kek: ObjectHandle) -> Result<Canary, KeyError> {
    let mut probe = Zeroizing::new([0u8; 32]);
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut probe[..])
        .and_then(|()| getrandom::fill(&mut iv))
        .map_err(|e| KeyError::Hsm(format!("OS random source: {e}")))?;
    let sealed = seal(session, kek, iv, MAGIC, &probe[..])
        .map_err(|e| hsm("self-test: AES-GCM encryption under the KEK", e))?;
    let opened = open_sealed(session, kek, iv, MAGIC, &sealed)
        .map_err(|e| hsm("self-test: AES-GCM decryption under the KEK", e))?;
    if opened[..] != probe[..] || sealed.len() != probe.len() + TAG_LEN {
        return Err(KeyError::Hsm(
            "self-test: AES-GCM under the KEK did not round-trip".into(),
        ));
    }
    Ok(Canary { iv, sealed })
}

/// One process-wide context per module path: C_Initialize may run only once per process,
/// and providers reopened in the same process (e.g. `init` then `serve`) must share it.
fn load_module(path: &Path) -> Result<Pkcs11, KeyError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    if !path.exists() {
        return Err(KeyError::Config(format!(
            "PKCS#11 module {} does not exist",
            path.display()
        )));
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        KeyError::Config(format!(
            "cannot load PKCS#11 module {}: {e}",
            path.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another component (or another path naming the same library) initialised it already.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(KeyError::Hsm(format!(
                "C_Initialize of {} failed: {e}",
                path.display()
            )));
        }
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

struct Target {
    slot: Slot,
    label: String,
    model: String,
    serial: String,
}

/// By token label, else by slot id, else the first initialised token.
fn select_slot(ctx: &Pkcs11, cfg: &Pkcs11Config) -> Result<Target, KeyError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| hsm("listing slots", e))?;
    let mut tokens = Vec::with_capacity(slots.len());
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| hsm("reading token info", e))?;
        tokens.push((slot, info));
    }
    let present = || {
        let list: Vec<String> = tokens
            .iter()
            .filter(|(_, i)| i.token_initialized())
            .map(|(s, i)| format!("slot {} {:?}", s.id(), i.label()))
            .collect();
        if list.is_empty() {
            "no initialised tokens".to_string()
        } else {
            list.join(", ")
        }
    };
    let chosen = if let Some(label) = &cfg.token_label {
        let mut matching = tokens
            .iter()
            .filter(|(_, i)| i.token_initialized() && i.label() == label.as_str());
        let first = matching.next().ok_or_else(|| {
            KeyError::Config(format!("no token labelled {label:?} ({})", present()))
        })?;
        if matching.next().is_some() {
            return Err(KeyError::Config(format!(
                "more than one token is labelled {label:?}; configure keys.pkcs11.slot instead"
            )));
        }
        if let Some(id) = cfg.slot
            && first.0.id() != id
        {
            return Err(KeyError::Config(format!(
                "token {label:?} is in slot {}, but keys.pkcs11.slot says {id}",
                first.0.id()
            )));
        }
        first
    } else if let Some(id) = cfg.slot {
        let found = tokens
            .iter()
            .find(|(s, _)| s.id() == id)
            .ok_or_else(|| KeyError::Config(format!("no token in slot {id} ({})", present())))?;
        if !found.1.token_initialized() {
            return Err(KeyError::Config(format!(
                "the token in slot {id} is not initialised"
            )));
        }
        found
    } else {
        tokens
            .iter()
            .find(|(_, i)| i.token_initialized())
            .ok_or_else(|| {
                KeyError::Config(
                    "the PKCS#11 module shows no initialised token; initialise one with the \
                     HSM's tools (softhsm2-util --init-token for SoftHSM2)"
                        .into(),
                )
            })?
    };
    let (slot, info) = chosen;
    if info.user_pin_locked() {
        return Err(KeyError::Login(format!(
            "the user PIN of token {:?} is locked; the security officer must reset it",
            info.label()
        )));
    }
    Ok(Target {
        slot: *slot,
        label: info.label().to_string(),
        model: info.model().trim().to_string(),
        serial: info.serial_number().trim().to_string(),
    })
}

/// The token's mechanisms; the provider cannot work without CKM_AES_GCM.
fn token_mechanisms(ctx: &Pkcs11, target: &Target) -> Result<Vec<MechanismType>, KeyError> {
    let mechanisms = ctx
        .get_mechanism_list(target.slot)
        .map_err(|e| hsm("listing mechanisms", e))?;
    if !mechanisms.contains(&MechanismType::AES_GCM) {
        return Err(KeyError::Config(format!(
            "token {:?} does not offer CKM_AES_GCM, which the pkcs11 provider requires",
            target.label
        )));
    }
    Ok(mechanisms)
}

fn open_logged_in(
    ctx: &Pkcs11,
    target: &Target,
    cfg: &Pkcs11Config,
    read_write: bool,
) -> Result<Session, KeyError> {
    let session = if read_write {
        ctx.open_rw_session(target.slot)
    } else {
        ctx.open_ro_session(target.slot)
    }
    .map_err(|e| hsm("opening a session", e))?;
    let pin = AuthPin::from(cfg.pin.as_str());
    match session.login(UserType::User, Some(&pin)) {
        // Login state is per application and token: a second provider in the same process
        // (or a reconnect while the old session lives) finds the user logged in already.
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CkError::Pkcs11(
            rv @ (RvError::PinIncorrect
            | RvError::PinInvalid
            | RvError::PinLenRange
            | RvError::PinExpired
            | RvError::PinLocked
            | RvError::UserPinNotInitialized),
            _,
        )) => {
            let why = match rv {
                RvError::PinIncorrect => "wrong user PIN",
                RvError::PinLocked => "user PIN locked after too many failures",
                RvError::PinExpired => "user PIN expired; change it with the HSM's tools",
                RvError::UserPinNotInitialized => "the token has no user PIN set",
                _ => "PIN rejected",
            };
            Err(KeyError::Login(format!(
                "token {:?} (slot {}): {why} ({rv:?})",
                target.label,
                target.slot.id()
            )))
        }
        Err(e) => Err(hsm("logging in", e)),
    }
}

struct FoundKek {
    handle: ObjectHandle,
    id: Vec<u8>,
}

/// Finds exactly one AES-256 secret key with `label` and checks it really is a KEK that
/// cannot leave the token; an extractable key would void the point of the HSM.
fn find_kek(session: &Session, label: &str) -> Result<FoundKek, KeyError> {
    let handles = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| hsm("searching for the KEK", e))?;
    let handle = match handles.as_slice() {
        [] => return Err(KeyError::KekMissing(label.to_string())),
        [one] => *one,
        many => {
            return Err(KeyError::Config(format!(
                "{} secret keys are labelled {label:?}; the KEK label must be unique",
                many.len()
            )));
        }
    };
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Id,
                AttributeType::Token,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
            ],
        )
        .map_err(|e| hsm("reading KEK attributes", e))?;
    let mut id = Vec::new();
    let mut key_type = None;
    let mut value_len = None;
    let (mut encrypt, mut decrypt) = (false, false);
    for attr in &attrs {
        match attr {
            Attribute::KeyType(t) => key_type = Some(*t),
            Attribute::ValueLen(n) => value_len = Some(u64::from(*n)),
            Attribute::Id(v) => id = v.clone(),
            Attribute::Encrypt(b) => encrypt = *b,
            Attribute::Decrypt(b) => decrypt = *b,
            _ => {}
        }
    }
    let policy = policy_from(&attrs);
    let bad = |what: &str| {
        Err(KeyError::Config(format!(
            "the key labelled {label:?} is not a usable KEK: {what}"
        )))
    };
    if key_type != Some(KeyType::AES) {
        return bad("not an AES key");
    }
    // Tokens may hide CKA_VALUE_LEN; only a known wrong length is refused.
    if let Some(n) = value_len
        && n != KEK_BYTES
    {
        return bad(&format!("AES-{} instead of AES-256", n * 8));
    }
    if !policy.token {
        return bad("a session object, not stored on the token");
    }
    if policy.extractable || !policy.sensitive {
        return bad("extractable or not sensitive (CKA_EXTRACTABLE must be false)");
    }
    if !encrypt || !decrypt {
        return bad("CKA_ENCRYPT and CKA_DECRYPT must be true");
    }
    Ok(FoundKek { handle, id })
}

fn policy_from(attrs: &[Attribute]) -> KekPolicy {
    // Defaults are the unsafe answers, so an attribute the token hides is never read as safe.
    let mut p = KekPolicy {
        token: false,
        sensitive: false,
        extractable: true,
        always_sensitive: None,
        never_extractable: None,
    };
    for attr in attrs {
        match attr {
            Attribute::Token(b) => p.token = *b,
            Attribute::Sensitive(b) => p.sensitive = *b,
            Attribute::Extractable(b) => p.extractable = *b,
            Attribute::AlwaysSensitive(b) => p.always_sensitive = Some(*b),
            Attribute::NeverExtractable(b) => p.never_extractable = Some(*b),
            _ => {}
        }
    }
    p
}

/// Errors after which the session (or the KEK handle in it) is gone and a fresh login helps.
fn session_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::UserNotLoggedIn
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid
    )
}

/// Vendor codes known to mean SM2 in Chinese HSMs' PKCS#11 headers, as inclusive ranges
/// with a name and whether the mechanism signs. There is no standard code; the two families
/// below cover the common headers (GM/T-style `0x0001xxxx` codes and `CKM_VENDOR_DEFINED`
/// offsets). Codes PKCS#11 itself defines are never treated as SM2.
const SM2_CODES: &[(c_ulong, c_ulong, &str, bool)] = {
    const V: c_ulong = CKM_VENDOR_DEFINED;
    &[
        (0x0001_0001, 0x0001_0001, "CKM_SM2_CRYPT", false),
        (0x0001_0002, 0x0001_0002, "CKM_SM2_SIGN_VERIFY", true),
        (0x0001_0003, 0x0001_0003, "CKM_SM2_SM3_CRYPT", false),
        (0x0001_0004, 0x0001_0004, "CKM_SM2_SM3_SIGN_VERIFY", true),
        (0x0001_0009, 0x0001_0009, "CKM_SM2_KEY_PAIR_GEN", false),
        (V + 0x8000, V + 0x8000, "CKM_SM2", true),
        (V + 0x8001, V + 0x8001, "CKM_SM2_KEY_PAIR_GEN", false),
        (V + 0x8100, V + 0x81ff, "CKM_SM2 signature (vendor)", true),
        (V + 0x8200, V + 0x82ff, "CKM_SM2 encryption (vendor)", false),
    ]
};

/// The SM2 signing mechanisms `keys.platform_key = "hsm"` looks for, for messages and docs.
pub const PROBED_SM2_SIGN_MECHANISMS: [&str; 4] = [
    "CKM_SM2_SIGN_VERIFY (0x00010002)",
    "CKM_SM2_SM3_SIGN_VERIFY (0x00010004)",
    "CKM_SM2 (CKM_VENDOR_DEFINED+0x8000)",
    "CKM_VENDOR_DEFINED+0x8100..0x81ff",
];

fn sm2_mechanism(code: c_ulong) -> Option<(&'static str, bool)> {
    let (_, _, name, signs) = SM2_CODES
        .iter()
        .find(|(first, last, _, _)| (*first..=*last).contains(&code))?;
    // Guard against a future PKCS#11 version assigning one of these codes to something else.
    match MechanismType::try_from(code) {
        Ok(_) => None,
        Err(_) => Some((name, *signs)),
    }
}

fn sm2_mechanism_name(code: c_ulong) -> Option<&'static str> {
    sm2_mechanism(code).map(|(name, _)| name)
}

/// What a token offers for SM2, from `C_GetMechanismList` alone (no login).
#[derive(Debug, Clone)]
pub struct Sm2Probe {
    pub token: String,
    /// Recognised SM2 signing mechanisms, `name (0xcode)`.
    pub sign: Vec<String>,
}

/// Lists the configured token's mechanisms and picks out the SM2 signing ones.
pub fn probe_sm2(cfg: &Pkcs11Config) -> Result<Sm2Probe, KeyError> {
    let ctx = load_module(&cfg.module)?;
    let target = select_slot(&ctx, cfg)?;
    let mechanisms = ctx
        .get_mechanism_list(target.slot)
        .map_err(|e| hsm("listing mechanisms", e))?;
    let sign = mechanisms
        .iter()
        .filter_map(|m| match sm2_mechanism(**m) {
            Some((name, true)) => Some(format!("{name} (0x{:08x})", **m)),
            _ => None,
        })
        .collect();
    Ok(Sm2Probe {
        token: target.label,
        sign,
    })
}

/// A logged-in read-write session of its own on the configured token, for a KEK rotation's
/// object changes (the provider's session keeps serving meanwhile).
fn admin_session(cfg: &Pkcs11Config) -> Result<Session, KeyError> {
    cfg.check()?;
    let ctx = load_module(&cfg.module)?;
    let target = select_slot(&ctx, cfg)?;
    open_logged_in(&ctx, &target, cfg, true)
}

/// The secret keys whose CKA_ID is `id` (a KEK's: tenant keys have other ids).
fn keks_with_id(session: &Session, id: &[u8]) -> Result<Vec<ObjectHandle>, KeyError> {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(id.to_vec()),
        ])
        .map_err(|e| hsm("searching for a KEK by CKA_ID", e))
}

/// Labels the KEK whose CKA_ID is `id` with `label` (the switch of a KEK rotation); false
/// when the token has no such key.
pub fn relabel_kek(cfg: &Pkcs11Config, id: &[u8], label: &str) -> Result<bool, KeyError> {
    let session = admin_session(cfg)?;
    let found = keks_with_id(&session, id)?;
    for h in &found {
        session
            .update_attributes(*h, &[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(|e| hsm("relabelling a KEK", e))?;
    }
    Ok(!found.is_empty())
}

/// Destroys the KEK labelled `label` whose CKA_ID is `id`; false when there is none.
pub fn destroy_kek(cfg: &Pkcs11Config, label: &str, id: &[u8]) -> Result<bool, KeyError> {
    let session = admin_session(cfg)?;
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ])
        .map_err(|e| hsm("searching for a retired KEK", e))?;
    for h in &found {
        session
            .destroy_object(*h)
            .map_err(|e| hsm("destroying a retired KEK", e))?;
    }
    Ok(!found.is_empty())
}

/// A fresh KEK CKA_ID: a prefix, the creation time and random bytes.
pub fn new_kek_id() -> Result<Vec<u8>, KeyError> {
    let mut random = [0u8; KEK_ID_LEN - KEK_ID_PREFIX.len() - 8];
    getrandom::fill(&mut random).map_err(|e| KeyError::Hsm(format!("OS random source: {e}")))?;
    let mut id = Vec::with_capacity(KEK_ID_LEN);
    id.extend_from_slice(KEK_ID_PREFIX);
    id.extend_from_slice(&now_ms().to_be_bytes());
    id.extend_from_slice(&random);
    Ok(id)
}

fn created_ms_from_id(id: &[u8]) -> Option<i64> {
    if id.len() != KEK_ID_LEN {
        return None;
    }
    let rest = id.strip_prefix(KEK_ID_PREFIX)?;
    let ms: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    Some(i64::from_be_bytes(ms))
}

fn hsm(what: &str, e: CkError) -> KeyError {
    KeyError::Hsm(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_parsing_rejects_foreign_and_short_blobs() {
        assert!(matches!(parse_blob_of(MAGIC, b""), Err(KeyError::Unwrap)));
        assert!(matches!(
            parse_blob_of(MAGIC, &[0u8; 64]),
            Err(KeyError::Unwrap)
        ));
        let mut short = MAGIC.to_vec();
        short.extend_from_slice(&[0u8; IV_LEN + TAG_LEN - 1]);
        assert!(matches!(
            parse_blob_of(MAGIC, &short),
            Err(KeyError::Unwrap)
        ));
        let mut ok = MAGIC.to_vec();
        ok.extend_from_slice(&[7u8; IV_LEN]);
        ok.extend_from_slice(&[9u8; TAG_LEN + 5]);
        let (iv, sealed) = parse_blob_of(MAGIC, &ok).expect("well-formed blob");
        assert_eq!(iv, [7u8; IV_LEN]);
        assert_eq!(sealed.len(), TAG_LEN + 5);
    }

    #[test]
    fn kek_id_carries_creation_time() {
        let before = now_ms();
        let id = new_kek_id().expect("OS RNG");
        assert_eq!(id.len(), KEK_ID_LEN);
        let created = created_ms_from_id(&id).expect("our own id parses");
        assert!(created >= before && created <= now_ms());
        assert_eq!(created_ms_from_id(b"other-id"), None);
    }

    #[test]
    fn sm2_codes_are_recognised_and_standard_ones_are_not() {
        let v = cryptoki::mechanism::vendor_defined::CKM_VENDOR_DEFINED;
        assert_eq!(sm2_mechanism_name(v + 0x8000), Some("CKM_SM2"));
        assert_eq!(sm2_mechanism_name(0x0001_0002), Some("CKM_SM2_SIGN_VERIFY"));
        assert_eq!(sm2_mechanism_name(*MechanismType::AES_GCM), None);
        assert_eq!(sm2_mechanism_name(v + 1), None);
        assert_eq!(
            sm2_mechanism(v + 0x8150),
            Some(("CKM_SM2 signature (vendor)", true))
        );
        assert_eq!(
            sm2_mechanism(0x0001_0009),
            Some(("CKM_SM2_KEY_PAIR_GEN", false))
        );
    }

    #[test]
    fn pin_precedence_env_then_file_then_inline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pin");
        std::fs::write(&file, "from-file\n").expect("write PIN file");
        let mut section = Pkcs11Section {
            module: Some("/x.so".into()),
            pin: Some("inline".into()),
            pin_file: Some(file),
            ..Pkcs11Section::default()
        };
        let pin = |s: &Pkcs11Section, env: Option<&str>| {
            Pkcs11Config::from_section_with_pin(s, env.map(|p| Zeroizing::new(p.to_string())))
                .map(|c| c.pin.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(pin(&section, Some("from-env")), Ok("from-env".into()));
        assert_eq!(pin(&section, None), Ok("from-file".into()));
        section.pin_file = None;
        assert_eq!(pin(&section, Some("")), Ok("inline".into()));
        section.pin = None;
        assert!(pin(&section, None).is_err_and(|e| e.contains(PIN_ENV)));
        section.module = None;
        assert!(pin(&section, Some("x")).is_err_and(|e| e.contains("module")));
    }

    #[test]
    fn debug_never_prints_the_pin() {
        let cfg = Pkcs11Config {
            module: "/x.so".into(),
            token_label: None,
            slot: None,
            pin: Zeroizing::new("s3cret-pin".into()),
            kek_label: "k".into(),
        };
        assert!(!format!("{cfg:?}").contains("s3cret-pin"));
    }
}
