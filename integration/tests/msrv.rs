//! The declared minimum Rust version (`rust-version` in Cargo.toml), checked
//! as far as one toolchain can: every dependency the crate builds with, for
//! the default features and for each optional one, declares a minimum no
//! newer than ours (or than the one documented for that feature). clippy's
//! `incompatible_msrv` lint, which CI runs with `-D warnings`, checks our own
//! use of std against it. Language features newer than the minimum are not
//! checked here: that needs the older compiler, which CI does not have.

use std::process::Command;

/// Features whose dependencies need a newer Rust than the crate itself, and
/// the version each needs (documented in the crate's feature table).
const FEATURE_MSRV: &[(&str, &str)] = &[];

fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

fn host() -> String {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host")
}

/// The highest `rust-version` among taskscope's normal dependencies (all
/// the way down) with `features`, and who declares it.
fn newest_dependency(features: &[&str], host: &str) -> ((u32, u32, u32), String, String) {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args([
        "metadata",
        "--format-version",
        "1",
        "--filter-platform",
        host,
    ]);
    cargo.current_dir(env!("CARGO_MANIFEST_DIR"));
    if !features.is_empty() {
        cargo.args(["--features", &features.join(",")]);
    }
    let out = cargo.output().expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "taskscope")
        .expect("taskscope in the metadata");
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap();
    let mut stack = vec![ours["id"].as_str().unwrap().to_owned()];
    let mut seen = std::collections::HashSet::new();
    let mut newest = ((0, 0, 0), String::new(), String::new());
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        for dep in node(&id)["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if normal {
                stack.push(dep["pkg"].as_str().unwrap().to_owned());
            }
        }
        let package = packages.iter().find(|p| p["id"] == id).unwrap();
        if let Some(declared) = package["rust_version"].as_str() {
            if package["name"] != "taskscope" && version(declared) > newest.0 {
                newest = (
                    version(declared),
                    package["name"].to_string(),
                    declared.to_owned(),
                );
            }
        }
    }
    newest
}

#[test]
fn dependencies_need_no_newer_rust_than_we_declare() {
    let ours = version(env!("CARGO_PKG_RUST_VERSION"));
    let host = host();
    let features = [
        "", "host", "axum", "postgres", "reqwest", "anyhow", "serde", "tonic",
    ];
    for feature in features {
        let selected: Vec<&str> = if feature.is_empty() {
            vec![]
        } else {
            vec![feature]
        };
        let (newest, name, declared) = newest_dependency(&selected, &host);
        let allowed = FEATURE_MSRV
            .iter()
            .find(|(f, _)| *f == feature)
            .map_or(ours, |(_, v)| version(v));
        assert!(
            newest <= allowed,
            "with {feature:?}: {name} needs Rust {declared}, newer than the {allowed:?} declared"
        );
    }
}
