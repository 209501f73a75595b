//! Console accounts: the three separated administrator roles and vendor accounts.

use super::engine::Direction;
use super::seals::Field;
use super::{Store, StoreError, decode, encode};
use crate::domain::vocab::Role;
use serde::{Deserialize, Serialize};

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
    /// What the second step of a login checks (empty until enrolment).
    #[serde(default)]
    pub second_factor: SecondFactor,
}

/// An account's second factors. The TOTP secret is sealed (SM4-GCM under the platform's
/// second-factor data key); recovery codes are kept only as salted SM3 digests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondFactor {
    #[serde(default)]
    pub totp: Option<TotpFactor>,
    /// A secret shown on the enrolment page, not yet confirmed with a code.
    #[serde(default)]
    pub totp_pending: Option<Field>,
    /// `salt-hex$sm3-hex` per unused recovery code.
    #[serde(default)]
    pub recovery_codes: Vec<String>,
    /// An SM2 certificate (PEM) whose key signs the login challenge.
    #[serde(default)]
    pub cert_pem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpFactor {
    pub secret: Field,
    /// The RFC 6238 time step of the last accepted code: no code of it or before is accepted
    /// again (no replay).
    pub last_step: u64,
    pub enrolled_ms: i64,
}

impl SecondFactor {
    /// Whether a second step can be asked for at all.
    pub fn is_enrolled(&self) -> bool {
        self.totp.is_some() || self.cert_pem.is_some()
    }
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
            .compare_and_swap(rec.username.as_bytes(), None, Some(&encode(rec)?))?
            .map_err(|_| StoreError::Conflict)
    }

    pub fn put_account(&self, rec: &AccountRecord) -> Result<(), StoreError> {
        self.accounts
            .insert(rec.username.as_bytes(), &encode(rec)?)?;
        Ok(())
    }

    pub fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.accounts
            .iter(Direction::Forward)
            .map(|r| decode(&r?.1))
            .collect()
    }

    /// Whether any account exists (the first one is bootstrapped).
    pub fn has_accounts(&self) -> Result<bool, StoreError> {
        Ok(!self.accounts.is_empty()?)
    }

    pub fn account_count(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.accounts.iter(Direction::Forward) {
            item?;
            n += 1;
        }
        Ok(n)
    }
}
