//! A throwaway PostgreSQL server for tests and examples: `initdb` into a
//! fresh directory, `postgres` on 127.0.0.1 with an ephemeral port and
//! trust authentication, stopped and removed when dropped (also when a test
//! fails). Run as the `postgres` system user when running as root (`initdb`
//! refuses root). It fails loudly, never skips, if the server cannot start.
//!
//! `TASKSCOPE_PG_LOG=<file>` keeps the server's log there, with every
//! statement, its duration and each cancel request the server processes,
//! timestamped to the millisecond: how the cancellation races were traced.
#![allow(dead_code)] // each user takes what it needs

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running server; dropped, it is stopped and its files removed.
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    postgres: Child,
}

impl PgServer {
    /// Starts a fresh server. Panics, saying why, if it cannot.
    pub fn start() -> PgServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let bin = binaries();
        let dir = std::env::temp_dir().join(format!(
            "taskscope-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create the server's directory");
        let as_root = is_root();
        if as_root {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("cannot run chown");
            assert!(
                owned.success(),
                "cannot give {} to the postgres user",
                dir.display()
            );
        }
        let data = dir.join("data");
        let init = run_as(as_root, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .expect("cannot run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let mut command = run_as(as_root, &bin.join("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=50",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(log) = std::env::var_os("TASKSCOPE_PG_LOG") {
            let log = std::fs::File::create(log).expect("cannot create TASKSCOPE_PG_LOG");
            command.stderr(log).args([
                "-c",
                "log_line_prefix=%m [%p] ",
                "-c",
                "log_min_messages=debug2",
                "-c",
                "log_min_duration_statement=0",
                "-c",
                "log_connections=on",
            ]);
        }
        let postgres = command.spawn().expect("cannot start postgres");
        reap_on_exit(postgres.id(), &dir);
        let server = PgServer {
            dir,
            port,
            postgres,
        };
        server.wait_until_ready();
        server
    }

    /// The connection string for the `postgres` database.
    pub fn config(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// A pool of at most `size` connections that resets each connection
    /// when it comes back (so no query's `statement_timeout` lingers).
    pub fn pool(&self, size: usize) -> deadpool_postgres::Pool {
        use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
        let config: tokio_postgres::Config = self.config().parse().unwrap();
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Clean,
            },
        );
        Pool::builder(manager).max_size(size).build().unwrap()
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // Accepting connections is not yet accepting queries: ask.
                let ready = Command::new(psql())
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                    .args(["-U", "postgres", "-d", "postgres", "-c", "SELECT 1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                if ready.is_ok_and(|s| s.success()) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the PostgreSQL server on port {} did not start in 60 s",
            self.port
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGINT: a fast shutdown, which ends every backend.
        let _ = Command::new("kill")
            .args(["-INT", &self.postgres.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.postgres.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.postgres.kill();
        let _ = self.postgres.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How many statements that mention `marker` the server is running now
/// (asked from another connection: `observer`).
pub async fn running(observer: &tokio_postgres::Client, marker: &str) -> i64 {
    observer
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            &[&marker],
        )
        .await
        .expect("cannot read pg_stat_activity")
        .get(0)
}

/// A server kept for a whole test binary (in a `static`) is never dropped:
/// a small watcher stops it and removes its files once this process has
/// exited, however it exits.
fn reap_on_exit(server: u32, dir: &Path) {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.2; done; \
         kill -INT {server} 2>/dev/null; \
         for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 {server} 2>/dev/null || break; sleep 0.5; done; \
         kill -KILL {server} 2>/dev/null; rm -rf '{dir}'",
        me = std::process::id(),
        dir = dir.display(),
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// Where `initdb` and `postgres` are: on the PATH, else Debian's place.
fn binaries() -> PathBuf {
    if let Some(initdb) = find_on_path("initdb") {
        return initdb.parent().unwrap().to_path_buf();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect(
        "PostgreSQL's initdb is neither on the PATH nor under /usr/lib/postgresql: \
         install the server (Debian: apt-get install postgresql)",
    )
}

fn psql() -> PathBuf {
    find_on_path("psql").unwrap_or_else(|| binaries().join("psql"))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user when we are root. `setpriv` execs
/// the program in place, so killing the child kills the server itself.
fn run_as(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A port nobody listens on now (the kernel's choice).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("cannot find a free port")
}
