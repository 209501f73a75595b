//! Typed configuration: embedded defaults, an optional TOML file, then `HUTONG_*` environment
//! overrides (`HUTONG_SECTION__KEY`, e.g. `HUTONG_API__TIME_WINDOW_SECS=120`; top-level keys
//! without a section, e.g. `HUTONG_LISTEN`).
//!
//! Defaults run the appliance with nothing else installed: data in `./hutong-data`, HTTPS on
//! `127.0.0.1:8443` with a generated certificate, and the `file` key provider.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not `source`: the message already carries the cause, anyhow would print it twice.
    #[error("无法读取配置文件 {path} / cannot read configuration file: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("配置无效 / invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the store, keys and generated certificates live.
    pub data_dir: PathBuf,
    /// HTTPS listen address of the API and console.
    pub listen: String,
    /// The installation's 6-digit administrative division code (seal codes, SPEC §3.9).
    pub region_code: String,
    pub server: ServerConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub tls: TlsConfig,
    pub keys: KeysConfig,
    pub api: ApiConfig,
    pub verify: VerifyConfig,
    pub interop: InteropConfig,
    pub metering: MeteringConfig,
    pub audit: AuditConfig,
    pub portal: PortalConfig,
    pub backup: BackupConfig,
}

/// Scheduled backups (SPEC §6.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Daily time of the scheduled backup, `HH:MM` platform time; empty turns it off.
    pub schedule: String,
    /// Where scheduled backups are written; default `<data_dir>/backups`.
    pub dir: Option<PathBuf>,
    /// How many scheduled backups are kept; older ones are removed after a good run.
    pub keep: u32,
}

impl BackupConfig {
    /// Seconds after platform midnight of `schedule`; `None` when it is empty (off).
    pub fn daily_secs(&self) -> Result<Option<u32>, String> {
        let s = self.schedule.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let bad = || {
            format!(
                "backup.schedule 应为 HH:MM（平台时间），留空关闭定时备份 / must be HH:MM platform time or empty, got {:?}",
                self.schedule
            )
        };
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let h: u32 = h.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        if h > 23 || m > 59 || s.len() != 5 {
            return Err(bad());
        }
        Ok(Some(h * 3600 + m * 60))
    }
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            schedule: "02:00".into(),
            dir: None,
            keep: 7,
        }
    }
}

/// How long a client may hold a connection without making progress (`[server]`): slow or
/// stalled clients are cut off so they cannot exhaust connections or file descriptors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Longest wait for the next piece of a request body, seconds (HTTP 408 beyond).
    pub body_timeout_secs: u64,
    /// Longest time for the TLS handshake and, separately, for the request head, seconds.
    pub header_timeout_secs: u64,
    /// How long an idle keep-alive connection is kept open, seconds (0: no keep-alive).
    pub keep_alive_secs: u64,
    /// Concurrent connections allowed from one client IP address; more are closed at once.
    pub max_connections_per_ip: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_timeout_secs: 10,
            header_timeout_secs: 5,
            keep_alive_secs: 5,
            max_connections_per_ip: 64,
        }
    }
}

/// How the log on standard error is written (`[log]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// `log.format`: lines for people, or one JSON object per line for journald and SIEM shippers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

// By hand, so a wrong name says which key and which names are allowed.
impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(serde::de::Error::custom(format!(
                "log.format must be \"text\" or \"json\", got {other:?}"
            ))),
        }
    }
}

/// Where Prometheus reads `/metrics` (`[metrics]`): not on the public API listener unless a
/// bearer token guards it there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Plain-HTTP listener for `/metrics`, `/healthz` and `/readyz`; empty: none.
    pub listen: String,
    /// A file holding a bearer token (0600); when set, `/metrics` is also served on the public
    /// listener to requests that present `Authorization: Bearer <token>`.
    pub token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            token_file: None,
        }
    }
}

impl MetricsConfig {
    /// The separate listener's address, unless disabled.
    pub fn listener(&self) -> Option<&str> {
        Some(self.listen.trim()).filter(|l| !l.is_empty())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; when unset a self-signed certificate is generated in the data dir.
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`.
    pub key: Option<PathBuf>,
}

/// Where the key-encryption key lives (`keys.provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyProviderKind {
    /// Evaluation: the KEK in a 0600 file in the data directory.
    File,
    /// The KEK in an HSM through a PKCS#11 module.
    Pkcs11,
}

impl KeyProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyProviderKind::File => "file",
            KeyProviderKind::Pkcs11 => "pkcs11",
        }
    }
}

