//! The platform as separate OS processes: `platform serve` started by the harness, one or several
//! instances, on embedded backends or on the real services its configuration names.
//!
//! In-process targets (MOCK, GOLDEN) cannot show what only a process shows: a crash that takes
//! the whole address space with it, a process frozen by SIGSTOP, several instances sharing one
//! database and broker, the binary's own start-up checks and logs. This module starts such
//! processes from a full [`Config`] (written to a file, `--config FILE`), waits until each is
//! ready, keeps every line each one writes, knows their pids for process faults, and stops them.
//! The binary is built by the harness itself ([`platform_binary`]), so a test never depends on a
//! binary someone happened to build before.

use platform::config::Config;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The environment variable naming a platform binary to use instead of building one (a release
/// artefact, a binary built with other features, a machine without the sources).
pub const PLATFORM_BIN_ENV: &str = "HARNESS_PLATFORM_BIN";

/// The start of the first line `platform serve` prints, followed by the address it bound.
const BANNER: &str = "platform listening on http://";

/// How many of an instance's last log lines an error quotes.
const TAIL_LINES: usize = 30;

/// Added to `id_seed` once per launch after the first, as `Target::restart` does in-process:
/// instances sharing a database must not draw the same run and event ids, nor may a restarted
/// instance reissue the ids its predecessor used.
const ID_SEED_STEP: u64 = 0x9e37_79b9_7f4a_7c15;

/// How long the log readers get to drain a pipe after their process ended.
const DRAIN: Duration = Duration::from_secs(2);

/// Why a spawned platform could not be built, started, signalled or stopped. Start failures carry
/// the instance's own last log lines, so the platform's reason is in the message.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// No platform binary could be built (no `HARNESS_PLATFORM_BIN` was given). Shared: the
    /// build runs once per process, and every later start gets its result.
    #[error("cannot build the platform binary (set {PLATFORM_BIN_ENV} to use a built one): {0}")]
    Build(#[source] Arc<BuildError>),
    /// The binary `HARNESS_PLATFORM_BIN` names does not exist.
    #[error("{PLATFORM_BIN_ENV}={0} is not a file")]
    NoBinary(PathBuf),
    /// The configuration does not convert to or from JSON, the form it is compared in.
    #[error("the platform configuration does not survive its file: {0}")]
    ConfigJson(#[source] serde_json::Error),
    /// The configuration does not write as YAML, or its file does not read back.
    #[error("the platform configuration does not survive its file: {0}")]
    ConfigYaml(#[source] serde_norway::Error),
    /// The configuration reads back from its file different: the top-level fields that changed.
    #[error(
        "the platform configuration does not survive its file: {} changed when read back",
        fields.join(", ")
    )]
    ConfigChanged { fields: Vec<String> },
    /// The HTTP client that polls `GET /readyz` could not be built.
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// A file, process or signal operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A process id does not fit the system's `pid_t`, so it cannot be signalled.
    #[error("pid {0} is out of range")]
    PidOutOfRange(u32),
    /// The process ended before it was ready (a refused configuration, an unreachable backend).
    #[error("instance {index} (pid {pid}) exited before it was ready ({status}); its last log lines:\n{log}")]
    Exited {
        index: usize,
        pid: u32,
        status: String,
        log: String,
    },
    /// The process did not become ready in `ready_timeout`; it was killed.
    #[error("instance {index} (pid {pid}) was not ready (GET /readyz 200) within {waited:?}; killed; its last log lines:\n{log}")]
    NotReady {
        index: usize,
        pid: u32,
        waited: Duration,
        log: String,
    },
    /// An instance index beyond the set.
    #[error("there is no instance {index} (there are {count})")]
    NoInstance { index: usize, count: usize },
}

/// Why `cargo build` of the platform binary gave no binary.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// cargo could not be run at all (not installed, not executable).
    #[error("cannot run `{command}`: {source}")]
    CannotRun {
        command: String,
        source: std::io::Error,
    },
    /// cargo ran and failed (a compile error, a locked target directory); `output` is its last
    /// lines of error output.
    #[error("`{command}` in {} failed ({status}):\n{output}", workspace.display())]
    Failed {
        command: String,
        workspace: PathBuf,
        status: ExitStatus,
        output: String,
    },
    /// cargo succeeded, but the binary is not where its artifact message (or the target
    /// directory) says.
    #[error("`{command}` succeeded but {} is not there", path.display())]
    NotThere { command: String, path: PathBuf },
    /// The blocking task that runs the build panicked or was cancelled.
    #[error("the build did not finish: {0}")]
    Interrupted(#[source] tokio::task::JoinError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SpawnError {
    let what = what.into();
    move |source| SpawnError::Io { what, source }
}

/// The `platform` binary to spawn: the one `HARNESS_PLATFORM_BIN` names, else one built now by
/// `cargo build --workspace --bin platform` in this harness's workspace (once per process).
///
/// The build uses the harness's own profile (debug, or `--release` when the harness is a release
/// build) and, when the platform library linked into the harness has the `planted-defects`
/// feature (the workspace's test builds), that feature too, so that the binary accepts the same
/// configuration (`planted:`) and `cargo test --workspace` finds it already built.
/// `--workspace` rather than `-p platform`: the workspace's feature unification is what the
/// platform is built and tested with. The path comes from cargo's own artifact message (so
/// `CARGO_TARGET_DIR` and `build.target-dir` are honoured), else from the target directory.
pub fn platform_binary() -> Result<PathBuf, SpawnError> {
    if let Some(p) = std::env::var_os(PLATFORM_BIN_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(SpawnError::NoBinary(p))
        };
    }
    static BUILT: OnceLock<Result<PathBuf, Arc<BuildError>>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_platform().map_err(Arc::new))
        .clone()
        .map_err(SpawnError::Build)
}

