//! The settings fingerprint of a run: what its sync snapshot depends on.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::StateError;
use crate::plan::RunSettings;

/// SHA-256 (lower-case hex) of the settings that decide what is sent and where: the query,
/// the object, the mapping, the options and the target. Name, schedule and warehouse do not
/// count (the snapshot describes what the target holds, whichever warehouse it came from).
/// The JSON is hashed with its object keys sorted, so equal settings always give equal
/// fingerprints.
pub(crate) fn fingerprint(settings: &RunSettings) -> Result<String, StateError> {
    let err = |e: serde_json::Error| StateError::corrupt("run settings", e);
    // How often a run is retried does not change what Mixpanel holds.
    let options = crate::plan::ActivationOptions {
        max_attempts: crate::plan::DEFAULT_MAX_ATTEMPTS,
        ..settings.options
    };
    let value = json!({
        "query": settings.query,
        "object": serde_json::to_value(settings.object).map_err(err)?,
        "mapping": serde_json::to_value(&settings.mapping).map_err(err)?,
        "options": serde_json::to_value(options).map_err(err)?,
        "target_id": settings.target_id,
    });
    let canonical = serde_json::to_vec(&sorted(value)).map_err(err)?;
    Ok(hex(&Sha256::digest(&canonical)))
}

/// `value` with every object's keys in sorted order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use mixsync_domain::{FieldMapping, ObjectKind, Source};

    use super::*;
    use crate::plan::ActivationOptions;

    fn settings() -> RunSettings {
        RunSettings {
            warehouse_id: "w".into(),
            target_id: "t".into(),
            query: "SELECT 1".into(),
            object: ObjectKind::Events,
            mapping: FieldMapping {
                event_name: Some(Source::Constant(json!({"b": 1, "a": 2}))),
                ..FieldMapping::default()
            },
            options: ActivationOptions::default(),
        }
    }

    #[test]
    fn equal_settings_give_equal_fingerprints_and_changes_show() {
        let base = fingerprint(&settings()).unwrap();
        assert_eq!(base.len(), 64);
        let mut reordered = settings();
        reordered.mapping.event_name = Some(Source::Constant(json!({"a": 2, "b": 1})));
        assert_eq!(fingerprint(&reordered).unwrap(), base);
        let mut other_warehouse = settings();
        other_warehouse.warehouse_id = "w2".into();
        assert_eq!(fingerprint(&other_warehouse).unwrap(), base);

        let mut query = settings();
        query.query = "SELECT 2".into();
        let mut options = settings();
        options.options.ip_zero = false;
        let mut mapping = settings();
        mapping.mapping.time = Some(Source::Column("ts".into()));
        let mut object = settings();
        object.object = ObjectKind::UserProfiles;
        for changed in [query, options, mapping, object] {
            assert_ne!(fingerprint(&changed).unwrap(), base);
        }
    }
}
