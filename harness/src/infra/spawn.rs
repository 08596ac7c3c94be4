//! Private service instances for a run: `nats-server` with JetStream in a temporary directory,
//! `redis-server` without persistence, and a Postgres cluster made with `initdb` and run with
//! `postgres` (as the `postgres` user when the harness runs as root, since Postgres refuses root).
//! Each child dies with the harness (the kernel's parent-death signal), so a crashed run leaves no
//! server behind; its data directory is removed when the handle drops.

use super::InfraError;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a private instance may take to listen on its port.
const LISTEN_WAIT: Duration = Duration::from_secs(20);

/// A service this run started; killed and its directory removed on drop.
pub struct Spawned {
    child: Child,
    dir: PathBuf,
    /// What it is, for messages: `nats-server on 127.0.0.1:40123`.
    pub what: String,
}

impl Spawned {
    /// The port the service listens on is closed: stop it (chaos kills what the run spawned).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free TCP port on loopback (bound then released; the window for a race is small).
pub fn free_port() -> Result<u16, InfraError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(InfraError::NoFreePort)
}

fn temp_dir(kind: &str) -> Result<PathBuf, InfraError> {
    let dir = std::env::temp_dir().join(format!(
        "harness-{kind}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    match std::fs::create_dir_all(&dir) {
        Ok(()) => Ok(dir),
        Err(source) => Err(InfraError::CreateDir { path: dir, source }),
    }
}

/// `name` found by [`find_binary`], or the error that says it is not installed.
fn installed(name: &'static str) -> Result<PathBuf, InfraError> {
    find_binary(name).ok_or(InfraError::NotInstalled(name))
}

/// Finds `name` on PATH or in Postgres's versioned bin directories.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .collect();
        versions.sort();
        dirs.extend(versions.into_iter().rev());
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Runs `job` (a fork of a child that must die with the harness) on the process's one keeper
/// thread. The parent-death signal fires when the *thread* that forked the child ends, so every
/// such child, a service here or a platform process of `target::spawned`, is forked by one thread
/// that lives as long as the process.
pub(crate) fn on_keeper_thread(job: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    type Job = Box<dyn FnOnce() + Send>;
    static KEEPER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("harness-children".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
                // The process is ending; park so the children live until it does.
                loop {
                    std::thread::park();
                }
            })
            .ok();
        std::sync::Mutex::new(tx)
    });
    keeper
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .map_err(|_| std::io::Error::other("the keeper thread is gone"))
}

/// Runs `cmd.spawn()` on the keeper thread.
fn spawn_kept(mut cmd: Command) -> Result<Child, InfraError> {
    let program = PathBuf::from(cmd.get_program());
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = on_keeper_thread(Box::new(move || {
        let _ = tx.send(cmd.spawn());
    }))
    .and_then(|()| {
        rx.recv()
            .map_err(|_| std::io::Error::other("the keeper thread is gone"))?
    });
    spawned.map_err(|source| InfraError::Spawn { program, source })
}

/// The child gets SIGKILL when the harness dies, whatever the way.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Waits until `port` accepts connections or the child exits.
fn wait_listening(child: &mut Child, port: u16, what: &str) -> Result<(), InfraError> {
    let start = Instant::now();
    while start.elapsed() < LISTEN_WAIT {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(InfraError::Exited {
                what: what.to_string(),
                status,
            });
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(InfraError::NotListening {
        what: what.to_string(),
        port,
        waited: LISTEN_WAIT,
    })
}

/// Starts `bin` (a `nats-server`) with JetStream on `port`, its store in `dir`, and waits until it
/// listens.
fn start_nats(bin: &Path, port: u16, dir: &Path, what: &str) -> Result<Child, InfraError> {
    let mut cmd = Command::new(bin);
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    die_with_parent(&mut cmd);
    let mut child = spawn_kept(cmd)?;
    wait_listening(&mut child, port, what)?;
    Ok(child)
}

/// A `nats-server` with JetStream; returns it and its URL.
pub fn nats() -> Result<(Spawned, String), InfraError> {
    let bin = installed("nats-server")?;
    let port = free_port()?;
    let dir = temp_dir("nats")?;
    let what = format!("nats-server on 127.0.0.1:{port}");
    let child = start_nats(&bin, port, &dir, &what)?;
    Ok((
        Spawned { child, dir, what },
        format!("nats://127.0.0.1:{port}"),
    ))
}

/// Restarts a spawned `nats-server` on the same port and store directory (chaos: the broker
/// comes back with its streams).
pub fn restart_nats(old: &mut Spawned, url: &str) -> Result<(), InfraError> {
    old.kill();
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| InfraError::NoPort {
            url: url.to_string(),
        })?;
    let bin = installed("nats-server")?;
    old.child = start_nats(&bin, port, &old.dir, &old.what)?;
    Ok(())
}

/// A `redis-server` that keeps nothing on disk; returns it and its URL.
pub fn redis() -> Result<(Spawned, String), InfraError> {
    let bin = installed("redis-server")?;
    let port = free_port()?;
    let dir = temp_dir("redis")?;
    let mut cmd = Command::new(&bin);
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .arg("--dir")
    .arg(&dir)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    die_with_parent(&mut cmd);
    let mut child = spawn_kept(cmd)?;
    let what = format!("redis-server on 127.0.0.1:{port}");
    wait_listening(&mut child, port, &what)?;
    Ok((
        Spawned { child, dir, what },
        format!("redis://127.0.0.1:{port}"),
    ))
}

/// The uid and gid of the `postgres` user, when the harness runs as root.
fn postgres_user() -> Result<Option<(u32, u32)>, InfraError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam takes a NUL-terminated name and returns null or a pointer to a static
    // record that we copy at once.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        return Err(InfraError::NoPostgresUser);
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some((uid, gid)))
}

fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, user: Option<(u32, u32)>) -> Result<(), InfraError> {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|source| {
            InfraError::Chown {
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

/// A private Postgres cluster (trust authentication on loopback); returns it and the URL of its
/// `postgres` superuser.
pub fn postgres() -> Result<(Spawned, String), InfraError> {
    let initdb = installed("initdb")?;
    let server = installed("postgres")?;
    let user = postgres_user()?;
    let port = free_port()?;
    let dir = temp_dir("pg")?;
    chown(&dir, user)?;
    let data = dir.join("data");
    let mut init = Command::new(&initdb);
    init.arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    as_user(&mut init, user);
    let out = init.output().map_err(|source| InfraError::Spawn {
        program: initdb.clone(),
        source,
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(InfraError::InitdbFailed {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let mut cmd = Command::new(&server);
    cmd.arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "fsync=off", "-c", "max_connections=200"])
        .arg("-k")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_user(&mut cmd, user);
    die_with_parent(&mut cmd);
    let mut child = spawn_kept(cmd)?;
    let what = format!("postgres on 127.0.0.1:{port}");
    wait_listening(&mut child, port, &what)?;
    Ok((
        Spawned { child, dir, what },
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    ))
}
