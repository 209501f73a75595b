//! The seal registry: seal records, every filed version's `SES_Seal` DER, look-up indexes,
//! one-time signIds, which requester fetched which seal, and tenant data keys.
//!
//! Trees: `seals` (sealCode → [`SealRecord`]), `seal_ders` (SM3 of DER → DER), `seal_index`
//! (`code:`/`digest:`/`esid:`/`certsn:`/`org:` keys → sealCode), `sign_ids`, `fetched`,
//! `data_keys` (data-key owner → [`DataKeyEntry`] as JSON: the owner's data key wrapped by
//! its tenant KEK, or the tombstone of a destroyed tenant; entries of stores from before
//! tenant KEKs hold the raw blob of the platform KEK and are re-wrapped by
//! [`Store::migrate_data_keys`] at start or by the first [`Store::data_key`]).

use super::engine::{Direction, Txn};
use super::keyspace as ks;
use super::{Store, StoreError, TxAbort, decode, encode};
use crate::domain::vocab::{BizType, CertType, PossessorType, SealState};
use crate::keys::KeyProvider;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// One filed version of a seal; documents signed with any version keep verifying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealVersion {
    /// Lower-case hex SM3 of the `SES_Seal` DER (key into `seal_ders`).
    pub digest: String,
    pub es_id: String,
    pub valid_start_ms: i64,
    pub valid_end_ms: i64,
    /// Serial numbers (hex) of the signer certificates in the seal.
    pub cert_serials: Vec<String>,
    pub filed_ms: i64,
    pub biz_type: BizType,
}

/// A value that is personal data: stored SM4-GCM encrypted under the owner's data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    Plain(String),
    /// Base64 of an SM4-GCM blob.
    Sealed(String),
}

impl Field {
    /// Encrypts `s` under `key` (SM4-GCM, random IV).
    pub fn seal(key: &[u8; 16], s: &str) -> Field {
        use base64::Engine;
        Field::Sealed(
            base64::engine::general_purpose::STANDARD
                .encode(crate::crypto::sm4::seal(key, s.as_bytes())),
        )
    }

    /// The clear value; `key` is asked for only when the field is sealed.
    pub fn open(
        &self,
        key: impl FnOnce() -> Result<zeroize::Zeroizing<[u8; 16]>, StoreError>,
    ) -> Result<String, StoreError> {
        use base64::Engine;
        match self {
            Field::Plain(s) => Ok(s.clone()),
            Field::Sealed(b64) => {
                let corrupt = || StoreError::Corrupt("sealed field".into());
                let blob = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| corrupt())?;
                let key = key()?;
                let plain = crate::crypto::sm4::open(&key, &blob).map_err(|_| corrupt())?;
                Ok(String::from_utf8_lossy(&plain).into_owned())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealRecord {
    pub seal_code: String,
    /// The filing system.
    pub app_id: String,
    /// The filing system's own code for the seal (`code`).
    pub code: Option<String>,
    pub name: String,
    pub seal_type: String,
    pub ukey_id: Option<String>,
    pub cert_number: Option<String>,
    pub possessor: Field,
    pub possessor_cert_no: Field,
    /// SM3 (salted) of the possessor's code: the `orgCode` index key.
    pub org_key: String,
    pub possessor_type: PossessorType,
    pub cert_type: CertType,
    /// `[{userName, mobilePhone}]`, sealed as one JSON document.
    pub user_list: Option<Field>,
    pub state: SealState,
    /// (state, since) in order; the first entry is the filing.
    pub state_history: Vec<(SealState, i64)>,
    pub versions: Vec<SealVersion>,
    /// Filed while its system was testing: visible to testing systems only.
    pub test_data: bool,
    pub created_ms: i64,
}

impl SealRecord {
    pub fn current(&self) -> Option<&SealVersion> {
        self.versions.last()
    }

    /// The state the seal had at `t_ms`.
    pub fn state_at(&self, t_ms: i64) -> Option<SealState> {
        self.state_history
            .iter()
            .take_while(|(_, since)| *since <= t_ms)
            .last()
            .map(|(s, _)| *s)
    }
}

/// A one-time signing token (SPEC §3.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIdRecord {
    pub requester: String,
    pub seal_code: String,
    pub expires_ms: i64,
}

/// What [`Store::take_sign_id_if`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIdTake {
    /// Accepted and removed: this caller is its one consumer.
    Taken(SignIdRecord),
    /// Present but not accepted; left in place for its rightful consumer.
    Refused(SignIdRecord),
    /// Unknown, or already consumed.
    Missing,
}

/// Unwrapped data keys by owner. `epoch` counts clears: a look-up that began before a clear
/// (a destruction) does not cache what it read, so a destroyed owner's key cannot come back.
#[derive(Default)]
pub(crate) struct DataKeyCache {
    keys: std::collections::HashMap<String, Zeroizing<[u8; 16]>>,
    epoch: u64,
}

/// What `data_keys` holds for one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum DataKeyEntry {
    /// The data key wrapped by the owner's own tenant KEK (Base64); useless without the key
    /// store, so a backup of the database alone recovers nothing.
    #[serde(rename_all = "camelCase")]
    Tenant { wrapped: String },
    /// The owner was destroyed: its tenant KEK is deleted and no data key is made for it
    /// again.
    #[serde(rename_all = "camelCase")]
    Destroyed { at_ms: i64 },
}

