//! Vendor portal records: each vendor account's real-name data (实名) and its onboarding
//! application (入驻申请), both keyed by the vendor's username. One application per vendor
//! account: a rejected application is edited and resubmitted, not duplicated.

use super::engine::Direction;
use super::seals::Field;
use super::{Store, StoreError, decode, encode};
use crate::domain::vocab::ApplicationState;
use crate::keys::KeyProvider;
use serde::{Deserialize, Serialize};

/// A vendor's real-name data in clear; stored as [`StoredProfile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorProfile {
    pub username: String,
    pub org_name: String,
    /// 统一社会信用代码, check digit verified at registration.
    pub uscc: String,
    pub legal_rep: String,
    pub contact_name: String,
    pub mobile: String,
    pub email: String,
    pub created_ms: i64,
}

/// On disk the personal fields (names, mobile, e-mail) are SM4-GCM sealed under the vendor's
/// own data key (SPEC §6), so destroying that key destroys them. The organisation's name and
/// code are public registry data and stay readable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredProfile {
    username: String,
    org_name: String,
    uscc: String,
    legal_rep: Field,
    contact_name: Field,
    mobile: Field,
    email: Field,
    created_ms: i64,
}

/// The data-key owner of a vendor account (its system's appId does not exist yet).
pub fn key_owner(username: &str) -> String {
    format!("vendor:{username}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub username: String,
    pub system_name: String,
    pub plat_name: String,
    pub vendor: String,
    /// Normalised PEM SubjectPublicKeyInfo.
    pub public_key_pem: String,
    pub callback_url: Option<String>,
    /// PEM CA certificate of the callback server (for a private or self-signed CA).
    #[serde(default)]
    pub callback_ca_pem: Option<String>,
    pub dest_host: Option<String>,
    pub state: ApplicationState,
    /// Rejection reason, shown to the applicant.
    pub reason: String,
    pub app_id: Option<String>,
    pub submitted_ms: i64,
    pub decided_ms: Option<i64>,
    pub decided_by: Option<String>,
    /// A new key the vendor asked to rotate to, awaiting an operator.
    #[serde(default)]
    pub pending_key_pem: Option<String>,
    /// New callback settings the vendor asked for after approval, awaiting an operator.
    /// Absent fields are not written, so a record from before this field re-encodes to the
    /// same bytes and compare-and-swap keeps working on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_callback: Option<CallbackChange>,
    /// Why the operator refused the last callback change, shown to the vendor until it asks
    /// again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_rejection: Option<String>,
}

/// A callback change the vendor asked for: the system's whole callback settings as they are
/// to be (an absent value clears that setting), validated when asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackChange {
    pub callback_url: Option<String>,
    /// Normalised PEM CA certificate of the callback server.
    pub callback_ca_pem: Option<String>,
    pub dest_host: Option<String>,
    pub requested_ms: i64,
}

impl Store {
    pub fn put_vendor_profile(
        &self,
        provider: &dyn KeyProvider,
        p: &VendorProfile,
    ) -> Result<(), StoreError> {
        let key = self.data_key(provider, &key_owner(&p.username))?;
        let stored = StoredProfile {
            username: p.username.clone(),
            org_name: p.org_name.clone(),
            uscc: p.uscc.clone(),
            legal_rep: Field::seal(&key, &p.legal_rep),
            contact_name: Field::seal(&key, &p.contact_name),
            mobile: Field::seal(&key, &p.mobile),
            email: Field::seal(&key, &p.email),
            created_ms: p.created_ms,
        };
        self.vendor_profiles
            .insert(p.username.as_bytes(), &encode(&stored)?)?;
        Ok(())
    }

    pub fn get_vendor_profile(
        &self,
        provider: &dyn KeyProvider,
        username: &str,
    ) -> Result<Option<VendorProfile>, StoreError> {
        let Some(raw) = self.vendor_profiles.get(username.as_bytes())? else {
            return Ok(None);
        };
        let s: StoredProfile = decode(&raw)?;
        let key = || self.data_key(provider, &key_owner(username));
        Ok(Some(VendorProfile {
            legal_rep: s.legal_rep.open(key)?,
            contact_name: s.contact_name.open(key)?,
            mobile: s.mobile.open(key)?,
            email: s.email.open(key)?,
            username: s.username,
            org_name: s.org_name,
            uscc: s.uscc,
            created_ms: s.created_ms,
        }))
    }

    pub fn get_application(&self, username: &str) -> Result<Option<Application>, StoreError> {
        self.applications
            .get(username.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Replaces `old` (None: absent) with `new` atomically; `Conflict` if it changed meanwhile,
    /// so two operators deciding at once cannot both win.
    pub fn swap_application(
        &self,
        old: Option<&Application>,
        new: &Application,
    ) -> Result<(), StoreError> {
        let old = old.map(encode).transpose()?;
        self.applications
            .compare_and_swap(new.username.as_bytes(), old.as_deref(), Some(&encode(new)?))?
            .map_err(|_| StoreError::Conflict)
    }

    pub fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.applications
            .iter(Direction::Forward)
            .map(|r| decode(&r?.1))
            .collect()
    }
}
