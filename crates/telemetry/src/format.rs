use crate::TelemetryError;

/// The variable choosing the log line format.
pub const LOG_FORMAT_VAR: &str = "MIXSYNC_LOG_FORMAT";

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// Reads [`LOG_FORMAT_VAR`]; unset or empty means [`LogFormat::Text`].
    ///
    /// # Errors
    ///
    /// A value other than `text` or `json`, or one that is not UTF-8.
    pub fn from_env() -> Result<Self, TelemetryError> {
        match std::env::var(LOG_FORMAT_VAR) {
            Ok(value) => Self::parse(Some(&value)),
            Err(std::env::VarError::NotPresent) => Self::parse(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(TelemetryError::NotUnicode(LOG_FORMAT_VAR))
            }
        }
    }

    /// Parses the variable's value; `None` or blank means [`LogFormat::Text`].
    ///
    /// # Errors
    ///
    /// A value other than `text` or `json` (case-insensitive).
    pub fn parse(value: Option<&str>) -> Result<Self, TelemetryError> {
        let value = value.map(str::trim).unwrap_or_default();
        if value.is_empty() || value.eq_ignore_ascii_case("text") {
            Ok(Self::Text)
        } else if value.eq_ignore_ascii_case("json") {
            Ok(Self::Json)
        } else {
            Err(TelemetryError::InvalidLogFormat(value.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_blank_means_text() {
        assert_eq!(LogFormat::parse(None).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("")).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("  ")).unwrap(), LogFormat::Text);
    }

    #[test]
    fn accepts_text_and_json() {
        assert_eq!(LogFormat::parse(Some("text")).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("json")).unwrap(), LogFormat::Json);
        assert_eq!(LogFormat::parse(Some("JSON")).unwrap(), LogFormat::Json);
    }

    #[test]
    fn rejects_anything_else_naming_the_variable() {
        let error = LogFormat::parse(Some("logfmt")).unwrap_err();

        assert!(matches!(error, TelemetryError::InvalidLogFormat(ref v) if v == "logfmt"));
        let message = error.to_string();
        assert!(message.contains(LOG_FORMAT_VAR), "{message}");
        assert!(message.contains("logfmt"), "{message}");
    }
}
