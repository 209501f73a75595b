//! The `hutong` command: the appliance server and its management commands.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use hutong::config::Config;
use hutong::server::{self, control};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

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
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct Global {
    /// Configuration file (TOML); see packaging/hutong.toml. HUTONG_* variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (store, keys, certificates); default ./hutong-data.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the appliance (HTTPS API and console); creates keys and data on first start.
    Serve {
        /// Listen address, e.g. 0.0.0.0:8443 (default 127.0.0.1:8443).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Create the data directory, keys and platform certificate without serving.
    Init,
    /// Key provider and platform key status.
    #[command(subcommand)]
    Keys(KeysCmd),
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
        #[arg(long)]
        json: bool,
    },
    /// Manage a system's usage quota (signature count or user count with a validity period).
    #[command(subcommand)]
    Quota(QuotaCmd),
    /// Run a simulated member seal system that answers the platform's callbacks (SPEC §4).
    SimulateMember(SimulateArgs),
}

#[derive(Subcommand)]
enum QuotaCmd {
    /// Set the quota; consumption starts again at zero. Exhausted or expired → code 20007.
    Set {
        app_id: String,
        #[arg(long, value_parser = ["signatures", "users"])]
        kind: String,
        #[arg(long)]
        limit: u64,
        /// First valid day, YYYY-MM-DD.
        #[arg(long, value_name = "DATE")]
        from: String,
        /// Last valid day, YYYY-MM-DD (inclusive).
        #[arg(long, value_name = "DATE")]
        until: String,
    },
    /// Remove the quota.
    Clear { app_id: String },
    /// Show the quota and its consumption.
    Show {
        app_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct SimulateArgs {
    /// The member's appId at the platform (callbacks carry it). Without it any appId is
    /// accepted, so the simulator can run before it is registered; the platform's signature is
    /// checked either way.
    #[arg(long, value_name = "APPID")]
    app_id: Option<String>,
    /// The platform certificate (PEM, from GET /api/v1/platform/certificate).
    #[arg(long, value_name = "FILE")]
    platform_cert: PathBuf,
    /// Listen address (default 127.0.0.1:9443).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9443")]
    listen: String,
    /// Seconds after `cloud/auth/apply` at which the intention counts as confirmed.
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    confirm_delay: u64,
    /// normal, wrong-key, hang or garbage.
    #[arg(long, value_name = "MODE", default_value = "normal")]
    behaviour: String,
    /// Directory for the generated TLS certificate (register it as the callback CA) and a
    /// seal (`seal.der`) carrying the simulator's signer certificate, ready for seal/filing.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Give the seal an RSA-2048 signer (P1 with hashType 3) instead of an SM2 one.
    #[arg(long)]
    rsa_signer: bool,
    /// Organisation name written into the generated certificates and seal.
    #[arg(long, default_value = "模拟印章系统")]
    org_name: String,
}

#[derive(Subcommand)]
enum TrustCmd {
    /// Trust a CA certificate (PEM or DER).
    Add { certificate: PathBuf },
    /// List trust anchors.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a trust anchor by id.
    Remove { id: String },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Show the key provider, module, slot and key ids (never key material).
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SystemCmd {
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
        #[arg(long, value_parser = ["testing", "online"], default_value = "testing")]
        state: String,
        #[arg(long)]
        json: bool,
    },
    /// List seal systems.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a system's state (testing, online, suspended), with the reason recorded.
    SetState {
        app_id: String,
        #[arg(value_parser = ["testing", "online", "suspended"])]
        state: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create an administrator; the password is read from standard input and must be changed
    /// at first login.
    Create {
        #[arg(long, value_parser = ["operator", "security", "auditor"])]
        role: String,
        #[arg(long)]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

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
    let mut config = load_config(&cli.global)?;
    match cli.command {
        Cmd::Serve { listen } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            serve(config)
        }
        Cmd::Init => init(config),
        Cmd::Keys(KeysCmd::Status { json }) => {
            let v = manage(&config, control::Command::KeysStatus)?;
            print_value(&v, json);
            Ok(())
        }
        Cmd::System(cmd) => system(&config, cmd),
        Cmd::Trust(cmd) => trust(&config, cmd),
        Cmd::Verify { file, json } => verify(&config, &file, json),
        Cmd::Usage {
            app_id,
            from,
            to,
            csv,
            json,
        } => usage(&config, app_id, from, to, csv, json),
        Cmd::Quota(cmd) => quota(&config, cmd),
        Cmd::SimulateMember(args) => simulate_member(args),
        Cmd::Admin(AdminCmd::Create { role, username, .. }) => {
            let mut line = String::new();
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut line)
                .context("reading the password from standard input")?;
            let password = line.lines().next().unwrap_or_default().to_string();
            if password.is_empty() {
                bail!("no password on standard input");
            }
            let v = manage(
                &config,
                control::Command::AdminCreate {
                    role,
                    username,
                    password,
                },
            )?;
            println!(
                "created {} ({})",
                v["username"].as_str().unwrap_or(""),
                v["role"].as_str().unwrap_or("")
            );
            Ok(())
        }
    }
}

fn simulate_member(args: SimulateArgs) -> Result<()> {
    use hutong::interop::simulator::{self, Behaviour, MemberIdentity, SimulatorConfig};
    let behaviour = Behaviour::parse(&args.behaviour).with_context(|| {
        format!(
            "unknown behaviour {} (normal, wrong-key, hang, garbage)",
            args.behaviour
        )
    })?;
    let pem = std::fs::read_to_string(&args.platform_cert)
        .with_context(|| format!("reading {}", args.platform_cert.display()))?;
    let (_, der) = hutong::crypto::sm::pem_decode(&pem).context("platform certificate PEM")?;
    let platform_key = hutong::crypto::sm::sm2_public_key_from_cert_der(&der)
        .context("platform certificate is not an SM2 certificate")?;
    let identity = if args.rsa_signer {
        MemberIdentity::generate_rsa(&args.org_name)?
    } else {
        MemberIdentity::generate(&args.org_name)?
    };
    // A 1×1 PNG header is enough for a test seal picture.
    let mut picture = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    picture.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    let seal = identity.build_seal(&args.org_name, "simulator-seal-1", picture, 365)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("seal.der"), &seal)?;
    let signer_cert = match &identity.rsa_signer {
        Some(rsa) => &rsa.cert,
        None => &identity.kit.signer_cert,
    };
    std::fs::write(
        args.out.join("signer.pem"),
        hutong::crypto::sm::pem_encode("CERTIFICATE", signer_cert),
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let running = simulator::start(SimulatorConfig {
            app_id: args.app_id.unwrap_or_default(),
            platform_key,
            identity,
            confirm_delay: std::time::Duration::from_secs(args.confirm_delay),
            time_window: std::time::Duration::from_secs(300),
            listen: args.listen,
        })?;
        running.set_behaviour(behaviour);
        std::fs::write(args.out.join("callback-ca.pem"), &running.tls_cert_pem)?;
        println!("simulated member listening at {}", running.base_url);
        println!(
            "register: hutong system add ... --callback-url {} --callback-ca {}",
            running.base_url,
            args.out.join("callback-ca.pem").display()
        );
        println!("seal for filing: {}", args.out.join("seal.der").display());
        running.wait().await?;
        Ok(())
    })
}

