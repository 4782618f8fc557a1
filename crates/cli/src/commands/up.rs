//! `berth up`: run the whole stack on this machine. In the foreground it shows progress until
//! every target is healthy, then the URL and a live status; Ctrl-C (or SIGTERM, or
//! `berth down`) drains and stops everything in order. `-d` runs it in the background. A
//! service that cannot start stops it with the reason (`stalled.rs`), in both modes.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_local::control::{Request, Response, ensure_private_dir};
use berth_local::runtime::{Runtime, RuntimeEvent, UpOptions};
use berth_local::start_lock::StartLock;
use berth_spec::Stack;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::commands::running::{local_run_dir, report_recovery};
use crate::commands::stalled::stalled_service;
use crate::commands::status;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::Paint;

/// How often the live status is redrawn.
const REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run in the background (output in .berth/run/berth.log); return once every target is
    /// healthy. `berth status` and `berth down` talk to it.
    #[arg(short, long)]
    pub detach: bool,

    /// On an AWS environment: apply the plan without asking.
    #[arg(short, long)]
    pub yes: bool,

    /// Internal: this process is the detached berth.
    #[arg(long, hide = true)]
    pub detached_child: bool,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let environment = cx.environment(&stack)?;
    if environment.as_local().is_none() {
        let confirm = crate::commands::aws::Confirm { yes: args.yes };
        return crate::commands::aws::up(cx, &stack, environment, confirm).await;
    }
    let run_dir = local_run_dir(cx, &stack)?;
    if args.detached_child {
        // Our own session: the terminal that started `berth up -d` can close.
        let _ = nix::unistd::setsid();
        // The start lock passes from the `berth up -d` that started us (it holds it until we
        // are up, or until it is interrupted) to us, for as long as we run. A thread of its
        // own, not `spawn_blocking`: when we fail to start while `berth up -d` still holds
        // the lock, the tokio runtime would wait on drop for that flock, and `berth up -d`
        // for us to exit. A plain thread still waiting dies with the process; once it has
        // the lock, dropping its handle releases it.
        let lock = std::thread::spawn(move || StartLock::acquire_waiting(&run_dir));
        let result = foreground(cx, &stack, false).await;
        drop(lock);
        return result;
    }
    // One berth starts a stack at a time.
    let lock = StartLock::acquire(&run_dir).map_err(|e| CliError::Failed(e.into()))?;
    if args.detach {
        return detach(cx, &stack, lock).await;
    }
    let interactive = std::io::stderr().is_terminal() && !cx.output.is_json();
    let result = foreground(cx, &stack, interactive).await;
    drop(lock);
    result
}

/// Renders runtime events: above a spinner on a terminal, as plain lines otherwise. While
/// the live status is on screen, events are left to it.
struct Printer {
    interactive: bool,
    bar: Mutex<Option<ProgressBar>>,
    quiet: AtomicBool,
    color: crate::output::Style,
}

impl Printer {
    fn new(cx: &Context, interactive: bool) -> Self {
        let printer = Self {
            interactive,
            bar: Mutex::new(None),
            quiet: AtomicBool::new(false),
            color: cx.output.stderr_style(),
        };
        printer.spin("starting");
        printer
    }

