//! `#[taskscope::main]` in a real process: the example binaries are
//! started as child processes and sent SIGINT. Checks the graceful path,
//! the abort after the grace period, and the abort on a second signal, with
//! the documented exit codes (0 success, 1 failure, 2 aborted, 130 interrupted).
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

// The exit codes `#[taskscope::main]` documents.
const SUCCESS: i32 = 0;
const FAILURE: i32 = 1;
const ABORTED: i32 = 2;
const INTERRUPTED: i32 = 130;

/// `target/<profile>/examples/<name>`. A full `cargo test` builds the
/// examples; when only this test was built, build the one it needs.
fn example(name: &str) -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile_dir = test.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--example", name]);
        // The server examples live in this crate; the others in the library's.
        match name {
            "axum_search" | "request_context" => build.args(["-p", "taskscope-integration"]),
            _ => build.args(["-p", "taskscope", "--features", "axum"]),
        };
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(
            build.status().unwrap().success(),
            "cannot build example {name}"
        );
    }
    path
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = Command::new(example(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (generously) for a line containing `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(text);
                self.seen.push(line);
                if found {
                    return;
                }
            }
        }
        panic!(
            "no line containing {text:?}; output so far: {:#?}",
            self.seen
        );
    }

    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; returns the code, the time it took, and all output.
    fn exit(mut self) -> (i32, Duration, Vec<String>) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = started.elapsed();
                std::thread::sleep(Duration::from_millis(50));
                self.seen.extend(self.lines.try_iter());
                return (status.code().unwrap_or(-1), took, self.seen);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the process did not exit; output: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn sigint_shuts_the_host_down_gracefully_within_the_grace_period() {
    let mut host = Running::start("host", &[]);
    host.wait_for("ready");
    host.wait_for("worker: step 1");
    host.interrupt();
    let (code, took, output) = host.exit();
    assert_eq!(code, SUCCESS, "{output:#?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    for line in [
        "metrics: cleanup done",
        "worker: cleanup done",
        "all services stopped",
    ] {
        assert!(
            output.iter().any(|l| l.contains(line)),
            "missing {line:?} in {output:#?}"
        );
    }
}

#[test]
fn task_ignoring_cancellation_is_aborted_after_the_grace_period() {
    let mut probe = Running::start("shutdown_probe", &["stubborn"]);
    probe.wait_for("ready");
    probe.interrupt();
    let (code, took, output) = probe.exit();
    assert_eq!(code, ABORTED, "{output:#?}");
    // 300 ms grace, generous bounds either side.
    assert!(took >= Duration::from_millis(250), "took {took:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        output.iter().any(|l| l.contains("polite: cleanup done")),
        "{output:#?}"
    );
    assert!(
        !output.iter().any(|l| l.contains("stubborn: finished")),
        "{output:#?}"
    );
    // No tracing subscriber: the scope's laggard warning reaches stderr.
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("taskscope: scope `probe`")
                && l.contains("still waits for 1 task(s): stubborn (in scope probe)")),
        "{output:#?}"
    );
}

#[test]
fn second_sigint_aborts_at_once() {
    let mut probe = Running::start("shutdown_probe", &["stubborn"]);
    probe.wait_for("ready");
    probe.interrupt();
    probe.wait_for("shutdown requested");
    probe.interrupt();
    let (code, _took, output) = probe.exit();
    assert_eq!(code, INTERRUPTED, "{output:#?}");
    assert!(
        output.iter().any(|l| l.contains("second shutdown signal")),
        "{output:#?}"
    );
}

#[test]
fn sigquit_prints_the_task_tree_and_keeps_running() {
    let mut probe = Running::start("shutdown_probe", &["stubborn"]);
    probe.wait_for("ready");
    let status = Command::new("kill")
        .args(["-QUIT", &probe.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    probe.wait_for("task tree");
    probe.wait_for("task \"stubborn\"");
    // Still running: a shutdown now is handled as usual.
    probe.interrupt();
    probe.wait_for("shutdown requested");
    let (code, _took, output) = probe.exit();
    assert_eq!(code, ABORTED, "{output:#?}");
    // The abort names what the shutdown was waiting on.
    assert!(
        output
            .iter()
            .any(|l| l.contains("task \"stubborn\"") && l.contains("holding the scope")),
        "{output:#?}"
    );
}

/// `taskscope::axum::serve` under `#[taskscope::main]`: SIGINT with a
/// request in flight lets it finish in the drain period, then the process
/// exits cleanly.
#[test]
fn sigint_drains_the_axum_server_and_exits_cleanly() {
    use std::io::{Read, Write};

    let mut server = Running::start("axum_search", &["--serve", "127.0.0.1:0"]);
    server.wait_for("serving http://");
    let line = server.seen.last().unwrap().clone();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    let mut client = std::net::TcpStream::connect(&addr).unwrap();
    client
        .write_all(b"GET /api/products/search?q=everything HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    server.wait_for("server: searching for \"everything\"");
    server.interrupt();
    // The search in flight still gets its answer: its own 500 ms timeout
    // fires inside the server's drain period.
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut response = String::new();
    let _ = client.read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 504"),
        "unexpected response: {response:?}"
    );
    let (code, _took, output) = server.exit();
    assert_eq!(code, SUCCESS, "{output:#?}");
    assert!(
        output.iter().any(|l| l.contains("server: stopped")),
        "{output:#?}"
    );
}

/// The .NET walkthrough's `DataSyncService` (`examples/background_service.rs`): SIGINT
/// during a sync cancels the sync, the loop ends without an error, exit 0.
#[test]
fn sigint_during_a_sync_cancels_it_and_exits_0() {
    let mut service = Running::start("background_service", &[]);
    service.wait_for("sync 1: done");
    service.wait_for("sync 2: started");
    service.interrupt();
    let (code, _took, output) = service.exit();
    assert_eq!(code, SUCCESS, "{output:#?}");
    for line in ["sync 2: cancelled", "stopped cleanly"] {
        assert!(
            output.iter().any(|l| l.contains(line)),
            "missing {line:?} in {output:#?}"
        );
    }
}

/// Three dependent services (`examples/services.rs`): SIGINT stops them in
/// reverse order of their start, and the process exits 0.
#[test]
fn sigint_stops_dependent_services_in_reverse_order() {
    let mut services = Running::start("services", &[]);
    services.wait_for("ready: http://127.0.0.1");
    services.interrupt();
    let (code, _took, output) = services.exit();
    assert_eq!(code, SUCCESS, "{output:#?}");
    let at = |text: &str| {
        output
            .iter()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("missing {text:?} in {output:#?}"))
    };
    assert!(at("http: draining") < at("http: stopped"), "{output:#?}");
    assert!(
        at("http: stopped") < at("database: cancelled"),
        "{output:#?}"
    );
    assert!(
        at("database: cancelled") < at("all services stopped"),
        "{output:#?}"
    );
}