/// Whether the platform library linked into this harness was built with `planted-defects`.
fn planted_defects_linked() -> bool {
    serde_json::to_value(Config::default())
        .map(|v| v.get("planted").is_some())
        .unwrap_or(false)
}

fn build_platform() -> Result<PathBuf, BuildError> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let cargo = option_env!("CARGO")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| std::env::var_os("CARGO").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let mut args = vec![
        "build",
        "--workspace",
        "--bin",
        "platform",
        "--message-format=json-render-diagnostics",
    ];
    let release = !cfg!(debug_assertions);
    if release {
        args.push("--release");
    }
    if planted_defects_linked() {
        args.extend(["--features", "platform/planted-defects"]);
    }
    let command = format!("{} {}", cargo.display(), args.join(" "));
    let out = match std::process::Command::new(&cargo)
        .args(&args)
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(source) => return Err(BuildError::CannotRun { command, source }),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(BuildError::Failed {
            command,
            workspace,
            status: out.status,
            output: tail(&err.lines().map(str::to_string).collect::<Vec<_>>()),
        });
    }
    let reported = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "platform")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from));
    let path = reported.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(|d| workspace.join(d))
            .unwrap_or_else(|| workspace.join("target"));
        target
            .join(if release { "release" } else { "debug" })
            .join(format!("platform{}", std::env::consts::EXE_SUFFIX))
    });
    if path.is_file() {
        Ok(path)
    } else {
        Err(BuildError::NotThere { command, path })
    }
}

/// What to start: how many instances of which configuration, in which environment, and how long
/// to wait for them. The defaults of [`SpawnOptions::new`] suit a test.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// How many `platform serve` processes; each listens on its own free loopback port.
    pub instances: usize,
    /// The whole configuration of every instance, written to a file (`addr` is replaced by
    /// `127.0.0.1:0`; `id_seed`, when set, is stepped for each launch after the first so that
    /// instances on shared backends draw distinct ids; instance 0's first process runs it as
    /// given). Embedded backends are per process; real ones are shared through their URLs.
    pub config: Config,
    /// Variables set for every instance. The harness's own `PLATFORM_*`, `DATABASE_URL`,
    /// `NATS_URL` and `REDIS_URL` are removed first, so that the configuration file is the whole
    /// truth unless a variable is added back here.
    pub env: Vec<(String, String)>,
    /// How long an instance may take to answer `GET /readyz` with 200 (60 s).
    pub ready_timeout: Duration,
    /// How long [`Spawned::stop`] waits after SIGTERM before SIGKILL (5 s).
    pub stop_grace: Duration,
    /// The binary to run; [`platform_binary`] when unset.
    pub binary: Option<PathBuf>,
}

impl SpawnOptions {
    /// One instance of `config`, the inherited environment (less the platform's variables), 60 s
    /// to become ready and 5 s to stop gracefully.
    pub fn new(config: Config) -> Self {
        Self {
            instances: 1,
            config,
            env: Vec::new(),
            ready_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(5),
            binary: None,
        }
    }
}

/// Every line one instance wrote, stdout and stderr interleaved in arrival order.
type Log = Arc<Mutex<Vec<String>>>;

