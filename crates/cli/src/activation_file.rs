//! `mixsync activation create --from-file activation.yaml`: the file format and its conversion to the API.
//!
//! ```yaml
//! name: orders-events
//! warehouse: analytics            # a warehouse name or id
//! target: production              # a target name or id
//! object: events                  # events | user_profiles | group_profiles
//! sync_behaviour: insert          # optional: insert for events, upsert for profiles
//! query: SELECT id, user_id, created_at, total FROM orders
//! mapping:
//!   event_name: { constant: Order Placed }
//!   time: { column: created_at }
//!   distinct_id: { column: user_id }
//!   insert_id: { derive: [id] }   # or { column: order_uuid }
//!   properties:
//!     - { column: total }                       # property name = column name
//!     - { column: id, property: order_id }
//! options: { ip_zero: true }
//! schedule: manual                # or { every_minutes: 15 } or { cron: "*/15 * * * *" }
//! ```

use std::path::Path;

use anyhow::{Context, bail};
use mixsync_proto::v1 as pb;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivationFile {
    pub(crate) name: String,
    pub(crate) warehouse: String,
    pub(crate) target: String,
    pub(crate) object: String,
    #[serde(default)]
    pub(crate) sync_behaviour: Option<String>,
    pub(crate) query: String,
    pub(crate) mapping: MappingFile,
    #[serde(default)]
    pub(crate) options: OptionsFile,
    #[serde(default)]
    pub(crate) schedule: Option<ScheduleFile>,
}

/// Where a field's value comes from: exactly one of `column`, `constant` or `derive`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceFile {
    #[serde(default)]
    pub(crate) column: Option<String>,
    #[serde(default)]
    pub(crate) constant: Option<String>,
    #[serde(default)]
    pub(crate) derive: Option<Vec<String>>,
}

impl SourceFile {
    pub(crate) fn column(name: String) -> SourceFile {
        SourceFile {
            column: Some(name),
            ..SourceFile::default()
        }
    }

    pub(crate) fn constant(value: String) -> SourceFile {
        SourceFile {
            constant: Some(value),
            ..SourceFile::default()
        }
    }

