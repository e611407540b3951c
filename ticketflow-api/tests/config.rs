//! The configuration file as an alternative to the environment, and bad settings failing at
//! start-up with a message naming them.

mod support;

use std::path::Path;

use support::{free_port, fresh_postgres, spawn, temp_sqlite, worker_binary};

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

/// One file for both binaries: each takes what is its own (a worker setting does not stop the
/// API, an API setting does not stop the worker), secrets included.
#[tokio::test]
async fn one_file_serves_the_api_and_the_worker() {
    let (api_port, worker_port) = (free_port(), free_port());
    let file = write_config(&format!(
        "DATABASE_URL = \"{}\"\nRABBITMQ_URL = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\n\
         queue_name = \"tf_test_{}\"\nbind_addr = \"127.0.0.1:{api_port}\"\n\
         WORKER_BIND_ADDR = \"127.0.0.1:{worker_port}\"\nprefetch_count = 4\nworker_concurrency = 2\n\
         OPENAI_API_KEY = \"\"\nrate_limit_per_minute = 100\n",
        fresh_postgres().await,
        uuid::Uuid::new_v4().simple()
    ));
    let env = [("TICKETFLOW_CONFIG", file)];
    let api = spawn(api_binary(), &env, api_port).await;
    let worker = spawn(&worker_binary(), &env, worker_port).await;
    assert!(worker.terminate().success());
    assert!(api.terminate().success());
}

#[test]
fn a_bad_setting_fails_at_start_up_naming_it() {
    for (env, file, named) in [
        (Some(("BIND_ADDR", "not-an-address")), None, "BIND_ADDR"),
        (Some(("MAX_RETRIES", "-1")), None, "MAX_RETRIES"),
        (Some(("LOG_FORMAT", "xml")), None, "LOG_FORMAT"),
        (Some(("DATABASE_URL", "mysql://x")), None, "DATABASE_URL"),
        (None, Some("queue_type = \"lazy\"\n"), "QUEUE_TYPE"),
        (None, Some("this is = = not toml"), "configuration file"),
        (None, Some("prefetch_cuont = 4\n"), "prefetch_cuont"),
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
