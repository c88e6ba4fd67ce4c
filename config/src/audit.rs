//! The `[audit]` section: how long the audit trail is kept.
//!
//! The Code de la santé publique asks for traces of every access to
//! patient data, kept at least 6 months; the CNIL recommends 6 to 12.

use serde::{Deserialize, Serialize};

/// The least retention the configuration accepts, in months.
pub const MIN_RETENTION_MONTHS: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Records older than this many months are removed (the chain's anchor
    /// moves with them, so that it still verifies).
    pub retention_months: u32,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            retention_months: 12,
        }
    }
}