    fn bar(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shows a spinner with `message` (on a terminal).
    fn spin(&self, message: &str) {
        if !self.interactive {
            return;
        }
        let mut bar = self.bar();
        let spinner = bar.get_or_insert_with(|| {
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        });
        spinner.set_message(message.to_owned());
    }

    /// Removes the spinner.
    fn finish(&self) {
        if let Some(bar) = self.bar().take() {
            bar.finish_and_clear();
        }
    }

    fn set_quiet(&self, quiet: bool) {
        self.quiet.store(quiet, Ordering::SeqCst);
    }

    fn line(&self, text: String) {
        if self.quiet.load(Ordering::SeqCst) {
            return;
        }
        match self.bar().as_ref() {
            Some(bar) => bar.println(text),
            None if self.interactive => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
            None => {
                let stamp = chrono::Local::now().format("%H:%M:%S");
                let _ = writeln!(std::io::stderr().lock(), "{stamp} {text}");
            }
        }
    }

    fn event(&self, event: &RuntimeEvent) {
        match event {
            RuntimeEvent::Progress { message } => {
                if let Some(bar) = self.bar().as_ref() {
                    bar.set_message(message.clone());
                }
                self.line(message.clone());
            }
            RuntimeEvent::Service { message, .. } | RuntimeEvent::Database { message } => {
                self.line(format!("  {}", self.color.paint(Paint::Dim, message)));
            }
            RuntimeEvent::Healthy { url } => {
                self.line(format!(
                    "{} every target is healthy: {}",
                    self.color.paint(Paint::Green, "✔"),
                    self.color.paint(Paint::Bold, url)
                ));
            }
            RuntimeEvent::Stopping => {
                self.set_quiet(false);
                self.spin("stopping");
                self.line("stopping: draining targets, then tasks, balancer and database".into());
            }
            RuntimeEvent::Stopped => {
                self.finish();
                self.line("stopped".into());
            }
        }
    }
}

async fn foreground(cx: &Context, stack: &Stack, interactive: bool) -> CliResult {
    let printer = Arc::new(Printer::new(cx, interactive));
    let (tx, mut rx) = mpsc::unbounded_channel::<RuntimeEvent>();
    let printing = {
        let printer = printer.clone();
        // Ends at `Stopped`, or when every sender is gone (a failed start). Not only the
        // latter: the runtime keeps a sender (its releases report deploy progress through
        // it) for as long as it lives, so waiting for them all would never return.
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                printer.event(&event);
                if event == RuntimeEvent::Stopped {
                    return;
                }
            }
        })
    };
    let options = UpOptions {
        environment: cx.environment.clone(),
        control_socket: true,
        interrupt: CancellationToken::new(),
    };
    let progress_tx = tx.clone();
    let progress = Arc::new(move |event: RuntimeEvent| {
        let _ = progress_tx.send(event);
    });
    let mut interrupt = signal(SignalKind::interrupt()).map_err(anyhow::Error::from)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;

    // An interrupt during the start cancels it; `up` then stops what it had started (the
    // database, the balancer) before it returns, so nothing is left running.
    let starting = berth_local::runtime::up(stack, &options, progress);
    tokio::pin!(starting);
    let started = loop {
        tokio::select! {
            started = &mut starting => break started,
            _ = interrupt.recv() => options.interrupt.cancel(),
            _ = terminate.recv() => options.interrupt.cancel(),
        }
    };
    let (runtime, recovery) = match started {
        Ok(started) => started,
        Err(error) => {
            drop(tx);
            let _ = printing.await;
            printer.finish();
            return Err(CliError::Failed(error.into()));
        }
    };
    if let Some(recovery) = &recovery {
        report_recovery(cx, recovery);
    }
    // Runtime events go to the printer until the last one, `Stopped`.
    let forwarding = {
        let mut events = runtime.events();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        let last = event == RuntimeEvent::Stopped;
                        let _ = tx.send(event);
                        if last {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    };
    drop(tx);

    let mut stalled = None;
    let healthy = !options.interrupt.is_cancelled()
        && tokio::select! {
            () = runtime.wait_steady() => true,
            reason = until_stalled(stack, &runtime) => {
                stalled = Some(reason);
                false
            }
            _ = interrupt.recv() => false,
            _ = terminate.recv() => false,
            () = runtime.stop_requested() => false,
        };
    if healthy {
        printer.finish();
        if interactive {
            printer.set_quiet(true);
            live_status(cx, &runtime, &mut interrupt, &mut terminate).await;
        } else {
            if cx.output.is_json() {
                cx.output.json(&runtime.status())?;
            } else {
                cx.output.line(runtime.url());
            }
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                () = runtime.stop_requested() => {}
            }
        }
    }
    runtime.shutdown().await;
    let _ = forwarding.await;
    let _ = printing.await;
    printer.finish();
    match (healthy, stalled) {
        (true, _) => Ok(()),
        (false, Some(reason)) => Err(CliError::Failed(anyhow::anyhow!(reason))),
        (false, None) => Err(CliError::Failed(anyhow::anyhow!(
            "stopped before every target was healthy"
        ))),
    }
}

/// Resolves with [`stalled_service`]'s message once a service cannot start (checked twice a
/// second, from the runtime's own status).
async fn until_stalled(stack: &Stack, runtime: &Runtime) -> String {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if let Some(reason) = stalled_service(stack, &runtime.status()) {
            return reason;
        }
    }
}

