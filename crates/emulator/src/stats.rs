//! Counters behind `GET /_emulator/stats`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::{Value, json};

/// The ingestion endpoints the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    /// `POST /import`
    Import,
    /// `POST /engage`
    Engage,
    /// `POST /groups`
    Groups,
    /// `GET /api/app/me`
    Me,
}

impl Endpoint {
    /// The name used in stats and fault settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Import => "import",
            Endpoint::Engage => "engage",
            Endpoint::Groups => "groups",
            Endpoint::Me => "me",
        }
    }

    /// The inverse of [`Endpoint::as_str`].
    pub fn parse(s: &str) -> Option<Endpoint> {
        [
            Endpoint::Import,
            Endpoint::Engage,
            Endpoint::Groups,
            Endpoint::Me,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// Request and record counters.
#[derive(Default)]
pub(crate) struct Stats {
    requests: Mutex<BTreeMap<(Endpoint, u16), u64>>,
    accepted: AtomicU64,
    rejected: AtomicU64,
    deduplicated: AtomicU64,
    throttled: AtomicU64,
}

impl Stats {
    pub(crate) fn request(&self, endpoint: Endpoint, status: u16) {
        *self.requests.lock().entry((endpoint, status)).or_default() += 1;
    }

    pub(crate) fn records(&self, accepted: u64, rejected: u64, deduplicated: u64) {
        self.accepted.fetch_add(accepted, Ordering::Relaxed);
        self.rejected.fetch_add(rejected, Ordering::Relaxed);
        self.deduplicated.fetch_add(deduplicated, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self, records: u64) {
        self.throttled.fetch_add(records, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        self.requests.lock().clear();
        for counter in [
            &self.accepted,
            &self.rejected,
            &self.deduplicated,
            &self.throttled,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut requests = serde_json::Map::new();
        for endpoint in [
            Endpoint::Import,
            Endpoint::Engage,
            Endpoint::Groups,
            Endpoint::Me,
        ] {
            requests.insert(endpoint.as_str().into(), json!({}));
        }
        for ((endpoint, status), n) in self.requests.lock().iter() {
            if let Some(Value::Object(by_status)) = requests.get_mut(endpoint.as_str()) {
                by_status.insert(status.to_string(), json!(n));
            }
        }
        json!({
            "requests": requests,
            "records": {
                "accepted": self.accepted.load(Ordering::Relaxed),
                "rejected": self.rejected.load(Ordering::Relaxed),
                "deduplicated": self.deduplicated.load(Ordering::Relaxed),
                "throttled": self.throttled.load(Ordering::Relaxed),
            }
        })
    }
}
