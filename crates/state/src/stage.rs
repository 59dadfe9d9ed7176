//! Pipeline stages as stored.

use mixsync_proto::v1;

/// A pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Not said (a malformed report).
    Unspecified,
    /// The extractor.
    Extract,
    /// The mapper.
    Map,
    /// A loader.
    Load,
}

impl Stage {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Extract => "extract",
            Self::Map => "map",
            Self::Load => "load",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Unspecified, Self::Extract, Self::Map, Self::Load]
            .into_iter()
            .find(|stage| stage.as_str() == s)
    }

    /// From the wire enum.
    pub fn from_proto(stage: v1::Stage) -> Self {
        match stage {
            v1::Stage::Unspecified => Self::Unspecified,
            v1::Stage::Extract => Self::Extract,
            v1::Stage::Map => Self::Map,
            v1::Stage::Load => Self::Load,
        }
    }

    /// To the wire enum.
    pub fn to_proto(self) -> v1::Stage {
        match self {
            Self::Unspecified => v1::Stage::Unspecified,
            Self::Extract => v1::Stage::Extract,
            Self::Map => v1::Stage::Map,
            Self::Load => v1::Stage::Load,
        }
    }
}
