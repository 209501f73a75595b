//! Test fixtures of the domain's seal and signing rules: a temp store with a `file` key
//! provider, member systems, and real seals made with fresh keys ([`SealKit`]).

use super::seals::{self, Filing};
use super::systems::{self, NewSystem};
use super::vocab::SystemState;
use crate::crypto::sm::{self, Sm2KeyPair};
use crate::keys::file::FileProvider;
use crate::ses::kit::{SealKit, png_header};
use crate::store::Store;
use crate::store::systems::SystemRecord;
use base64::Engine;

pub const ORG: &str = "91350100M000100Y43";
pub const CLOUD: i64 = 2;
pub const UKEY: i64 = 1;

pub struct World {
    pub store: Store,
    pub provider: FileProvider,
    /// The home system's seal keys: its seals carry `kit.signer_cert`.
    pub kit: SealKit,
    _dir: tempfile::TempDir,
    _engine_dir: Option<tempfile::TempDir>,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let provider = FileProvider::create(&dir.path().join("kek")).unwrap();
        World {
            store,
            provider,
            kit: SealKit::generate("某某科技有限公司").unwrap(),
            _dir: dir,
            _engine_dir: None,
        }
    }

    /// A member in `state` (suspended ones pass through online), with a callback or not.
    pub fn system(&self, state: SystemState, callback: bool) -> SystemRecord {
        let first = match state {
            SystemState::Testing => SystemState::Testing,
            _ => SystemState::Online,
        };
        let rec = systems::add_system(
            &self.store,
            NewSystem {
                name: "测试印章系统".into(),
                plat_name: "测试平台".into(),
                public_key_pem: sm::sm2_public_key_to_pem(&Sm2KeyPair::generate().public_key()),
                callback_url: callback.then(|| "https://member.test".into()),
                state: Some(first),
                ..Default::default()
            },
            &crate::domain::audit_event::Actor::cli(),
        )
        .unwrap();
        self.set_state(&rec, state)
    }

    pub fn set_state(&self, rec: &SystemRecord, state: SystemState) -> SystemRecord {
        systems::set_state(
            &self.store,
            &rec.app_id,
            state,
            "测试",
            &crate::domain::audit_event::Actor::cli(),
        )
        .unwrap()
    }

    /// Files a seal of `home` made with the kit; its seal code.
    pub fn file(&self, home: &SystemRecord, cert_type: i64, es_id: &str) -> String {
        let der = self
            .kit
            .seal_v4(
                &self
                    .kit
                    .params("合同专用章", es_id, 365, png_header(10, 10)),
            )
            .unwrap();
        seals::file(
            &self.store,
            &self.provider,
            "340000",
            home,
            Filing {
                name: "合同专用章".into(),
                seal_type: "01".into(),
                possessor: "某某科技有限公司".into(),
                possessor_cert_no: ORG.into(),
                possessor_type: 1,
                biz_type: 1,
                cert_type,
                seal_data: Some(base64::engine::general_purpose::STANDARD.encode(der)),
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// A signId for `requester` and `seal_code`, valid for ten minutes.
    pub fn sign_id(&self, requester: &SystemRecord, seal_code: &str) -> String {
        seals::issue_sign_id(
            &self.store,
            &requester.app_id,
            seal_code,
            crate::time::now_ms() + 600_000,
        )
        .unwrap()
    }

    /// Whether `token` is still there for `requester` (consumes it if so).
    pub fn sign_id_alive(&self, token: &str, requester: &SystemRecord, seal_code: &str) -> bool {
        seals::consume_sign_id(&self.store, token, seal_code, Some(&requester.app_id)).is_ok()
    }
}

/// An engine whose audit leaves refuse writes while `refuse` is set (a full or failing audit
/// device, as far as the store can tell), in transactions and plain writes alike; everything
/// else is the real sled engine.
pub struct RefusingAudit {
    pub inner: std::sync::Arc<dyn crate::store::engine::Engine>,
    pub refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn no_space() -> crate::store::engine::EngineError {
    crate::store::engine::EngineError::Io("no space left on device".into())
}

/// The audit leaves keyspace of [`RefusingAudit`].
struct RefusingLeaves {
    inner: std::sync::Arc<dyn crate::store::engine::Keyspace>,
    refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RefusingLeaves {
    fn check(&self) -> Result<(), crate::store::engine::EngineError> {
        match self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            true => Err(no_space()),
            false => Ok(()),
        }
    }
}

impl crate::store::engine::Keyspace for RefusingLeaves {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, crate::store::engine::EngineError> {
        self.inner.get(key)
    }
    fn insert(
        &self,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Vec<u8>>, crate::store::engine::EngineError> {
        self.check()?;
        self.inner.insert(key, value)
    }
    fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, crate::store::engine::EngineError> {
        self.inner.remove(key)
    }
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<crate::store::engine::Swap, crate::store::engine::EngineError> {
        self.check()?;
        self.inner.compare_and_swap(key, expected, new)
    }
    fn range(
        &self,
        lo: std::ops::Bound<&[u8]>,
        hi: std::ops::Bound<&[u8]>,
        dir: crate::store::engine::Direction,
    ) -> crate::store::engine::Entries<'_> {
        self.inner.range(lo, hi, dir)
    }
}

struct RefusingTxn<'a> {
    inner: &'a dyn crate::store::engine::Txn,
    refuse: bool,
}

impl crate::store::engine::Txn for RefusingTxn<'_> {
    fn get(&self, s: &str, k: &[u8]) -> Result<Option<Vec<u8>>, crate::store::engine::TxError> {
        self.inner.get(s, k)
    }
    fn insert(
        &self,
        s: &str,
        k: &[u8],
        v: &[u8],
    ) -> Result<Option<Vec<u8>>, crate::store::engine::TxError> {
        if self.refuse && s == crate::store::keyspace::AUDIT_LEAVES {
            return Err(no_space().into());
        }
        self.inner.insert(s, k, v)
    }
    fn remove(&self, s: &str, k: &[u8]) -> Result<Option<Vec<u8>>, crate::store::engine::TxError> {
        self.inner.remove(s, k)
    }
}

impl crate::store::engine::Engine for RefusingAudit {
    fn keyspace(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<dyn crate::store::engine::Keyspace>, crate::store::engine::EngineError>
    {
        let inner = self.inner.keyspace(name)?;
        if name != crate::store::keyspace::AUDIT_LEAVES {
            return Ok(inner);
        }
        Ok(std::sync::Arc::new(RefusingLeaves {
            inner,
            refuse: self.refuse.clone(),
        }))
    }
    fn keyspace_names(&self) -> Result<Vec<String>, crate::store::engine::EngineError> {
        self.inner.keyspace_names()
    }
    fn transaction(
        &self,
        spaces: &[&str],
        body: &crate::store::engine::TxBody<'_>,
    ) -> Result<(), crate::store::engine::TxError> {
        let refuse = self.refuse.load(std::sync::atomic::Ordering::SeqCst);
        self.inner
            .transaction(spaces, &|tx| body(&RefusingTxn { inner: tx, refuse }))
    }
    fn generate_id(&self) -> Result<u64, crate::store::engine::EngineError> {
        self.inner.generate_id()
    }
    fn flush(&self) -> Result<(), crate::store::engine::EngineError> {
        self.inner.flush()
    }
    fn snapshot(
        &self,
        visit: &mut crate::store::engine::Visitor<'_>,
    ) -> Result<(), crate::store::engine::EngineError> {
        self.inner.snapshot(visit)
    }
}

impl World {
    /// A world whose store runs on [`RefusingAudit`]; the returned handle flips it.
    pub fn with_refusing_audit() -> (Self, std::sync::Arc<RefusingAudit>) {
        let mut w = World::new();
        let dir = tempfile::tempdir().unwrap();
        let engine = std::sync::Arc::new(RefusingAudit {
            inner: std::sync::Arc::new(
                crate::store::sled_engine::SledEngine::open(&dir.path().join("db")).unwrap(),
            ),
            refuse: Default::default(),
        });
        w.store = Store::with_engine(engine.clone()).unwrap();
        w._engine_dir = Some(dir);
        (w, engine)
    }

    /// The filing the kit makes for `home`, with a fresh seal.
    pub fn filing(&self, cert_type: i64, es_id: &str) -> Filing {
        let der = self
            .kit
            .seal_v4(
                &self
                    .kit
                    .params("合同专用章", es_id, 365, png_header(10, 10)),
            )
            .unwrap();
        Filing {
            name: "合同专用章".into(),
            seal_type: "01".into(),
            possessor: "某某科技有限公司".into(),
            possessor_cert_no: ORG.into(),
            possessor_type: 1,
            biz_type: 1,
            cert_type,
            seal_data: Some(base64::engine::general_purpose::STANDARD.encode(der)),
            ..Default::default()
        }
    }
}
