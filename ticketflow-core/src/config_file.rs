//! A configuration file as an alternative to the environment, for the binaries.
//!
//! The file is TOML with the same names as the environment variables, in either case:
//!
//! ```toml
//! DATABASE_URL = "postgres://ticketflow:***@db:5432/ticketflow"
//! max_retries = 5
//! ```
//!
//! Precedence, highest first: command-line flags, environment variables, the file, defaults.
//! The file is turned into command-line flags placed before the real ones (so real flags
//! override them) and skipping every setting the environment already gives.

use std::ffi::OsString;
use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Toml};

/// The environment variable naming the file (the `--config` flag does the same).
pub const CONFIG_ENV: &str = "TICKETFLOW_CONFIG";

/// `args` (as from `std::env::args_os`) with the settings of the configuration file, when one
/// is named by `--config <path>`, `--config=<path>` or `TICKETFLOW_CONFIG`, inserted after the
/// program name. An unreadable or malformed file is an error naming it.
pub fn args_with_config_file(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut path = std::env::var_os(CONFIG_ENV);
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let arg = arg.to_string_lossy();
        if arg == "--config" {
            path = iter.next().cloned();
        } else if let Some(value) = arg.strip_prefix("--config=") {
            path = Some(value.into());
        }
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let from_file = flags_from_file(Path::new(&path))?;
    let mut combined = Vec::with_capacity(args.len() + from_file.len());
    combined.extend(args.first().cloned());
    combined.extend(from_file);
    combined.extend(args.into_iter().skip(1));
    Ok(combined)
}

fn flags_from_file(path: &Path) -> Result<Vec<OsString>, String> {
    let table: std::collections::BTreeMap<String, figment::value::Value> = Figment::new()
        .merge(Toml::file_exact(path))
        .extract()
        .map_err(|e| format!("configuration file {}: {e}", path.display()))?;
    let mut flags = Vec::new();
    for (key, value) in table {
        let env_name = key.to_ascii_uppercase();
        if std::env::var_os(&env_name).is_some() {
            continue;
        }
        let value = match value {
            figment::value::Value::String(_, s) => s,
            figment::value::Value::Num(_, n) => n
                .to_u128()
                .map(|n| n.to_string())
                .or_else(|| n.to_i128().map(|n| n.to_string()))
                .or_else(|| n.to_f64().map(|n| n.to_string()))
                .unwrap_or_default(),
            figment::value::Value::Bool(_, b) => b.to_string(),
            figment::value::Value::Array(_, items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            _ => {
                return Err(format!(
                    "configuration file {}: `{key}` must be a string, number, boolean or list",
                    path.display()
                ));
            }
        };
        flags.push(format!("--{}={value}", key.to_ascii_lowercase().replace('_', "-")).into());
    }
    Ok(flags)
}

/// Parses a duration given in seconds, fractions allowed (`0.5`), for settings such as
/// `RETRY_BACKOFF_SECONDS`; rejects negative, zero, non-finite and over-a-day values.
pub fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("`{text}` must be more than 0 and at most 86400 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_settings_become_flags_before_the_real_ones() {
        let path = std::env::temp_dir().join(format!("tf_test_{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "BIND_ADDR = \"127.0.0.1:9999\"\nmax_retries = 5\ncors_origins = [\"https://a\", \"https://b\"]\n",
        )
        .unwrap();
        let args: Vec<OsString> = vec![
            "bin".into(),
            format!("--config={}", path.display()).into(),
            "--max-retries=7".into(),
        ];
        let combined: Vec<String> = args_with_config_file(args)
            .unwrap()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(combined[0], "bin");
        assert!(combined.contains(&"--bind-addr=127.0.0.1:9999".to_owned()));
        assert!(combined.contains(&"--cors-origins=https://a,https://b".to_owned()));
        let file_retries = combined.iter().position(|a| a == "--max-retries=5").unwrap();
        let real_retries = combined.iter().position(|a| a == "--max-retries=7").unwrap();
        assert!(file_retries < real_retries, "real flags come last and win");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn seconds_take_fractions_and_refuse_nonsense() {
        assert_eq!(parse_seconds("0.25"), Ok(std::time::Duration::from_millis(250)));
        assert_eq!(parse_seconds("15"), Ok(std::time::Duration::from_secs(15)));
        for bad in ["0", "-1", "NaN", "inf", "soon", "86401"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_malformed_file_is_named() {
        let path = std::env::temp_dir().join(format!("tf_test_bad_{}.toml", std::process::id()));
        std::fs::write(&path, "this is = = not toml").unwrap();
        let err = args_with_config_file(vec!["bin".into(), "--config".into(), path.clone().into()]).unwrap_err();
        assert!(err.contains(&path.display().to_string()), "{err}");
        std::fs::remove_file(path).unwrap();
    }
}
