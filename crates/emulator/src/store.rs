//! What the emulator holds: events (deduplicated) and user and group profiles, per project.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use parking_lot::Mutex;
use serde_json::{Map, Value};

/// An accepted event, ready to store.
pub(crate) struct AcceptedEvent {
    /// `event \0 time_ms \0 distinct_id \0 $insert_id`: Mixpanel's dedup key.
    pub(crate) key: Box<str>,
    /// The event's JSON as stored (after truncation and clamping).
    pub(crate) json: Box<str>,
}

/// A user or group profile.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Profile {
    pub(crate) properties: Map<String, Value>,
    pub(crate) last_seen: Option<i64>,
}

#[derive(Default)]
struct Events {
    /// Stored events in order of first arrival; a duplicate replaces its original in place.
    json: Vec<Box<str>>,
    by_key: HashMap<Box<str>, usize>,
}

/// One project's profiles.
#[derive(Default)]
pub(crate) struct Profiles {
    pub(crate) users: HashMap<String, Profile>,
    pub(crate) groups: HashMap<(String, String), Profile>,
}

#[derive(Default)]
struct ProjectData {
    events: Mutex<Events>,
    profiles: Mutex<Profiles>,
}

/// Every project's data.
pub(crate) struct Store {
    projects: HashMap<u64, ProjectData>,
}

impl Store {
    pub(crate) fn new(project_ids: impl Iterator<Item = u64>) -> Store {
        Store {
            projects: project_ids.map(|id| (id, ProjectData::default())).collect(),
        }
    }

    pub(crate) fn has_project(&self, project: u64) -> bool {
        self.projects.contains_key(&project)
    }

    /// Stores a batch of events; returns how many replaced an earlier copy.
    pub(crate) fn insert_events(&self, project: u64, events: Vec<AcceptedEvent>) -> u64 {
        let Some(data) = self.projects.get(&project) else {
            return 0;
        };
        let mut store = data.events.lock();
        let store = &mut *store;
        let mut replaced = 0;
        for event in events {
            match store.by_key.entry(event.key) {
                Entry::Occupied(slot) => {
                    store.json[*slot.get()] = event.json;
                    replaced += 1;
                }
                Entry::Vacant(slot) => {
                    slot.insert(store.json.len());
                    store.json.push(event.json);
                }
            }
        }
        replaced
    }

    /// Calls `f` with each stored event's JSON, in order of first arrival.
    pub(crate) fn for_each_event(&self, project: u64, mut f: impl FnMut(&str)) -> bool {
        let Some(data) = self.projects.get(&project) else {
            return false;
        };
        for json in &data.events.lock().json {
            f(json);
        }
        true
    }

    /// Runs `f` on a project's profiles under its lock.
    pub(crate) fn with_profiles<R>(
        &self,
        project: u64,
        f: impl FnOnce(&mut Profiles) -> R,
    ) -> Option<R> {
        self.projects
            .get(&project)
            .map(|data| f(&mut data.profiles.lock()))
    }

    pub(crate) fn reset(&self) {
        for data in self.projects.values() {
            *data.events.lock() = Events::default();
            *data.profiles.lock() = Profiles::default();
        }
    }
}
