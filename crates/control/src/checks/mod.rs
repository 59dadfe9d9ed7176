//! Connection tests: what TestWarehouse and TestTarget run, and Create/Update run first.

mod target;
mod warehouse;

pub(crate) use target::{TargetProbe, test_target};
pub(crate) use warehouse::test_warehouse;

use mixsync_proto::v1;

/// One step of a connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub message: String,
}

impl Check {
    pub(crate) fn pass(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            ok: true,
            message: message.into(),
        }
    }

    pub(crate) fn fail(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            ok: false,
            message: message.into(),
        }
    }
}

/// Whether every check passed, and the first failure's message otherwise.
pub(crate) fn first_failure(checks: &[Check]) -> Option<&Check> {
    checks.iter().find(|c| !c.ok)
}

/// Checks on the wire.
pub(crate) fn checks_to_proto(checks: &[Check]) -> Vec<v1::Check> {
    checks
        .iter()
        .map(|c| v1::Check {
            name: c.name.to_owned(),
            ok: c.ok,
            message: c.message.clone(),
        })
        .collect()
}
