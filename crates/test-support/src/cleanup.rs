//! Running async cleanup from `Drop`, which is synchronous and may run while a test unwinds.

use std::future::Future;

/// Runs `work` to completion on a fresh thread with its own single-threaded runtime, and waits
/// for it. The test's runtime cannot be used: `Drop` blocks the thread driving it (and, on a
/// panic, that runtime is unwinding). Failures are printed, never raised: a panic in `Drop`
/// during unwinding would abort the whole test binary.
pub(crate) fn block_on_fresh_thread<F>(what: &str, work: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = Result<(), String>>,
{
    let joined = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("no runtime for the cleanup: {e}"))?;
        runtime.block_on(work())
    })
    .join();
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("test cleanup: cannot remove {what}: {e}"),
        Err(_) => eprintln!("test cleanup: removing {what} panicked"),
    }
}