impl std::fmt::Display for KeyProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// By hand, so a wrong name says which key and which names are allowed.
impl<'de> Deserialize<'de> for KeyProviderKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "file" => Ok(KeyProviderKind::File),
            "pkcs11" => Ok(KeyProviderKind::Pkcs11),
            other => Err(serde::de::Error::custom(format!(
                "keys.provider must be \"file\" or \"pkcs11\", got {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    pub provider: KeyProviderKind,
    /// Where the platform's SM2 private key lives (`keys.platform_key`).
    pub platform_key: PlatformKeyKind,
    /// Days a platform certificate stays listed as `previous` after `hutong keys rotate
    /// platform`, so members can switch to the new one.
    pub platform_overlap_days: u32,
    pub pkcs11: Pkcs11Section,
}

/// `keys.platform_key`: the platform SM2 key wrapped under the KEK and unwrapped into
/// memory (`wrapped`, the default), or generated and used inside the HSM (`hsm`), which needs
/// `keys.provider = "pkcs11"` and a module that offers an SM2 signing mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKeyKind {
    Wrapped,
    Hsm,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pkcs11Section {
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: Option<PathBuf>,
    pub token_label: Option<String>,
    pub slot: Option<u64>,
    /// User PIN; prefer `pin_file` or the `HUTONG_HSM_PIN` environment variable.
    pub pin: Option<String>,
    pub pin_file: Option<PathBuf>,
    /// Label of the AES-256 key-encryption key in the token.
    pub kek_label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Allowed difference between a request's `time` and the platform clock (SPEC §2).
    pub time_window_secs: u64,
    /// Largest JSON body accepted (`10003` beyond).
    pub max_json_bytes: usize,
    /// Largest uploaded document accepted (`10003` beyond).
    pub max_file_bytes: usize,
    /// Sustained requests per second allowed per appId (`20006` beyond).
    pub rate_limit_per_sec: u32,
    /// Burst allowance per appId.
    pub rate_limit_burst: u32,
    /// Lifetime of a `signId` (SPEC §3.8).
    pub sign_id_ttl_secs: u64,
    /// Accept MD5/SHA-1 `hashType`s (SPEC §3.6).
    pub allow_legacy_hashes: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// Whether a seal not on file makes `verifyResult` false (SPEC §3.10 step 6).
    pub unregistered_is_failure: bool,
    /// Time budget of one document verification in milliseconds (the SLA's 3 s per call);
    /// 0 means no budget.
    pub time_budget_ms: u64,
    /// Verifications running at once in this process (API, console and CLI together);
    /// 0 means twice the CPU cores (at least 4).
    pub max_concurrent: usize,
    /// Hard cap on the memory one PDF verification may plan for, in MiB, whatever the file's
    /// size (issue 12 point 5: at most 4 × the file, never more than this).
    pub max_memory_mib: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            unregistered_is_failure: false,
            time_budget_ms: 3000,
            max_concurrent: 0,
            max_memory_mib: 1024,
        }
    }
}