/// An entry as read: JSON since tenant KEKs, a raw platform-KEK blob before (those blobs
/// start with a provider's magic, never with `{`).
enum StoredDataKey {
    Entry(DataKeyEntry),
    Legacy(Vec<u8>),
}

fn read_data_key(raw: Vec<u8>) -> Result<StoredDataKey, StoreError> {
    if raw.first() == Some(&b'{') {
        decode(&raw).map(StoredDataKey::Entry)
    } else {
        Ok(StoredDataKey::Legacy(raw))
    }
}

/// A seal to revoke: as read, as revoked, and the index keys to drop.
pub type Revocation = (SealRecord, SealRecord, Vec<Vec<u8>>);

type EncodedRevocation<'a> = (Vec<u8>, Vec<u8>, &'a [u8], &'a Vec<Vec<u8>>);

fn encode_revocations(seals: &[Revocation]) -> Result<Vec<EncodedRevocation<'_>>, StoreError> {
    seals
        .iter()
        .map(|(old, new, drop)| Ok((encode(old)?, encode(new)?, new.seal_code.as_bytes(), drop)))
        .collect()
}

/// Writes each revocation whose seal is still as read (`Conflict` otherwise).
fn apply_revocations(tx: &dyn Txn, seals: &[EncodedRevocation<'_>]) -> Result<(), TxAbort> {
    for (old, new, code, drop) in seals {
        if tx.get(ks::SEALS, code)?.as_deref() != Some(old.as_slice()) {
            return Err(TxAbort::Store(StoreError::Conflict));
        }
        tx.insert(ks::SEALS, code, new)?;
        for k in drop.iter() {
            tx.remove(ks::SEAL_INDEX, k)?;
        }
    }
    Ok(())
}

/// What a tenant's destruction changes in the store, written in one transaction with its
/// audit entry: each data-key owner's tombstone, the seals revoked (`(as read, revoked)`,
/// with the index keys to drop), the system as read and as it will be.
pub struct TenantShred<'a> {
    pub owners: &'a [String],
    pub seals: &'a [Revocation],
    pub system: (
        &'a super::systems::SystemRecord,
        &'a super::systems::SystemRecord,
    ),
}

/// Index keys.
pub fn key_code(app_id: &str, code: &str) -> Vec<u8> {
    format!("code:{app_id}\0{code}").into_bytes()
}
pub fn key_digest(digest_hex: &str) -> Vec<u8> {
    format!("digest:{digest_hex}").into_bytes()
}
pub fn key_es_id(es_id: &str) -> Vec<u8> {
    format!("esid:{es_id}").into_bytes()
}
pub fn key_cert_sn(sn_hex: &str) -> Vec<u8> {
    format!("certsn:{}", sn_hex.to_ascii_lowercase()).into_bytes()
}
pub fn key_org_prefix(org_key: &str) -> Vec<u8> {
    format!("org:{org_key}\0").into_bytes()
}

