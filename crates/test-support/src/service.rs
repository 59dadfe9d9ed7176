//! A service running inside the test as a task, stopped when its guard drops.

use std::fmt::Debug;
use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A service's `run(config, shutdown)` spawned on the test's runtime. Dropping it (a test that
/// fails) cancels and aborts the task, so declare it after the [`crate::TestQueues`] and
/// [`crate::TestDb`] it uses: it then stops before they are removed (a consumer whose queue is
/// deleted would declare it again).
#[derive(Debug)]
pub struct RunningService<E> {
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), E>>>,
}

impl<E: Debug + Send + 'static> RunningService<E> {
    /// Spawns `run` with a fresh shutdown token.
    pub fn spawn<F>(run: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(shutdown.clone()));
        Self {
            shutdown,
            task: Some(task),
        }
    }

    /// True when the service has ended on its own.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Shuts the service down.
    ///
    /// # Panics
    ///
    /// When it does not end within [`crate::PATIENCE`], panics, or ends with an error.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().expect("a running service");
        tokio::time::timeout(crate::PATIENCE, task)
            .await
            .expect("the service stops on shutdown")
            .expect("the service task did not panic")
            .expect("the service ends cleanly");
    }
}

impl<E> Drop for RunningService<E> {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
