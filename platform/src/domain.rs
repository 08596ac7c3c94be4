//! Identifiers and small value types shared by every module: tenants, roles, plans, document levels
//! and model tiers. Parsing validates, so a value of these types is always well-formed.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// A tenant slug (`^[a-z0-9][a-z0-9_-]{1,62}$`). Every piece of tenant data is keyed by one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// Why a string is not a valid identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error(
        "`{0}` is not a tenant slug (lowercase letters, digits, `_` or `-`, 2 to 63 characters)"
    )]
    Tenant(String),
    #[error("`{0}` is not a role (admin, user or guest)")]
    Role(String),
    #[error("`{0}` is not a document level (public, internal, confidential or restricted)")]
    Level(String),
    #[error("`{0}` is not a plan (free, pro or enterprise)")]
    Plan(String),
    #[error("`{0}` is not a tier (SLM_A, SLM_B or LLM)")]
    Tier(String),
}

impl TenantId {
    /// Parses and validates a tenant slug.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        let ok = (2..=63).contains(&b.len())
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Tenant(s.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}
impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a caller may do. Each role also bounds the document levels it can retrieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Guest,
}

impl Role {
    /// Parses a role name; anything else is an `INVALID_ROLE`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "guest" => Ok(Role::Guest),
            _ => Err(IdError::Role(s.to_string())),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Guest => "guest",
        }
    }
    /// The highest document level this role may read (DESIGN.md: admin 3, user 1, guest 0).
    pub fn max_level(self) -> Level {
        match self {
            Role::Admin => Level::Restricted,
            Role::User => Level::Internal,
            Role::Guest => Level::Public,
        }
    }
}

/// Sensitivity of a knowledge-base document, ordered from least to most sensitive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Public = 0,
    Internal = 1,
    Confidential = 2,
    Restricted = 3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Public => "public",
            Level::Internal => "internal",
            Level::Confidential => "confidential",
            Level::Restricted => "restricted",
        }
    }
}

/// A tenant's commercial plan: it sets the rate limit and the monthly quotas.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Pro,
    Enterprise,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }
}

/// A model tier, from cheapest to most capable. Prices per tier live in [`crate::router::PRICES`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Tier {
    #[serde(rename = "SLM_A")]
    SlmA,
    #[serde(rename = "SLM_B")]
    SlmB,
    #[serde(rename = "LLM")]
    Llm,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::SlmA, Tier::SlmB, Tier::Llm];
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::SlmA => "SLM_A",
            Tier::SlmB => "SLM_B",
            Tier::Llm => "LLM",
        }
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "SLM_A" => Ok(Tier::SlmA),
            "SLM_B" => Ok(Tier::SlmB),
            "LLM" => Ok(Tier::Llm),
            _ => Err(IdError::Tier(s.to_string())),
        }
    }
    /// The next more capable tier, used when a cheaper tier's answer does not validate.
    pub fn escalate(self) -> Option<Tier> {
        match self {
            Tier::SlmA => Some(Tier::SlmB),
            Tier::SlmB => Some(Tier::Llm),
            Tier::Llm => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_slugs_are_validated() {
        assert!(TenantId::parse("acme").is_ok());
        assert!(TenantId::parse("a1_b-c").is_ok());
        assert_eq!(TenantId::parse("A"), Err(IdError::Tenant("A".into())));
        assert!(TenantId::parse("-acme").is_err());
        assert!(TenantId::parse("acme corp").is_err());
        assert!(TenantId::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn roles_bound_levels() {
        assert_eq!(Role::Admin.max_level(), Level::Restricted);
        assert_eq!(Role::User.max_level(), Level::Internal);
        assert_eq!(Role::Guest.max_level(), Level::Public);
        assert!(Role::parse("root").is_err());
    }
}
