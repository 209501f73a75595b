//! The command line: what `hutong` accepts (clap), with the closed sets as value enums
//! mapped onto the domain's vocabularies. Parsing only; the commands run in the sibling
//! modules.

use clap::{Args, Parser, Subcommand, ValueEnum};
use hutong::domain::vocab::{QuotaKind, Role, SystemState};
use hutong::interop::simulator::Behaviour;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hutong",
    version,
    about = "互通 — 电子印章互通互认服务平台 (electronic seal interoperability platform)",
    long_about = "Hutong runs the electronic seal interoperability and mutual-recognition platform: \
an HTTPS API for member seal systems, the administration console, and document verification.\n\n\
Management commands work whether or not the server is running: while it runs they go through \
the control socket in the data directory, otherwise they open the store directly."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Args, Clone)]
pub struct Global {
    /// Configuration file (TOML); see packaging/hutong.toml. HUTONG_* variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (store, keys, certificates); default ./hutong-data.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration (--config FILE, HUTONG_* variables) and what it points to;
    /// prints each finding in Chinese and English and exits non-zero on any problem.
    Check,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the appliance (HTTPS API and console); creates keys and data on first start.
    Serve {
        /// Listen address, e.g. 0.0.0.0:8443 (default 127.0.0.1:8443).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Create the data directory, keys and platform certificate without serving. Re-run
    /// after an interrupted init, it finishes with the KEK that init had made.
    Init {
        /// Use this existing KEK (the configured kek_label, or kek.key with the file
        /// provider) instead of refusing; only for a KEK made for this platform and unused.
        #[arg(long, value_name = "LABEL")]
        adopt_kek: Option<String>,
        /// Write the initial administrator's credentials to this new 0600 file instead of
        /// standard output (for installers whose output is logged).
        #[arg(long, value_name = "FILE")]
        credentials_file: Option<std::path::PathBuf>,
    },
    /// Check the configuration before starting: every key and type, permissions of keys and
    /// TLS files, the key provider (HSM reachable, KEK present), the listen address.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// One screen about the running appliance (through its control socket): version, uptime,
    /// listeners, keys, store size, systems by state, audit log, open breakers.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Key provider and platform key status.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The running server's TLS certificate.
    #[command(subcommand)]
    Tls(TlsCmd),
    /// Manage member seal systems.
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage console administrator accounts.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Manage the trust anchors (CA certificates) used by document verification.
    #[command(subcommand)]
    Trust(TrustCmd),
    /// Verify every signature of a PDF or OFD document (same report as the API and console).
    Verify {
        /// The document.
        file: PathBuf,
        /// Print the report as JSON (the API's `data`).
        #[arg(long)]
        json: bool,
    },
    /// Usage per system, day and interface: calls, successes, failures, signatures, users.
    Usage {
        /// Only this system.
        #[arg(long, value_name = "APPID")]
        app_id: Option<String>,
        /// First day, YYYY-MM-DD (default: 29 days before --to).
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (default: today in the platform time zone).
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Print CSV (UTF-8 with BOM) for a spreadsheet.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Manage a system's usage quota (signature count or user count with a validity period).
    #[command(subcommand)]
    Quota(QuotaCmd),
    /// Run a simulated member seal system that answers the platform's callbacks (SPEC §4).
    SimulateMember(SimulateArgs),
    /// The tamper-evident audit log (SPEC §6.1): verify, export, proofs.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Write a backup (SPEC §6.2) while the appliance serves, or check one with --verify.
    Backup {
        /// The backup file to write; an existing file is never replaced.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present_any = ["verify", "scheduled"]
        )]
        out: Option<PathBuf>,
        /// Run the scheduled backup now: into backup.dir, checked after writing, the oldest
        /// removed beyond backup.keep.
        #[arg(long, conflicts_with_all = ["out", "verify"])]
        scheduled: bool,
        /// Check a backup without restoring it: digest and signature, and every chunk of the
        /// body when this machine's key store can unwrap the backup key.
        #[arg(long, value_name = "FILE", conflicts_with = "out")]
        verify: Option<PathBuf>,
        /// Platform certificate (PEM) to check the signature with; default the data
        /// directory's keys/platform.crt, else the certificate in the file.
        #[arg(long, value_name = "FILE", requires = "verify")]
        cert: Option<PathBuf>,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into --data-dir, which must hold no store yet; its key store (keys/
    /// for the file provider, the configured token for pkcs11) must be the backup's.
    Restore {
        /// The backup file (.hbk) to restore.
        file: PathBuf,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// A departed system's tenant data (SPEC §6.2): destruction by crypto-shredding.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Write the man pages (one roff file per command) into DIR; run when building packages.
    #[command(hide = true)]
    Manpages {
        /// The directory to write the man pages into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print the completion script for SHELL; run when building packages.
    #[command(hide = true)]
    Completions {
        /// The shell to print completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
pub enum TenantCmd {
    /// Destroy a departed system's tenant, irreversibly: its tenant keys are deleted from the
    /// key store, so its personal data is unreadable in the store and in every backup; its
    /// seals are revoked and the system stays suspended. Audited as tenant.destroy.
    Destroy {
        /// The system's appId.
        app_id: String,
        /// Why (recorded in the audit log and the system's history).
        #[arg(long)]
        reason: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Recompute every root and check every checkpoint signature; exits non-zero and names
    /// the first entry or checkpoint that does not match.
    Verify {
        /// Verify this export instead of the store (needs only the platform certificate).
        #[arg(long, value_name = "FILE")]
        from_export: Option<PathBuf>,
        /// A platform certificate (PEM); repeat it for the certificates of earlier platform
        /// keys (a log spanning `keys rotate platform`). Default: the data directory's
        /// current and previous ones.
        #[arg(long, value_name = "FILE")]
        cert: Vec<PathBuf>,
        /// Print the result as JSON, for scripts (the exit status still says whether the log
        /// is intact).
        #[arg(long)]
        json: bool,
    },
    /// Export entries as JSON Lines (SPEC §6.1), with an anchor when starting after entry 0.
    Export {
        /// First entry time, UTC milliseconds.
        #[arg(long, value_name = "MS")]
        from: Option<i64>,
        /// Last entry time, UTC milliseconds.
        #[arg(long, value_name = "MS")]
        to: Option<i64>,
        /// The file to write (JSON Lines), created anew.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// An RFC 9162 inclusion proof (--seq N --size M) or consistency proof (--consistency A B).
    Proof {
        /// The entry whose inclusion to prove.
        #[arg(long, requires = "size", conflicts_with = "consistency")]
        seq: Option<u64>,
        /// The tree size (a signed checkpoint) the proof is against.
        #[arg(long)]
        size: Option<u64>,
        /// Two tree sizes A < B: prove the log of size B extends the log of size A.
        #[arg(long, num_args = 2, value_names = ["A", "B"])]
        consistency: Option<Vec<u64>>,
    },
}

#[derive(Subcommand)]
pub enum QuotaCmd {
    /// Set the quota; consumption starts again at zero. Exhausted or expired → code 20007.
    Set {
        /// The system's appId.
        app_id: String,
        /// What the quota counts.
        #[arg(long, value_enum)]
        kind: QuotaKindArg,
        /// How many it allows in the period.
        #[arg(long)]
        limit: u64,
        /// First valid day, YYYY-MM-DD.
        #[arg(long, value_name = "DATE")]
        from: String,
        /// Last valid day, YYYY-MM-DD (inclusive).
        #[arg(long, value_name = "DATE")]
        until: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove the quota.
    Clear {
        /// The system's appId.
        app_id: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show the quota and its consumption.
    Show {
        /// The system's appId.
        app_id: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct SimulateArgs {
    /// The member's appId at the platform (callbacks carry it). Without it any appId is
    /// accepted, so the simulator can run before it is registered; the platform's signature is
    /// checked either way.
    #[arg(long, value_name = "APPID")]
    pub app_id: Option<String>,
    /// The platform certificate (PEM, from GET /api/v1/platform/certificate).
    #[arg(long, value_name = "FILE")]
    pub platform_cert: PathBuf,
    /// Listen address (default 127.0.0.1:9443).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9443")]
    pub listen: String,
    /// Seconds after `cloud/auth/apply` at which the intention counts as confirmed.
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    pub confirm_delay: u64,
    /// How the simulated member answers (`--behaviour` is the older name).
    #[arg(long = "mode", alias = "behaviour", value_name = "MODE", value_enum, default_value_t = BehaviourArg::Normal)]
    pub mode: BehaviourArg,
    /// With `--mode slow`: seconds over which each answer's body is sent.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub slow_secs: u64,
    /// Directory for the member's files: its TLS certificate (`callback-ca.pem`, register it
    /// as the callback CA) and key, its request key (`member-key.hex`, public half
    /// `member-public.pem` to register), all kept across restarts, and a seal (`seal.der`)
    /// carrying this run's signer certificate, ready for seal/filing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// File demo cloud seals for this organisation code (unified social credit code) at the
    /// platform, as the member `--app-id`, once the platform accepts its calls.
    #[arg(long, value_name = "ORGCODE", requires_all = ["platform", "app_id"])]
    pub file_seals: Option<String>,
    /// How many demo seals `--file-seals` files.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seals: usize,
    /// The platform's base URL for `--file-seals`, e.g. https://platform:8443.
    #[arg(long, value_name = "URL")]
    pub platform: Option<String>,
    /// CA certificate (PEM) of the platform's HTTPS server, when the operating system does
    /// not trust it.
    #[arg(long, value_name = "FILE")]
    pub platform_ca: Option<PathBuf>,
    /// Give the seal an RSA-2048 signer (P1 with hashType 3) instead of an SM2 one.
    #[arg(long)]
    pub rsa_signer: bool,
    /// Organisation name written into the generated certificates and seal.
    #[arg(long, default_value = "模拟印章系统")]
    pub org_name: String,
}

#[derive(Subcommand)]
pub enum TrustCmd {
    /// Trust a CA certificate (PEM or DER).
    Add {
        /// The CA certificate file (PEM or DER).
        certificate: PathBuf,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List trust anchors.
    List {
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a trust anchor by id.
    Remove {
        /// The anchor id `trust list` shows.
        id: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TlsCmd {
    /// Read tls.cert and tls.key again without a restart (as SIGHUP does): new connections
    /// get the new certificate; on an error the current one stays.
    Reload {
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// The same as `hutong init` (SPEC §5 names it `keys init`).
    Init {
        /// See `hutong init --adopt-kek`.
        #[arg(long, value_name = "LABEL")]
        adopt_kek: Option<String>,
    },
    /// Show the key provider, module, slot and key ids (never key material).
    Status {
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Replace a key; through the running server when there is one (no restart needed).
    #[command(subcommand)]
    Rotate(RotateCmd),
}

#[derive(Subcommand)]
pub enum RotateCmd {
    /// A new platform SM2 key and certificate: responses, routed calls, reports and audit
    /// checkpoints are signed with it at once; the old certificate stays listed in
    /// GET /api/v1/platform/certificates for keys.platform_overlap_days.
    Platform {
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// A new KEK (a new token object with pkcs11, a new keys/kek.key with file); the platform
    /// key is re-wrapped under it and the old KEK kept retired, so older backups still open.
    /// Then take a backup and run again with --finish --verified-backup FILE: the old KEK is
    /// destroyed only when FILE verifies completely under the new one.
    Kek {
        /// Destroy the retired KEK (needs --verified-backup).
        #[arg(long, requires = "verified_backup")]
        finish: bool,
        /// A backup made after the rotation; checked in full with the new KEK alone.
        #[arg(long, value_name = "FILE", requires = "finish")]
        verified_backup: Option<PathBuf>,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum SystemCmd {
    /// Register an approved seal system and print its appId.
    Add {
        /// Seal system name.
        #[arg(long)]
        name: String,
        /// Platform name shown to other systems (platName).
        #[arg(long)]
        plat_name: String,
        /// The system's SM2 public key: PEM SubjectPublicKeyInfo or X.509 certificate.
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// HTTPS base URL of the system's callback API.
        #[arg(long, value_name = "URL")]
        callback_url: Option<String>,
        /// PEM CA certificate the callback server's certificate chains to.
        #[arg(long, value_name = "FILE")]
        callback_ca: Option<PathBuf>,
        /// Client request address for UKey seals (destHost).
        #[arg(long, value_name = "URL")]
        dest_host: Option<String>,
        /// Initial state.
        #[arg(long, value_enum, default_value_t = NewStateArg::Testing)]
        state: NewStateArg,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List seal systems.
    List {
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Change a system's state (testing, online, suspended), with the reason recorded.
    SetState {
        /// The system's appId.
        app_id: String,
        /// The new state.
        #[arg(value_enum)]
        state: StateArg,
        /// Why: recorded in the state history and the audit log.
        #[arg(long)]
        reason: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Check a system's callback: resolve, TCP connect, TLS handshake, then a platform-signed
    /// cloud/auth/result for a random authId, expecting the member's own error answer. Prints
    /// each stage with its time; exits non-zero at the first failing stage.
    CheckCallback {
        /// The system's appId.
        app_id: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create an administrator; the password is read from standard input and must be changed
    /// at first login.
    Create {
        /// The new administrator's role (one of the three separated roles).
        #[arg(long, value_enum)]
        role: AdminRoleArg,
        /// The new administrator's username.
        #[arg(long)]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove an account's second factors (TOTP, SM2 certificate, recovery codes) and end its
    /// sessions; the account enrols again at its next login.
    ResetSecondFactor {
        /// The account's username.
        username: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List the administrators: role, disabled, locked, second factor, password to change.
    List {
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Disable an administrator and end its sessions.
    Disable {
        /// The administrator's username.
        username: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Enable a disabled administrator (also clears a lockout).
    Enable {
        /// The administrator's username.
        username: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Give an administrator a generated password (printed once) to change at the next login,
    /// clear its lockout and end its sessions.
    ResetPassword {
        /// The administrator's username.
        username: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Clear a locked-out administrator's lockout. Run as root or the service user on the
    /// server, it is the recovery path of a locked-out sole security administrator.
    Unlock {
        /// The administrator's username.
        username: String,
        /// Print the result as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// A system state (`system set-state`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StateArg {
    Testing,
    Online,
    Suspended,
}

impl From<StateArg> for SystemState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Testing => SystemState::Testing,
            StateArg::Online => SystemState::Online,
            StateArg::Suspended => SystemState::Suspended,
        }
    }
}

/// The state a new system starts in.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NewStateArg {
    Testing,
    Online,
}

impl From<NewStateArg> for SystemState {
    fn from(s: NewStateArg) -> Self {
        match s {
            NewStateArg::Testing => SystemState::Testing,
            NewStateArg::Online => SystemState::Online,
        }
    }
}

/// The roles an administrator created here can have (vendors register in the portal).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AdminRoleArg {
    Operator,
    Security,
    Auditor,
}

impl From<AdminRoleArg> for Role {
    fn from(r: AdminRoleArg) -> Self {
        match r {
            AdminRoleArg::Operator => Role::Operator,
            AdminRoleArg::Security => Role::Security,
            AdminRoleArg::Auditor => Role::Auditor,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum QuotaKindArg {
    Signatures,
    Users,
}

impl From<QuotaKindArg> for QuotaKind {
    fn from(k: QuotaKindArg) -> Self {
        match k {
            QuotaKindArg::Signatures => QuotaKind::Signatures,
            QuotaKindArg::Users => QuotaKind::Users,
        }
    }
}

/// How the simulated member answers.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BehaviourArg {
    /// Answers correctly.
    Normal,
    /// Signs with a key that is not the seal's.
    WrongKey,
    /// Never answers in time.
    Hang,
    /// Answers bytes that are not JSON.
    Garbage,
    /// Answers correctly, its body spread over `--slow-secs`.
    Slow,
}

impl BehaviourArg {
    pub fn behaviour(self, slow: std::time::Duration) -> Behaviour {
        match self {
            BehaviourArg::Normal => Behaviour::Normal,
            BehaviourArg::WrongKey => Behaviour::WrongKey,
            BehaviourArg::Hang => Behaviour::Hang,
            BehaviourArg::Garbage => Behaviour::Garbage,
            BehaviourArg::Slow => Behaviour::Slow(slow),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand, flag and positional argument says what it is for in `--help`.
    #[test]
    fn every_argument_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && !path.is_empty() {
                missing.push(format!("{path} (the command)"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "without a description: {missing:#?}");
    }
}
