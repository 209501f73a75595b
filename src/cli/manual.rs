//! Man pages and shell completions, generated from the clap definitions in `args` so they
//! cannot drift from what the binary accepts. `packaging/build.sh` runs the two hidden
//! commands (`hutong manpages --out DIR`, `hutong completions SHELL`) before it builds the
//! packages; the generated files are build output, never committed.

use super::args::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// What the packaged installation puts where, appended to `hutong(1)` (roff).
const PACKAGED_FILES: &str = r#".SH FILES
.TP
\fI/etc/hutong/hutong.toml\fR
The configuration (kept on upgrade). Every setting is documented in the file itself.
.TP
\fI/etc/hutong/hutong.env\fR
Optional environment for the service (\fBHUTONG_HSM_PIN\fR, a PKCS#11 vendor library's
variables), read by the systemd unit; make it 0600.
.TP
\fI/var/lib/hutong\fR
The data directory: store, keys (wrapped), certificates, the control socket.
.TP
\fI/var/lib/hutong/initial\-admin.txt\fR
The initial security administrator's one\-time password, written once by the package
(0600, root); delete it after the first login.
.TP
\fI/lib/systemd/system/hutong.service\fR
The hardened systemd unit (\fI/usr/lib/systemd/system\fR on RPM systems).
.TP
\fI/usr/share/doc/hutong/\fR
HSM notes and the SoftHSM2 development token script.
.SH ENVIRONMENT
.TP
\fBHUTONG_\fR\fIKEY\fR, \fBHUTONG_\fR\fISECTION\fR\fB__\fR\fIKEY\fR
Override a configuration setting, e.g. \fBHUTONG_LISTEN=127.0.0.1:8443\fR or
\fBHUTONG_API__TIME_WINDOW_SECS=120\fR. An unknown name is an error.
.TP
\fBHUTONG_HSM_PIN\fR
The HSM user PIN (preferred over \fBkeys.pkcs11.pin\fR).
.TP
\fBRUST_LOG\fR
Log filter (default \fBinfo\fR).
.SH "SEE ALSO"
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsofthsm2\-util\fR(1)
"#;

/// Writes one page per (visible) command into `out`: `hutong.1`, `hutong-serve.1`, …
pub fn manpages(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    clap_mangen::generate_to(Cli::command(), out)
        .with_context(|| format!("writing man pages into {}", out.display()))?;
    let main = out.join("hutong.1");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&main)
        .and_then(|mut f| f.write_all(PACKAGED_FILES.as_bytes()))
        .with_context(|| format!("writing {}", main.display()))?;
    Ok(())
}

/// Prints the completion script for `shell` on standard output.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    // Rendered into memory first: the generator panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "hutong", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .context("writing the completion script")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_gets_a_page_and_the_main_page_lists_the_packaged_files() {
        let dir = tempfile::tempdir().unwrap();
        manpages(dir.path()).unwrap();
        let main = std::fs::read_to_string(dir.path().join("hutong.1")).unwrap();
        assert!(main.contains(".TH hutong 1"), "{main}");
        assert!(main.contains(".SH FILES") && main.contains("/etc/hutong/hutong.toml"));
        for page in [
            "hutong-serve.1",
            "hutong-config-check.1",
            "hutong-system-add.1",
        ] {
            assert!(dir.path().join(page).is_file(), "{page} missing");
        }
        // The generators themselves are not documented to operators.
        assert!(!dir.path().join("hutong-manpages.1").exists());
        assert!(!dir.path().join("hutong-completions.1").exists());
    }
}
