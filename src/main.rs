//! The `hutong` command: the appliance server and its management commands.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::args::{Cli, Cmd, ConfigCmd, Global};
use cli::{check, commands, manual, serve};
use hutong::config::Config;

fn load_config(global: &Global) -> Result<Config> {
    let mut config = Config::load(global.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &global.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let loaded = load_config(&cli.global);
    if let (Cmd::Config(ConfigCmd::Check), Err(e)) = (&cli.command, &loaded) {
        return check::invalid(e);
    }
    let mut config = loaded?;
    match cli.command {
        Cmd::Config(ConfigCmd::Check) => check::run(&config),
        Cmd::Serve { listen } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            serve::serve(config)
        }
        Cmd::Init => serve::init(config),
        Cmd::Status { json } => commands::status(&config, json),
        Cmd::Keys(cmd) => commands::keys(&config, cmd),
        Cmd::System(cmd) => commands::system(&config, cmd),
        Cmd::Admin(cmd) => commands::admin(&config, cmd),
        Cmd::Trust(cmd) => commands::trust(&config, cmd),
        Cmd::Verify { file, json } => commands::verify(&config, &file, json),
        Cmd::Usage {
            app_id,
            from,
            to,
            csv,
            json,
        } => commands::usage(&config, app_id, from, to, csv, json),
        Cmd::Quota(cmd) => commands::quota(&config, cmd),
        Cmd::SimulateMember(args) => serve::simulate_member(args),
        Cmd::Audit(cmd) => commands::audit(&config, cmd),
        Cmd::Manpages { out } => manual::manpages(&out),
        Cmd::Completions { shell } => manual::completions(shell),
    }
}
