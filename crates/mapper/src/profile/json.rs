//! Writing a profile row's update objects straight from the row's values, without a JSON tree.

use mixsync_domain::{ProfileOperation, Value};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::event::json::PropertyValue;

/// Whose profile an update changes, as written in the update object.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Who<'a> {
    /// `"$distinct_id": …`.
    User(&'a str),
    /// `"$group_key": …, "$group_id": …`.
    Group { key: &'a str, id: &'a str },
}

/// An operation's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body<'a> {
    /// An object of property values (`$set`, `$set_once`, `$add`, `$union`, `$append`,
    /// `$remove`), in mapping order.
    Properties(&'a [(&'a str, &'a Value)]),
    /// A list of property names (`$unset`), in mapping order.
    Names(&'a [&'a str]),
}

/// One update object without `$token` (the loader inserts it right after the opening `{`):
/// `{"$distinct_id": …` (or `"$group_key": …, "$group_id": …`), the operation key with its
/// value, then `"$ip": "0"` and `"$ignore_time": true` when set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpdateJson<'a> {
    pub who: Who<'a>,
    pub operation: ProfileOperation,
    pub body: Body<'a>,
    pub ip_zero: bool,
    pub ignore_time: bool,
}

impl Serialize for UpdateJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ids = match self.who {
            Who::User(_) => 1,
            Who::Group { .. } => 2,
        };
        let len = ids + 1 + usize::from(self.ip_zero) + usize::from(self.ignore_time);
        let mut map = s.serialize_map(Some(len))?;
        match self.who {
            Who::User(id) => map.serialize_entry("$distinct_id", id)?,
            Who::Group { key, id } => {
                map.serialize_entry("$group_key", key)?;
                map.serialize_entry("$group_id", id)?;
            }
        }
        map.serialize_entry(self.operation.key(), &self.body)?;
        if self.ip_zero {
            map.serialize_entry("$ip", "0")?;
        }
        if self.ignore_time {
            map.serialize_entry("$ignore_time", &true)?;
        }
        map.end()
    }
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Properties(properties) => {
                let mut map = s.serialize_map(Some(properties.len()))?;
                for (name, value) in *properties {
                    map.serialize_entry(name, &PropertyValue(value))?;
                }
                map.end()
            }
            Self::Names(names) => {
                let mut seq = s.serialize_seq(Some(names.len()))?;
                for name in *names {
                    seq.serialize_element(name)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_carry_distinct_id_ip_and_ignore_time() {
        let email = Value::from("a@example.com");
        let visits = Value::Int(3);
        let props = [("$email", &email), ("visits", &visits)];
        let update = UpdateJson {
            who: Who::User("u1"),
            operation: ProfileOperation::Set,
            body: Body::Properties(&props),
            ip_zero: true,
            ignore_time: true,
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"$distinct_id":"u1","$set":{"$email":"a@example.com","visits":3},"$ip":"0","$ignore_time":true}"#
        );
    }

    #[test]
    fn groups_carry_key_and_id_and_unset_takes_names() {
        let update = UpdateJson {
            who: Who::Group {
                key: "company_id",
                id: "acme",
            },
            operation: ProfileOperation::Unset,
            body: Body::Names(&["plan", "seats"]),
            ip_zero: false,
            ignore_time: false,
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"$group_key":"company_id","$group_id":"acme","$unset":["plan","seats"]}"#
        );
    }
}
