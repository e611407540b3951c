//! The `users` and `keys` commands of the `ticketflow-api` binary: what a person at the
//! server's shell does before anyone can sign in. Output for people goes to stdout; a new
//! key is printed alone on one stdout line, so `KEY=$(ticketflow-api keys create …)` works.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use ticketflow_core::store::Role;

use crate::people::People;

/// What the audit trail says did what the commands do.
const CLI_ACTOR: &str = "cli";

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse::<Role>()
        .map_err(|e| format!("{e}: one of admin, agent, viewer"))
}

/// `ticketflow-api users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a person; the password comes from a prompt, or the first line of stdin.
    Add {
        /// Their sign-in address.
        #[arg(long)]
        email: String,
        /// The name shown.
        #[arg(long)]
        name: String,
        /// admin, agent or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of stdin instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every person.
    List,
    /// Disable a person: they cannot sign in, and their sessions end.
    Disable {
        /// Their sign-in address.
        #[arg(long)]
        email: String,
    },
    /// Change a person's role.
    SetRole {
        /// Their sign-in address.
        #[arg(long)]
        email: String,
        /// admin, agent or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Set a person's password (their sessions end).
    ResetPassword {
        /// Their sign-in address.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `ticketflow-api keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a named key and print it, alone, on one stdout line (the only time it is shown).
    Create {
        /// Its name; unique.
        #[arg(long)]
        name: String,
        /// admin, agent or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Days until it stops working, 1 to 36,500 (absent: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        expires_in_days: Option<u32>,
    },
    /// List every named key (never the keys themselves).
    List,
    /// Revoke a key: it stops working at once.
    Revoke {
        /// Its name.
        #[arg(long)]
        name: String,
    },
}

fn read_password(from_stdin: bool) -> anyhow::Result<SecretString> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        return Ok(SecretString::from(
            password.strip_suffix('\r').unwrap_or(password).to_owned(),
        ));
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password from the terminal")?;
    let again = rpassword::prompt_password("Again: ").context("cannot read the password from the terminal")?;
    anyhow::ensure!(first == again, "the two passwords differ");
    Ok(SecretString::from(first))
}

/// Runs a `users` command.
pub async fn users(people: &People, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add {
            email,
            name,
            role,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let user = people.add_user(&email, &name, role, password, CLI_ACTOR).await?;
            println!("added {} ({}) as {}", user.email, user.name, user.role);
        }
        UsersCommand::List => {
            for user in people.users().await? {
                let state = if user.disabled_at.is_some() {
                    "disabled"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{state}\t{}",
                    user.email,
                    user.role,
                    user.name,
                    user.created_at.to_rfc3339()
                );
            }
        }
        UsersCommand::Disable { email } => {
            let user = people.user_by_email(&email).await?;
            let user = people.disable(user.id, CLI_ACTOR).await?;
            println!("disabled {}", user.email);
        }
        UsersCommand::SetRole { email, role } => {
            let user = people.user_by_email(&email).await?;
            let user = people.set_role(user.id, role, CLI_ACTOR).await?;
            println!("{} is now {}", user.email, user.role);
        }
        UsersCommand::ResetPassword { email, password_stdin } => {
            let user = people.user_by_email(&email).await?;
            let password = read_password(password_stdin)?;
            let user = people.reset_password(user.id, password, CLI_ACTOR).await?;
            println!("password set for {}; their sessions have ended", user.email);
        }
    }
    Ok(())
}

/// Runs a `keys` command.
pub async fn keys(people: &People, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            name,
            role,
            expires_in_days,
        } => {
            let expires_at = expires_in_days.map(|days| chrono::Utc::now() + chrono::Duration::days(i64::from(days)));
            let (key, secret) = people.create_key(&name, role, expires_at, CLI_ACTOR).await?;
            tracing::info!(name = %key.name, role = %key.role, "API key made; it is printed once, on stdout");
            println!("{}", secret.expose_secret());
        }
        KeysCommand::List => {
            for key in people.keys().await? {
                let state = match (key.revoked_at, key.expires_at) {
                    (Some(_), _) => "revoked".to_owned(),
                    (None, Some(at)) if at <= chrono::Utc::now() => "expired".to_owned(),
                    (None, Some(at)) => format!("expires {}", at.to_rfc3339()),
                    (None, None) => "active".to_owned(),
                };
                println!("{}\t{}\ttfk_{}_…\t{state}", key.name, key.role, key.prefix);
            }
        }
        KeysCommand::Revoke { name } => {
            let key = people.key_by_name(&name).await?;
            let key = people.revoke_key(key.id, CLI_ACTOR).await?;
            println!("revoked {}", key.name);
        }
    }
    Ok(())
}
