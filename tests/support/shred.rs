//! The crypto-shredding scenario of SPEC §6.2, run with each key provider (`tests/shred.rs`
//! with `file`, `tests/hsm.rs` with SoftHSM2): two tenants with personal data, an older copy
//! taken (a real backup file, or the database copied aside), tenant A destroyed, then the
//! older copy restored and opened with the same key store: A's personal fields cannot be
//! decrypted and appear nowhere in clear, B's are intact.

use base64::Engine;
use hutong::crypto::sm::{self, Sm2KeyPair};
use hutong::domain::audit_event::Actor;
use hutong::domain::seals::{self, Filing, User};
use hutong::domain::systems::{self, NewSystem};
use hutong::domain::tenants;
use hutong::domain::vocab::{ApplicationState, SealState, SystemState};
use hutong::domain::{DomainError, onboarding};
use hutong::keys::KeyProvider;
use hutong::ses::kit::{SealKit, png_header};
use hutong::store::applications::{Application, VendorProfile};
use hutong::store::systems::SystemRecord;
use hutong::store::{Store, StoreError};
use std::path::Path;

/// One tenant's personal values, each unique to it.
pub struct Personal {
    pub possessor: &'static str,
    pub id_number: &'static str,
    pub user_name: &'static str,
    pub mobile: &'static str,
    pub vendor: &'static str,
    pub legal_rep: &'static str,
    pub vendor_mobile: &'static str,
}

pub const A: Personal = Personal {
    possessor: "张三丰",
    id_number: "110101198001011232",
    user_name: "李小龙",
    mobile: "13812345678",
    vendor: "vendora",
    legal_rep: "欧阳锋",
    vendor_mobile: "13900001111",
};

pub const B: Personal = Personal {
    possessor: "王重阳",
    id_number: "440304199003074561",
    user_name: "黄药师",
    mobile: "13787654321",
    vendor: "vendorb",
    legal_rep: "洪七公",
    vendor_mobile: "13600002222",
};

impl Personal {
    fn values(&self) -> [&'static str; 6] {
        [
            self.possessor,
            self.id_number,
            self.user_name,
            self.mobile,
            self.legal_rep,
            self.vendor_mobile,
        ]
    }
}