/// One running (or ended) `platform serve` process.
struct Proc {
    child: Child,
    pid: u32,
    base_url: String,
    log: Log,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    /// Whether the process has not been reaped yet: only then is its pid still its own, so only
    /// then may it be signalled.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Lets the log readers finish reading what the ended process wrote.
    async fn drain(&mut self) {
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(DRAIN, r).await;
        }
    }
}

/// A running set of `platform serve` processes. Dropping it kills whatever still runs; each
/// process also gets SIGKILL from the kernel if the harness itself dies (Linux), so a crashed run
/// leaves no platform behind.
pub struct Spawned {
    procs: Vec<Proc>,
    bin: PathBuf,
    opts: SpawnOptions,
    /// The configuration files, one per launch; removed on drop.
    dir: tempfile::TempDir,
    launches: u64,
    http: reqwest::Client,
}

impl Spawned {
    /// Starts `opts.instances` processes one after another (so that start-up work on shared
    /// backends, such as migrations, never races) and waits until each answers `GET /readyz`
    /// with 200. 200 includes `degraded` (the store answers; a broker or Kv outage is survivable),
    /// 503 (the store does not answer) is not ready yet. An instance that exits or is not ready in
    /// `ready_timeout` is killed, and the error quotes its last log lines and exit status; the
    /// instances started before it are killed too.
    pub async fn start(opts: SpawnOptions) -> Result<Self, SpawnError> {
        let bin = match &opts.binary {
            Some(b) => b.clone(),
            None => tokio::task::spawn_blocking(platform_binary)
                .await
                .map_err(|e| SpawnError::Build(Arc::new(BuildError::Interrupted(e))))??,
        };
        let dir = tempfile::Builder::new()
            .prefix("harness-spawned-")
            .tempdir()
            .map_err(io("cannot create a directory for the configuration files"))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(SpawnError::HttpClient)?;
        let mut set = Spawned {
            procs: Vec::with_capacity(opts.instances),
            bin,
            opts,
            dir,
            launches: 0,
            http,
        };
        for i in 0..set.opts.instances {
            let p = set.launch(i, Log::default()).await?;
            set.procs.push(p);
        }
        Ok(set)
    }

    /// Each instance's base URL (`http://127.0.0.1:PORT`), by index. A restart changes it.
    pub fn base_urls(&self) -> Vec<String> {
        self.procs.iter().map(|p| p.base_url.clone()).collect()
    }