fn serve(config: Config) -> Result<()> {
    // Keys live unwrapped in this process: keep them out of core dumps.
    // SAFETY: prctl(PR_SET_DUMPABLE) takes plain integers and affects only this process.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let started = std::time::Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let data_dir = config.data_dir.clone();
        let prepared = tokio::task::spawn_blocking(move || server::prepare(config))
            .await
            .context("start-up task failed")??;
        if let Some((user, password)) = &prepared.bootstrap {
            println!("==============================================================");
            println!(" 首次启动：初始安全管理员账号（仅显示一次，首次登录须修改密码）");
            println!(" First start: initial security administrator (shown once)");
            println!("   username: {user}");
            println!("   password: {password}");
            println!("==============================================================");
        }
        if prepared.keys_created {
            println!(
                "created platform keys in {}",
                data_dir.join("keys").display()
            );
        }
        let running = server::start(prepared)?;
        println!(
            "hutong listening on https://{} (data {}), ready in {} ms",
            running.addr,
            data_dir.display(),
            started.elapsed().as_millis()
        );
        if let Some(m) = running.metrics_addr {
            println!("metrics and health on http://{m}");
        }
        running.serve().await?;
        println!("hutong stopped");
        Ok(())
    })
}

fn init(config: Config) -> Result<()> {
    server::ensure_data_dir(&config)?;
    if hutong::keys::Keyring::is_initialised(&config) {
        bail!("{} is already initialised", config.data_dir.display());
    }
    let store = hutong::store::Store::open(&config.data_dir)?;
    hutong::keys::Keyring::init(&config)?;
    if let Some((user, password)) = hutong::domain::accounts::bootstrap(&store)? {
        println!(
            "initial security administrator: {user} / {password} (shown once; change at first login)"
        );
    }
    store.flush_blocking()?;
    println!("initialised {}", config.data_dir.display());
    Ok(())
}