fn open(dir: &Path) -> Store {
    // sled's threads of a dropped handle may hold the file lock a moment longer.
    for _ in 0..100 {
        if let Ok(s) = Store::open(dir) {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Store::open(dir).expect("store opens")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A tenant: a system with one personal seal (holder, ID number, user list sealed under its
/// data key) and the portal account it was approved from (real-name data sealed likewise).
fn tenant(
    store: &Store,
    provider: &dyn KeyProvider,
    kit: &SealKit,
    p: &Personal,
) -> (SystemRecord, String) {
    let sys = systems::add_system(
        store,
        NewSystem {
            name: format!("{} 的印章系统", p.vendor),
            plat_name: "测试平台".into(),
            vendor: Some(p.vendor.into()),
            public_key_pem: sm::sm2_public_key_to_pem(&Sm2KeyPair::generate().public_key()),
            state: Some(SystemState::Online),
            ..Default::default()
        },
        &Actor::cli(),
    )
    .expect("system added");
    let der = kit
        .seal_v4(&kit.params(
            "个人名章",
            &format!("es-{}", p.vendor),
            365,
            png_header(10, 10),
        ))
        .expect("seal made");
    let code = seals::file(
        store,
        provider,
        "340000",
        &sys,
        Filing {
            name: "个人名章".into(),
            seal_type: "01".into(),
            possessor: p.possessor.into(),
            possessor_cert_no: p.id_number.into(),
            possessor_type: 2,
            biz_type: 1,
            cert_type: 2,
            seal_data: Some(base64::engine::general_purpose::STANDARD.encode(der)),
            user_list: Some(vec![User {
                user_name: p.user_name.into(),
                mobile_phone: p.mobile.into(),
            }]),
            ..Default::default()
        },
    )
    .expect("personal seal filed");
    store
        .put_vendor_profile(
            provider,
            &VendorProfile {
                username: p.vendor.into(),
                org_name: "某某科技有限公司".into(),
                uscc: "91350100M000100Y43".into(),
                legal_rep: p.legal_rep.into(),
                contact_name: p.legal_rep.into(),
                mobile: p.vendor_mobile.into(),
                email: format!("{}@example.cn", p.vendor),
                created_ms: 1,
            },
        )
        .expect("vendor profile");
    store
        .swap_application(
            None,
            &Application {
                username: p.vendor.into(),
                system_name: sys.name.clone(),
                plat_name: sys.plat_name.clone(),
                vendor: p.vendor.into(),
                public_key_pem: sys.public_keys[0].clone(),
                callback_url: None,
                callback_ca_pem: None,
                dest_host: None,
                state: ApplicationState::Approved,
                reason: String::new(),
                app_id: Some(sys.app_id.clone()),
                submitted_ms: 1,
                decided_ms: Some(2),
                decided_by: Some("op".into()),
                pending_key_pem: None,
                pending_callback: None,
                callback_rejection: None,
            },
        )
        .expect("application");
    (sys, code)
}

/// The seal's holder and user list in clear, through the data key.
fn reveal(
    store: &Store,
    provider: &dyn KeyProvider,
    code: &str,
) -> Result<(String, String), DomainError> {
    let rec = store.get_seal(code)?.expect("seal record");
    let holder = seals::reveal(store, provider, &rec.app_id, &rec.possessor)?;
    let users = seals::reveal(
        store,
        provider,
        &rec.app_id,
        rec.user_list.as_ref().expect("user list"),
    )?;
    Ok((holder, users))
}

fn assert_shredded(r: Result<(String, String), DomainError>) {
    match r {
        Err(DomainError::Conflict(m)) if m.contains("租户密钥已销毁") => {}
        other => panic!("expected 租户密钥已销毁, got {other:?}"),
    }
}

fn assert_intact(store: &Store, provider: &dyn KeyProvider, code: &str, p: &Personal) {
    let (holder, users) = reveal(store, provider, code).expect("B's fields open");
    assert_eq!(holder, p.possessor);
    assert!(
        users.contains(p.user_name) && users.contains(p.mobile),
        "{users}"
    );
    let profile = store
        .get_vendor_profile(provider, p.vendor)
        .expect("B's profile opens")
        .expect("B's profile");
    assert_eq!(profile.mobile, p.vendor_mobile);
}

/// No value of `p` in clear in any key or value of any keyspace.
fn assert_no_plaintext(store: &Store, p: &Personal) {
    let mut entries = 0;
    store
        .snapshot(|space, k, v| {
            entries += 1;
            for raw in [String::from_utf8_lossy(k), String::from_utf8_lossy(v)] {
                for secret in p.values() {
                    assert!(!raw.contains(secret), "{secret} in clear in {space}: {raw}");
                }
            }
            Ok(())
        })
        .expect("snapshot");
    assert!(entries > 10, "the scan saw the store ({entries} entries)");
}

fn destroy(
    store: &Store,
    provider: &dyn KeyProvider,
    app_id: &str,
    confirm: &str,
) -> Result<tenants::Destruction, DomainError> {
    tenants::destroy(store, provider, app_id, confirm, "合同终止", &Actor::cli())
}

/// The whole scenario in `dir` (a fresh data directory whose keys `keys` are, initialised
/// with `config`): the older copy is a backup file (SPEC §6.2) taken from the open store and
/// restored after the destruction into a new data directory holding the key store as it is
/// then.
pub fn destroyed_tenant_is_unreadable_in_an_older_copy(
    dir: &Path,
    keys: &hutong::keys::Keyring,
    config: &hutong::config::Config,
) {
    let provider = keys.provider();
    let live = dir.join("live");
    let older = dir.join("older");
    let backup_file = dir.join("older.hbk");
    let kit = SealKit::generate("某某科技有限公司").expect("seal kit");
    let (a, a_seal, b_seal) = {
        let store = open(&live);
        let (a, a_seal) = tenant(&store, provider, &kit, &A);
        let (_b, b_seal) = tenant(&store, provider, &kit, &B);
        assert_eq!(
            reveal(&store, provider, &a_seal).expect("A opens").0,
            A.possessor
        );
        store.flush_blocking().expect("flush");
        (a, a_seal, b_seal)
    };
    {
        let store = open(&live);
        hutong::backup::write_atomically(&backup_file, |w| {
            hutong::backup::take(&store, keys, config, &Actor::cli(), w, &mut |_| {})
                .map(|(_, summary)| summary)
        })
        .expect("backup");
    }

    let store = open(&live);
    // A's data key is in the store's cache now; destruction must drop it.
    assert_eq!(
        reveal(&store, provider, &a_seal).expect("A opens").0,
        A.possessor
    );
    let refused = destroy(&store, provider, &a.app_id, "HT-wrong");
    assert!(
        matches!(refused, Err(DomainError::Invalid(_))),
        "{refused:?}"
    );
    let done = destroy(&store, provider, &a.app_id, &a.app_id).expect("destroyed");
    assert_eq!(done.seals_revoked, 1);
    assert_eq!(
        done.owners,
        vec![a.app_id.clone(), format!("vendor:{}", A.vendor)]
    );
    assert_eq!(done.keys_deleted, 2);
    assert!(!done.already_destroyed);
    // The live store: A refuses its data key and never gets a fresh one; seals revoked, the
    // system suspended for good; B untouched.
    assert_shredded(reveal(&store, provider, &a_seal));
    assert!(matches!(
        store.data_key(provider, &a.app_id),
        Err(StoreError::TenantDestroyed(_))
    ));
    let rec = store
        .get_seal(&a_seal)
        .expect("read")
        .expect("kept as history");
    assert_eq!(rec.state, SealState::Revoked);
    let sys = store.get_system(&a.app_id).expect("read").expect("kept");
    assert_eq!(sys.state, SystemState::Suspended);
    assert!(matches!(
        systems::set_state(
            &store,
            &a.app_id,
            SystemState::Online,
            "恢复",
            &Actor::cli()
        ),
        Err(DomainError::Conflict(_))
    ));
    assert_eq!(
        onboarding::vendor_profile(&store, provider, A.vendor).expect("listed"),
        None
    );
    assert_intact(&store, provider, &b_seal, &B);
    // Running it again only finishes the key store.
    let again = destroy(&store, provider, &a.app_id, &a.app_id).expect("second run");
    assert!(again.already_destroyed && again.keys_deleted == 0);
    assert_no_plaintext(&store, &A);
    drop(store);

    // The key store as it is now (A's tenant keys gone), then the older backup.
    copy_dir(&config.data_dir.join("keys"), &older.join("keys"));
    let mut restored = config.clone();
    restored.data_dir = older.clone();
    let summary = hutong::backup::restore(&backup_file, &restored, &mut |_| {}).expect("restore");
    // The restore names the owners whose tenant keys the key store lacks: A's, not B's.
    let mut missing = summary.tenant_keys_missing.clone();
    missing.sort();
    let mut expected = vec![a.app_id.clone(), format!("vendor:{}", A.vendor)];
    expected.sort();
    assert_eq!(missing, expected);
    // The older copy, with the same key store: A's data key is there, its tenant KEK is not.
    let old = open(&older);
    assert_eq!(
        old.get_seal(&a_seal).expect("read").expect("present").state,
        SealState::Enabled,
        "the copy predates the destruction"
    );
    assert_shredded(reveal(&old, provider, &a_seal));
    let rec = old.get_seal(&a_seal).expect("read").expect("present");
    assert_eq!(
        seals::reveal_kept(&old, provider, &a.app_id, &rec.possessor).expect("a registry view"),
        None
    );
    assert!(matches!(
        old.data_key(provider, &a.app_id),
        Err(StoreError::TenantDestroyed(_))
    ));
    assert!(matches!(
        old.get_vendor_profile(provider, A.vendor),
        Err(StoreError::TenantDestroyed(_))
    ));
    assert_no_plaintext(&old, &A);
    assert_intact(&old, provider, &b_seal, &B);
}
