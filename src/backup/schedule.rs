//! Scheduled backups: once a day at `backup.schedule` (platform time) the server writes a
//! backup into `backup.dir`, reads it back to check it, keeps the newest `backup.keep`, and
//! records the run (audit log, and the status the console, `status` and `/metrics` show).

use super::{BackupError, take, verify, write_atomically};
use crate::config::Config;
use crate::domain::audit;
use crate::domain::audit_event::{Action, Actor, Outcome};
use crate::keys::Keyring;
use crate::store::Store;
use crate::store::backup::BackupStatus;
use std::path::{Path, PathBuf};

const PREFIX: &str = "hutong-";
const SUFFIX: &str = ".hbk";

pub fn dir(cfg: &Config) -> PathBuf {
    cfg.backup
        .dir
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("backups"))
}

/// `hutong-YYYYMMDD-HHMMSS-mmm.hbk` in platform time, so names sort by age.
pub fn file_name(at_ms: i64) -> String {
    let t = crate::time::format_time_ms(at_ms).replace(['-', ':'], "");
    format!(
        "{PREFIX}{}-{:03}{SUFFIX}",
        t.replace(' ', "-"),
        at_ms.rem_euclid(1000)
    )
}

/// Writes, checks and prunes one scheduled backup; records the run. Blocking.
pub fn run(store: &Store, keys: &Keyring, cfg: &Config) -> BackupStatus {
    let at_ms = crate::time::now_ms();
    let dir = dir(cfg);
    let path = dir.join(file_name(at_ms));
    let written = create_dir(&dir).and_then(|()| {
        write_atomically(&path, |w| {
            take(store, keys, cfg, &Actor::system(), w, &mut |_| {}).map(|(_, s)| s)
        })
    });
    let mut status = BackupStatus {
        at_ms,
        file: Some(path.display().to_string()),
        bytes: 0,
        digest: String::new(),
        verified: None,
        error: None,
        last_good_ms: None,
    };
    match written {
        Err(e) => status.error = Some(e.to_string()),
        Ok(sum) => {
            status.bytes = sum.bytes;
            status.digest = sum.digest;
            let checked = verify(&path, Some(&keys.platform_cert_ders()), Ok(keys.provider()));
            status.verified = Some(checked.is_ok());
            match checked {
                Ok(_) => prune(&dir, cfg.backup.keep as usize),
                Err(e) => {
                    // Out of the kept set, so pruning never keeps it in place of a good one.
                    let bad = path.with_extension("hbk.bad");
                    if std::fs::rename(&path, &bad).is_ok() {
                        status.file = Some(bad.display().to_string());
                    }
                    status.error = Some(format!("备份写成后校验失败: {e}"));
                    audit::note(
                        store,
                        &Actor::system(),
                        Action::PlatformBackup,
                        Outcome::Failed,
                        &path.display().to_string(),
                        format!("校验失败: {e}"),
                    );
                }
            }
        }
    }
    if let Some(e) = &status.error {
        tracing::error!(error = %e, file = %path.display(), "scheduled backup failed");
    } else {
        tracing::info!(file = %path.display(), bytes = status.bytes, "scheduled backup written and verified");
    }
    if let Err(e) = store.put_backup_status(status.clone()) {
        tracing::error!(error = %e, "backup status not recorded");
    }
    status
}

fn create_dir(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            BackupError::Format(super::format::FormatError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", dir.display()),
            )))
        })
}

/// Removes the oldest scheduled backups beyond `keep`; other files in the directory are left.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut ours: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep.max(1));
    for old in ours.into_iter().take(excess) {
        match std::fs::remove_file(&old) {
            Ok(()) => tracing::info!(file = %old.display(), "old scheduled backup removed"),
            Err(e) => tracing::warn!(file = %old.display(), error = %e, "old backup not removed"),
        }
    }
}

/// The lines `/metrics` adds about backups.
pub fn metrics(store: &Store, now_ms: i64) -> String {
    let Ok(Some(s)) = store.backup_status() else {
        return String::new();
    };
    let mut out = String::new();
    if let Some(good) = s.last_good_ms {
        out.push_str(&format!(
            "# HELP hutong_backup_last_success_timestamp_seconds Time of the newest good backup.\n\
             # TYPE hutong_backup_last_success_timestamp_seconds gauge\n\
             hutong_backup_last_success_timestamp_seconds {}\n\
             # HELP hutong_backup_age_seconds Seconds since the newest good backup.\n\
             # TYPE hutong_backup_age_seconds gauge\n\
             hutong_backup_age_seconds {}\n",
            good / 1000,
            (now_ms - good).max(0) / 1000
        ));
    }
    out.push_str(&format!(
        "# HELP hutong_backup_last_run_ok Whether the newest backup run succeeded.\n\
         # TYPE hutong_backup_last_run_ok gauge\n\
         hutong_backup_last_run_ok {}\n",
        u8::from(s.error.is_none())
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_the_next_run_is_the_next_platform_time() {
        let daily = |s: &str| {
            crate::config::BackupConfig {
                schedule: s.into(),
                ..Default::default()
            }
            .daily_secs()
        };
        assert_eq!(daily("02:00"), Ok(Some(7200)));
        assert_eq!(daily(""), Ok(None));
        for bad in ["2:00", "24:00", "02:60", "0200", "aa:bb", "02:00:00"] {
            assert!(daily(bad).is_err(), "{bad}");
        }
        // 2026-12-03 01:00 platform time (17:00 UTC the day before).
        let now = crate::time::Day::parse("2026-12-03").unwrap().start_ms() + 3_600_000;
        let next = crate::time::next_daily_ms(now, 7200);
        assert_eq!(crate::time::format_time_ms(next), "2026-12-03 02:00:00");
        assert_eq!(
            crate::time::format_time_ms(crate::time::next_daily_ms(next, 7200)),
            "2026-12-04 02:00:00"
        );
        assert_eq!(file_name(next + 7), "hutong-20261203-020000-007.hbk");
    }

    #[test]
    fn pruning_keeps_the_newest_and_leaves_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "hutong-20261201-020000.hbk",
            "hutong-20261202-020000.hbk",
            "hutong-20261203-020000.hbk",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        prune(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "hutong-20261202-020000.hbk",
                "hutong-20261203-020000.hbk",
                "notes.txt"
            ]
        );
    }
}
