//! The `pkcs11` key provider against a real SoftHSM2 (`apt-get install softhsm2`).
//!
//! Isolation: SoftHSM2 reads `SOFTHSM2_CONF` and scans its token directory once, in
//! `C_Initialize`, and the provider initialises a module once per process. So this binary
//! sets `SOFTHSM2_CONF` once, to a fresh token directory under `CARGO_TARGET_TMPDIR`
//! (unique per run), and creates one token per test there before the first PKCS#11 call.
//! Tests then run in parallel threads, each on its own token, and never share state.
//!
//! Without SoftHSM2 every test fails with a message saying to install it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "support/shred.rs"]
mod shred;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use hutong::keys::pkcs11::{Pkcs11Config, Pkcs11Provider};
use hutong::keys::{KeyError, KeyProvider};
use zeroize::Zeroizing;

const USER_PIN: &str = "1234";
const SO_PIN: &str = "5678";
const KEK: &str = "hutong-kek";

/// One token per test, all created before the module is initialised (see the top comment).
const TOKENS: &[&str] = &[
    "roundtrip",
    "restart",
    "wrong-pin",
    "no-kek",
    "tamper",
    "attributes",
    "threads",
    "relogin",
    "weak-kek",
    "tenant-keys",
    "shred",
    "kek-crash",
];

const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

struct SoftHsm {
    module: PathBuf,
    /// Kept alive for the whole run; `cargo clean` removes leftovers under target/tmp.
    _dir: tempfile::TempDir,
}

fn softhsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(set_up_softhsm)
}

fn set_up_softhsm() -> SoftHsm {
    const INSTALL: &str = "SoftHSM2 is required by tests/hsm.rs: install it with \
                           `apt-get update && apt-get install -y softhsm2`";
    let module = match std::env::var_os("HUTONG_TEST_PKCS11_MODULE") {
        Some(p) => PathBuf::from(p),
        None => MODULE_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(MODULE_CANDIDATES[0])),
    };
    assert!(
        module.exists(),
        "{INSTALL} (no PKCS#11 module at {}; searched {MODULE_CANDIDATES:?}, \
         HUTONG_TEST_PKCS11_MODULE overrides)",
        module.display()
    );
    match Command::new("softhsm2-util").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => panic!("{INSTALL} (softhsm2-util not found on PATH)"),
    }
    remove_stale_token_dirs(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let dir = tempfile::Builder::new()
        .prefix("softhsm-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir for SoftHSM2 tokens");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).expect("token directory");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    // SAFETY: runs once, inside OnceLock initialisation, before any test thread has called
    // into PKCS#11 or spawned helpers; the other test threads are blocked on this OnceLock
    // and no code in this binary reads the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", &conf)
    };
    for label in TOKENS {
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", USER_PIN, "--so-pin", SO_PIN])
            .output()
            .expect("run softhsm2-util");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token {label} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    SoftHsm { module, _dir: dir }
}

/// The per-run directory lives in a static and is never dropped; clear out those of runs
/// older than a day (best effort; a concurrent run's directory is never that old).
fn remove_stale_token_dirs(tmp: &Path) {
    let day = std::time::Duration::from_secs(24 * 3600);
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > day));
        if stale && entry.file_name().to_string_lossy().starts_with("softhsm-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn config(token: &str) -> Pkcs11Config {
    Pkcs11Config {
        module: softhsm().module.clone(),
        token_label: Some(token.into()),
        slot: None,
        pin: Zeroizing::new(USER_PIN.into()),
        kek_label: KEK.into(),
    }
}

fn expect_err<T>(r: Result<T, KeyError>, what: &str) -> KeyError {
    match r {
        Ok(_) => panic!("{what}: expected an error, got Ok"),
        Err(e) => e,
    }
}

