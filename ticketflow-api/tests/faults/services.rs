//! Stopping and starting the machine's PostgreSQL and RabbitMQ, for the outage scenarios
//! (which run alone: their names start with `serial_`).

use std::process::{Command, Stdio};

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// `rabbitmqctl stop_app`: the broker closes every connection and refuses new ones.
pub fn stop_rabbitmq() {
    run("rabbitmqctl", &["stop_app"]);
}

pub fn start_rabbitmq() {
    run("rabbitmqctl", &["start_app"]);
}

fn postgres_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .expect("PostgreSQL's configuration directory")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .next()
        .expect("one PostgreSQL cluster")
}

/// A fast shutdown: open connections are cut, new ones refused.
pub fn stop_postgres() {
    let version = postgres_version();
    run(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "stop", "-m", "fast"],
    );
}

pub fn start_postgres() {
    let version = postgres_version();
    run(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "start"],
    );
}