    /// Each instance's process id, by index, for process faults. A restart changes it.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.pid).collect()
    }

    /// Every line instance `i` wrote so far (stdout and stderr, in arrival order; across its
    /// restarts). Empty for an index that does not exist.
    pub fn logs(&self, i: usize) -> Vec<String> {
        self.procs
            .get(i)
            .map(|p| p.log.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Stops every instance as an orchestrator would: SIGTERM to all (in-flight requests finish),
    /// then, after `stop_grace`, SIGKILL to those still running. Every process is reaped and its
    /// log complete when this returns. Instances already ended are left as they are.
    pub async fn stop(&mut self) -> Result<(), SpawnError> {
        for p in &mut self.procs {
            if p.running() {
                send(p.pid, libc::SIGTERM)?;
                // A process frozen by SIGSTOP must run again to handle it.
                send(p.pid, libc::SIGCONT)?;
            }
        }
        let deadline = Instant::now() + self.opts.stop_grace;
        for p in &mut self.procs {
            let what = format!("waiting for pid {}", p.pid);
            if tokio::time::timeout_at(deadline, p.child.wait())
                .await
                .is_err()
            {
                let _ = p.child.start_kill();
                p.child.wait().await.map_err(io(what))?;
            }
            p.drain().await;
        }
        Ok(())
    }

    /// Kills instance `i` with SIGKILL, as a crash would, and reaps it; the others go on. Returns
    /// its exit status (that of the earlier end when it had already ended).
    pub async fn kill(&mut self, i: usize) -> Result<ExitStatus, SpawnError> {
        let p = self.proc(i)?;
        if p.running() {
            p.child
                .start_kill()
                .map_err(io(format!("cannot kill pid {}", p.pid)))?;
        }
        let status = p
            .child
            .wait()
            .await
            .map_err(io(format!("waiting for pid {}", p.pid)))?;
        p.drain().await;
        Ok(status)
    }

    /// Sends `signal` (`libc::SIGSTOP`, `libc::SIGCONT`, ...) to instance `i` if it still runs:
    /// the hook of process faults other than a kill.
    pub fn signal(&mut self, i: usize, signal: libc::c_int) -> Result<(), SpawnError> {
        let p = self.proc(i)?;
        if p.running() {
            send(p.pid, signal)?;
        }
        Ok(())
    }

    /// Kills instance `i` (if it runs) and starts a new process in its place with the same
    /// configuration (its `id_seed` stepped: a new process draws new ids) and the same log, and
    /// waits until it is ready. The new process has a new pid and port. Its manual clock, if any,
    /// starts again at the epoch.
    pub async fn restart(&mut self, i: usize) -> Result<(), SpawnError> {
        self.kill(i).await?;
        let log = self.proc(i)?.log.clone();
        let fresh = self.launch(i, log).await?;
        self.procs[i] = fresh;
        Ok(())
    }

    fn proc(&mut self, index: usize) -> Result<&mut Proc, SpawnError> {
        let count = self.procs.len();
        self.procs
            .get_mut(index)
            .ok_or(SpawnError::NoInstance { index, count })
    }

    /// Starts one process for instance `index`, logging to `log`, and waits until it is ready.
    async fn launch(&mut self, index: usize, log: Log) -> Result<Proc, SpawnError> {
        let n = self.launches;
        self.launches += 1;
        let mut cfg = self.opts.config.clone();
        cfg.id_seed = cfg
            .id_seed
            .map(|s| s.wrapping_add(n.wrapping_mul(ID_SEED_STEP)));
        let path = self.dir.path().join(format!("instance-{index}-{n}.yaml"));
        std::fs::write(&path, config_file(&cfg)?)
            .map_err(io(format!("cannot write {}", path.display())))?;

        let mut cmd = Command::new(&self.bin);
        cmd.arg("--config")
            .arg(&path)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str() {
                if k.starts_with("PLATFORM_")
                    || matches!(k, "DATABASE_URL" | "NATS_URL" | "REDIS_URL")
                {
                    cmd.env_remove(k);
                }
            }
        }
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k, v)));
        let mut child = spawn_kept(cmd)
            .await
            .map_err(io(format!("cannot start {}", self.bin.display())))?;
        let pid = child.id().unwrap_or_default();
        let (banner_tx, banner) = oneshot::channel();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(read_lines(out, log.clone(), Some(banner_tx)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(read_lines(err, log.clone(), None));
        }
        let mut proc = Proc {
            child,
            pid,
            base_url: String::new(),
            log,
            readers,
        };
        match self.wait_ready(&mut proc, banner).await {
            Ok(url) => {
                proc.base_url = url;
                Ok(proc)
            }
            Err(died) => {
                if died.is_none() {
                    let _ = proc.child.start_kill();
                }
                let _ = proc.child.wait().await;
                proc.drain().await;
                let log = tail(&proc.log.lock().unwrap_or_else(|e| e.into_inner()));
                Err(match died {
                    Some(status) => SpawnError::Exited {
                        index,
                        pid,
                        status: status.to_string(),
                        log,
                    },
                    None => SpawnError::NotReady {
                        index,
                        pid,
                        waited: self.opts.ready_timeout,
                        log,
                    },
                })
            }
        }
    }

    /// The base URL once the process printed it and answers `GET /readyz` with 200; else the
    /// exit status if it ended (`Err(Some)`) or `Err(None)` at the deadline.
    async fn wait_ready(
        &self,
        p: &mut Proc,
        mut banner: oneshot::Receiver<String>,
    ) -> Result<String, Option<ExitStatus>> {
        let deadline = Instant::now() + self.opts.ready_timeout;
        let pause = Duration::from_millis(50);
        let mut url: Option<String> = None;
        let mut banner_open = true;
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(Some(status));
            }
            if Instant::now() >= deadline {
                return Err(None);
            }
            match &url {
                None if banner_open => match tokio::time::timeout(pause, &mut banner).await {
                    Ok(Ok(u)) => url = Some(u),
                    // Stdout closed without the banner: the process is ending.
                    Ok(Err(_)) => banner_open = false,
                    Err(_) => {}
                },
                None => tokio::time::sleep(pause).await,
                Some(u) => match self.http.get(format!("{u}/readyz")).send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::OK => return Ok(u.clone()),
                    _ => tokio::time::sleep(pause).await,
                },
            }
        }
    }
}

impl Drop for Spawned {
    /// Kills every process still running (`kill_on_drop` would too; this makes it explicit and
    /// immediate). The configuration files go with the temporary directory.
    fn drop(&mut self) {
        for p in &mut self.procs {
            if p.running() {
                let _ = p.child.start_kill();
            }
        }
    }
}

