//! Why a row could not become a Mixpanel record.

use std::fmt;

/// One reason a row cannot be sent: which Mixpanel field, from which column, which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    /// The Mixpanel field at fault: `event`, `time`, `distinct_id`, `$insert_id`,
    /// `properties.<name>`, or `properties` for the event as a whole.
    pub field: String,
    /// The column(s) the field was read from (comma-separated for a derived `$insert_id`);
    /// empty for a constant or the event as a whole.
    pub column: String,
    /// A stable identifier of the broken rule (`required`, `max_bytes`, `min_time`, …).
    pub rule: &'static str,
    /// What is wrong, naming the row and the column, e.g. ``row 1234, column `signup_ts`:
    /// `time` is invalid: …``.
    pub message: String,
}

/// Where a field's value came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// One column.
    Column(String),
    /// Several columns (a derived `$insert_id`).
    Columns(Vec<String>),
    /// A constant in the mapping.
    Constant,
    /// The mapping or the record as a whole.
    Record,
}

impl Origin {
    fn column(&self) -> String {
        match self {
            Self::Column(c) => c.clone(),
            Self::Columns(cs) => cs.join(","),
            Self::Constant | Self::Record => String::new(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Column(c) => write!(f, "column `{c}`"),
            Self::Columns(cs) => {
                f.write_str("columns ")?;
                for (i, c) in cs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{c}`")?;
                }
                Ok(())
            }
            Self::Constant => f.write_str("constant"),
            Self::Record => f.write_str("mapping"),
        }
    }
}

/// A failure before the row number is known: the same for every row (a mapping problem) or
/// found while reading one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub field: String,
    pub origin: Origin,
    pub rule: &'static str,
    pub detail: String,
}

impl Problem {
    pub(crate) fn new(
        field: impl Into<String>,
        origin: Origin,
        rule: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            origin,
            rule,
            detail: detail.into(),
        }
    }

    /// The failure of row `row_number`.
    pub(crate) fn at_row(&self, row_number: u64) -> RowFailure {
        let message = match self.origin {
            Origin::Record => format!("row {row_number}: {}", self.detail),
            _ => format!("row {row_number}, {}: {}", self.origin, self.detail),
        };
        RowFailure {
            field: self.field.clone(),
            column: self.origin.column(),
            rule: self.rule,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_row_and_origin() {
        let p = Problem::new(
            "time",
            Origin::Column("signup_ts".into()),
            "epoch_number",
            "`time` is invalid: 1e20 is out of range",
        );
        assert_eq!(
            p.at_row(1234),
            RowFailure {
                field: "time".into(),
                column: "signup_ts".into(),
                rule: "epoch_number",
                message: "row 1234, column `signup_ts`: `time` is invalid: 1e20 is out of range"
                    .into(),
            }
        );
        let p = Problem::new(
            "$insert_id",
            Origin::Columns(vec!["a".into(), "b".into()]),
            "unknown_column",
            "x",
        );
        assert_eq!(p.at_row(1).message, "row 1, columns `a`, `b`: x");
        assert_eq!(p.at_row(1).column, "a,b");
        let p = Problem::new(
            "event",
            Origin::Record,
            "required",
            "`event_name` is not mapped",
        );
        assert_eq!(p.at_row(7).message, "row 7: `event_name` is not mapped");
        assert_eq!(p.at_row(7).column, "");
    }
}
