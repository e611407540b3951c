//! Every setting as a command-line flag (`--max-retries 5`), and `--config <file>`, for the
//! binaries' clap parsers: flatten [`SettingsArgs`] into a `Parser`.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use super::catalog::catalog;
use super::load::{CONFIG_ENV, Sources};
use super::{Settings, SettingsError};

/// The settings given on the command line.
#[derive(Debug, Clone, Default)]
pub struct SettingsArgs {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// Each setting given as a flag, by setting name.
    pub values: Vec<(String, String)>,
}

impl SettingsArgs {
    /// Loads the settings: these flags over `env` (the binaries pass `std::env::vars()`) over
    /// the file (`--config`, else `TICKETFLOW_CONFIG`) over the defaults.
    pub fn load(self, env: impl IntoIterator<Item = (String, String)>) -> Result<Settings, SettingsError> {
        Settings::load(Sources {
            file: self.config,
            env: env.into_iter().collect(),
            flags: self.values,
        })
    }
}

impl Args for SettingsArgs {
    fn augment_args(command: Command) -> Command {
        let config = Arg::new("config")
            .long("config")
            .value_name("FILE")
            .global(true)
            .value_parser(clap::value_parser!(PathBuf))
            .help(format!(
                "A TOML file of settings (the names below, in either case); the environment and flags override it [env: {CONFIG_ENV}]"
            ));
        command.arg(config).args(catalog().iter().map(|setting| {
            Arg::new(setting.key.clone())
                .long(setting.flag.clone())
                .value_name(setting.env.clone())
                .action(ArgAction::Set)
                .global(true)
                .help(format!("{} [env: {}]", setting.doc, setting.env))
        }))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for SettingsArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(config) = matches.get_one::<PathBuf>("config") {
            self.config = Some(config.clone());
        }
        for setting in catalog() {
            if let Some(value) = matches.get_one::<String>(&setting.key) {
                self.values.retain(|(key, _)| key != &setting.key);
                self.values.push((setting.key.clone(), value.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Option<Sub>,
        #[command(flatten)]
        settings: SettingsArgs,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Migrate,
    }

    #[test]
    fn flags_before_or_after_a_subcommand_are_settings() {
        let cli = Cli::try_parse_from(["bin", "--max-retries", "4", "migrate", "--queue-name=q"]).unwrap();
        assert!(matches!(cli.command, Some(Sub::Migrate)));
        let settings = cli.settings.load(Vec::new()).unwrap();
        assert_eq!((settings.max_retries, settings.queue_name.as_str()), (4, "q"));
        assert!(Cli::try_parse_from(["bin", "--no-such-flag=1"]).is_err());
    }
}
