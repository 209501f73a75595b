//! Seal systems (members) that passed onboarding: `appId` → [`SystemRecord`].

use super::engine::Direction;
use super::{Expect, Store, StoreError, decode, encode, keyspace as ks};
use crate::audit::entry::Draft;
use crate::domain::vocab::SystemState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    pub from: Option<SystemState>,
    pub to: SystemState,
    pub reason: String,
    pub actor: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemRecord {
    pub app_id: String,
    pub name: String,
    pub plat_name: String,
    #[serde(default)]
    pub vendor: Option<String>,
    /// SM2 public keys (PEM SubjectPublicKeyInfo) that may sign requests; two during a rotation.
    pub public_keys: Vec<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    /// PEM CA certificate that the member's callback TLS certificate chains to.
    #[serde(default)]
    pub callback_ca_pem: Option<String>,
    #[serde(default)]
    pub dest_host: Option<String>,
    pub state: SystemState,
    pub created_ms: i64,
    pub history: Vec<StateChange>,
}

impl Store {
    pub fn get_system(&self, app_id: &str) -> Result<Option<SystemRecord>, StoreError> {
        self.systems
            .get(app_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Inserts a new system with the entry of the act that adds it; `Conflict` if the appId
    /// exists.
    pub fn insert_system(&self, rec: &SystemRecord, entry: &Draft) -> Result<(), StoreError> {
        let key = rec.app_id.as_bytes();
        self.write_record(ks::SYSTEMS, key, Expect::Absent, Some(&encode(rec)?), entry)?;
        Ok(())
    }

    /// Replaces `old` with `new` atomically, with the entry of the act when it has one of its
    /// own; `Conflict` if the record changed meanwhile.
    pub fn update_system(
        &self,
        old: &SystemRecord,
        new: &SystemRecord,
        entry: Option<&Draft>,
    ) -> Result<(), StoreError> {
        let (key, old, new) = (new.app_id.as_bytes(), encode(old)?, encode(new)?);
        match entry {
            Some(e) => self
                .write_record(ks::SYSTEMS, key, Expect::Exactly(&old), Some(&new), e)
                .map(drop),
            None => self
                .systems
                .compare_and_swap(key, Some(&old), Some(&new))?
                .map_err(|_| StoreError::Conflict),
        }
    }

    pub fn list_systems(&self) -> Result<Vec<SystemRecord>, StoreError> {
        self.systems
            .iter(Direction::Forward)
            .map(|r| decode(&r?.1))
            .collect()
    }
}