/// The URL, then the status table redrawn in place until a stop is asked for.
async fn live_status(
    cx: &Context,
    runtime: &Runtime,
    interrupt: &mut tokio::signal::unix::Signal,
    terminate: &mut tokio::signal::unix::Signal,
) {
    let style = cx.output.style();
    cx.output.line(format!(
        "\n{} is up at {}   (Ctrl-C stops it)\n",
        style.paint(Paint::Bold, runtime.status().stack),
        style.paint(Paint::Bold, runtime.url())
    ));
    let mut drawn_lines = 0usize;
    loop {
        let text = status::render(&runtime.status(), cx.output.width(), style, 5);
        let mut out = std::io::stdout().lock();
        if drawn_lines > 0 {
            // Back to the top of the previous drawing, and clear it.
            let _ = write!(out, "\x1b[{drawn_lines}A\x1b[J");
        }
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        drawn_lines = text.lines().count();
        drop(out);
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            _ = interrupt.recv() => return,
            _ = terminate.recv() => return,
            () = runtime.stop_requested() => return,
        }
    }
}

/// `berth up -d`: starts the detached berth, waits until it reports every service steady.
/// Holds the start lock meanwhile, naming the detached berth in it.
async fn detach(cx: &Context, stack: &Stack, mut lock: StartLock) -> CliResult {
    let run_dir = local_run_dir(cx, stack)?;
    if let Ok(mut client) = berth_local::control::ControlClient::connect(&run_dir).await
        && let Ok(Response::Status { status }) = client.request(&Request::Status).await
    {
        return Err(CliError::Failed(anyhow::anyhow!(
            "berth is already running this stack (pid {}, {}); use `berth status` or `berth down`",
            status.pid,
            status.url
        )));
    }
    ensure_private_dir(&run_dir).map_err(anyhow::Error::from)?;
    let log_path = run_dir.join("berth.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| {
            anyhow::Error::new(e).context(format!("cannot open {}", log_path.display()))
        })?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().map_err(anyhow::Error::from)?;
    let mut command = Command::new(exe);
    command
        .arg("--file")
        .arg(&cx.file)
        .arg("--env")
        .arg(&cx.environment)
        .args(["up", "--detached-child"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(anyhow::Error::from)?)
        .stderr(log);
    if std::env::var_os("BERTH_LOG").is_none() {
        command.env("BERTH_LOG", "info");
    }
    let mut child = command
        .spawn()
        .map_err(|e| anyhow::Error::new(e).context("cannot start the detached berth"))?;
    if let Err(error) = lock.set_pid(child.id()) {
        tracing::warn!(%error, "cannot record the detached berth's pid in the start lock");
    }

    let interactive = std::io::stderr().is_terminal() && !cx.output.is_json();
    let printer = Printer::new(cx, interactive);
    loop {
        if let Ok(Some(exit)) = child.try_wait() {
            printer.finish();
            let tail = log_tail(&log_path, log_start);
            // The detached berth's own error (a service that cannot start, a port taken) says
            // it all; the log's tail is for the other ways to end (a signal).
            if let Some(at) = tail.find("\nerror: ") {
                return Err(CliError::Failed(anyhow::anyhow!(
                    "the detached berth exited ({exit}) before the stack was healthy: {}\n(its log: {})",
                    &tail[at + "\nerror: ".len()..],
                    log_path.display()
                )));
            }
            return Err(CliError::Failed(anyhow::anyhow!(
                "the detached berth exited ({exit}) before the stack was healthy; its log ({}):\n{tail}",
                log_path.display()
            )));
        }
        if let Some(last) = log_tail(&log_path, log_start).lines().last() {
            printer.spin(last);
        }
        if let Some(status) = steady_status(&run_dir, child.id()).await {
            printer.finish();
            if cx.output.is_json() {
                cx.output.json(&status)?;
            } else {
                cx.output.line(format!(
                    "{} is up at {} (berth pid {}, log {})",
                    status.stack,
                    status.url,
                    status.pid,
                    log_path.display()
                ));
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The status of the berth with pid `berth` once every service is steady (another berth
/// answering on the socket does not count).
async fn steady_status(run_dir: &Path, berth: u32) -> Option<berth_local::control::StatusReport> {
    let mut client = berth_local::control::ControlClient::connect(run_dir)
        .await
        .ok()?;
    match client.request(&Request::Status).await.ok()? {
        Response::Status { status }
            if status.pid == berth
                && !status.services.is_empty()
                && status.services.iter().all(|s| s.steady_state) =>
        {
            Some(*status)
        }
        _ => None,
    }
}

/// What the detached berth wrote since it started (the last 40 lines).
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
