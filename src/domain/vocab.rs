//! The platform's vocabularies: the states and kinds that the rules speak of and that records
//! are written in (seal and system states, roles, application states, quota kinds), with
//! their wire names and the Chinese labels the domain's own messages use.
//!
//! A leaf of `domain`: it imports nothing of the crate, so `store` may write these values in
//! its records without depending on the rules.

use serde::{Deserialize, Serialize};

/// States of 表3: 1 enabled (启用), 3 revoked (注销), 4 disabled (停用).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SealState {
    Enabled,
    Revoked,
    Disabled,
}

impl SealState {
    pub fn code(self) -> i64 {
        match self {
            SealState::Enabled => 1,
            SealState::Revoked => 3,
            SealState::Disabled => 4,
        }
    }

    pub fn from_code(c: i64) -> Option<Self> {
        match c {
            1 => Some(Self::Enabled),
            3 => Some(Self::Revoked),
            4 => Some(Self::Disabled),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SealState::Enabled => "启用",
            SealState::Revoked => "注销",
            SealState::Disabled => "停用",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemState {
    Testing,
    Online,
    Suspended,
}

impl SystemState {
    pub fn as_str(self) -> &'static str {
        match self {
            SystemState::Testing => "testing",
            SystemState::Online => "online",
            SystemState::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "testing" => Some(Self::Testing),
            "online" => Some(Self::Online),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaKind {
    /// Signatures routed for the system as requester.
    Signatures,
    /// Distinct signing users of the system as requester.
    Users,
}

impl QuotaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::Signatures => "signatures",
            QuotaKind::Users => "users",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "signatures" => Some(Self::Signatures),
            "users" => Some(Self::Users),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            QuotaKind::Signatures => "签署次数",
            QuotaKind::Users => "用户数",
        }
    }
}
