//! `hutong config check`: what would stop the appliance from starting, or leave it exposed,
//! found before it starts (an upgrade restarts the service only when this passes). Each line
//! says what was checked in Chinese and English; any problem makes the command fail.

use hutong::config::Config;
use hutong::keys::Keyring;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// One finding: `Ok` passed, `Note` needs no action, `Problem` must be fixed.
enum Level {
    Ok,
    Note,
    Problem,
}

struct Finding {
    level: Level,
    zh: String,
    en: String,
}

fn finding(level: Level, zh: impl Into<String>, en: impl Into<String>) -> Finding {
    Finding {
        level,
        zh: zh.into(),
        en: en.into(),
    }
}

/// Permission bits beyond the owner's on a secret file or directory (0 when private).
fn exposed_bits(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o077)
}

fn data_dir(config: &Config) -> Vec<Finding> {
    let dir = &config.data_dir;
    match std::fs::metadata(dir) {
        Err(_) => vec![finding(
            Level::Note,
            format!(
                "数据目录 {} 尚不存在，hutong init 或首次启动时创建",
                dir.display()
            ),
            format!(
                "data directory {} does not exist yet; hutong init or the first start creates it",
                dir.display()
            ),
        )],
        Ok(m) if !m.is_dir() => vec![finding(
            Level::Problem,
            format!("数据目录 {} 不是目录", dir.display()),
            format!("data directory {} is not a directory", dir.display()),
        )],
        Ok(m) if m.permissions().mode() & 0o007 != 0 => vec![finding(
            Level::Problem,
            format!(
                "数据目录 {} 对其他用户开放（权限 {:o}），应为 0750 或更严",
                dir.display(),
                m.permissions().mode() & 0o777
            ),
            format!(
                "data directory {} is open to other users (mode {:o}); use 0750 or stricter",
                dir.display(),
                m.permissions().mode() & 0o777
            ),
        )],
        Ok(_) => vec![finding(
            Level::Ok,
            format!("数据目录 {}", dir.display()),
            format!("data directory {}", dir.display()),
        )],
    }
}

fn keys(config: &Config) -> Vec<Finding> {
    // Before init too: an HSM-held platform key is refused before anything is made.
    if let Err(e) = hutong::keys::platform::check_setting(config) {
        return vec![finding(
            Level::Problem,
            format!("keys.platform_key 不可用：{e}"),
            format!("keys.platform_key unusable: {e}"),
        )];
    }
    if !Keyring::is_initialised(config) {
        return vec![finding(
            Level::Note,
            "平台密钥尚未创建，hutong init 或首次启动时创建",
            "platform keys not created yet; hutong init or the first start creates them",
        )];
    }
    let mut out = Vec::new();
    let dir = config.data_dir.join("keys");
    let list = |d: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    // The tenant keys (`file` provider) are key files too.
    let mut files = list(&dir);
    files.extend(list(&dir.join(hutong::keys::file::TENANTS_DIR)));
    files.sort();
    for path in std::iter::once(dir.clone()).chain(files) {
        if let Some(bits) = exposed_bits(&path).filter(|b| *b != 0) {
            out.push(finding(
                Level::Problem,
                format!("{} 可被属主以外的用户访问（多余权限 {bits:o}），应为 0600（目录 0700）", path.display()),
                format!("{} is accessible beyond its owner (extra bits {bits:o}); use 0600 (directory 0700)", path.display()),
            ));
        }
    }
    out.push(match Keyring::load(config) {
        Ok(k) => {
            let s = k.status();
            let slot = s.slot.map(|s| format!("，槽位 {s}")).unwrap_or_default();
            finding(
                Level::Ok,
                format!("密钥提供者 {}{slot}：KEK 存在，平台私钥可解封，与平台证书一致", s.provider),
                format!("key provider {}: KEK present, platform key unwraps and matches the platform certificate", s.provider),
            )
        }
        Err(e) => finding(
            Level::Problem,
            format!("密钥提供者不可用：{e}"),
            format!("key provider unusable: {e}"),
        ),
    });
    out
}

fn tls(config: &Config) -> Vec<Finding> {
    let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) else {
        return vec![finding(
            Level::Note,
            "未配置 tls.cert/tls.key：使用数据目录中自动生成的证书",
            "tls.cert/tls.key not set: the generated certificate in the data directory is used",
        )];
    };
    let mut out = Vec::new();
    for (path, what_zh, what_en) in [
        (cert, "TLS 证书", "TLS certificate"),
        (key, "TLS 私钥", "TLS key"),
    ] {
        match std::fs::read_to_string(path) {
            Ok(text) if text.contains("-----BEGIN ") => out.push(finding(
                Level::Ok,
                format!("{what_zh} {}", path.display()),
                format!("{what_en} {}", path.display()),
            )),
            Ok(_) => out.push(finding(
                Level::Problem,
                format!("{what_zh} {} 不是 PEM 文件", path.display()),
                format!("{what_en} {} is not a PEM file", path.display()),
            )),
            Err(e) => out.push(finding(
                Level::Problem,
                format!("{what_zh} {} 无法读取：{e}", path.display()),
                format!("{what_en} {} cannot be read: {e}", path.display()),
            )),
        }
    }
    if let Some(bits) = exposed_bits(key).filter(|b| *b != 0) {
        out.push(finding(
            Level::Problem,
            format!(
                "TLS 私钥 {} 可被属主以外的用户访问（多余权限 {bits:o}），应为 0600",
                key.display()
            ),
            format!(
                "TLS key {} is accessible beyond its owner (extra bits {bits:o}); use 0600",
                key.display()
            ),
        ));
    }
    out
}

