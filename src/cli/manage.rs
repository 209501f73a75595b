//! Where a management command runs: in the running server through its control socket, or,
//! when no server runs, here against the store opened directly. Either way the same
//! `control::execute` answers, so the output does not depend on which.

use anyhow::{Result, bail};
use hutong::config::Config;
use hutong::server::control::{self, Command, Response};

/// Runs a management command in the running server if there is one, else locally.
pub fn manage(config: &Config, cmd: Command) -> Result<Response> {
    if let Some(r) = control::call(&config.data_dir, &cmd)? {
        return Ok(r);
    }
    if !config.data_dir.exists() {
        bail!(
            "data directory {} does not exist (run `hutong init` first)",
            config.data_dir.display()
        );
    }
    let store = match hutong::store::Store::open(&config.data_dir) {
        Ok(s) => s,
        // A server that is still starting holds the lock before its socket is up: wait for it.
        Err(hutong::store::StoreError::Locked(_)) => {
            for _ in 0..50 {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if let Some(r) = control::call(&config.data_dir, &cmd)? {
                    return Ok(r);
                }
            }
            hutong::store::Store::open(&config.data_dir)?
        }
        Err(e) => return Err(e.into()),
    };
    let keys = if matches!(
        cmd,
        Command::KeysStatus
            | Command::KeysRotatePlatform
            | Command::KeysRotateKek
            | Command::KeysFinishKek { .. }
            | Command::SystemCheckCallback { .. }
            | Command::BackupScheduled
            | Command::TenantDestroy { .. }
    ) {
        Some(hutong::keys::Keyring::load(config)?)
    } else {
        None
    };
    let writes = cmd.changes_state();
    let r = control::execute(&store, keys.as_ref(), config, cmd);
    // A refused act is recorded too: its event is made durable like a change.
    if writes {
        store.flush_blocking()?;
    }
    Ok(r?)
}

/// The response a command must get; any other is a protocol mismatch between CLI and server.
macro_rules! expect_response {
    ($resp:expr, $variant:ident) => {
        match $resp {
            hutong::server::control::Response::$variant(r) => r,
            other => anyhow::bail!(
                "unexpected control response {:?} (is the server another version?)",
                other
            ),
        }
    };
}
pub(crate) use expect_response;