    pub(crate) fn derive(columns: Vec<String>) -> SourceFile {
        SourceFile {
            derive: Some(columns),
            ..SourceFile::default()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingFile {
    #[serde(default)]
    pub(crate) event_name: Option<SourceFile>,
    #[serde(default)]
    pub(crate) time: Option<SourceFile>,
    #[serde(default)]
    pub(crate) distinct_id: Option<SourceFile>,
    #[serde(default)]
    pub(crate) insert_id: Option<SourceFile>,
    #[serde(default)]
    pub(crate) group_key: Option<SourceFile>,
    #[serde(default)]
    pub(crate) group_id: Option<SourceFile>,
    #[serde(default)]
    pub(crate) properties: Vec<PropertyFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PropertyFile {
    pub(crate) column: String,
    #[serde(default)]
    pub(crate) property: Option<String>,
    #[serde(default)]
    pub(crate) operation: Option<String>,
    #[serde(default)]
    pub(crate) unset_when_null: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionsFile {
    #[serde(default)]
    pub(crate) ip_zero: Option<bool>,
    #[serde(default)]
    pub(crate) ignore_time: bool,
    /// Attempts a run may take when it meets a transient failure (default 3).
    #[serde(default)]
    pub(crate) max_attempts: Option<u32>,
}

/// `manual`, `{ every_minutes: N }` or `{ cron: "…" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ScheduleFile {
    Named(String),
    Every { every_minutes: u32 },
    Cron { cron: String },
}

impl ActivationFile {
    /// Reads and parses a YAML (or JSON) activation file.
    pub(crate) fn read(path: &Path) -> anyhow::Result<ActivationFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_norway::from_str(&text)
            .with_context(|| format!("{} is not a valid activation file", path.display()))
    }
}

pub(crate) fn object(name: &str) -> anyhow::Result<pb::MixpanelObject> {
    Ok(match name.to_ascii_lowercase().replace('-', "_").as_str() {
        "events" | "event" => pb::MixpanelObject::Events,
        "user_profiles" | "users" | "user_profile" => pb::MixpanelObject::UserProfiles,
        "group_profiles" | "groups" | "group_profile" => pb::MixpanelObject::GroupProfiles,
        other => bail!("object `{other}` is not one of events, user_profiles, group_profiles"),
    })
}

pub(crate) fn behaviour(name: Option<&str>) -> anyhow::Result<pb::SyncBehaviour> {
    Ok(match name.map(str::to_ascii_lowercase).as_deref() {
        None => pb::SyncBehaviour::Unspecified,
        Some("insert") => pb::SyncBehaviour::Insert,
        Some("upsert") => pb::SyncBehaviour::Upsert,
        Some(other) => bail!("sync_behaviour `{other}` is not one of insert, upsert"),
    })
}

pub(crate) fn operation(name: Option<&str>) -> anyhow::Result<pb::ProfileOperation> {
    Ok(
        match name
            .map(|n| n.trim_start_matches('$').to_ascii_lowercase())
            .as_deref()
        {
            None => pb::ProfileOperation::Unspecified,
            Some("set") => pb::ProfileOperation::Set,
            Some("set_once") => pb::ProfileOperation::SetOnce,
            Some("add") => pb::ProfileOperation::Add,
            Some("union") => pb::ProfileOperation::Union,
            Some("append") => pb::ProfileOperation::Append,
            Some("remove") => pb::ProfileOperation::Remove,
            Some("unset") => pb::ProfileOperation::Unset,
            Some(other) => bail!(
                "operation `{other}` is not one of set, set_once, add, union, append, remove, unset"
            ),
        },
    )
}

pub(crate) fn source(
    field: &str,
    source: &Option<SourceFile>,
) -> anyhow::Result<Option<pb::FieldSource>> {
    use pb::field_source::Source;
    let Some(source) = source else {
        return Ok(None);
    };
    let source = match (&source.column, &source.constant, &source.derive) {
        (Some(c), None, None) => Source::Column(c.clone()),
        (None, Some(c), None) => Source::Constant(c.clone()),
        (None, None, Some(columns)) => Source::Derive(pb::DerivedSource {
            columns: columns.clone(),
        }),
        _ => bail!("mapping.{field}: give exactly one of `column`, `constant` or `derive`"),
    };
    Ok(Some(pb::FieldSource {
        source: Some(source),
    }))
}

impl MappingFile {
    pub(crate) fn to_proto(&self) -> anyhow::Result<pb::FieldMapping> {
        let mut properties = Vec::with_capacity(self.properties.len());
        for p in &self.properties {
            properties.push(pb::PropertyMapping {
                column: p.column.clone(),
                property: p.property.clone().unwrap_or_else(|| p.column.clone()),
                operation: operation(p.operation.as_deref())
                    .with_context(|| format!("mapping.properties (column `{}`)", p.column))?
                    as i32,
                unset_when_null: p.unset_when_null,
            });
        }
        Ok(pb::FieldMapping {
            event_name: source("event_name", &self.event_name)?,
            time: source("time", &self.time)?,
            distinct_id: source("distinct_id", &self.distinct_id)?,
            insert_id: source("insert_id", &self.insert_id)?,
            group_key: source("group_key", &self.group_key)?,
            group_id: source("group_id", &self.group_id)?,
            properties,
        })
    }
}

impl ActivationFile {
    /// The API spec, with the warehouse and target already resolved to ids.
    pub(crate) fn to_spec(
        &self,
        warehouse_id: String,
        target_id: String,
    ) -> anyhow::Result<pb::ActivationSpec> {
        let schedule = match &self.schedule {
            None => None,
            Some(ScheduleFile::Named(name)) if name == "manual" => Some(pb::schedule::Kind::Manual(pb::ManualSchedule {})),
            Some(ScheduleFile::Named(other)) => {
                bail!("schedule `{other}` is not `manual`, `{{ every_minutes: N }}` or `{{ cron: \"…\" }}`")
            }
            Some(ScheduleFile::Every { every_minutes }) => Some(pb::schedule::Kind::EveryMinutes(*every_minutes)),
            Some(ScheduleFile::Cron { cron }) => Some(pb::schedule::Kind::Cron(cron.clone())),
        }
        .map(|kind| pb::Schedule { kind: Some(kind) });
        Ok(pb::ActivationSpec {
            name: self.name.clone(),
            warehouse_id,
            target_id,
            query: self.query.clone(),
            object: object(&self.object)? as i32,
            sync_behaviour: behaviour(self.sync_behaviour.as_deref())? as i32,
            mapping: Some(self.mapping.to_proto()?),
            options: Some(pb::ActivationOptions {
                ip_zero: self.options.ip_zero,
                ignore_time: self.options.ignore_time,
                max_attempts: self.options.max_attempts.unwrap_or(0),
            }),
            schedule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let doc = r#"
name: orders-events
warehouse: analytics
target: production
object: events
query: SELECT id, user_id, created_at, total FROM orders
mapping:
  event_name: { constant: Order Placed }
  time: { column: created_at }
  distinct_id: { column: user_id }
  insert_id: { derive: [id] }
  properties:
    - { column: total }
    - { column: id, property: order_id }
options: { ip_zero: true }
schedule: manual
"#;
        let file: ActivationFile = serde_norway::from_str(doc).unwrap();
        let spec = file.to_spec("w".into(), "t".into()).unwrap();
        assert_eq!(spec.object, pb::MixpanelObject::Events as i32);
        let mapping = spec.mapping.unwrap();
        assert_eq!(mapping.properties[0].property, "total");
        assert_eq!(mapping.properties[1].property, "order_id");
        assert!(matches!(
            mapping.insert_id.unwrap().source,
            Some(pb::field_source::Source::Derive(ref d)) if d.columns == ["id"]
        ));
    }

    #[test]
    fn a_source_must_be_exactly_one_kind() {
        let doc = "name: a\nwarehouse: w\ntarget: t\nobject: events\nquery: q\nmapping:\n  time: { column: a, constant: b }\n";
        let file: ActivationFile = serde_norway::from_str(doc).unwrap();
        let err = file.to_spec("w".into(), "t".into()).unwrap_err();
        assert!(err.to_string().contains("mapping.time"), "{err}");
    }

    #[test]
    fn schedules_parse() {
        for (text, ok) in [
            ("manual", true),
            ("{ every_minutes: 15 }", true),
            ("{ cron: \"*/5 * * * *\" }", true),
            ("hourly", false),
        ] {
            let doc = format!(
                "name: a\nwarehouse: w\ntarget: t\nobject: events\nquery: q\nmapping: {{}}\nschedule: {text}\n"
            );
            let file: ActivationFile = serde_norway::from_str(&doc).unwrap();
            assert_eq!(file.to_spec("w".into(), "t".into()).is_ok(), ok, "{text}");
        }
    }

    #[test]
    fn unknown_keys_and_objects_are_refused() {
        let err = serde_norway::from_str::<ActivationFile>(
            "name: a\nwarehouse: w\ntarget: t\nobject: events\nquery: q\nmapping: {}\ntypo: 1\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("typo"), "{err}");
        assert!(object("tables").unwrap_err().to_string().contains("tables"));
    }

    /// A user fixing a file needs to know where the mistake is: the message names the file, the line
    /// and the column, as `main` prints it (`{:#}`, the whole chain).
    #[test]
    fn a_bad_file_is_reported_with_its_line_and_column() {
        let path = std::env::temp_dir().join(format!(
            "mixsync-activation-{}-{:x}.yaml",
            std::process::id(),
            rand::random::<u64>()
        ));
        // Line 4, column 9: `object` given a list where a string belongs.
        std::fs::write(
            &path,
            "name: a\nwarehouse: w\ntarget: t\nobject: [events]\nquery: q\nmapping: {}\n",
        )
        .unwrap();
        let err = ActivationFile::read(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        let message = format!("{err:#}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("line 4 column 9"), "{message}");

        let err = serde_norway::from_str::<ActivationFile>("name: a\n  bad: [\n").unwrap_err();
        let location = err.location().expect("a syntax error has a location");
        assert_eq!(location.line(), 2, "{err}");
    }
}