/// A session of the test's own, outside the provider, to check what the token really holds.
/// The provider initialised the module already; its user login is shared by this session.
fn own_session(module: &Path, token: &str, read_write: bool) -> Session {
    let ctx = Pkcs11::new(module).expect("load module");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|i| i.label() == token))
        .expect("token present");
    let session = if read_write {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .expect("session");
    match session.login(UserType::User, Some(&AuthPin::from(USER_PIN))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    session
}

#[test]
fn create_kek_then_wrap_and_unwrap_round_trip() {
    let cfg = config("roundtrip");
    let p = Pkcs11Provider::create_kek(&cfg).expect("create KEK");
    for len in [0usize, 1, 32, 1000] {
        let secret: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let blob = p.wrap(&secret).expect("wrap");
        assert!(blob.starts_with(b"HK1"), "self-describing prefix");
        assert_eq!(blob.len(), 3 + 12 + len + 16, "magic || iv || ct || tag");
        if len >= 16 {
            assert_ne!(
                &blob[15..31],
                &secret[..16],
                "ciphertext is not the plaintext"
            );
        }
        assert_eq!(&p.unwrap(&blob).expect("unwrap")[..], &secret[..]);
    }
    let a = p.wrap(b"same").expect("wrap");
    let b = p.wrap(b"same").expect("wrap");
    assert_ne!(a, b, "each wrap draws a fresh IV");
    assert!(p.last_used_ms().is_some());

    let status = p.status();
    assert_eq!(status.provider, "pkcs11");
    assert_eq!(
        status.module.as_deref(),
        Some(cfg.module.to_str().unwrap_or(""))
    );
    assert!(
        status
            .slot
            .as_deref()
            .is_some_and(|s| s.contains("roundtrip"))
    );
    assert!(status.kek_id.starts_with(KEK), "{}", status.kek_id);
    assert!(status.created_ms.is_some_and(|ms| ms > 1_700_000_000_000));
    let d = p.details();
    assert!(d.mechanisms.iter().any(|m| m == "CKM_AES_GCM"));
    // SoftHSM2 has no SM2: the probe lists every mechanism and finds none of the SM2 codes
    // (standard-track or vendor), and says the platform key stays wrapped under the KEK.
    assert!(d.sm2_mechanisms.is_empty(), "{:?}", d.sm2_mechanisms);
    assert!(d.sm2_note.contains("no SM2 mechanism"), "{}", d.sm2_note);
    let json = serde_json::to_string(&status).expect("status serialises");
    assert!(!json.contains(USER_PIN));

    // A second `init` must not replace the KEK that existing blobs depend on.
    let again = expect_err(Pkcs11Provider::create_kek(&cfg), "second create_kek");
    assert!(
        matches!(&again, KeyError::Config(m) if m.contains("already")),
        "{again:?}"
    );
}

#[test]
fn reopened_provider_unwraps_blobs_made_before() {
    let cfg = config("restart");
    let (blobs, kek_id, slot_id) = {
        let p = Pkcs11Provider::create_kek(&cfg).expect("create KEK");
        let blobs: Vec<(Vec<u8>, Vec<u8>)> = (0..5u8)
            .map(|i| {
                let secret = vec![i; 32];
                let blob = p.wrap(&secret).expect("wrap");
                (secret, blob)
            })
            .collect();
        (blobs, p.details().kek_id.clone(), p.details().slot_id)
    }; // provider dropped: its session closes and the token logs the user out

    let p = Pkcs11Provider::open(&cfg).expect("reopen");
    assert_eq!(p.details().kek_id, kek_id, "same KEK after restart");
    for (secret, blob) in &blobs {
        assert_eq!(&p.unwrap(blob).expect("unwrap old blob")[..], &secret[..]);
    }

    // Selecting by slot id alone finds the same token; a second live instance meets
    // CKR_USER_ALREADY_LOGGED_IN and must accept it.
    let by_slot = Pkcs11Config {
        token_label: None,
        slot: Some(slot_id),
        ..cfg.clone()
    };
    let q = Pkcs11Provider::open(&by_slot).expect("open by slot while another is open");
    assert_eq!(&q.unwrap(&blobs[0].1).expect("unwrap")[..], &blobs[0].0[..]);

    let mismatch = Pkcs11Config {
        slot: Some(slot_id.wrapping_add(1)),
        ..cfg.clone()
    };
    let e = expect_err(Pkcs11Provider::open(&mismatch), "label and slot disagree");
    assert!(matches!(e, KeyError::Config(_)), "{e:?}");
}

#[test]
fn wrong_pin_is_a_login_error() {
    let good = config("wrong-pin");
    let bad = Pkcs11Config {
        pin: Zeroizing::new("0000".into()),
        ..good.clone()
    };
    let e = expect_err(
        Pkcs11Provider::create_kek(&bad),
        "create_kek with wrong PIN",
    );
    assert!(
        matches!(&e, KeyError::Login(m) if m.contains("wrong user PIN")),
        "{e:?}"
    );
    let e = expect_err(Pkcs11Provider::open(&bad), "open with wrong PIN");
    assert!(matches!(e, KeyError::Login(_)), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains("wrong-pin") && !message.contains("0000"),
        "{message}"
    );

    // The right PIN still works afterwards.
    Pkcs11Provider::create_kek(&good).expect("create KEK with the right PIN");
    Pkcs11Provider::open(&good).expect("open with the right PIN");
}

#[test]
fn missing_kek_token_or_module_is_reported() {
    let cfg = config("no-kek");
    let e = expect_err(Pkcs11Provider::open(&cfg), "open without KEK");
    assert!(
        matches!(&e, KeyError::KekMissing(label) if label == KEK),
        "{e:?}"
    );

    let other_label = Pkcs11Config {
        kek_label: "not-there".into(),
        ..cfg.clone()
    };
    let e = expect_err(Pkcs11Provider::open(&other_label), "open with wrong label");
    assert!(
        matches!(&e, KeyError::KekMissing(label) if label == "not-there"),
        "{e:?}"
    );

    let no_token = Pkcs11Config {
        token_label: Some("no-such-token".into()),
        ..cfg.clone()
    };
    let e = expect_err(Pkcs11Provider::open(&no_token), "open unknown token");
    assert!(
        matches!(&e, KeyError::Config(m) if m.contains("no-such-token")),
        "{e:?}"
    );

    let no_module = Pkcs11Config {
        module: "/nonexistent/libpkcs11.so".into(),
        ..cfg
    };
    let e = expect_err(Pkcs11Provider::open(&no_module), "open missing module");
    assert!(matches!(e, KeyError::Config(_)), "{e:?}");
}

#[test]
fn tampered_or_foreign_blobs_are_rejected() {
    let cfg = config("tamper");
    let p = Pkcs11Provider::create_kek(&cfg).expect("create KEK");
    let blob = p.wrap(b"tenant data key, 32 bytes long!!").expect("wrap");

    // Every region: magic, IV, ciphertext, tag.
    for i in [0, 2, 3, 14, 15, 30, blob.len() - 16, blob.len() - 1] {
        let mut t = blob.clone();
        t[i] ^= 0x01;
        let e = expect_err(p.unwrap(&t), &format!("flipped byte {i}"));
        assert!(matches!(e, KeyError::Unwrap), "byte {i}: {e:?}");
    }
    let mut longer = blob.clone();
    longer.push(0);
    for bad in [
        &blob[..blob.len() - 1],
        &blob[..3 + 12 + 15],
        &longer[..],
        &b""[..],
        &b"HK2 not ours"[..],
    ] {
        let e = expect_err(p.unwrap(bad), "malformed blob");
        assert!(matches!(e, KeyError::Unwrap), "{e:?}");
    }

    // A blob made under another KEK fails the tag too.
    let other = Pkcs11Provider::create_kek(&Pkcs11Config {
        kek_label: "other-kek".into(),
        ..cfg.clone()
    })
    .expect("second KEK");
    let e = expect_err(other.unwrap(&blob), "blob of another KEK");
    assert!(matches!(e, KeyError::Unwrap), "{e:?}");

    // Rejections leave the session usable.
    assert_eq!(
        &p.unwrap(&blob).expect("unwrap")[..],
        b"tenant data key, 32 bytes long!!"
    );
}

#[test]
fn kek_is_sensitive_and_not_extractable_on_the_token() {
    let cfg = config("attributes");
    let p = Pkcs11Provider::create_kek(&cfg).expect("create KEK");

    let session = own_session(&cfg.module, "attributes", false);
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(KEK.as_bytes().to_vec()),
        ])
        .expect("find KEK");
    assert_eq!(found.len(), 1);
    let attrs = session
        .get_attributes(
            found[0],
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::Id,
                AttributeType::Value,
            ],
        )
        .expect("read attributes");
    let has = |a: Attribute| attrs.contains(&a);
    assert!(has(Attribute::Token(true)), "{attrs:?}");
    assert!(has(Attribute::Private(true)), "{attrs:?}");
    assert!(has(Attribute::Sensitive(true)), "{attrs:?}");
    assert!(has(Attribute::Extractable(false)), "{attrs:?}");
    assert!(has(Attribute::AlwaysSensitive(true)), "{attrs:?}");
    assert!(has(Attribute::NeverExtractable(true)), "{attrs:?}");
    assert!(has(Attribute::KeyType(KeyType::AES)), "{attrs:?}");
    assert!(has(Attribute::ValueLen(32u64.into())), "{attrs:?}");
    assert!(has(Attribute::Encrypt(true)) && has(Attribute::Decrypt(true)));
    assert!(
        !attrs.iter().any(|a| matches!(a, Attribute::Value(_))),
        "the key value must not be readable: {attrs:?}"
    );
    let id = attrs.iter().find_map(|a| match a {
        Attribute::Id(id) => Some(hex::encode(id)),
        _ => None,
    });
    assert_eq!(id.as_deref(), Some(p.details().kek_id.as_str()));

    let policy = p.kek_policy().expect("policy");
    assert!(policy.token && policy.sensitive && !policy.extractable);
    assert_eq!(policy.never_extractable, Some(true));
}

