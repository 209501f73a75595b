//! Console accounts: the three separated administrator roles and vendor accounts.

use super::engine::Direction;
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
