use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use crate::duration::{BareUnit, parse_duration};
use crate::error::ConfigError;
use crate::redact::redact_url_password;

type Lookup = Box<dyn Fn(&str) -> Option<OsString>>;

/// Where the variables come from (the process environment, or a test's map), and a record of
/// every variable read through it with the value in effect.
///
/// All readers treat a blank value as unset and trim the value they parse.
pub struct Env {
    lookup: Lookup,
    seen: RefCell<Vec<Setting>>,
}

/// One variable a service read, as `--print-config` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The variable.
    pub var: &'static str,
    /// The value in effect, secrets redacted; empty when unset with no default.
    pub shown: String,
    /// Whether the value was set or is the default.
    pub source: Source,
}

/// Whether a [`Setting`] was set in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Set in the environment.
    Set,
    /// Not set (or blank): the default applies.
    Default,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            Source::Set => "set",
            Source::Default => "default",
        };
        write!(f, "{}={}  # {source}", self.var, self.shown)
    }
}

/// How a value is shown in the record.
#[derive(Clone, Copy)]
enum Show {
    Plain,
    Secret,
    Url,
}

impl Show {
    fn apply(self, value: &str) -> String {
        match self {
            Show::Plain => value.to_owned(),
            Show::Secret if value.is_empty() => String::new(),
            Show::Secret => "[REDACTED]".to_owned(),
            Show::Url => redact_url_password(value),
        }
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("seen", &self.seen.borrow())
            .finish_non_exhaustive()
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Variables from a list (tests, or a service started with an explicit environment).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_lookup(move |name| map.get(name).map(OsString::from))
    }