#[test]
fn two_threads_wrap_and_unwrap_concurrently() {
    let p = Arc::new(Pkcs11Provider::create_kek(&config("threads")).expect("create KEK"));
    let workers: Vec<_> = (0..2u8)
        .map(|t| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let mut blobs = Vec::new();
                for i in 0..200u8 {
                    let secret = [t, i, 0xAA, 0x55];
                    let blob = p.wrap(&secret).expect("wrap");
                    assert_eq!(&p.unwrap(&blob).expect("unwrap")[..], &secret[..]);
                    blobs.push(blob);
                }
                blobs
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().expect("worker thread"));
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 400, "no two blobs alike");
}

#[test]
fn provider_logs_in_again_after_the_token_logged_it_out() {
    let cfg = config("relogin");
    let p = Pkcs11Provider::create_kek(&cfg).expect("create KEK");
    let blob = p.wrap(b"before").expect("wrap");

    // C_Logout on any session logs the whole application out of the token, as an HSM
    // restart or an operator would; the provider must notice and log in again.
    let session = own_session(&cfg.module, "relogin", false);
    session.logout().expect("logout");
    let visible = session
        .find_objects(&[Attribute::Label(KEK.as_bytes().to_vec())])
        .expect("find");
    assert!(visible.is_empty(), "logged out: the private KEK is hidden");
    drop(session);

    assert_eq!(
        &p.unwrap(&blob).expect("unwrap after logout")[..],
        b"before"
    );
    let again = p.wrap(b"after").expect("wrap after logout");
    assert_eq!(&p.unwrap(&again).expect("unwrap")[..], b"after");
}

