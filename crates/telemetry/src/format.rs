use mixsync_config::{ConfigError, Env};

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
    /// Reads [`LOG_FORMAT_VAR`] from `env`: `text` (the default) or `json`, any case; blank is
    /// unset.
    ///
    /// # Errors
    ///
    /// Any other value, naming the variable.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        env.choice(
            LOG_FORMAT_VAR,
            LogFormat::Text,
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: &str) -> Result<LogFormat, ConfigError> {
        LogFormat::read(&Env::from_pairs([(LOG_FORMAT_VAR, value)]))
    }

    #[test]
    fn unset_or_blank_means_text() {
        assert_eq!(
            LogFormat::read(&Env::from_pairs::<&str, &str>([])).unwrap(),
            LogFormat::Text
        );
        assert_eq!(read("").unwrap(), LogFormat::Text);
        assert_eq!(read("  ").unwrap(), LogFormat::Text);
    }

    #[test]
    fn accepts_text_and_json() {
        assert_eq!(read("text").unwrap(), LogFormat::Text);
        assert_eq!(read("json").unwrap(), LogFormat::Json);
        assert_eq!(read("JSON").unwrap(), LogFormat::Json);
    }

    #[test]
    fn rejects_anything_else_naming_the_variable() {
        let error = read("logfmt").unwrap_err();
        assert_eq!(error.var(), LOG_FORMAT_VAR);
        let message = error.to_string();
        assert!(message.contains("logfmt"), "{message}");
        assert!(message.contains("text, json"), "{message}");
    }
}
