//! Activations on the wire: spec, mapping, options and schedule.

use mixsync_domain::{
    FieldMapping, ObjectKind, ProfileOperation, PropertyMapping, Source, SyncBehaviour,
};
use mixsync_proto::v1::{self, field_source, schedule};
use mixsync_state::{Activation, ActivationOptions, ActivationSpec, Schedule};

use super::{required, timestamp};
use crate::errors::{ApiError, ApiResult};

/// An activation spec from the wire, checked for shape (required fields, enums, schedule). The
/// mapping is checked against the object and the query's columns by `validate`.
pub(crate) fn activation_spec(
    spec: &v1::ActivationSpec,
    prefix: &str,
) -> ApiResult<ActivationSpec> {
    let field = |name: &str| format!("{prefix}.{name}");
    let object = object_kind(spec.object()).ok_or_else(|| {
        ApiError::invalid(
            field("object"),
            "is required: EVENTS, USER_PROFILES or GROUP_PROFILES",
        )
    })?;
    let sync_behaviour = match spec.sync_behaviour() {
        v1::SyncBehaviour::Unspecified => object.default_behaviour(),
        v1::SyncBehaviour::Insert => SyncBehaviour::Insert,
        v1::SyncBehaviour::Upsert => SyncBehaviour::Upsert,
    };
    if !object.allowed_behaviours().contains(&sync_behaviour) {
        let allowed: Vec<String> = object
            .allowed_behaviours()
            .iter()
            .map(|b| b.as_str().to_uppercase())
            .collect();
        return Err(ApiError::invalid(
            field("sync_behaviour"),
            format!(
                "{} does not fit {}; {} support {} only",
                sync_behaviour.as_str().to_uppercase(),
                object.as_str(),
                object.as_str(),
                allowed.join(", ")
            ),
        ));
    }
    let max_attempts = match spec.options.as_ref().map_or(0, |o| o.max_attempts) {
        0 => mixsync_state::DEFAULT_MAX_ATTEMPTS,
        n if n <= mixsync_state::MAX_MAX_ATTEMPTS => n,
        n => {
            return Err(ApiError::invalid(
                field("options.max_attempts"),
                format!(
                    "{n} is more than {}; a run that fails that often needs a person, not another attempt",
                    mixsync_state::MAX_MAX_ATTEMPTS
                ),
            ));
        }
    };
    Ok(ActivationSpec {
        name: required(&field("name"), &spec.name)?,
        warehouse_id: required(&field("warehouse_id"), &spec.warehouse_id)?,
        target_id: required(&field("target_id"), &spec.target_id)?,
        query: required(&field("query"), &spec.query)?,
        object,
        sync_behaviour,
        mapping: mapping(spec.mapping.as_ref())?,
        options: spec
            .options
            .as_ref()
            .map_or_else(ActivationOptions::default, |o| ActivationOptions {
                ip_zero: o.ip_zero.unwrap_or(true),
                ignore_time: o.ignore_time,
                max_attempts,
            }),
        schedule: schedule(spec.schedule.as_ref(), &field("schedule"))?,
    })
}

fn object_kind(object: v1::MixpanelObject) -> Option<ObjectKind> {
    match object {
        v1::MixpanelObject::Unspecified => None,
        v1::MixpanelObject::Events => Some(ObjectKind::Events),
        v1::MixpanelObject::UserProfiles => Some(ObjectKind::UserProfiles),
        v1::MixpanelObject::GroupProfiles => Some(ObjectKind::GroupProfiles),
    }
}

