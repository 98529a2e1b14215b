//! CLI commands other than `run`: `cordon spec`.

use cordon_tests::{cordon_bin, require_root, run_timeout, run_with_timeout, Status, TempDir};
use std::fs;
use std::process::Command;

fn spec_in(dir: &std::path::Path) -> cordon_tests::RunOutput {
    let mut cmd = Command::new(cordon_bin());
    cmd.arg("spec").current_dir(dir);
    run_with_timeout(cmd, run_timeout()).expect("spawn cordon spec")
}

/// `cordon spec` writes a default config.json into the working directory, like `runc spec`.
#[test]
fn spec_writes_default_config() {
    require_root();
    let tmp = TempDir::new("spec");
    let out = spec_in(tmp.path());
    assert_eq!(out.status, Status::Exited(0), "cordon spec failed: {}", out.stderr_str());
    let text = fs::read_to_string(tmp.path().join("config.json")).expect("config.json written");
    let config: serde_json::Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert!(config["ociVersion"].is_string(), "ociVersion: {config}");
    assert_eq!(config["root"]["path"], "rootfs", "root.path: {config}");
    let args = config["process"]["args"].as_array().expect("process.args");
    assert!(!args.is_empty(), "process.args must not be empty: {config}");
    assert!(config["process"]["cwd"].is_string(), "process.cwd: {config}");
}

/// Like `runc spec`, an existing config.json is not overwritten.
#[test]
fn spec_keeps_existing_config() {
    require_root();
    let tmp = TempDir::new("spec-exists");
    fs::write(tmp.path().join("config.json"), "{\"mine\": true}").expect("write config.json");
    let out = spec_in(tmp.path());
    assert!(
        matches!(out.status, Status::Exited(c) if c != 0),
        "cordon spec over an existing config.json must fail, got {}",
        out.status
    );
    assert!(out.stderr_str().contains("config.json"), "the message must name config.json: {}", out.stderr_str());
    assert_eq!(
        fs::read_to_string(tmp.path().join("config.json")).expect("read config.json"),
        "{\"mine\": true}",
        "config.json was overwritten"
    );
}