#[test]
fn a_key_that_could_leave_the_hsm_is_not_accepted_as_kek() {
    let cfg = config("weak-kek");
    // Loads and initialises the module, so the test's own session below can use it.
    let e = expect_err(Pkcs11Provider::open(&cfg), "open before any KEK exists");
    assert!(matches!(e, KeyError::KekMissing(_)), "{e:?}");

    let session = own_session(&cfg.module, "weak-kek", true);
    session
        .generate_key(
            &cryptoki::mechanism::Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32u64.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(KEK.as_bytes().to_vec()),
            ],
        )
        .expect("generate an extractable AES key");

    let e = expect_err(Pkcs11Provider::open(&cfg), "open with an extractable KEK");
    assert!(
        matches!(&e, KeyError::Config(m) if m.contains("extractable")),
        "{e:?}"
    );
    drop(session);
}

/// The label a tenant KEK carries on the token: the KEK's label, `-tenant-`, hex SM3(owner).
fn tenant_label(owner: &str) -> String {
    format!("{KEK}-tenant-{}", hutong::keys::tenant_key_name(owner))
}

#[test]
fn tenant_keys_are_token_objects_bound_to_their_owner_and_destroyed() {
    let cfg = config("tenant-keys");
    let p = Pkcs11Provider::create_kek(&cfg).expect("create KEK");
    let well_formed = [b"HKT".as_slice(), &[0u8; 40]].concat();
    let missing = expect_err(
        p.tenant_unwrap("HTA", &well_formed),
        "unwrap before any key",
    );
    assert!(
        matches!(missing, KeyError::TenantKeyMissing(_)),
        "{missing:?}"
    );
    let a = p.tenant_wrap("HTA", b"data key of A....").expect("wrap A");
    let b = p.tenant_wrap("HTB", b"data key of B....").expect("wrap B");
    assert!(a.starts_with(b"HKT"));
    assert_eq!(
        &p.tenant_unwrap("HTA", &a).expect("unwrap A")[..],
        b"data key of A...."
    );

    // Each tenant key is its own non-extractable AES-256 object on the token.
    let session = own_session(&cfg.module, "tenant-keys", false);
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(tenant_label("HTA").into_bytes()),
        ])
        .expect("find tenant key");
    assert_eq!(found.len(), 1);
    let attrs = session
        .get_attributes(
            found[0],
            &[
                AttributeType::Token,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::KeyType,
                AttributeType::Id,
                AttributeType::Value,
            ],
        )
        .expect("read attributes");
    assert!(attrs.contains(&Attribute::Token(true)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
    assert!(
        attrs.contains(&Attribute::KeyType(KeyType::AES)),
        "{attrs:?}"
    );
    assert!(attrs.contains(&Attribute::Id(hutong::crypto::sm::sm3(b"HTA").to_vec())));
    assert!(!attrs.iter().any(|a| matches!(a, Attribute::Value(_))));

    // Bound to the owner: A's blob does not open as B's, nor as a KEK blob, and back.
    let cross = expect_err(p.tenant_unwrap("HTB", &a), "A's blob under B");
    assert!(matches!(cross, KeyError::Unwrap), "{cross:?}");
    assert!(matches!(p.unwrap(&a), Err(KeyError::Unwrap)));
    let kek_blob = p.wrap(b"platform").expect("wrap");
    assert!(matches!(
        p.tenant_unwrap("HTA", &kek_blob),
        Err(KeyError::Unwrap)
    ));
    let mut tampered = a.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        p.tenant_unwrap("HTA", &tampered),
        Err(KeyError::Unwrap)
    ));

    // A reopened provider finds the tenant key again.
    drop(p);
    let p = Pkcs11Provider::open(&cfg).expect("reopen");
    assert_eq!(
        &p.tenant_unwrap("HTB", &b).expect("unwrap B")[..],
        b"data key of B...."
    );

    assert!(p.destroy_tenant_key("HTA").expect("destroy"));
    assert!(!p.destroy_tenant_key("HTA").expect("destroy again"));
    let gone = expect_err(p.tenant_unwrap("HTA", &a), "unwrap after destroy");
    assert!(matches!(gone, KeyError::TenantKeyMissing(_)), "{gone:?}");
    assert!(gone.to_string().contains("租户密钥已销毁"), "{gone}");
    let left = session
        .find_objects(&[Attribute::Label(tenant_label("HTA").into_bytes())])
        .expect("find");
    assert!(left.is_empty(), "the object is gone from the token");
    assert_eq!(
        &p.tenant_unwrap("HTB", &b).expect("B intact")[..],
        b"data key of B...."
    );
}