    /// Variables through any lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString> + 'static) -> Self {
        Env {
            lookup: Box::new(lookup),
            seen: RefCell::new(Vec::new()),
        }
    }

    /// Every variable read so far, in the order first read, with the value in effect.
    pub fn settings(&self) -> Vec<Setting> {
        self.seen.borrow().clone()
    }

    /// The trimmed value, `None` when unset or blank. Not recorded: callers record what they
    /// resolved it to.
    fn raw(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.lookup)(var) {
            None => Ok(None),
            Some(os) => {
                let value = os
                    .into_string()
                    .map_err(|_| ConfigError::NotUnicode { var })?;
                let value = value.trim();
                Ok((!value.is_empty()).then(|| value.to_owned()))
            }
        }
    }

    fn record(&self, var: &'static str, shown: String, source: Source) {
        let mut seen = self.seen.borrow_mut();
        // Several parts of one process may read the same variable (`serve all`): show it once.
        if !seen.iter().any(|s| s.var == var) {
            seen.push(Setting { var, shown, source });
        }
    }

    /// Reads `var`, parses it with `parse`, and records the value in effect (the default's
    /// display when unset).
    fn read<T>(
        &self,
        var: &'static str,
        show: Show,
        default: impl FnOnce() -> (T, String),
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.raw(var)? {
            None => {
                let (value, shown) = default();
                self.record(var, show.apply(&shown), Source::Default);
                Ok(value)
            }
            Some(text) => match parse(&text) {
                Ok(value) => {
                    self.record(var, show.apply(&text), Source::Set);
                    Ok(value)
                }
                Err(expected) => Err(ConfigError::invalid(var, show.apply(&text), expected)),
            },
        }
    }

    /// A string, `None` when unset or blank.
    ///
    /// # Errors
    ///
    /// A value that is not UTF-8.
    pub fn string(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        self.read(
            var,
            Show::Plain,
            || (None, String::new()),
            |t| Ok(Some(t.to_owned())),
        )
    }

    /// A string, `default` when unset or blank.
    ///
    /// # Errors
    ///
    /// A value that is not UTF-8.
    pub fn string_or(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        self.read(
            var,
            Show::Plain,
            || (default.to_owned(), default.to_owned()),
            |t| Ok(t.to_owned()),
        )
    }

    /// A secret, `None` when unset or blank; shown as `[REDACTED]`.
    ///
    /// # Errors
    ///
    /// A value that is not UTF-8.
    pub fn secret(&self, var: &'static str) -> Result<Option<SecretString>, ConfigError> {
        self.read(
            var,
            Show::Secret,
            || (None, String::new()),
            |t| Ok(Some(SecretString::from(t))),
        )
    }

    /// A secret that must be set; `what` tells the user what to set it to.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] when unset or blank.
    pub fn require_secret(
        &self,
        var: &'static str,
        what: &str,
    ) -> Result<SecretString, ConfigError> {
        self.secret(var)?.ok_or_else(|| ConfigError::Missing {
            var,
            what: what.to_owned(),
        })
    }

    /// A URL that may carry a password: kept secret, shown and echoed in errors without the
    /// password.
    ///
    /// # Errors
    ///
    /// A value that is not UTF-8.
    pub fn url(&self, var: &'static str, default: &str) -> Result<SecretString, ConfigError> {
        self.read(
            var,
            Show::Url,
            || (SecretString::from(default), default.to_owned()),
            |t| Ok(SecretString::from(t)),
        )
    }

    /// A whole number in `range`, `default` when unset.
    ///
    /// # Errors
    ///
    /// Not a whole number, or outside `range`.
    pub fn number<T>(
        &self,
        var: &'static str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let expected = if range.end().to_string().len() > 15 {
            format!("a whole number from {} up", range.start())
        } else {
            format!("a whole number from {} to {}", range.start(), range.end())
        };
        self.read(
            var,
            Show::Plain,
            || (default, default.to_string()),
            |t| match t.parse::<T>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(expected),
            },
        )
    }

    /// A switch, `default` when unset: `on`/`off`, `true`/`false`, `yes`/`no` or `1`/`0`, in any
    /// case.
    ///
    /// # Errors
    ///
    /// Any other value.
    pub fn switch(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        let show = |on: bool| if on { "on" } else { "off" }.to_owned();
        self.read(
            var,
            Show::Plain,
            || (default, show(default)),
            |t| match t.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => Ok(true),
                "off" | "false" | "no" | "0" => Ok(false),
                _ => Err("on or off (also true/false, yes/no, 1/0)".to_owned()),
            },
        )
    }

    /// A duration in `range`, `default` when unset; see [`parse_duration`] for the grammar and
    /// [`BareUnit`] for what a bare number means.
    ///
    /// # Errors
    ///
    /// A value that does not parse, or outside `range`.
    pub fn duration(
        &self,
        var: &'static str,
        default: Duration,
        bare: BareUnit,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, ConfigError> {
        let within = if range.end() == &Duration::MAX {
            format!("at least {}", humantime::format_duration(*range.start()))
        } else {
            format!(
                "from {} to {}",
                humantime::format_duration(*range.start()),
                humantime::format_duration(*range.end())
            )
        };
        let expected = format!("{}, {within}", bare.expected());
        self.read(
            var,
            Show::Plain,
            || (default, humantime::format_duration(default).to_string()),
            |t| match parse_duration(t, bare) {
                Some(d) if range.contains(&d) => Ok(d),
                _ => Err(expected),
            },
        )
    }

    /// A value of any type that parses with [`FromStr`] (socket addresses, say), `default` when
    /// unset; `expected` describes the accepted form.
    ///
    /// # Errors
    ///
    /// A value that does not parse.
    pub fn parse<T>(&self, var: &'static str, default: T, expected: &str) -> Result<T, ConfigError>
    where
        T: FromStr + fmt::Display,
    {
        self.read(
            var,
            Show::Plain,
            || {
                let shown = default.to_string();
                (default, shown)
            },
            |t| t.parse().map_err(|_| expected.to_owned()),
        )
    }

    /// One of a few named values (any case), `default` when unset.
    ///
    /// # Errors
    ///
    /// A name not in `choices`.
    pub fn choice<T>(
        &self,
        var: &'static str,
        default: T,
        choices: &[(&'static str, T)],
    ) -> Result<T, ConfigError>
    where
        T: Copy + PartialEq,
    {
        let default_name = choices
            .iter()
            .find(|(_, v)| *v == default)
            .map_or("", |(name, _)| name);
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        self.read(
            var,
            Show::Plain,
            || (default, default_name.to_owned()),
            |t| {
                choices
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(t))
                    .map(|(_, v)| *v)
                    .ok_or_else(|| format!("one of {}", names.join(", ")))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn blank_is_unset_everywhere() {
        let e = env(&[
            ("S", "  "),
            ("N", ""),
            ("B", " "),
            ("D", "\t"),
            ("K", " "),
            ("U", ""),
        ]);
        assert_eq!(e.string("S").unwrap(), None);
        assert_eq!(e.number("N", 7u32, 1..=9).unwrap(), 7);
        assert!(e.switch("B", true).unwrap());
        assert_eq!(
            e.duration(
                "D",
                Duration::from_secs(5),
                BareUnit::Secs,
                Duration::ZERO..=Duration::MAX
            )
            .unwrap(),
            Duration::from_secs(5)
        );
        assert!(e.secret("K").unwrap().is_none());
        assert_eq!(
            e.url("U", "postgres://x").unwrap().expose_secret(),
            "postgres://x"
        );
        assert!(e.settings().iter().all(|s| s.source == Source::Default));
    }

    #[test]
    fn switches_have_one_grammar() {
        for (text, on) in [
            ("on", true),
            ("ON", true),
            ("Yes", true),
            ("true", true),
            ("1", true),
            (" off ", false),
            ("NO", false),
            ("False", false),
            ("0", false),
        ] {
            assert_eq!(env(&[("X", text)]).switch("X", !on).unwrap(), on, "{text}");
        }
        let err = env(&[("X", "maybe")]).switch("X", true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "X=maybe is invalid: expected on or off (also true/false, yes/no, 1/0)"
        );
    }

    #[test]
    fn numbers_are_bounded_and_named() {
        let e = env(&[("A", " 8 "), ("B", "0"), ("C", "x")]);
        assert_eq!(e.number("A", 4u16, 1..=64).unwrap(), 8);
        assert_eq!(
            e.number("B", 4u16, 1..=64).unwrap_err().to_string(),
            "B=0 is invalid: expected a whole number from 1 to 64"
        );
        let err = e.number("C", 4u64, 1..=u64::MAX).unwrap_err();
        assert_eq!(err.var(), "C");
        assert_eq!(
            err.to_string(),
            "C=x is invalid: expected a whole number from 1 up"
        );
    }

    #[test]
    fn durations_take_units_and_bounds() {
        let e = env(&[
            ("MS", "250"),
            ("H", "1h"),
            ("Z", "0"),
            ("BAD", "10 parsecs"),
        ]);
        let any = Duration::ZERO..=Duration::MAX;
        assert_eq!(
            e.duration("MS", Duration::ZERO, BareUnit::Millis, any.clone())
                .unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            e.duration("H", Duration::ZERO, BareUnit::Secs, any.clone())
                .unwrap(),
            Duration::from_secs(3600)
        );
        let err = e
            .duration(
                "Z",
                Duration::from_secs(5),
                BareUnit::Secs,
                Duration::from_millis(1)..=Duration::from_secs(60),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Z=0 is invalid: expected a duration such as 500ms, 30s, 5m or 1h 30m (a bare number is seconds), from 1ms to 1m"
        );
        assert!(
            e.duration("BAD", Duration::ZERO, BareUnit::Secs, any)
                .is_err()
        );
    }

    #[test]
    fn secrets_are_never_shown_or_echoed() {
        let e = env(&[
            ("KEY", "hunter2"),
            ("DB", "postgres://u:hunter2@db:5432/x"),
            ("BADDB", "postgres://u:hunter2@db:5432/x"),
        ]);
        assert_eq!(
            e.require_secret("KEY", "k").unwrap().expose_secret(),
            "hunter2"
        );
        assert_eq!(
            e.url("DB", "postgres://local").unwrap().expose_secret(),
            "postgres://u:hunter2@db:5432/x"
        );
        let shown = e
            .settings()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("KEY=[REDACTED]  # set"), "{shown}");
        assert!(
            shown.contains("DB=postgres://u:[REDACTED]@db:5432/x  # set"),
            "{shown}"
        );
        let missing = env(&[])
            .require_secret("KEY", "a long random string")
            .unwrap_err();
        assert_eq!(missing.to_string(), "KEY is not set: a long random string");
    }

    #[test]
    fn settings_show_defaults_once_in_order() {
        let e = env(&[("B", "2")]);
        e.number("A", 1u8, 0..=9).unwrap();
        e.number("B", 1u8, 0..=9).unwrap();
        e.number("A", 1u8, 0..=9).unwrap();
        e.switch("C", false).unwrap();
        let shown: Vec<String> = e.settings().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["A=1  # default", "B=2  # set", "C=off  # default"]);
    }

    #[test]
    fn choices_and_parsed_values() {
        #[derive(Clone, Copy, PartialEq, Debug)]
        enum F {
            Text,
            Json,
        }
        let e = env(&[("F", "JSON"), ("G", "xml"), ("ADDR", "localhost")]);
        let choices = [("text", F::Text), ("json", F::Json)];
        assert_eq!(e.choice("F", F::Text, &choices).unwrap(), F::Json);
        assert_eq!(
            e.choice("G", F::Text, &choices).unwrap_err().to_string(),
            "G=xml is invalid: expected one of text, json"
        );
        let default: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(e.parse("ADDR", default, "an address and port").is_err());
        assert_eq!(
            e.parse("NONE", default, "an address and port").unwrap(),
            default
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_named() {
        use std::os::unix::ffi::OsStringExt as _;
        let e = Env::from_lookup(|_| Some(OsString::from_vec(vec![0xff, 0xfe])));
        assert_eq!(
            e.string("X").unwrap_err(),
            ConfigError::NotUnicode { var: "X" }
        );
    }
}
