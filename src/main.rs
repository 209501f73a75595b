//! The `hutong` command: the appliance server and its management commands.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::args::{Cli, Cmd, ConfigCmd, Global, KeysCmd};
use cli::{backup, check, commands, manual, serve};
use hutong::config::Config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load_config(global: &Global) -> Result<Config> {
    let mut config = Config::load(global.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &global.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let loaded = load_config(&cli.global);
    // The configuration says how to log; one that does not load is reported in text.
    cli::logging::init(
        loaded
            .as_ref()
            .map(|c| c.log.format)
            .unwrap_or(hutong::config::LogFormat::Text),
    );
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
        Cmd::Init {
            adopt_kek,
            credentials_file,
        } => serve::init(config, adopt_kek.as_deref(), credentials_file.as_deref()),
        Cmd::Status { json } => commands::status(&config, json),
        Cmd::Keys(KeysCmd::Init { adopt_kek }) => serve::init(config, adopt_kek.as_deref(), None),
        Cmd::Keys(cmd) => commands::keys(&config, cmd),
        Cmd::Tls(cmd) => commands::tls(&config, cmd),
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
        Cmd::Backup {
            out,
            scheduled,
            verify,
            cert,
            json,
        } => match (out, verify) {
            _ if scheduled => backup::scheduled(&config, json),
            (_, Some(file)) => backup::verify(&config, &file, cert.as_deref(), json),
            (Some(out), None) => backup::take(&config, &out, json),
            (None, None) => anyhow::bail!("需要 --out FILE、--scheduled 或 --verify FILE"),
        },
        Cmd::Restore { file, json } => backup::restore(&config, &file, json),
        Cmd::Tenant(cmd) => commands::tenant(&config, cmd),
        Cmd::Manpages { out } => manual::manpages(&out),
        Cmd::Completions { shell } => manual::completions(shell),
    }
}