impl VerifyConfig {
    /// [`Self::max_concurrent`] with 0 resolved to twice the CPU cores (at least 4).
    pub fn concurrency_limit(&self) -> usize {
        if self.max_concurrent > 0 {
            return self.max_concurrent;
        }
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        (2 * cores).max(4)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InteropConfig {
    /// Total time budget of one call to a member's callback (SPEC §4), in milliseconds.
    pub member_timeout_ms: u64,
}

impl Default for InteropConfig {
    fn default() -> Self {
        Self {
            member_timeout_ms: 3000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeteringConfig {
    /// Days of usage counters kept (SPEC §6: at least three years).
    pub retention_days: u32,
}

impl Default for MeteringConfig {
    fn default() -> Self {
        Self {
            retention_days: 1100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days audit entries are kept before pruning (STD §8.1: at least six months).
    pub retention_days: u32,
}

/// The shortest retention the standard allows: six months.
pub const MIN_AUDIT_RETENTION_DAYS: u32 = 183;

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 190,
        }
    }
}

/// The vendor portal (`[portal]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// Every vendor account must enrol a TOTP second factor (otherwise it is optional).
    pub require_totp: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./hutong-data"),
            listen: "127.0.0.1:8443".into(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            region_code: "340000".into(),
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            keys: KeysConfig::default(),
            api: ApiConfig::default(),
            verify: VerifyConfig::default(),
            interop: InteropConfig::default(),
            metering: MeteringConfig::default(),
            audit: AuditConfig::default(),
            portal: PortalConfig::default(),
            backup: BackupConfig::default(),
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            provider: KeyProviderKind::File,
            platform_key: PlatformKeyKind::Wrapped,
            platform_overlap_days: 30,
            pkcs11: Pkcs11Section::default(),
        }
    }
}

impl Default for Pkcs11Section {
    fn default() -> Self {
        Self {
            module: None,
            token_label: None,
            slot: None,
            pin: None,
            pin_file: None,
            kek_label: "hutong-kek".into(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            time_window_secs: 300,
            max_json_bytes: 1024 * 1024,
            max_file_bytes: 100 * 1024 * 1024,
            rate_limit_per_sec: 200,
            rate_limit_burst: 400,
            sign_id_ttl_secs: 600,
            allow_legacy_hashes: false,
        }
    }
}

impl Config {
    /// Loads defaults, then `file` if given, then `HUTONG_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut value = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                path: path.to_path_buf(),
                error,
            })?;
            let from_file: toml::Value = toml::from_str(&text)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
            merge(&mut value, from_file);
        }
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix("HUTONG_") else {
                continue;
            };
            // Secrets read elsewhere, never part of the typed configuration.
            if rest == "HSM_PIN" {
                continue;
            }
            apply_env(&mut value, rest, &raw)?;
        }
        let config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.region_code.len() != 6 || !self.region_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid(format!(
                "region_code must be a 6-digit administrative division code, got {:?}",
                self.region_code
            )));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "tls.cert and tls.key must be set together".into(),
            ));
        }
        if !(1..=3650).contains(&self.keys.platform_overlap_days) {
            return Err(ConfigError::Invalid(format!(
                "keys.platform_overlap_days must be between 1 and 3650, got {}",
                self.keys.platform_overlap_days
            )));
        }
        if self.keys.platform_key == PlatformKeyKind::Hsm
            && self.keys.provider != KeyProviderKind::Pkcs11
        {
            return Err(ConfigError::Invalid(
                "keys.platform_key = \"hsm\" needs keys.provider = \"pkcs11\"".into(),
            ));
        }
        if self.api.time_window_secs == 0 || self.api.rate_limit_per_sec == 0 {
            return Err(ConfigError::Invalid(
                "api.time_window_secs and api.rate_limit_per_sec must be positive".into(),
            ));
        }
        if !(100..=60_000).contains(&self.interop.member_timeout_ms) {
            return Err(ConfigError::Invalid(
                "interop.member_timeout_ms must be between 100 and 60000".into(),
            ));
        }
        if let Some(l) = self.metrics.listener()
            && l.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "metrics.listen must be IP:port or empty (no metrics listener), got {l:?}"
            )));
        }
        let srv = &self.server;
        if !(1..=600).contains(&srv.body_timeout_secs) {
            return Err(ConfigError::Invalid(format!(
                "server.body_timeout_secs must be between 1 and 600, got {}",
                srv.body_timeout_secs
            )));
        }
        if !(1..=60).contains(&srv.header_timeout_secs) {
            return Err(ConfigError::Invalid(format!(
                "server.header_timeout_secs must be between 1 and 60, got {}",
                srv.header_timeout_secs
            )));
        }
        if srv.keep_alive_secs > 300 {
            return Err(ConfigError::Invalid(format!(
                "server.keep_alive_secs must be at most 300, got {}",
                srv.keep_alive_secs
            )));
        }
        if srv.max_connections_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "server.max_connections_per_ip must be positive".into(),
            ));
        }
        if self.metering.retention_days < 1096 {
            return Err(ConfigError::Invalid(
                "metering.retention_days must be at least 1096 (three years, SPEC §6)".into(),
            ));
        }
        self.backup.daily_secs().map_err(ConfigError::Invalid)?;
        if self.backup.keep == 0 {
            return Err(ConfigError::Invalid(
                "backup.keep 至少为 1 / backup.keep must be at least 1".into(),
            ));
        }
        if self.audit.retention_days < MIN_AUDIT_RETENTION_DAYS {
            return Err(ConfigError::Invalid(format!(
                "audit.retention_days 不能少于 {MIN_AUDIT_RETENTION_DAYS} 天（审计日志至少保存六个月，STD §8.1），当前为 {}",
                self.audit.retention_days
            )));
        }
        Ok(())
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Sets `SECTION__KEY` (or a top-level `KEY`) in `value`, typed after the default in place.
fn apply_env(value: &mut toml::Value, name: &str, raw: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = name.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let unknown = || ConfigError::Invalid(format!("unknown configuration variable HUTONG_{name}"));
    let mut cursor = value;
    for (i, part) in path.iter().enumerate() {
        let table = cursor.as_table_mut().ok_or_else(unknown)?;
        if i + 1 == path.len() {
            let typed = match table.get(part) {
                Some(toml::Value::Integer(_)) => {
                    raw.parse::<i64>().map(toml::Value::Integer).map_err(|_| {
                        ConfigError::Invalid(format!("HUTONG_{name} must be an integer"))
                    })?
                }
                Some(toml::Value::Boolean(_)) => {
                    raw.parse::<bool>().map(toml::Value::Boolean).map_err(|_| {
                        ConfigError::Invalid(format!("HUTONG_{name} must be true or false"))
                    })?
                }
                Some(toml::Value::Table(_)) => return Err(unknown()),
                // Strings and unset optional values (absent from the serialised defaults).
                _ if is_known_optional(&path) || table.contains_key(part) => {
                    if path.last().is_some_and(|p| p == "slot") {
                        raw.parse::<i64>().map(toml::Value::Integer).map_err(|_| {
                            ConfigError::Invalid(format!("HUTONG_{name} must be an integer"))
                        })?
                    } else {
                        toml::Value::String(raw.to_string())
                    }
                }
                _ => return Err(unknown()),
            };
            table.insert(part.clone(), typed);
            return Ok(());
        }
        cursor = table.get_mut(part).ok_or_else(unknown)?;
    }
    Err(unknown())
}