fn mapping(mapping: Option<&v1::FieldMapping>) -> ApiResult<FieldMapping> {
    let Some(m) = mapping else {
        return Ok(FieldMapping::default());
    };
    let source = |name: &str, s: &Option<v1::FieldSource>| -> ApiResult<Option<Source>> {
        let Some(s) = s else { return Ok(None) };
        match &s.source {
            None => Err(ApiError::invalid(
                format!("mapping.{name}"),
                "set exactly one of `column`, `constant` or `derive`",
            )),
            Some(field_source::Source::Column(c)) => Ok(Some(Source::Column(c.trim().to_owned()))),
            Some(field_source::Source::Constant(c)) => {
                Ok(Some(Source::Constant(serde_json::Value::String(c.clone()))))
            }
            Some(field_source::Source::Derive(d)) => Ok(Some(Source::Derive {
                columns: d.columns.iter().map(|c| c.trim().to_owned()).collect(),
            })),
        }
    };
    Ok(FieldMapping {
        event_name: source("event_name", &m.event_name)?,
        time: source("time", &m.time)?,
        distinct_id: source("distinct_id", &m.distinct_id)?,
        insert_id: source("insert_id", &m.insert_id)?,
        group_key: source("group_key", &m.group_key)?,
        group_id: source("group_id", &m.group_id)?,
        properties: m
            .properties
            .iter()
            .map(|p| PropertyMapping {
                column: p.column.trim().to_owned(),
                property: if p.property.is_empty() {
                    p.column.trim().to_owned()
                } else {
                    p.property.clone()
                },
                operation: operation(p.operation()),
                unset_when_null: p.unset_when_null,
            })
            .collect(),
    })
}

fn operation(op: v1::ProfileOperation) -> ProfileOperation {
    match op {
        v1::ProfileOperation::Unspecified | v1::ProfileOperation::Set => ProfileOperation::Set,
        v1::ProfileOperation::SetOnce => ProfileOperation::SetOnce,
        v1::ProfileOperation::Add => ProfileOperation::Add,
        v1::ProfileOperation::Union => ProfileOperation::Union,
        v1::ProfileOperation::Append => ProfileOperation::Append,
        v1::ProfileOperation::Remove => ProfileOperation::Remove,
        v1::ProfileOperation::Unset => ProfileOperation::Unset,
    }
}

fn schedule(s: Option<&v1::Schedule>, field: &str) -> ApiResult<Schedule> {
    match s.and_then(|s| s.kind.as_ref()) {
        None | Some(schedule::Kind::Manual(_)) => Ok(Schedule::Manual),
        Some(schedule::Kind::EveryMinutes(0)) => Err(ApiError::invalid(
            format!("{field}.every_minutes"),
            "must be at least 1",
        )),
        Some(schedule::Kind::EveryMinutes(n)) => Ok(Schedule::EveryMinutes(*n)),
        Some(schedule::Kind::Cron(expr)) => {
            let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
            let schedule = Schedule::Cron(expr);
            schedule
                .validate()
                .map_err(|why| ApiError::invalid(format!("{field}.cron"), why))?;
            Ok(schedule)
        }
    }
}

/// A stored activation on the wire.
pub(crate) fn activation_to_proto(a: &Activation) -> v1::Activation {
    let s = &a.spec;
    let object = match s.object {
        ObjectKind::Events => v1::MixpanelObject::Events,
        ObjectKind::UserProfiles => v1::MixpanelObject::UserProfiles,
        ObjectKind::GroupProfiles => v1::MixpanelObject::GroupProfiles,
    };
    let behaviour = match s.sync_behaviour {
        SyncBehaviour::Insert => v1::SyncBehaviour::Insert,
        SyncBehaviour::Upsert => v1::SyncBehaviour::Upsert,
    };
    v1::Activation {
        id: a.id.clone(),
        name: s.name.clone(),
        warehouse_id: s.warehouse_id.clone(),
        target_id: s.target_id.clone(),
        query: s.query.clone(),
        object: object.into(),
        sync_behaviour: behaviour.into(),
        mapping: Some(mapping_to_proto(&s.mapping)),
        options: Some(v1::ActivationOptions {
            ip_zero: Some(s.options.ip_zero),
            ignore_time: s.options.ignore_time,
            max_attempts: s.options.max_attempts,
        }),
        schedule: Some(v1::Schedule {
            kind: Some(match &s.schedule {
                Schedule::Manual => schedule::Kind::Manual(v1::ManualSchedule {}),
                Schedule::EveryMinutes(n) => schedule::Kind::EveryMinutes(*n),
                Schedule::Cron(expr) => schedule::Kind::Cron(expr.clone()),
            }),
        }),
        paused: a.paused,
        created_at: Some(timestamp(a.created_at)),
        updated_at: Some(timestamp(a.updated_at)),
    }
}

