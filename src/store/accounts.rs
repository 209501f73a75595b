//! Console accounts: the three separated administrator roles and vendor accounts.

use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 系统管理员: onboarding, systems, seals, quotas, document verification.
    Operator,
    /// 安全管理员: accounts, trust anchors, keys, settings, destruction.
    Security,
    /// 审计管理员: read-only audit and usage.
    Auditor,
    /// A seal system's operator in the vendor portal.
    Vendor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Security => "security",
            Role::Auditor => "auditor",
            Role::Vendor => "vendor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Self::Operator),
            "security" => Some(Self::Security),
            "auditor" => Some(Self::Auditor),
            "vendor" => Some(Self::Vendor),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRecord {
    pub username: String,
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    pub must_change_password: bool,
    pub disabled: bool,
    pub failed_logins: u32,
    pub locked_until_ms: i64,
    pub created_ms: i64,
}

impl Store {
    pub fn get_account(&self, username: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.accounts
            .get(username.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Inserts a new account; `Conflict` if the username is taken.
    pub fn insert_account(&self, rec: &AccountRecord) -> Result<(), StoreError> {
        self.accounts
            .compare_and_swap(rec.username.as_bytes(), None::<&[u8]>, Some(encode(rec)?))?
            .map_err(|_| StoreError::Conflict)
    }

    pub fn put_account(&self, rec: &AccountRecord) -> Result<(), StoreError> {
        self.accounts
            .insert(rec.username.as_bytes(), encode(rec)?)?;
        Ok(())
    }

    pub fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.accounts.iter().values().map(|v| decode(&v?)).collect()
    }
}
