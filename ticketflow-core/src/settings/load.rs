//! Loading [`Settings`]: defaults < the TOML file < the environment < command-line flags,
//! merged by figment.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::Settings;
use super::catalog::{Kind, find};

/// The environment variable naming the settings file (the `--config` flag does the same).
pub const CONFIG_ENV: &str = "TICKETFLOW_CONFIG";

/// Where settings come from, lowest precedence first (defaults come before all of them).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// A TOML file (`--config`); when `None`, the environment's `TICKETFLOW_CONFIG` names one,
    /// if it does.
    pub file: Option<PathBuf>,
    /// Environment variables (the binaries pass `std::env::vars()`); only settings' names are
    /// read, in any case.
    pub env: Vec<(String, String)>,
    /// Values given as command-line flags, by setting name.
    pub flags: Vec<(String, String)>,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file cannot be read or is not TOML.
    #[error("configuration file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A setting's value is invalid.
    #[error("{key} ({source_name}): {message}")]
    Invalid {
        /// The setting's name (`MAX_RETRIES`).
        key: String,
        /// Where the value came from.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A key that is no setting.
    #[error("{source_name}: `{key}` is not a setting")]
    Unknown {
        /// The key as written.
        key: String,
        /// Where it was written.
        source_name: String,
    },
    /// A setting the binary needs was not given.
    #[error("{0} is required")]
    Missing(&'static str),
}

impl Settings {
    /// Loads and checks the settings from `sources`.
    pub fn load(sources: Sources) -> Result<Self, SettingsError> {
        let file = sources.file.clone().or_else(|| {
            sources
                .env
                .iter()
                .find(|(name, _)| name == CONFIG_ENV)
                .map(|(_, path)| PathBuf::from(path))
        });
        let mut figment = Figment::new();
        if let Some(path) = &file {
            figment = figment.merge(file_layer(path)?);
        }
        let env = Layer::from_text(
            "the environment",
            sources.env.into_iter().filter(|(name, _)| find(name).is_some()),
        )?;
        let flags = Layer::from_text("command-line flags", sources.flags)?;
        let settings: Settings = figment.merge(env).merge(flags).extract().map_err(from_figment)?;
        settings.validate()?;
        Ok(settings)
    }
}

/// One source's values, named for its errors.
struct Layer {
    name: String,
    values: Dict,
}

impl Layer {
    /// Values given as text (the environment, flags), each read as its setting's kind. Empty
    /// values are left out: an empty variable means "not set".
    fn from_text(name: &str, pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let mut values = Dict::new();
        for (key, text) in pairs {
            let Some(setting) = find(&key) else {
                return Err(SettingsError::Unknown {
                    key,
                    source_name: name.to_owned(),
                });
            };
            if text.trim().is_empty() {
                continue;
            }
            values.insert(setting.key.clone(), typed(setting.kind, &text));
        }
        Ok(Self {
            name: name.to_owned(),
            values,
        })
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// `text` as a value of `kind`; text that is not one stays text, and fails to deserialize
/// with a message naming the setting.
fn typed(kind: Kind, text: &str) -> Value {
    let text = text.trim();
    let string = || Value::from(text.to_owned());
    match kind {
        Kind::Text => string(),
        Kind::Integer => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| string()),
        Kind::Number => text.parse::<f64>().map(Value::from).unwrap_or_else(|_| string()),
        Kind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" => Value::from(true),
            "false" => Value::from(false),
            _ => string(),
        },
        Kind::List => Value::from(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::from(item.to_owned()))
                .collect::<Vec<_>>(),
        ),
    }
}

/// The settings file: its keys in lower case, text values read as their setting's kind (so
/// `max_retries = "5"` is 5, and `cors_origins = "a,b"` a list).
fn file_layer(path: &Path) -> Result<Layer, SettingsError> {
    use figment::providers::{Format, Toml};
    let name = format!("configuration file {}", path.display());
    let file_error = |message: String| SettingsError::File {
        path: path.display().to_string(),
        message,
    };
    let data = Toml::file_exact(path).data().map_err(|e| file_error(e.to_string()))?;
    let mut values = Dict::new();
    for (key, value) in data.into_values().flatten() {
        let Some(setting) = find(&key) else {
            return Err(SettingsError::Unknown { key, source_name: name });
        };
        let value = match value {
            Value::String(_, text) => typed(setting.kind, &text),
            other => other,
        };
        values.insert(setting.key.clone(), value);
    }
    Ok(Layer { name, values })
}