fn mapping_to_proto(m: &FieldMapping) -> v1::FieldMapping {
    let source = |s: &Option<Source>| {
        s.as_ref().map(|s| v1::FieldSource {
            source: Some(match s {
                Source::Column(c) => field_source::Source::Column(c.clone()),
                Source::Constant(serde_json::Value::String(c)) => {
                    field_source::Source::Constant(c.clone())
                }
                Source::Constant(other) => field_source::Source::Constant(other.to_string()),
                Source::Derive { columns } => field_source::Source::Derive(v1::DerivedSource {
                    columns: columns.clone(),
                }),
            }),
        })
    };
    v1::FieldMapping {
        event_name: source(&m.event_name),
        time: source(&m.time),
        distinct_id: source(&m.distinct_id),
        insert_id: source(&m.insert_id),
        group_key: source(&m.group_key),
        group_id: source(&m.group_id),
        properties: m
            .properties
            .iter()
            .map(|p| v1::PropertyMapping {
                column: p.column.clone(),
                property: p.property.clone(),
                operation: operation_to_proto(p.operation).into(),
                unset_when_null: p.unset_when_null,
            })
            .collect(),
    }
}

fn operation_to_proto(op: ProfileOperation) -> v1::ProfileOperation {
    match op {
        ProfileOperation::Set => v1::ProfileOperation::Set,
        ProfileOperation::SetOnce => v1::ProfileOperation::SetOnce,
        ProfileOperation::Add => v1::ProfileOperation::Add,
        ProfileOperation::Union => v1::ProfileOperation::Union,
        ProfileOperation::Append => v1::ProfileOperation::Append,
        ProfileOperation::Remove => v1::ProfileOperation::Remove,
        ProfileOperation::Unset => v1::ProfileOperation::Unset,
        ProfileOperation::Delete => v1::ProfileOperation::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(c: &str) -> Option<v1::FieldSource> {
        Some(v1::FieldSource {
            source: Some(field_source::Source::Column(c.into())),
        })
    }

    fn spec() -> v1::ActivationSpec {
        v1::ActivationSpec {
            name: "a".into(),
            warehouse_id: "w".into(),
            target_id: "t".into(),
            query: "SELECT 1".into(),
            object: v1::MixpanelObject::Events.into(),
            mapping: Some(v1::FieldMapping {
                event_name: Some(v1::FieldSource {
                    source: Some(field_source::Source::Constant("Signed Up".into())),
                }),
                time: column("ts"),
                distinct_id: column("user_id"),
                insert_id: Some(v1::FieldSource {
                    source: Some(field_source::Source::Derive(v1::DerivedSource {
                        columns: vec!["id".into()],
                    })),
                }),
                properties: vec![v1::PropertyMapping {
                    column: "plan".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_through_the_domain() {
        let domain = activation_spec(&spec(), "activation").unwrap();
        assert_eq!(domain.sync_behaviour, SyncBehaviour::Insert);
        assert_eq!(domain.mapping.properties[0].property, "plan");
        assert!(domain.options.ip_zero);
        let proto = mapping_to_proto(&domain.mapping);
        assert_eq!(mapping(Some(&proto)).unwrap(), domain.mapping);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let mut s = spec();
        s.sync_behaviour = v1::SyncBehaviour::Upsert.into();
        let err = activation_spec(&s, "activation").unwrap_err();
        assert_eq!(
            err.to_string(),
            "activation.sync_behaviour: UPSERT does not fit events; events support INSERT only"
        );
        let mut s = spec();
        s.object = 0;
        assert!(
            activation_spec(&s, "activation")
                .unwrap_err()
                .to_string()
                .starts_with("activation.object:")
        );
        let mut s = spec();
        s.schedule = Some(v1::Schedule {
            kind: Some(schedule::Kind::Cron("* *".into())),
        });
        assert!(
            activation_spec(&s, "activation")
                .unwrap_err()
                .to_string()
                .starts_with("activation.schedule.cron:")
        );
        let mut s = spec();
        if let Some(m) = s.mapping.as_mut() {
            m.time = Some(v1::FieldSource { source: None });
        }
        assert!(
            activation_spec(&s, "activation")
                .unwrap_err()
                .to_string()
                .starts_with("mapping.time:")
        );
    }
}
