//! The configuration file as an alternative to the environment, and bad settings failing at
//! start-up with a message naming them.

mod support;

use std::path::Path;

use support::{free_port, spawn, temp_sqlite};

fn api_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ticketflow-api"))
}

fn write_config(contents: &str) -> String {
    let path = std::env::temp_dir().join(format!("tf_test_{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_api_reads_its_settings_from_a_file() {
    let port = free_port();
    let file = write_config(&format!(
        "DATABASE_URL = \"{}\"\nbind_addr = \"127.0.0.1:{port}\"\n",
        temp_sqlite()
    ));
    let api = spawn(api_binary(), &[("TICKETFLOW_CONFIG", file)], port).await;
    assert!(api.terminate().success());
}

#[test]
fn a_bad_setting_fails_at_start_up_naming_it() {
    for (env, file, named) in [
        (Some(("BIND_ADDR", "not-an-address")), None, "bind-addr"),
        (Some(("MAX_RETRIES", "-1")), None, "max-retries"),
        (Some(("LOG_FORMAT", "xml")), None, "LOG_FORMAT"),
        (Some(("DATABASE_URL", "mysql://x")), None, "DATABASE_URL"),
        (None, Some("queue_type = \"lazy\"\n"), "QUEUE_TYPE"),
        (None, Some("this is = = not toml"), "configuration file"),
    ] {
        let mut command = std::process::Command::new(api_binary());
        command
            .arg("migrate")
            .env_remove("RABBITMQ_URL")
            .env("DATABASE_URL", temp_sqlite());
        if let Some((key, value)) = env {
            command.env(key, value);
        }
        if let Some(contents) = file {
            command.env("TICKETFLOW_CONFIG", write_config(contents));
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{env:?} {file:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "the error names {named}: {stderr}");
    }
}