/// The YAML file of `cfg`, checked to load back as the very same configuration (the platform
/// refuses unknown keys, and a field that does not survive would silently differ). The
/// `planted:` section is left out while it is the default, so a binary built without
/// `planted-defects` accepts the file.
fn config_file(cfg: &Config) -> Result<String, SpawnError> {
    let want = serde_json::to_value(cfg).map_err(SpawnError::ConfigJson)?;
    let mut written = want.clone();
    let default = serde_json::to_value(Config::default()).map_err(SpawnError::ConfigJson)?;
    if let Some(obj) = written.as_object_mut() {
        if obj.get("planted").is_some() && obj.get("planted") == default.get("planted") {
            obj.remove("planted");
        }
    }
    let text = serde_norway::to_string(&written).map_err(SpawnError::ConfigYaml)?;
    let back: Config = serde_norway::from_str(&text).map_err(SpawnError::ConfigYaml)?;
    let got = serde_json::to_value(&back).map_err(SpawnError::ConfigJson)?;
    if got != want {
        let fields: Vec<String> = match (want.as_object(), got.as_object()) {
            (Some(w), Some(g)) => w
                .iter()
                .filter(|(k, v)| g.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect(),
            _ => vec!["(the whole document)".into()],
        };
        return Err(SpawnError::ConfigChanged { fields });
    }
    Ok(text)
}

/// The last [`TAIL_LINES`] lines, for an error message.
fn tail(lines: &[String]) -> String {
    let from = lines.len().saturating_sub(TAIL_LINES);
    if lines.is_empty() {
        return "  (nothing)".into();
    }
    lines[from..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends `signal` to `pid`, which the caller knows is an unreaped child of ours.
fn send(pid: u32, signal: libc::c_int) -> Result<(), SpawnError> {
    let pid_t = libc::pid_t::try_from(pid).map_err(|_| SpawnError::PidOutOfRange(pid))?;
    // SAFETY: kill(2) has no memory effects; the pid is our own unreaped child.
    if unsafe { libc::kill(pid_t, signal) } != 0 {
        return Err(SpawnError::Io {
            what: format!("cannot send signal {signal} to pid {pid}"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Reads `r` line by line into `log` until it closes (invalid UTF-8 replaced, not fatal). The
/// first line with the serve banner sends its URL through `banner`.
fn read_lines<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    log: Log,
    mut banner: Option<oneshot::Sender<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            if let Some(addr) = line
                .strip_prefix(BANNER)
                .and_then(|rest| rest.split_whitespace().next())
            {
                if let Some(tx) = banner.take() {
                    let _ = tx.send(format!("http://{addr}"));
                }
            }
            log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    })
}

/// Spawns `cmd` so that the child dies with the harness. The kernel's parent-death signal fires
/// when the *thread* that forked the child ends, and a runtime's threads come and go (each test
/// has its own), so on Linux every child is forked by one keeper thread that lives as long as the
/// process, inside the caller's runtime (which the child's pipes and reaping belong to).
async fn spawn_kept(mut cmd: Command) -> std::io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl is async-signal-safe and changes only the calling (child) process.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let handle = tokio::runtime::Handle::current();
        let (tx, rx) = oneshot::channel();
        crate::infra::spawn::on_keeper_thread(Box::new(move || {
            let _inside = handle.enter();
            let _ = tx.send(cmd.spawn());
        }))?;
        rx.await
            .map_err(|_| std::io::Error::other("the keeper thread is gone"))?
    }
    #[cfg(not(target_os = "linux"))]
    {
        cmd.spawn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mock_configuration_survives_its_file() {
        let mut cfg = crate::target::mock_config(42);
        cfg.manual_clock = true;
        cfg.canary_share.insert("acme".into(), 0.1 + 0.2);
        let text = config_file(&cfg).unwrap();
        assert!(text.contains("manual_clock: true"), "{text}");
        assert!(!text.contains("planted:"), "{text}");
        let back: Config = serde_norway::from_str(&text).unwrap();
        assert_eq!(back.operator_key, cfg.operator_key);
        assert_eq!(back.canary_share.get("acme"), Some(&(0.1 + 0.2)));
    }

    #[test]
    fn an_error_quotes_the_last_lines_only() {
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let t = tail(&lines);
        assert!(t.contains("line 99") && t.contains("line 70"), "{t}");
        assert!(!t.contains("line 69"), "{t}");
        assert_eq!(tail(&[]), "  (nothing)");
    }
}
