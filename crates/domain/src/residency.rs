//! Mixpanel data residency and the hosts that go with it (docs/mixpanel-api.md §1.1).

use crate::string_enum::string_enum;

string_enum! {
    /// Where a Mixpanel project's data lives. EU and IN projects must use their own hosts for
    /// every call.
    #[derive(Default)]
    pub enum Residency as "residency", prefix "" {
        /// United States (the default).
        #[default]
        Us => "us",
        /// European Union.
        Eu => "eu",
        /// India.
        In => "in",
    }
}

impl Residency {
    /// The ingestion API base URL (no trailing slash), e.g. `https://api-eu.mixpanel.com`.
    pub fn api_base_url(self) -> &'static str {
        match self {
            Self::Us => "https://api.mixpanel.com",
            Self::Eu => "https://api-eu.mixpanel.com",
            Self::In => "https://api-in.mixpanel.com",
        }
    }

    /// The app API base URL (no trailing slash), which serves `/api/app/me` for testing
    /// service-account credentials (docs/mixpanel-api.md §4), e.g. `https://eu.mixpanel.com`.
    pub fn app_base_url(self) -> &'static str {
        match self {
            Self::Us => "https://mixpanel.com",
            Self::Eu => "https://eu.mixpanel.com",
            Self::In => "https://in.mixpanel.com",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_follow_the_residency() {
        assert_eq!(Residency::Us.api_base_url(), "https://api.mixpanel.com");
        assert_eq!(Residency::Eu.api_base_url(), "https://api-eu.mixpanel.com");
        assert_eq!(Residency::In.api_base_url(), "https://api-in.mixpanel.com");
        assert_eq!(Residency::Eu.app_base_url(), "https://eu.mixpanel.com");
        assert_eq!(Residency::default(), Residency::Us);
    }

    #[test]
    fn parses_and_serializes_lowercase() {
        assert_eq!("EU".parse(), Ok(Residency::Eu));
        assert_eq!(serde_json::to_string(&Residency::In).unwrap(), r#""in""#);
        assert!("de".parse::<Residency>().is_err());
    }
}
