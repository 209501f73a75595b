//! Vendor portal records: each vendor account's real-name data (实名) and its onboarding
//! application (入驻申请), both keyed by the vendor's username. One application per vendor
//! account: a rejected application is edited and resubmitted, not duplicated.

use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

const PROFILES: &str = "vendor_profiles";
const APPLICATIONS: &str = "applications";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationState {
    Draft,
    Submitted,
    Rejected,
    Approved,
}

impl ApplicationState {
    pub fn label(self) -> &'static str {
        match self {
            ApplicationState::Draft => "草稿",
            ApplicationState::Submitted => "待审核",
            ApplicationState::Rejected => "已驳回",
            ApplicationState::Approved => "已通过",
        }
    }
}

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
}

impl Store {
    fn profiles(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db().open_tree(PROFILES)?)
    }

    fn applications(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db().open_tree(APPLICATIONS)?)
    }

    pub fn put_vendor_profile(&self, p: &VendorProfile) -> Result<(), StoreError> {
        self.profiles()?.insert(p.username.as_bytes(), encode(p)?)?;
        Ok(())
    }

    pub fn get_vendor_profile(&self, username: &str) -> Result<Option<VendorProfile>, StoreError> {
        self.profiles()?
            .get(username.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn get_application(&self, username: &str) -> Result<Option<Application>, StoreError> {
        self.applications()?
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
        self.applications()?
            .compare_and_swap(new.username.as_bytes(), old, Some(encode(new)?))?
            .map_err(|_| StoreError::Conflict)
    }

    pub fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.applications()?
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect()
    }
}
