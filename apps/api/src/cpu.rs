//! CPU-bound work (decoding, encoding, PDF parsing) off the async worker threads, and how
//! its failures read to a client.

use axum::http::StatusCode;

use crate::app::AppState;
use crate::error::AppError;
use crate::imaging::ImageFailure;
use crate::pdf;

/// Run CPU-heavy `work` on the blocking pool, at most one job per core at a time.
///
/// The permit moves into the blocking job: a request abandoned by its client drops this
/// future, but the job it started runs on, and keeps its slot until it is done. Were the
/// permit the future's, abandoned requests could start any number of jobs at once.
pub async fn run_blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let permit = state
        .cpu
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AppError::internal("waiting for a worker", e))?;
    tokio::task::spawn_blocking(move || {
        let result = work();
        drop(permit);
        result
    })
    .await
    .map_err(|e| AppError::internal("running image or PDF work", e))
}

/// Map an image failure to what the client should hear.
pub fn image_error(failure: ImageFailure) -> AppError {
    match failure {
        ImageFailure::TooLarge { .. } | ImageFailure::TooManyBytes { .. } => {
            AppError::client(StatusCode::UNPROCESSABLE_ENTITY, failure.to_string())
        }
        ImageFailure::Corrupt(ref source) => {
            tracing::info!(error = %source, "image rejected");
            AppError::client(StatusCode::UNPROCESSABLE_ENTITY, failure.to_string())
        }
        ImageFailure::Invalid(message) => AppError::bad_request(message),
        ImageFailure::Encode { .. } => AppError::internal("encoding an image", failure),
    }
}

/// Map a PDF failure to a 422 (the log gets the parser's own words).
pub fn pdf_error(failure: pdf::PdfFailure) -> AppError {
    tracing::info!(error = %crate::error::chain(&failure), "pdf rejected");
    AppError::client(StatusCode::UNPROCESSABLE_ENTITY, failure.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::config::Config;
    use crate::db::Database;

    /// Shared by the jobs: how many run, the most that ever ran at once, and a gate that
    /// holds them until the test opens it.
    #[derive(Default)]
    struct Jobs {
        running: AtomicUsize,
        most: AtomicUsize,
        gate: (Mutex<bool>, Condvar),
    }

    impl Jobs {
        fn run(&self, started: &tokio::sync::mpsc::UnboundedSender<()>) {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let _ = started.send(());
            let (open, opened) = &self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = opened.wait(open).unwrap();
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
        }

        fn open(&self) {
            *self
                .gate
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
            self.gate.1.notify_all();
        }
    }

    struct OpenOnDrop(Arc<Jobs>);

    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            self.0.open();
        }
    }

    fn request(
        state: &AppState,
        jobs: &Arc<Jobs>,
        started: &tokio::sync::mpsc::UnboundedSender<()>,
    ) -> tokio::task::JoinHandle<Result<(), AppError>> {
        let (state, jobs, started) = (state.clone(), jobs.clone(), started.clone());
        tokio::spawn(async move { run_blocking(&state, move || jobs.run(&started)).await })
    }

    #[tokio::test]
    async fn abandoned_requests_keep_their_cpu_slots_until_their_jobs_end() {
        let config = Config::from_lookup(|_| None).unwrap();
        let mut state = AppState::new(Database::connect_lazy(&config), config);
        state.cpu = Arc::new(Semaphore::new(2));
        let jobs = Arc::new(Jobs::default());
        // Blocked jobs would hold the runtime's shutdown: open the gate however this ends.
        let _open_at_end = OpenOnDrop(jobs.clone());
        let (started, mut starts) = tokio::sync::mpsc::unbounded_channel();

        // Two requests start their jobs, then their clients go away.
        let abandoned = [
            request(&state, &jobs, &started),
            request(&state, &jobs, &started),
        ];
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(30), starts.recv())
                .await
                .expect("both jobs start");
        }
        for handle in abandoned {
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        }
        assert_eq!(
            state.cpu.available_permits(),
            0,
            "the abandoned jobs still run, so they still hold both slots"
        );

        // Later requests wait for those slots instead of running beside the abandoned jobs.
        let later: Vec<_> = (0..4).map(|_| request(&state, &jobs, &started)).collect();
        jobs.open();
        for handle in later {
            handle.await.unwrap().unwrap();
        }
        assert_eq!(
            jobs.most.load(Ordering::SeqCst),
            2,
            "never more jobs than slots"
        );
    }
}
