//! A local mixsync stack made of child processes of this binary (`mixsync serve <service>`), as an
//! operator would run it: used by `mixsync demo` and `mixsync bench`. Each service's output goes to a
//! log file; each process's peak memory can be read while it runs.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::client::{self, Control};
use crate::serve::Service;

/// One running service.
pub(crate) struct Process {
    pub(crate) service: Service,
    /// The service's name, with `#N` for the N-th replica (N ≥ 2).
    pub(crate) name: String,
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

/// The running stack; stopping it (or dropping it) stops every process.
pub(crate) struct Stack {
    pub(crate) processes: Vec<Process>,
    pub(crate) grpc_url: String,
    pub(crate) api_token: String,
}

/// A free TCP port on loopback (the OS picks it; it is free again when this returns).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free local port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether something listens on a loopback port.
pub(crate) fn port_in_use(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Starts `mixsync serve <service>` with `env`, its output in `log_dir/<service>.log`.
pub(crate) fn spawn(
    service: Service,
    env: &[(String, String)],
    log_dir: &Path,
) -> anyhow::Result<Process> {
    spawn_replica(service, 1, env, log_dir)
}

/// Starts replica `n` (from 1) of `mixsync serve <service>`; replicas after the first log to
/// `log_dir/<service>-<n>.log`.
pub(crate) fn spawn_replica(
    service: Service,
    n: usize,
    env: &[(String, String)],
    log_dir: &Path,
) -> anyhow::Result<Process> {
    let exe = std::env::current_exe().context("cannot find the mixsync binary")?;
    std::fs::create_dir_all(log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let (name, file_name) = if n <= 1 {
        (service.name().to_owned(), service.name().to_owned())
    } else {
        (
            format!("{}#{n}", service.name()),
            format!("{}-{n}", service.name()),
        )
    };
    let log = log_dir.join(format!("{file_name}.log"));
    let file =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let child = Command::new(exe)
        .args(["serve", service.name()])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start `mixsync serve {}`", service.name()))?;
    Ok(Process {
        service,
        name,
        child,
        log,
    })
}

/// Peak resident memory of a process in KiB (`VmHWM`), while it runs.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time the whole machine has spent busy so far (every process, PostgreSQL and RabbitMQ
/// included), in seconds: the `cpu` line of `/proc/stat` without idle and iowait.
pub(crate) fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(busy as f64 / 100.0)
}

/// CPU time (user + system) a process has used so far, in seconds. `/proc` counts in USER_HZ ticks,
/// which Linux fixes at 100 per second for user space.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

impl Stack {
    /// Waits until the control plane answers, or explains which process died.
    pub(crate) async fn connect(&mut self, within: Duration) -> anyhow::Result<Control> {
        let deadline = Instant::now() + within;
        loop {
            for p in &mut self.processes {
                if let Some(status) = p.child.try_wait()? {
                    anyhow::bail!(
                        "`mixsync serve {}` ({}) stopped at start ({status}); its log {}:\n{}",
                        p.service.name(),
                        p.name,
                        p.log.display(),
                        tail(&p.log, 20)
                    );
                }
            }
            match client::connect(
                &self.grpc_url,
                Some(&self.api_token),
                &client::ClientTls::default(),
            )
            .await
            {
                Ok(mut control) => {
                    // A connection is not enough: the first call proves migrations ran and auth works.
                    match control
                        .list_warehouses(mixsync_proto::v1::ListWarehousesRequest::default())
                        .await
                    {
                        Ok(_) => return Ok(control),
                        Err(status) if Instant::now() > deadline => {
                            return Err(client::status_error(status));
                        }
                        Err(_) => {}
                    }
                }
                Err(error) if Instant::now() > deadline => return Err(error),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops every process: SIGTERM, then SIGKILL after a grace period.
    pub(crate) async fn stop(mut self) {
        for p in &self.processes {
            if let Some(pid) = p.child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for p in &mut self.processes {
            if tokio::time::timeout(Duration::from_secs(10), p.child.wait())
                .await
                .is_err()
            {
                let _ = p.child.start_kill();
                let _ = p.child.wait().await;
            }
        }
    }
}

/// The last lines of a log file.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