/// Optional settings have no entry in the serialised defaults, so they are listed here.
fn is_known_optional(path: &[String]) -> bool {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        p.as_slice(),
        ["metrics", "token_file"]
            | ["tls", "cert"]
            | ["tls", "key"]
            | ["keys", "pkcs11", "module"]
            | ["keys", "pkcs11", "token_label"]
            | ["keys", "pkcs11", "slot"]
            | ["keys", "pkcs11", "pin"]
            | ["keys", "pkcs11", "pin_file"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8443");
        assert_eq!(c.keys.provider, KeyProviderKind::File);
        assert_eq!(c.api.time_window_secs, 300);
    }

    #[test]
    fn file_then_environment_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(
            &path,
            "region_code = \"110000\"\n[api]\ntime_window_secs = 60\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("HUTONG_API__TIME_WINDOW_SECS", "120"),
                ("HUTONG_LISTEN", "0.0.0.0:9443"),
                ("HUTONG_KEYS__PKCS11__MODULE", "/usr/lib/x.so"),
                ("HUTONG_KEYS__PKCS11__SLOT", "3"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.region_code, "110000");
        assert_eq!(c.api.time_window_secs, 120);
        assert_eq!(c.listen, "0.0.0.0:9443");
        assert_eq!(
            c.keys.pkcs11.module.as_deref(),
            Some(Path::new("/usr/lib/x.so"))
        );
        assert_eq!(c.keys.pkcs11.slot, Some(3));
    }

    #[test]
    fn the_documented_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/hutong.toml");
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.data_dir, Path::new("/var/lib/hutong"));
        assert_eq!(c.keys.pkcs11.kek_label, "hutong-kek");
        assert_eq!(c.keys.platform_overlap_days, 30);
        assert_eq!(c.keys.platform_key, PlatformKeyKind::Wrapped);
    }

    #[test]
    fn platform_key_settings_are_checked() {
        let e =
            Config::load(None, env(&[("HUTONG_KEYS__PLATFORM_OVERLAP_DAYS", "0")])).unwrap_err();
        assert!(e.to_string().contains("keys.platform_overlap_days"), "{e}");
        let e = Config::load(None, env(&[("HUTONG_KEYS__PLATFORM_KEY", "hsm")])).unwrap_err();
        assert!(e.to_string().contains("keys.provider"), "{e}");
        let c = Config::load(
            None,
            env(&[
                ("HUTONG_KEYS__PLATFORM_KEY", "hsm"),
                ("HUTONG_KEYS__PROVIDER", "pkcs11"),
            ]),
        )
        .unwrap();
        assert_eq!(c.keys.platform_key, PlatformKeyKind::Hsm);
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::load(None, env(&[("HUTONG_API__TIME_WINDOW_SECS", "soon")])).unwrap_err();
        assert!(e.to_string().contains("HUTONG_API__TIME_WINDOW_SECS"));
        let e = Config::load(None, env(&[("HUTONG_NO_SUCH", "1")])).unwrap_err();
        assert!(e.to_string().contains("HUTONG_NO_SUCH"));
        let e = Config::load(None, env(&[("HUTONG_REGION_CODE", "34")])).unwrap_err();
        assert!(e.to_string().contains("region_code"));
    }

    #[test]
    fn server_limits_default_and_are_bounded() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.body_timeout_secs, 10);
        assert_eq!(c.server.max_connections_per_ip, 64);
        let c = Config::load(None, env(&[("HUTONG_SERVER__BODY_TIMEOUT_SECS", "2")])).unwrap();
        assert_eq!(c.server.body_timeout_secs, 2);
        for (var, bad) in [
            ("HUTONG_SERVER__BODY_TIMEOUT_SECS", "0"),
            ("HUTONG_SERVER__HEADER_TIMEOUT_SECS", "61"),
            ("HUTONG_SERVER__KEEP_ALIVE_SECS", "301"),
            ("HUTONG_SERVER__MAX_CONNECTIONS_PER_IP", "0"),
        ] {
            let e = Config::load(None, env(&[(var, bad)])).unwrap_err();
            let key = var["HUTONG_SERVER__".len()..].to_ascii_lowercase();
            assert!(e.to_string().contains(&format!("server.{key}")), "{e}");
        }
    }

    #[test]
    fn metrics_listen_on_loopback_by_default_and_can_be_turned_off() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.metrics.listener(), Some("127.0.0.1:9464"));
        let c = Config::load(None, env(&[("HUTONG_METRICS__LISTEN", "")])).unwrap();
        assert_eq!(c.metrics.listener(), None);
        let c = Config::load(None, env(&[("HUTONG_METRICS__TOKEN_FILE", "/etc/t")])).unwrap();
        assert_eq!(c.metrics.token_file.as_deref(), Some(Path::new("/etc/t")));
        let e = Config::load(None, env(&[("HUTONG_METRICS__LISTEN", "9464")])).unwrap_err();
        assert!(e.to_string().contains("metrics.listen"), "{e}");
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        assert_eq!(
            Config::load(None, env(&[])).unwrap().log.format,
            LogFormat::Text
        );
        let c = Config::load(None, env(&[("HUTONG_LOG__FORMAT", "json")])).unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        let e = Config::load(None, env(&[("HUTONG_LOG__FORMAT", "xml")])).unwrap_err();
        assert!(e.to_string().contains("log.format must be"), "{e}");
    }

    #[test]
    fn the_key_provider_is_one_of_two_names() {
        let c = Config::load(None, env(&[("HUTONG_KEYS__PROVIDER", "pkcs11")])).unwrap();
        assert_eq!(c.keys.provider, KeyProviderKind::Pkcs11);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(&path, "[keys]\nprovider = \"pkcs11\"\n").unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.keys.provider, KeyProviderKind::Pkcs11);
        for bad in ["hsm", "FILE", ""] {
            let e = Config::load(None, env(&[("HUTONG_KEYS__PROVIDER", bad)])).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("keys.provider must be \"file\" or \"pkcs11\""),
                "{msg}"
            );
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }

    #[test]
    fn audit_retention_defaults_to_190_days_and_refuses_less_than_six_months() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.audit.retention_days, 190);
        let c = Config::load(None, env(&[("HUTONG_AUDIT__RETENTION_DAYS", "183")])).unwrap();
        assert_eq!(c.audit.retention_days, 183);
        let e = Config::load(None, env(&[("HUTONG_AUDIT__RETENTION_DAYS", "182")])).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("audit.retention_days") && msg.contains("183") && msg.contains("182"),
            "{msg}"
        );
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/hutong.toml");
        assert_eq!(
            Config::load(Some(&path), env(&[]))
                .unwrap()
                .audit
                .retention_days,
            190
        );
    }
}
