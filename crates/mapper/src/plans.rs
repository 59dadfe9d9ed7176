//! Run plans, read from the state store once per run and kept while the run's batches flow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mixsync_state::{RunPlan, StateError, StateStore};

/// Plans kept at most; the cache is emptied when it is full (runs are few and short-lived).
const CAPACITY: usize = 256;

/// A cache of run plans by run id. A plan never changes once the run is triggered.
pub(crate) struct PlanCache {
    state: StateStore,
    plans: Mutex<HashMap<String, Arc<RunPlan>>>,
}

impl PlanCache {
    pub(crate) fn new(state: StateStore) -> Self {
        Self {
            state,
            plans: Mutex::new(HashMap::new()),
        }
    }

    /// The plan of `run_id`, from the cache or the state store.
    pub(crate) async fn get(&self, run_id: &str) -> Result<Arc<RunPlan>, StateError> {
        if let Some(plan) = self.lock().get(run_id) {
            return Ok(Arc::clone(plan));
        }
        let plan = Arc::new(self.state.run_plan(run_id).await?);
        let mut plans = self.lock();
        if plans.len() >= CAPACITY {
            plans.clear();
        }
        plans.insert(run_id.to_owned(), Arc::clone(&plan));
        Ok(plan)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<RunPlan>>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