#[test]
fn destroyed_tenant_is_unreadable_in_a_restored_older_backup_with_softhsm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = hutong::config::Config::load(None, Vec::<(String, String)>::new()).unwrap();
    cfg.data_dir = dir.path().to_path_buf();
    cfg.keys.provider = hutong::config::KeyProviderKind::Pkcs11;
    cfg.keys.pkcs11.module = Some(softhsm().module.clone());
    cfg.keys.pkcs11.token_label = Some("shred".into());
    cfg.keys.pkcs11.pin = Some(USER_PIN.into());
    cfg.keys.pkcs11.kek_label = KEK.into();
    let keyring = hutong::keys::Keyring::init(&cfg).expect("init with the token");
    shred::destroyed_tenant_is_unreadable_in_an_older_copy(dir.path(), &keyring, &cfg);
    let session = own_session(&softhsm().module, "shred", false);
    let left = session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .expect("find");
    assert_eq!(left.len(), 3, "the KEK and B's two tenant keys remain");
}

/// The secret keys on the token labelled `label`.
fn keys_labelled(session: &Session, label: &str) -> Vec<cryptoki::object::ObjectHandle> {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .expect("find")
}

fn relabel(session: &Session, from: &str, to: &str) {
    let found = keys_labelled(session, from);
    assert_eq!(found.len(), 1, "one key labelled {from}");
    session
        .update_attributes(found[0], &[Attribute::Label(to.as_bytes().to_vec())])
        .expect("relabel");
}