/// The first of figment's errors, naming the setting and where its value came from.
fn from_figment(error: figment::Error) -> SettingsError {
    let source_name = error
        .metadata
        .as_ref()
        .map_or_else(|| "settings".to_owned(), |m| m.name.to_string());
    let key = error
        .path
        .last()
        .map(|k| k.to_ascii_uppercase())
        .unwrap_or_else(|| "settings".into());
    let message = error.kind.to_string();
    SettingsError::Invalid {
        key,
        source_name,
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;

    fn pairs<const N: usize>(pairs: [(&str, &str); N]) -> Vec<(String, String)> {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    fn file(contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("tf_test_{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let path = file(
            "MAX_RETRIES = 5\nlease_seconds = 10\nprefetch_count = \"4\"\ncors_origins = [\"https://a\", \"https://b\"]\n",
        );
        let settings = Settings::load(Sources {
            file: Some(path.clone()),
            env: pairs([("max_retries", "6"), ("LEASE_SECONDS", "11"), ("HOME", "/root")]),
            flags: pairs([("max_retries", "7")]),
        })
        .unwrap();
        assert_eq!(settings.max_retries, 7);
        assert_eq!(settings.lease_seconds, 11);
        assert_eq!(settings.prefetch_count, 4);
        assert_eq!(settings.cors_origins, ["https://a", "https://b"]);
        assert_eq!(settings.queue_name, "ticket_processing", "defaults fill the rest");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn every_setting_is_accepted_from_each_source() {
        // One valid value of each kind, by setting.
        let value = |key: &str| match key {
            "database_url" | "database_migration_url" | "database_listen_url" => "postgres://u:p@h/db",
            "rabbitmq_url" => "amqp://u:p@h/%2f",
            "queue_type" => "classic",
            "bind_addr" | "worker_bind_addr" => "127.0.0.1:1234",
            "log_format" => "pretty",
            "auto_migrate" => "false",
            "trust_proxy" => "true",
            "cors_origins" | "webhook_urls" => "https://a,https://b",
            "webhook_secret" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "webhook_retry_hours"
            | "webhook_retry_seconds"
            | "webhook_max_retry_seconds"
            | "webhook_timeout_seconds" => "2.5",
            "retry_backoff_seconds" | "sweep_interval_seconds" | "shutdown_grace_seconds" | "llm_timeout_seconds" => {
                "2.5"
            }
            "lease_seconds"
            | "prefetch_count"
            | "worker_concurrency"
            | "max_retries"
            | "rate_limit_per_minute"
            | "session_idle_minutes"
            | "session_max_hours"
            | "login_attempts_per_minute"
            | "checkpoint_retention" => "7",
            "email_max_bytes" => "2048",
            "email_provider" => "smtp",
            "email_from" => "Help <help@example.com>",
            "email_max_attempts" | "email_max_replies_per_hour" => "3",
            "email_retry_seconds" | "email_send_timeout_seconds" => "1.5",
            "rust_log" => "debug",
            "demo_data" => "false",
            "approval_required" => "reset_password,create_bug_report",
            "auto_approve_refund_below" => "25.5",
            "reply_approval" => "all",
            "workflow" => "agent",
            "use_agent_workflow" => "true",
            "agent_max_steps" => "3",
            "github_repo" => "owner/name",
            "database_schema" => "tf_other",
            _ => "custom",
        };
        for setting in super::super::catalog() {
            let text = value(&setting.key);
            let toml_value = match setting.kind {
                Kind::Text | Kind::List => format!("{text:?}"),
                _ => text.to_owned(),
            };
            let from_file = file(&format!("{} = {toml_value}\n", setting.env));
            // Settings that need another (a GitHub token and repository, a provider and its URL,
            // webhook URLs and their secret) are given their partner.
            let partner = match setting.key.as_str() {
                "github_token" => pairs([("GITHUB_REPO", "owner/name")]),
                "github_repo" => pairs([("GITHUB_TOKEN", "token")]),
                "email_provider" => pairs([("SMTP_URL", "smtp://127.0.0.1:25")]),
                "webhook_urls" => pairs([("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]),
                _ => Vec::new(),
            };
            let mut env = partner.clone();
            env.push((setting.env.clone(), text.to_owned()));
            let sources = [
                Sources {
                    file: Some(from_file.clone()),
                    env: partner.clone(),
                    ..Sources::default()
                },
                Sources {
                    env,
                    ..Sources::default()
                },
                Sources {
                    env: partner.clone(),
                    flags: vec![(setting.key.clone(), text.to_owned())],
                    ..Sources::default()
                },
            ];
            for sources in sources {
                let described = format!("{} from {sources:?}", setting.env);
                let loaded = Settings::load(sources).unwrap_or_else(|e| panic!("{described}: {e}"));
                let defaults = format!("{:?}", Settings::default());
                assert_ne!(format!("{loaded:?}"), defaults, "{described} changed nothing");
            }
            std::fs::remove_file(from_file).unwrap();
        }
    }

    #[test]
    fn values_are_typed() {
        let settings = Settings::load(Sources {
            env: pairs([
                ("RETRY_BACKOFF_SECONDS", "0.25"),
                ("OPENAI_API_KEY", "sk-secret"),
                ("AUTO_MIGRATE", "false"),
                ("WORKER_ID", "42"),
                ("RATE_LIMIT_PER_MINUTE", ""),
            ]),
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(settings.retry_backoff_seconds.duration(), Duration::from_millis(250));
        assert_eq!(settings.openai_api_key.as_ref().unwrap().expose_secret(), "sk-secret");
        assert!(!format!("{settings:?}").contains("sk-secret"), "secrets are redacted");
        assert!(!settings.auto_migrate);
        assert_eq!(
            settings.worker_id.as_deref(),
            Some("42"),
            "numbers stay text where text is wanted"
        );
        assert_eq!(settings.rate_limit_per_minute, None, "empty means unset");
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        let error = |sources: Sources| Settings::load(sources).unwrap_err().to_string();
        let bad = error(Sources {
            env: pairs([("MAX_RETRIES", "-1")]),
            ..Sources::default()
        });
        assert!(bad.contains("MAX_RETRIES") && bad.contains("the environment"), "{bad}");
        let bad = error(Sources {
            flags: pairs([("bind_addr", "not-an-address")]),
            ..Sources::default()
        });
        assert!(bad.contains("BIND_ADDR") && bad.contains("command-line flags"), "{bad}");
        for (contents, named) in [
            ("queue_type = \"lazy\"\n", "QUEUE_TYPE"),
            ("LOG_FORMAT = \"xml\"\n", "LOG_FORMAT"),
            ("prefetch_cuont = 4\n", "prefetch_cuont"),
            ("lease_seconds = 0\n", "LEASE_SECONDS"),
            ("retry_backoff_seconds = -1\n", "RETRY_BACKOFF_SECONDS"),
            ("approval_required = \"refund_everything\"\n", "APPROVAL_REQUIRED"),
            ("approval_required = \"check_order_status\"\n", "only reads"),
            ("reply_approval = \"sometimes\"\n", "REPLY_APPROVAL"),
            ("this is = = not toml", "configuration file"),
        ] {
            let path = file(contents);
            let message = error(Sources {
                file: Some(path.clone()),
                ..Sources::default()
            });
            assert!(message.contains(named), "{contents:?}: {message}");
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn the_environment_can_name_the_file() {
        let path = file("queue_name = \"from_file\"\n");
        let settings = Settings::load(Sources {
            env: vec![(CONFIG_ENV.into(), path.display().to_string())],
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(settings.queue_name, "from_file");
        std::fs::remove_file(path).unwrap();
    }
}