impl Store {
    pub fn get_seal(&self, seal_code: &str) -> Result<Option<SealRecord>, StoreError> {
        self.seals
            .get(seal_code.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn seal_der(&self, digest_hex: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.seal_ders.get(digest_hex.as_bytes())?)
    }

    /// Looks an index key up.
    pub fn seal_by_index(&self, key: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .seal_index
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Seal codes filed for an `orgCode` index key.
    pub fn seals_of_org(&self, org_key: &str) -> Result<Vec<String>, StoreError> {
        self.seal_index
            .scan_prefix(&key_org_prefix(org_key), Direction::Forward)
            .map(|r| Ok(String::from_utf8_lossy(&r?.1).into_owned()))
            .collect()
    }

    /// Next value of the installation-wide seal sequence.
    pub fn next_seal_sequence(&self) -> Result<u64, StoreError> {
        let v = self.meta.update(b"seal_seq", &mut |old| {
            let n = old
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        v.and_then(|b| b.as_slice().try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt("seal_seq".into()))
    }

    /// A per-installation salt for index keys of personal codes.
    pub fn index_salt(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(v) = self.meta.get(b"index_salt")? {
            return Ok(v);
        }
        let salt = crate::crypto::sm::random_bytes::<16>();
        // Of two first users one salt wins, and both use it.
        match self
            .meta
            .compare_and_swap(b"index_salt", None, Some(&salt[..]))?
        {
            Ok(()) => Ok(salt.to_vec()),
            Err(found) => Ok(found.unwrap_or_else(|| salt.to_vec())),
        }
    }

    /// Writes a new or changed seal with its new version DER and index entries, atomically.
    /// `expected` is the record read before the change (`None` for a new seal); a concurrent
    /// change makes this fail with `Conflict`.
    pub fn put_seal(
        &self,
        expected: Option<&SealRecord>,
        rec: &SealRecord,
        new_der: Option<&[u8]>,
        index_keys: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        self.put_seal_audited(expected, rec, new_der, index_keys, None)
    }

    /// [`Store::put_seal`] with the act's audit entry appended in the same transaction: if
    /// the entry cannot be written, the seal is not either.
    pub fn put_seal_audited(
        &self,
        expected: Option<&SealRecord>,
        rec: &SealRecord,
        new_der: Option<&[u8]>,
        index_keys: &[Vec<u8>],
        audit: Option<&crate::audit::entry::Draft>,
    ) -> Result<(), StoreError> {
        let value = encode(rec)?;
        let expected = expected.map(encode).transpose()?;
        let code = rec.seal_code.as_bytes();
        let spaces = super::audit_log::with_audit_spaces(&[
            ks::SEALS,
            ks::SEAL_DERS,
            ks::SEAL_INDEX,
            ks::DATA_KEYS,
        ]);
        self.transaction(&spaces, |tx| {
            // Checked inside the transaction: a destruction that committed after the caller
            // read the system must not be followed by a live seal of the destroyed tenant
            // (a seal written before it is caught by the destruction's sweep).
            if let Some(raw) = tx.get(ks::DATA_KEYS, rec.app_id.as_bytes())?
                && matches!(
                    read_data_key(raw).map_err(TxAbort::Store)?,
                    StoredDataKey::Entry(DataKeyEntry::Destroyed { .. })
                )
            {
                return Err(TxAbort::Store(StoreError::TenantDestroyed(
                    rec.app_id.clone(),
                )));
            }
            if let Some(d) = audit {
                self.append_audit_tx(tx, d)?;
            }
            let current = tx.get(ks::SEALS, code)?;
            if current != expected {
                return Err(TxAbort::Store(StoreError::Conflict));
            }
            tx.insert(ks::SEALS, code, &value)?;
            if let (Some(der), Some(v)) = (new_der, rec.current()) {
                tx.insert(ks::SEAL_DERS, v.digest.as_bytes(), der)?;
            }
            for k in index_keys {
                tx.insert(ks::SEAL_INDEX, k, code)?;
            }
            Ok(())
        })
    }

    /// Stores a signId.
    pub fn put_sign_id(&self, token: &str, rec: &SignIdRecord) -> Result<(), StoreError> {
        self.sign_ids.insert(token.as_bytes(), &encode(rec)?)?;
        Ok(())
    }

    /// Removes and returns a signId if `accept` holds for it, atomically: the record is
    /// deleted only if it is still the one `accept` saw (compare-and-swap), so of two
    /// concurrent consumers one gets it, and a refused use leaves it in place.
    pub fn take_sign_id_if(
        &self,
        token: &str,
        accept: impl Fn(&SignIdRecord) -> bool,
    ) -> Result<SignIdTake, StoreError> {
        loop {
            let Some(current) = self.sign_ids.get(token.as_bytes())? else {
                return Ok(SignIdTake::Missing);
            };
            let rec: SignIdRecord = decode(&current)?;
            if !accept(&rec) {
                return Ok(SignIdTake::Refused(rec));
            }
            match self
                .sign_ids
                .compare_and_swap(token.as_bytes(), Some(&current), None)?
            {
                Ok(()) => return Ok(SignIdTake::Taken(rec)),
                // Taken (or put back) meanwhile: look again.
                Err(_) => continue,
            }
        }
    }

    /// Marks that `requester` fetched `seal_code`; returns whether it had before.
    pub fn mark_fetched(&self, requester: &str, seal_code: &str) -> Result<bool, StoreError> {
        let k = format!("{requester}\0{seal_code}");
        Ok(self.fetched.insert(k.as_bytes(), &[1u8])?.is_some())
    }

    /// Removes expired signIds; returns how many.
    pub fn prune_sign_ids(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.sign_ids.iter(Direction::Forward) {
            let (k, v) = item?;
            let expired = decode::<SignIdRecord>(&v)
                .map(|r| r.expires_ms < now_ms)
                .unwrap_or(true);
            if expired {
                self.sign_ids.remove(&k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Whether `owner`'s data key was destroyed (a tombstone is in `data_keys`).
    pub fn is_tenant_destroyed(&self, owner: &str) -> Result<bool, StoreError> {
        match self.data_keys.get(owner.as_bytes())? {
            Some(raw) => Ok(matches!(
                read_data_key(raw)?,
                StoredDataKey::Entry(DataKeyEntry::Destroyed { .. })
            )),
            None => Ok(false),
        }
    }

    /// Data-key owners whose tenant KEK the key store does not hold (destroyed owners, which
    /// have a tombstone, are not counted): after a restore, a key store copied without
    /// `keys/tenants/` (or another token) leaves their personal data unreadable.
    pub fn owners_without_tenant_keys(
        &self,
        provider: &dyn crate::keys::KeyProvider,
    ) -> Result<Vec<String>, StoreError> {
        use base64::Engine;
        let mut missing = Vec::new();
        for item in self.data_keys.iter(Direction::Forward) {
            let (owner, raw) = item?;
            if let StoredDataKey::Entry(DataKeyEntry::Tenant { wrapped }) = read_data_key(raw)? {
                let blob = base64::engine::general_purpose::STANDARD
                    .decode(&wrapped)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let owner = String::from_utf8_lossy(&owner).into_owned();
                if let Err(crate::keys::KeyError::TenantKeyMissing(_)) =
                    provider.tenant_unwrap(&owner, &blob)
                {
                    missing.push(owner);
                }
            }
        }
        Ok(missing)
    }

    /// Writes a tenant's destruction (see [`TenantShred`]) with its audit entry, atomically:
    /// `Conflict` if a seal or the system changed since they were read. The caller deletes the
    /// tenant KEKs from the key store afterwards; from now on no data key is made for them.
    pub fn shred_tenant(
        &self,
        plan: &TenantShred<'_>,
        entry: &crate::audit::entry::Draft,
    ) -> Result<(), StoreError> {
        let tombstone = encode(&DataKeyEntry::Destroyed {
            at_ms: crate::time::now_ms(),
        })?;
        let seals = encode_revocations(plan.seals)?;
        let (old_sys, new_sys) = plan.system;
        let (sys_key, old_sys, new_sys) = (
            new_sys.app_id.as_bytes(),
            encode(old_sys)?,
            encode(new_sys)?,
        );
        let spaces = super::audit_log::with_audit_spaces(&[
            ks::DATA_KEYS,
            ks::SEALS,
            ks::SEAL_INDEX,
            ks::SYSTEMS,
        ]);
        let res = self.transaction(&spaces, |tx| {
            if tx.get(ks::SYSTEMS, sys_key)?.as_deref() != Some(old_sys.as_slice()) {
                return Err(TxAbort::Store(StoreError::Conflict));
            }
            tx.insert(ks::SYSTEMS, sys_key, &new_sys)?;
            apply_revocations(tx, &seals)?;
            for owner in plan.owners {
                tx.insert(ks::DATA_KEYS, owner.as_bytes(), &tombstone)?;
            }
            self.append_audit_tx(tx, entry)?;
            Ok(())
        });
        self.clear_data_key_cache();
        res
    }

    /// Revokes seals of a destroyed tenant (old record, revoked record, index keys to drop),
    /// each compared with what was read: `Conflict` if one changed meanwhile.
    pub fn revoke_seals(&self, seals: &[Revocation]) -> Result<(), StoreError> {
        let seals = encode_revocations(seals)?;
        self.transaction(&[ks::SEALS, ks::SEAL_INDEX], |tx| {
            apply_revocations(tx, &seals)
        })
    }

    /// Up to `limit` seal records that `keep` accepts, in sealCode order; unreadable records
    /// are skipped (a search must not fail on one bad record).
    pub fn seals_where(
        &self,
        limit: usize,
        keep: impl Fn(&SealRecord) -> bool,
    ) -> Result<Vec<SealRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.seals.iter(Direction::Forward) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            match decode::<SealRecord>(&v) {
                Ok(rec) if keep(&rec) => out.push(rec),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(seal = %String::from_utf8_lossy(&k), error = %e, "unreadable seal record skipped")
                }
            }
        }
        Ok(out)
    }

    /// Forgets unwrapped data keys (after a key was destroyed).
    pub fn clear_data_key_cache(&self) {
        if let Ok(mut cache) = self.data_key_cache.lock() {
            cache.keys.clear();
            cache.epoch += 1;
        }
    }

    /// The owner's SM4 data key, created on first use and stored wrapped by the owner's
    /// tenant KEK. A destroyed owner gets `TenantDestroyed`, never a fresh key; so does an
    /// owner whose tenant KEK is gone from the key store (an older store after destruction).
    /// An entry still under the platform KEK is re-wrapped under the tenant KEK on the way.
    pub fn data_key(
        &self,
        provider: &dyn KeyProvider,
        owner: &str,
    ) -> Result<Zeroizing<[u8; 16]>, StoreError> {
        let epoch = match self.data_key_cache.lock() {
            Ok(cache) => match cache.keys.get(owner) {
                Some(k) => return Ok(k.clone()),
                None => Some(cache.epoch),
            },
            Err(_) => None,
        };
        let key = loop {
            let current = self.data_keys.get(owner.as_bytes())?;
            let (key, replace) = match current.clone().map(read_data_key).transpose()? {
                None => {
                    let fresh = Zeroizing::new(crate::crypto::sm::random_bytes::<16>());
                    (fresh, true)
                }
                Some(StoredDataKey::Entry(DataKeyEntry::Destroyed { .. })) => {
                    return Err(StoreError::TenantDestroyed(owner.to_string()));
                }
                Some(StoredDataKey::Entry(DataKeyEntry::Tenant { wrapped })) => {
                    use base64::Engine;
                    let blob = base64::engine::general_purpose::STANDARD
                        .decode(wrapped)
                        .map_err(|_| StoreError::Corrupt("data key entry".into()))?;
                    let plain = provider
                        .tenant_unwrap(owner, &blob)
                        .map_err(|e| key_error(owner, e))?;
                    (data_key_bytes(&plain)?, false)
                }
                Some(StoredDataKey::Legacy(blob)) => {
                    let plain = provider.unwrap(&blob).map_err(|e| key_error(owner, e))?;
                    (data_key_bytes(&plain)?, true)
                }
            };
            if !replace {
                break key;
            }
            let entry = self.tenant_entry(provider, owner, &key)?;
            match self.data_keys.compare_and_swap(
                owner.as_bytes(),
                current.as_deref(),
                Some(&entry),
            )? {
                Ok(()) => break key,
                // Made, migrated or destroyed meanwhile: read what is there now.
                Err(_) => continue,
            }
        };
        if let Ok(mut cache) = self.data_key_cache.lock()
            && Some(cache.epoch) == epoch
        {
            cache.keys.insert(owner.to_string(), key.clone());
        }
        Ok(key)
    }

    fn tenant_entry(
        &self,
        provider: &dyn KeyProvider,
        owner: &str,
        key: &[u8; 16],
    ) -> Result<Vec<u8>, StoreError> {
        use base64::Engine;
        let wrapped = provider
            .tenant_wrap(owner, &key[..])
            .map_err(|e| key_error(owner, e))?;
        encode(&DataKeyEntry::Tenant {
            wrapped: base64::engine::general_purpose::STANDARD.encode(wrapped),
        })
    }

    /// Re-wraps every data key still under the platform KEK under its owner's tenant KEK,
    /// so that no backup made from now on holds a data key the platform KEK alone opens.
    /// Returns how many it re-wrapped; run at start, before serving.
    pub fn migrate_data_keys(&self, provider: &dyn KeyProvider) -> Result<usize, StoreError> {
        let mut legacy = Vec::new();
        for item in self.data_keys.iter(Direction::Forward) {
            let (k, v) = item?;
            if matches!(read_data_key(v)?, StoredDataKey::Legacy(_)) {
                legacy.push(String::from_utf8_lossy(&k).into_owned());
            }
        }
        for owner in &legacy {
            self.data_key(provider, owner)?;
        }
        if !legacy.is_empty() {
            self.flush_blocking()?;
        }
        Ok(legacy.len())
    }
}

fn data_key_bytes(plain: &[u8]) -> Result<Zeroizing<[u8; 16]>, StoreError> {
    let key: [u8; 16] = plain
        .try_into()
        .map_err(|_| StoreError::Corrupt("data key length".into()))?;
    Ok(Zeroizing::new(key))
}

/// A key-store failure for `owner`'s data key; a missing tenant KEK is the destruction.
fn key_error(owner: &str, e: crate::keys::KeyError) -> StoreError {
    match e {
        crate::keys::KeyError::TenantKeyMissing(_) => StoreError::TenantDestroyed(owner.into()),
        other => StoreError::Corrupt(format!("data key of {owner}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyProvider;

    fn sign_id(requester: &str) -> SignIdRecord {
        SignIdRecord {
            requester: requester.into(),
            seal_code: "S".into(),
            expires_ms: i64::MAX,
        }
    }

    #[test]
    fn a_refused_take_leaves_the_sign_id_and_an_accepted_one_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_sign_id("t", &sign_id("A")).unwrap();
        assert_eq!(
            store.take_sign_id_if("t", |r| r.requester == "B").unwrap(),
            SignIdTake::Refused(sign_id("A"))
        );
        assert_eq!(
            store.take_sign_id_if("t", |r| r.requester == "A").unwrap(),
            SignIdTake::Taken(sign_id("A"))
        );
        assert_eq!(
            store.take_sign_id_if("t", |_| true).unwrap(),
            SignIdTake::Missing
        );
    }

    #[test]
    fn concurrent_takes_of_one_sign_id_succeed_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for round in 0..20 {
            let token = format!("t{round}");
            store.put_sign_id(&token, &sign_id("A")).unwrap();
            let wins = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            matches!(
                                store.take_sign_id_if(&token, |r| r.requester == "A"),
                                Ok(SignIdTake::Taken(_))
                            )
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(false))
                    .filter(|won| *won)
                    .count()
            });
            assert_eq!(wins, 1, "round {round}");
            assert_eq!(
                store.take_sign_id_if(&token, |_| true).unwrap(),
                SignIdTake::Missing
            );
        }
    }

    fn file_provider(dir: &std::path::Path) -> crate::keys::file::FileProvider {
        crate::keys::file::FileProvider::create(&dir.join("kek.key")).unwrap()
    }

    #[test]
    fn data_keys_of_an_older_store_move_under_their_tenant_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let kp = file_provider(dir.path());
        // What stores from before tenant KEKs hold: the data key under the platform KEK.
        let key = [7u8; 16];
        let legacy = kp.wrap(&key).unwrap();
        store.data_keys.insert(b"HTOLD", &legacy).unwrap();
        store.data_keys.insert(b"HTLAZY", &legacy).unwrap();
        // Lazily on first use …
        assert_eq!(*store.data_key(&kp, "HTLAZY").unwrap(), key);
        // … and for the rest at start.
        assert_eq!(store.migrate_data_keys(&kp).unwrap(), 1);
        assert_eq!(store.migrate_data_keys(&kp).unwrap(), 0);
        store.clear_data_key_cache();
        for owner in ["HTOLD", "HTLAZY"] {
            let raw = store.data_keys.get(owner.as_bytes()).unwrap().unwrap();
            assert!(matches!(
                read_data_key(raw).unwrap(),
                StoredDataKey::Entry(DataKeyEntry::Tenant { .. })
            ));
            assert_eq!(*store.data_key(&kp, owner).unwrap(), key);
        }
        // Now the tenant KEK, not the platform KEK, is what the data key needs.
        assert!(kp.destroy_tenant_key("HTOLD").unwrap());
        store.clear_data_key_cache();
        assert!(matches!(
            store.data_key(&kp, "HTOLD"),
            Err(StoreError::TenantDestroyed(_))
        ));
        assert!(
            !store.is_tenant_destroyed("HTOLD").unwrap(),
            "no tombstone was written"
        );
    }

    #[test]
    fn a_new_owner_gets_one_data_key_under_its_tenant_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let kp = file_provider(dir.path());
        let k = store.data_key(&kp, "HTNEW").unwrap();
        store.clear_data_key_cache();
        assert_eq!(store.data_key(&kp, "HTNEW").unwrap(), k);
        let raw = store.data_keys.get(b"HTNEW").unwrap().unwrap();
        assert!(
            raw.starts_with(b"{\"kind\":\"tenant\""),
            "{}",
            String::from_utf8_lossy(&raw)
        );
    }

    #[test]
    fn seal_records_written_with_integer_codes_still_read_and_write_the_same() {
        let json = r#"{"sealCode":"340000011000000012","appId":"HT1","code":null,"name":"公章","sealType":"01","ukeyId":null,"certNumber":null,"possessor":{"plain":"某单位"},"possessorCertNo":{"plain":"91350100M000100Y43"},"orgKey":"k","possessorType":2,"certType":1,"userList":null,"state":"Enabled","stateHistory":[["Enabled",1]],"versions":[{"digest":"d","esId":"e","validStartMs":1,"validEndMs":2,"certSerials":[],"filedMs":1,"bizType":3}],"testData":false,"createdMs":1}"#;
        let rec: SealRecord = decode(json.as_bytes()).unwrap();
        assert_eq!(rec.possessor_type, PossessorType::Person);
        assert_eq!(rec.cert_type, CertType::UKey);
        assert_eq!(rec.versions[0].biz_type, BizType::Change);
        let again: serde_json::Value = serde_json::from_slice(&encode(&rec).unwrap()).unwrap();
        let before: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(again, before);
    }
}
