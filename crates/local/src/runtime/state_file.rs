//! `.berth/run/state.json`, kept current for recovery after berth is killed.
//!
//! The runtime rewrites it from its view of the tasks whenever that view changes, and the
//! launcher records each task the moment its process exists, before the scheduler even
//! knows of it: a berth killed right after starting a task still leaves the task findable.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use crate::cleanup::{CleanupError, RunState, RunTask, process_start_time};

/// The recovery file and what was last written to it.
#[derive(Debug)]
pub struct RunStateFile {
    run_dir: PathBuf,
    recorded: Mutex<Recorded>,
    writes: broadcast::Sender<StateWrite>,
}

/// One write of the file: who wrote it and the tasks it then held (for whoever must know
/// what the file held when, without polling it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    pub by: StateWriter,
    pub task_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateWriter {
    /// The launcher, recording a task the moment its process exists.
    Launcher,
    /// The runtime, rewriting the file from its view.
    Runtime,
}

#[derive(Debug, Default)]
struct Recorded {
    /// What the file holds (`None` before the first write).
    written: Option<RunState>,
    /// Tasks recorded at start that the runtime's view did not show yet.
    just_started: Vec<RunTask>,
}

impl RunStateFile {
    pub fn new(run_dir: PathBuf) -> Self {
        Self {
            run_dir,
            recorded: Mutex::default(),
            writes: broadcast::channel(256).0,
        }
    }

    /// Every write from now on, in order.
    pub fn writes(&self) -> broadcast::Receiver<StateWrite> {
        self.writes.subscribe()
    }

    fn announce(&self, by: StateWriter, state: &RunState) {
        let task_ids = state.tasks.iter().map(|t| t.task_id.clone()).collect();
        let _ = self.writes.send(StateWrite { by, task_ids });
    }

    fn recorded(&self) -> MutexGuard<'_, Recorded> {
        // Plain data, replaced whole: a panic elsewhere cannot leave it torn.
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a task whose process has just started; the file holds it when this returns.
    pub fn task_started(&self, task: RunTask) -> Result<(), CleanupError> {
        let mut recorded = self.recorded();
        recorded.just_started.push(task.clone());
        // Before the runtime's first view, at least this berth and the task.
        let mut state = recorded
            .written
            .clone()
            .unwrap_or_else(RunState::of_this_berth);
        state.tasks.push(task);
        state.write(&self.run_dir)?;
        self.announce(StateWriter::Launcher, &state);
        recorded.written = Some(state);
        Ok(())
    }

    /// Writes the runtime's view (if anything changed), keeping the tasks recorded at start
    /// that it does not show yet while their processes live.
    pub fn update(&self, mut view: RunState) -> Result<(), CleanupError> {
        let mut recorded = self.recorded();
        recorded.just_started.retain(|task| {
            !view.tasks.iter().any(|seen| seen.task_id == task.task_id) && still_running(task)
        });
        view.tasks.extend(recorded.just_started.iter().cloned());
        if recorded.written.as_ref() != Some(&view) {
            view.write(&self.run_dir)?;
            self.announce(StateWriter::Runtime, &view);
            recorded.written = Some(view);
        }
        Ok(())
    }
}

/// Whether the process recorded for `task` is still the one that was started.
fn still_running(task: &RunTask) -> bool {
    task.start_time.is_some() && process_start_time(task.pid) == task.start_time
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn state(tasks: Vec<RunTask>) -> RunState {
        RunState {
            tasks,
            ..RunState::of_this_berth()
        }
    }

    fn task(id: &str, pid: u32) -> RunTask {
        RunTask {
            service: "web".into(),
            task_id: id.into(),
            pid,
            start_time: process_start_time(pid),
            port: 1,
            stop_timeout: Duration::from_secs(1),
        }
    }

    fn on_disk(file: &RunStateFile) -> Vec<String> {
        let state = RunState::read(&file.run_dir).unwrap().unwrap();
        state.tasks.into_iter().map(|t| t.task_id).collect()
    }

    #[test]
    fn a_started_task_is_on_disk_at_once_and_kept_until_the_view_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = RunStateFile::new(dir.path().join("run"));
        file.update(state(vec![])).unwrap();
        // Our own pid stands for a live task process.
        let live = task("live", std::process::id());
        file.task_started(live.clone()).unwrap();
        assert_eq!(on_disk(&file), ["live"]);
        // A view computed before the scheduler tracked it does not drop it.
        file.update(state(vec![])).unwrap();
        assert_eq!(on_disk(&file), ["live"]);
        file.update(state(vec![live])).unwrap();
        assert_eq!(on_disk(&file), ["live"]);
        // Once the view has it, the view alone decides.
        file.update(state(vec![])).unwrap();
        assert!(on_disk(&file).is_empty());
    }

    #[test]
    fn a_started_task_whose_process_is_gone_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = RunStateFile::new(dir.path().join("run"));
        file.update(state(vec![])).unwrap();
        let mut gone = task("gone", std::process::id());
        gone.start_time = Some(0); // not our start time: the process is someone else now
        file.task_started(gone).unwrap();
        assert_eq!(on_disk(&file), ["gone"]);
        file.update(state(vec![])).unwrap();
        assert!(on_disk(&file).is_empty());
    }

    #[test]
    fn a_started_task_recorded_without_a_start_time_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = RunStateFile::new(dir.path().join("run"));
        file.update(state(vec![])).unwrap();
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        let pid = exited.id();
        exited.wait().unwrap();
        // What reading the start time of a process that already exited gives.
        let mut unknown = task("unknown", pid);
        unknown.start_time = None;
        file.task_started(unknown).unwrap();
        file.update(state(vec![])).unwrap();
        assert!(on_disk(&file).is_empty());
    }

    #[test]
    fn a_task_started_before_the_first_view_is_kept_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = RunStateFile::new(dir.path().join("run"));
        file.task_started(task("early", std::process::id()))
            .unwrap();
        assert_eq!(on_disk(&file), ["early"]);
        file.update(state(vec![])).unwrap();
        assert_eq!(on_disk(&file), ["early"]);
    }
}