fn listen(config: &Config) -> Vec<Finding> {
    let mut out = vec![address_free(
        &config.listen,
        "监听地址",
        "listen address",
        config,
    )];
    match config.metrics.listener() {
        Some(m) => out.push(address_free(
            m,
            "监控监听地址",
            "metrics listen address",
            config,
        )),
        None => out.push(finding(
            Level::Note,
            "未配置 metrics.listen：无单独的监控监听地址",
            "metrics.listen is empty: no separate monitoring listener",
        )),
    }
    out
}

/// Whether `addr` can be bound (or is held by the running appliance itself).
fn address_free(addr: &str, what_zh: &str, what_en: &str, config: &Config) -> Finding {
    let Ok(parsed) = addr.parse::<std::net::SocketAddr>() else {
        return finding(
            Level::Problem,
            format!("{what_zh} {addr:?} 不是 IP:端口"),
            format!("{what_en} {addr:?} is not IP:port"),
        );
    };
    match std::net::TcpListener::bind(parsed) {
        Ok(_) => finding(
            Level::Ok,
            format!("{what_zh} {addr} 可用"),
            format!("{what_en} {addr} is free"),
        ),
        // The running appliance holds its own address: expected before a restart.
        Err(_) if running(config) => finding(
            Level::Note,
            format!("{what_zh} {addr} 由正在运行的 hutong 使用"),
            format!("{what_en} {addr} is held by the running hutong"),
        ),
        Err(e) => finding(
            Level::Problem,
            format!("{what_zh} {addr} 不可用：{e}"),
            format!("{what_en} {addr} cannot be bound: {e}"),
        ),
    }
}

/// Where `/metrics` is served, and whether the token file guarding it is usable and private.
fn metrics_token(config: &Config) -> Vec<Finding> {
    let Some(path) = &config.metrics.token_file else {
        return vec![finding(
            Level::Ok,
            "HTTPS 监听地址不提供 /metrics（未配置 metrics.token_file）",
            "/metrics is not served on the HTTPS listener (metrics.token_file not set)",
        )];
    };
    let mut out = vec![match hutong::server::MetricsToken::read(path) {
        Ok(_) => finding(
            Level::Ok,
            format!(
                "HTTPS 监听地址上的 /metrics 凭令牌访问（{}）",
                path.display()
            ),
            format!(
                "/metrics on the HTTPS listener requires the bearer token in {}",
                path.display()
            ),
        ),
        Err(e) => finding(
            Level::Problem,
            format!("{e}"),
            format!(
                "metrics token file {} unusable (one line, at least 16 characters, no spaces)",
                path.display()
            ),
        ),
    }];
    if let Some(bits) = exposed_bits(path).filter(|b| *b != 0) {
        out.push(finding(
            Level::Problem,
            format!("监控令牌文件 {} 可被属主以外的用户访问（多余权限 {bits:o}），应为 0600", path.display()),
            format!("metrics token file {} is accessible beyond its owner (extra bits {bits:o}); use 0600", path.display()),
        ));
    }
    out
}

/// The connection limits and log format in effect (validated when the file loaded), so the
/// operator sees them.
fn server_limits(config: &Config) -> Vec<Finding> {
    let s = &config.server;
    let format = match config.log.format {
        hutong::config::LogFormat::Text => "text",
        hutong::config::LogFormat::Json => "json",
    };
    vec![
        finding(
            Level::Ok,
            format!("日志格式 {format}（标准错误输出）"),
            format!("log format {format} (standard error)"),
        ),
        finding(
            Level::Ok,
            format!(
                "连接限制：请求体超时 {} 秒，握手与请求头超时 {} 秒，空闲保持 {} 秒，每个客户端地址最多 {} 个连接",
                s.body_timeout_secs,
                s.header_timeout_secs,
                s.keep_alive_secs,
                s.max_connections_per_ip
            ),
            format!(
                "connection limits: body timeout {} s, handshake and head timeout {} s, keep-alive {} s, at most {} connections per client address",
                s.body_timeout_secs,
                s.header_timeout_secs,
                s.keep_alive_secs,
                s.max_connections_per_ip
            ),
        ),
    ]
}

fn running(config: &Config) -> bool {
    let socket = hutong::server::control::socket_path(&config.data_dir);
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// Runs every check on `config` (already parsed and validated) and prints the findings.
pub fn run(config: &Config) -> anyhow::Result<()> {
    let findings: Vec<Finding> = [
        data_dir(config),
        keys(config),
        tls(config),
        listen(config),
        metrics_token(config),
        server_limits(config),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!("✓ 配置文件有效 / configuration is valid");
    let mut problems = 0;
    for f in &findings {
        let mark = match f.level {
            Level::Ok => "✓",
            Level::Note => "·",
            Level::Problem => {
                problems += 1;
                "✗"
            }
        };
        println!("{mark} {} / {}", f.zh, f.en);
    }
    if problems > 0 {
        anyhow::bail!(
            "配置检查发现 {problems} 个问题 / configuration check found {problems} problem(s)"
        );
    }
    println!("配置检查通过 / configuration check passed");
    Ok(())
}

/// A configuration that does not load: said in both languages, the command fails.
pub fn invalid(e: &anyhow::Error) -> anyhow::Result<()> {
    println!("✗ {e:#}");
    anyhow::bail!("配置检查未通过 / configuration check failed")
}