/// A service whose restart budget runs out fails the process: exit 1.
#[test]
fn a_spent_restart_budget_exits_non_zero() {
    let services = Running::start("services", &["exhaust"]);
    let (code, _took, output) = services.exit();
    assert_eq!(code, FAILURE, "{output:#?}");
    assert!(
        output.iter().any(|l| l.contains("worker: run 4 failed")),
        "three restarts, then it gave up: {output:#?}"
    );
    assert!(
        output
            .iter()
            .any(|l| l.contains("BudgetSpent") || l.contains("gave up")),
        "{output:#?}"
    );
    assert!(
        output.iter().any(|l| l.contains("database: cancelled")),
        "the others were stopped: {output:#?}"
    );
    // No tracing subscriber in that program: the host's root scope sends
    // the service's failures to stderr, one line each.
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("taskscope: service `worker` failed (run 1)")),
        "{output:#?}"
    );
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("taskscope: service `worker` gave up")),
        "{output:#?}"
    );
}

/// `#[taskscope::main(bind = …)]` binds on the root scope, and the values a
/// client binds travel in `baggage` through two real servers: the example
/// `request_context` run to its end.
#[test]
fn request_context_carries_values_from_the_root_and_across_processes() {
    let output = Command::new(example("request_context")).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:#?}");
    let line = |place: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(place))
            .unwrap_or_else(|| panic!("no line for {place}:\n{stdout}"))
            .to_owned()
    };
    let travelled = r#"service=Some("example") request_id=Some("r-1001") tenant=Some("acme corp")"#;
    for place in [
        "frontend handler",
        "spawned task",
        "blocking task",
        "next service",
        "shielded cleanup",
    ] {
        assert!(line(place).contains(travelled), "{}", line(place));
    }
    // The transaction reaches the tasks of the scope that bound it, not the
    // shield, nor (it does not travel) the next service.
    assert!(line("spawned task").ends_with("transaction=Some(42)"));
    assert!(line("blocking task").ends_with("transaction=Some(42)"));
    assert!(line("shielded cleanup").ends_with("transaction=None"));
    assert!(line("next service").ends_with("transaction=None"));
    // The client that hung up: its request's `defer` step still wrote the
    // audit record, and saw why the request ended.
    assert_eq!(
        line("audit:"),
        r#"audit: request Some("r-1002") ended Cancelled(ClientDisconnected)"#
    );
}