/// Runs a management command in the running server if there is one, else locally.
fn manage(config: &Config, cmd: control::Command) -> Result<Value> {
    if let Some(v) = control::call(&config.data_dir, &cmd).map_err(anyhow::Error::msg)? {
        return Ok(v);
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
                if let Some(v) =
                    control::call(&config.data_dir, &cmd).map_err(anyhow::Error::msg)?
                {
                    return Ok(v);
                }
            }
            hutong::store::Store::open(&config.data_dir)?
        }
        Err(e) => return Err(e.into()),
    };
    let keys = if matches!(cmd, control::Command::KeysStatus) {
        Some(hutong::keys::Keyring::load(config)?)
    } else {
        None
    };
    let writes = cmd.changes_state();
    let v =
        control::execute(&store, keys.as_ref(), config, cmd, "cli").map_err(anyhow::Error::msg)?;
    if writes {
        store.flush_blocking()?;
    }
    Ok(v)
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("{what} {}", path.display()))?;
    if meta.len() > 64 * 1024 {
        bail!("{what} {} is larger than 64 KiB", path.display());
    }
    std::fs::read_to_string(path).with_context(|| format!("{what} {}", path.display()))
}

fn system(config: &Config, cmd: SystemCmd) -> Result<()> {
    match cmd {
        SystemCmd::Add {
            name,
            plat_name,
            public_key,
            callback_url,
            callback_ca,
            dest_host,
            state,
            json,
        } => {
            let public_key_pem = read_text(&public_key, "public key")?;
            let callback_ca_pem = callback_ca
                .map(|p| read_text(&p, "callback CA"))
                .transpose()?;
            let v = manage(
                config,
                control::Command::SystemAdd {
                    name,
                    plat_name,
                    public_key_pem,
                    callback_url,
                    callback_ca_pem,
                    dest_host,
                    state: Some(state),
                },
            )?;
            if json {
                println!("{v}");
            } else {
                println!("{}", v["appId"].as_str().unwrap_or(""));
            }
        }
        SystemCmd::List { json } => {
            let v = manage(config, control::Command::SystemList)?;
            if json {
                println!("{v}");
            } else {
                println!("{:<20} {:<10} {:<24} PLATFORM", "APPID", "STATE", "NAME");
                for s in v.as_array().into_iter().flatten() {
                    println!(
                        "{:<20} {:<10} {:<24} {}",
                        s["appId"].as_str().unwrap_or(""),
                        s["state"].as_str().unwrap_or(""),
                        s["name"].as_str().unwrap_or(""),
                        s["platName"].as_str().unwrap_or("")
                    );
                }
            }
        }
        SystemCmd::SetState {
            app_id,
            state,
            reason,
        } => {
            let v = manage(
                config,
                control::Command::SystemSetState {
                    app_id,
                    state,
                    reason,
                },
            )?;
            println!(
                "{} {}",
                v["appId"].as_str().unwrap_or(""),
                v["state"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

fn usage(
    config: &Config,
    app_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    csv: bool,
    json: bool,
) -> Result<()> {
    use hutong::domain::metering;
    let to = match to {
        Some(t) => t,
        None => metering::fmt_day(metering::day_of(hutong::time::now_ms())),
    };
    let from = match from {
        Some(f) => f,
        None => metering::fmt_day(metering::add_days(metering::parse_day(&to)?, -29)),
    };
    let v = manage(config, control::Command::UsageReport { app_id, from, to })?;
    if json {
        println!("{v}");
        return Ok(());
    }
    let rows: Vec<metering::ReportRow> = serde_json::from_value(v)?;
    if csv {
        print!("{}", metering::to_csv(&rows));
        return Ok(());
    }
    println!(
        "{:<10}  {:<20} {:<26} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "DATE", "APPID", "INTERFACE", "CALLS", "OK", "FAILED", "SIGNS", "USERS"
    );
    for r in &rows {
        let c = r.counts;
        println!(
            "{:<10}  {:<20} {:<26} {:>8} {:>8} {:>8} {:>8} {:>6}",
            r.date,
            r.app_id,
            r.interface,
            c.calls,
            c.succeeded,
            c.failed,
            c.signatures,
            r.distinct_users
        );
    }
    let t = metering::totals(&rows);
    println!(
        "{:<10}  {:<20} {:<26} {:>8} {:>8} {:>8} {:>8}",
        "total", "", "", t.calls, t.succeeded, t.failed, t.signatures
    );
    Ok(())
}

fn quota(config: &Config, cmd: QuotaCmd) -> Result<()> {
    let (v, json) = match cmd {
        QuotaCmd::Set {
            app_id,
            kind,
            limit,
            from,
            until,
        } => (
            manage(
                config,
                control::Command::QuotaSet {
                    app_id,
                    kind,
                    limit,
                    from,
                    until,
                },
            )?,
            false,
        ),
        QuotaCmd::Clear { app_id } => {
            manage(config, control::Command::QuotaClear { app_id })?;
            println!("quota removed");
            return Ok(());
        }
        QuotaCmd::Show { app_id, json } => (
            manage(config, control::Command::QuotaShow { app_id })?,
            json,
        ),
    };
    if json {
        println!("{v}");
    } else if v.is_null() {
        println!("no quota");
    } else {
        println!(
            "{} {}/{} used, {} remaining, valid {} .. {} ({})",
            v["kind"].as_str().unwrap_or(""),
            v["used"],
            v["limit"],
            v["remaining"],
            v["validFrom"].as_str().unwrap_or(""),
            v["validUntil"].as_str().unwrap_or(""),
            v["status"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn trust(config: &Config, cmd: TrustCmd) -> Result<()> {
    use base64::Engine;
    match cmd {
        TrustCmd::Add { certificate } => {
            let bytes = std::fs::read(&certificate)
                .with_context(|| format!("certificate {}", certificate.display()))?;
            let v = manage(
                config,
                control::Command::TrustAdd {
                    certificate_b64: base64::engine::general_purpose::STANDARD.encode(bytes),
                },
            )?;
            println!(
                "{} {}",
                v["id"].as_str().unwrap_or(""),
                v["subject"].as_str().unwrap_or("")
            );
        }
        TrustCmd::List { json } => {
            let v = manage(config, control::Command::TrustList)?;
            if json {
                println!("{v}");
            } else {
                for a in v.as_array().into_iter().flatten() {
                    println!(
                        "{}  {}  (valid until {})",
                        a["id"].as_str().unwrap_or(""),
                        a["subject"].as_str().unwrap_or(""),
                        a["notAfter"].as_str().unwrap_or("")
                    );
                }
            }
        }
        TrustCmd::Remove { id } => {
            manage(config, control::Command::TrustRemove { id })?;
            println!("removed");
        }
    }
    Ok(())
}

/// Verifies through the running server when there is one (its registry and trust anchors),
/// else against the data directory directly, else with no anchors and no registry.
fn verify(config: &Config, file: &Path, json: bool) -> Result<()> {
    use base64::Engine;
    let meta = std::fs::metadata(file).with_context(|| format!("document {}", file.display()))?;
    if meta.len() > config.api.max_file_bytes as u64 {
        bail!(
            "{} is larger than the {} byte limit",
            file.display(),
            config.api.max_file_bytes
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("document {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report: Value = if config.data_dir.exists() {
        manage(
            config,
            control::Command::VerifyDocument {
                file_name: name,
                content_b64: base64::engine::general_purpose::STANDARD.encode(&bytes),
            },
        )?
    } else {
        let opts = hutong::verify::VerifyOptions {
            max_file_size: config.api.max_file_bytes,
            ..Default::default()
        };
        let r = hutong::verify::verify_document(
            &bytes,
            &name,
            &opts,
            &hutong::verify::report::EmptyRegistry,
        )?;
        serde_json::to_value(r)?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report["verifyResult"].as_bool() == Some(true) {
        Ok(())
    } else {
        std::process::exit(2)
    }
}

fn print_report(r: &Value) {
    println!(
        "{}  {}  {} 字节  签名 {} 个  结论: {}",
        r["format"].as_str().unwrap_or(""),
        r["fileName"].as_str().unwrap_or(""),
        r["fileSize"],
        r["signCount"],
        if r["verifyResult"].as_bool() == Some(true) {
            "通过"
        } else {
            "未通过"
        }
    );
    if let Some(e) = r["error"].as_str() {
        println!("  文档错误: {e}");
    }
    for (i, d) in r["details"].as_array().into_iter().flatten().enumerate() {
        println!(
            "  #{} {} {} 签署时间 {} 签署者 {} 印章 {} {}",
            i + 1,
            d["signatureType"].as_str().unwrap_or(""),
            d["location"].as_str().unwrap_or(""),
            d["signTime"].as_str().unwrap_or(""),
            d["certOwner"].as_str().unwrap_or(""),
            d["sealName"].as_str().unwrap_or(""),
            d["sealCode"].as_str().unwrap_or("")
        );
        for f in d["flowVoList"].as_array().into_iter().flatten() {
            println!(
                "     [{}] {:<11} {}",
                if f["status"] == 1 { "✓" } else { "✗" },
                f["step"].as_str().unwrap_or(""),
                f["hint"].as_str().unwrap_or("")
            );
        }
    }
}

fn print_value(v: &Value, json: bool) {
    if json {
        println!("{v}");
    } else if let Some(map) = v.as_object() {
        for (k, val) in map {
            match val {
                Value::String(s) => println!("{k}: {s}"),
                Value::Null => println!("{k}: -"),
                other => println!("{k}: {other}"),
            }
        }
    }
}