/// A KEK rotation killed on the token: before its commit point (a new KEK made, the journal
/// saying `staged`) the next start removes the new KEK; right after it (journal `switch`,
/// nothing relabelled or renamed yet) the next start completes the switch. Both times the
/// store opens and the platform key is the same.
#[test]
fn a_kek_rotation_killed_on_the_token_is_recovered_at_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = hutong::config::Config::load(None, Vec::<(String, String)>::new()).unwrap();
    cfg.data_dir = dir.path().to_path_buf();
    cfg.keys.provider = hutong::config::KeyProviderKind::Pkcs11;
    cfg.keys.pkcs11.module = Some(softhsm().module.clone());
    cfg.keys.pkcs11.token_label = Some("kek-crash".into());
    cfg.keys.pkcs11.pin = Some(USER_PIN.into());
    cfg.keys.pkcs11.kek_label = KEK.into();
    let keys_dir = dir.path().join("keys");
    let journal = keys_dir.join("kek-rotation.json");
    let keyring = hutong::keys::Keyring::init(&cfg).expect("init with the token");
    let public = keyring.platform_public_key();
    let old_id = keyring.provider().kek_fingerprint();
    let session = own_session(&softhsm().module, "kek-crash", true);

    // Killed before the commit point: the new KEK exists under its staging label.
    let next = format!("{KEK}-next");
    let new_id = hutong::keys::pkcs11::new_kek_id().unwrap();
    session
        .generate_key(
            &cryptoki::mechanism::Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32u64.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(next.as_bytes().to_vec()),
                Attribute::Id(new_id.clone()),
            ],
        )
        .expect("the staged KEK");
    std::fs::write(
        &journal,
        serde_json::json!({"phase": "staged", "provider": "pkcs11", "oldId": old_id,
            "newId": hex::encode(&new_id), "startedMs": 1})
        .to_string(),
    )
    .unwrap();
    drop(keyring);
    let reopened = hutong::keys::Keyring::load(&cfg).expect("opens after the crash");
    assert_eq!(reopened.platform_public_key(), public);
    assert_eq!(reopened.provider().kek_fingerprint(), old_id);
    assert!(
        keys_labelled(&session, &next).is_empty(),
        "the staged KEK is gone"
    );
    assert!(!journal.exists());

    // Killed right after the commit point: rotate, then put the token and the files back as
    // they were at that point (labels unchanged, the re-wrapped key not yet in place).
    let wrapped = keys_dir.join("platform.key.wrapped");
    let old_wrapped = std::fs::read(&wrapped).unwrap();
    let r = reopened.rotate_kek(&cfg).expect("rotate");
    let retired = r.retired_name.clone();
    std::fs::rename(&wrapped, keys_dir.join("platform.key.wrapped.rewrap")).unwrap();
    std::fs::write(&wrapped, &old_wrapped).unwrap();
    relabel(&session, KEK, &next);
    relabel(&session, &retired, KEK);
    std::fs::remove_file(keys_dir.join("kek-retired.json")).unwrap();
    std::fs::write(
        &journal,
        serde_json::json!({"phase": "switch", "provider": "pkcs11", "oldId": r.previous_id,
            "newId": r.current_id, "startedMs": r.rotated_ms})
        .to_string(),
    )
    .unwrap();
    drop(reopened);
    let recovered = hutong::keys::Keyring::load(&cfg).expect("opens after the crash");
    assert_eq!(recovered.platform_public_key(), public);
    assert_eq!(recovered.provider().kek_fingerprint(), r.current_id);
    assert_eq!(
        keys_labelled(&session, &retired).len(),
        1,
        "the old KEK, retired"
    );
    assert!(keys_labelled(&session, &next).is_empty());
    assert_eq!(recovered.retired_keks()[0].name, retired);
    assert!(!journal.exists());
    assert_ne!(
        std::fs::read(&wrapped).unwrap(),
        old_wrapped,
        "re-wrapped key in place"
    );
}
