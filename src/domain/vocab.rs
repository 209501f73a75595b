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
    pub const ALL: [SystemState; 3] = [
        SystemState::Testing,
        SystemState::Online,
        SystemState::Suspended,
    ];

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

/// The filing fields of 表1 that are small integer codes on the wire and in stored records.
/// Each serialises as its integer, so records written before these types existed still read.
macro_rules! wire_code {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            pub fn code(self) -> i64 {
                match self {
                    $($name::$variant => $code),+
                }
            }

            pub fn from_code(c: i64) -> Option<Self> {
                match c {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let c = i64::deserialize(d)?;
                $name::from_code(c).ok_or_else(|| {
                    serde::de::Error::custom(format!("{} 的取值 {c} 无效", stringify!($name)))
                })
            }
        }
    };
}

wire_code! {
    /// `certType`: how the seal's signer key is held.
    CertType {
        /// 1: in a UKey, signing runs through the home system's client program (SPEC §3.7).
        UKey = 1,
        /// 2: a cloud certificate, signing is routed to the home system (SPEC §3.4–3.6).
        Cloud = 2,
    }
}

wire_code! {
    /// `possessorType`: whose seal it is; a person's name and ID number are personal data.
    PossessorType {
        /// 1: an organisation, `possessorCertNo` a unified social credit code.
        Organization = 1,
        /// 2: a person, `possessorCertNo` a resident ID number.
        Person = 2,
    }
}

wire_code! {
    /// `bizType`: what a filing request does.
    BizType {
        /// 1: first filing; the platform assigns the seal code.
        Filing = 1,
        /// 2: extension with a new seal of later validity.
        Extension = 2,
        /// 3: change of the registered fields.
        Change = 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filing_codes_keep_their_integer_form_on_the_wire_and_on_disk() {
        for (v, code) in [(CertType::UKey, 1), (CertType::Cloud, 2)] {
            assert_eq!(serde_json::to_string(&v).unwrap(), code.to_string());
            assert_eq!(CertType::from_code(code), Some(v));
        }
        assert_eq!(
            serde_json::from_str::<PossessorType>("2").unwrap(),
            PossessorType::Person
        );
        assert_eq!(serde_json::to_string(&BizType::Change).unwrap(), "3");
        assert!(serde_json::from_str::<BizType>("4").is_err());
        assert!(serde_json::from_str::<CertType>("\"2\"").is_err());
        assert_eq!(PossessorType::from_code(0), None);
    }
}
