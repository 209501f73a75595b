//! The long-running and set-up commands: `serve`, `init` and `simulate-member`.

use super::args::SimulateArgs;
use anyhow::{Context, Result, bail};
use hutong::config::Config;
use hutong::server;

pub fn serve(config: Config) -> Result<()> {
    // Keys live unwrapped in this process: keep them out of core dumps.
    if let Err(e) = hutong::hardening::disable_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    // Before the runtime starts, so every worker and listener sees the raised limit.
    match hutong::hardening::raise_open_file_limit() {
        Ok((old, new)) => tracing::info!(from = old, to = new, "open-file limit (RLIMIT_NOFILE)"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
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
            hand_over_credentials(user, password, &data_dir, None)?;
        }
        if prepared.keys_created {
            println!(
                "created platform keys in {}",
                data_dir.join("keys").display()
            );
        }
        let running = server::start(prepared)?.notify_service_manager();
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

pub fn init(
    config: Config,
    adopt_kek: Option<&str>,
    credentials_file: Option<&std::path::Path>,
) -> Result<()> {
    server::ensure_data_dir(&config)?;
    if hutong::keys::Keyring::is_initialised(&config) {
        bail!("{} is already initialised", config.data_dir.display());
    }
    let store = hutong::store::Store::open(&config.data_dir)?;
    let (_, origin) = hutong::keys::Keyring::init_with(&config, adopt_kek)?;
    match origin {
        hutong::keys::KekOrigin::Created => {}
        hutong::keys::KekOrigin::Resumed(kek) => println!(
            "继续完成上次中断的初始化：沿用它已创建的 KEK {kek} / finished an interrupted init with the KEK it had made ({kek})"
        ),
        hutong::keys::KekOrigin::Adopted(kek) => {
            println!("按 --adopt-kek 沿用已有的 KEK {kek} / adopted the existing KEK {kek}")
        }
    }
    if let Some((user, password)) = hutong::domain::accounts::bootstrap(&store)? {
        hand_over_credentials(&user, &password, &config.data_dir, credentials_file)?;
    }
    store.flush_blocking()?;
    println!("initialised {}", config.data_dir.display());
    Ok(())
}

/// Where the first security administrator's one-time credentials go: `file` when given, a
/// 0600 file in the data directory when standard output is the journal (a log kept for
/// months and readable by administrators), else the terminal.
fn hand_over_credentials(
    user: &str,
    password: &str,
    data_dir: &std::path::Path,
    file: Option<&std::path::Path>,
) -> Result<()> {
    let journal_file = data_dir.join("initial-admin.txt");
    let target = file.or(stdout_is_journal().then_some(journal_file.as_path()));
    if let Some(path) = target {
        write_private(path, &format!("username: {user}\npassword: {password}\n"))?;
        println!(
            "首次启动：初始安全管理员账号已写入 {}（仅属主可读，首次登录须修改密码，登录后请删除该文件）",
            path.display()
        );
        println!(
            "First start: the initial security administrator's credentials are in {} (0600; delete it after the first login)",
            path.display()
        );
        return Ok(());
    }
    println!("==============================================================");
    println!(" 首次启动：初始安全管理员账号（仅显示一次，首次登录须修改密码）");
    println!(" First start: initial security administrator (shown once)");
    println!("   username: {user}");
    println!("   password: {password}");
    println!("==============================================================");
    Ok(())
}

/// Whether standard output is the journal: systemd names its stream in `JOURNAL_STREAM`
/// (`device:inode`), which must be the stream our stdout is (a child's may be redirected).
fn stdout_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

pub fn simulate_member(args: SimulateArgs) -> Result<()> {
    use hutong::interop::simulator::{self, DemoFiling, MemberIdentity, SimulatorConfig};
    let behaviour = args
        .mode
        .behaviour(std::time::Duration::from_secs(args.slow_secs));
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
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let member = SimulatorFiles::load_or_create(&args.out)?;
    // A 1×1 PNG header is enough for a test seal picture.
    let picture = hutong::ses::kit::png_header(1, 1);
    let run = hex::encode(hutong::crypto::sm::random_bytes::<4>());
    let seals = (0..args.seals.max(1))
        .map(|i| {
            identity.build_seal(
                &args.org_name,
                &format!("sim-{run}-{i}"),
                picture.clone(),
                365,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::write(args.out.join("seal.der"), &seals[0])?;
    let signer_cert = match &identity.rsa_signer {
        Some(rsa) => rsa.cert.clone(),
        None => identity.kit.signer_cert.clone(),
    };
    std::fs::write(
        args.out.join("signer.pem"),
        hutong::crypto::sm::pem_encode("CERTIFICATE", &signer_cert),
    )?;
    let filing = match (&args.file_seals, &args.platform, &args.app_id) {
        (Some(org_code), Some(url), Some(app_id)) => Some(DemoFiling {
            platform_url: url.clone(),
            platform_ca_pem: args
                .platform_ca
                .as_ref()
                .map(std::fs::read_to_string)
                .transpose()
                .context("reading the platform CA")?,
            app_id: app_id.clone(),
            request_key: member.request_key,
            org_code: org_code.clone(),
            org_name: args.org_name.clone(),
        }),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let running = simulator::start_with_tls(
            SimulatorConfig {
                app_id: args.app_id.unwrap_or_default(),
                platform_key,
                identity,
                confirm_delay: std::time::Duration::from_secs(args.confirm_delay),
                time_window: std::time::Duration::from_secs(300),
                listen: args.listen,
            },
            member.tls,
        )?;
        running.set_behaviour(behaviour);
        println!("simulated member listening at {}", running.base_url);
        println!(
            "register: hutong system add ... --public-key {} --callback-url {} --callback-ca {}",
            args.out.join("member-public.pem").display(),
            running.base_url,
            args.out.join("callback-ca.pem").display()
        );
        println!("seal for filing: {}", args.out.join("seal.der").display());
        if let Some(filing) = filing {
            let serial = hutong::crypto::x509::CertInfo::parse(&signer_cert)
                .context("signer certificate")?
                .serial_hex;
            let wait = std::time::Duration::from_secs(600);
            for code in simulator::file_demo_seals(&filing, &seals, &serial, wait).await? {
                println!("filed seal {code} for {}", filing.org_code);
            }
        }
        running.wait().await?;
        Ok(())
    })
}

/// The simulated member's files in `--out` that outlive a run: its TLS certificate and key
/// (registered as its callback CA) and its request key (registered as its public key).
struct SimulatorFiles {
    tls: hutong::interop::simulator::TlsIdentity,
    request_key: hutong::crypto::sm::Sm2KeyPair,
}

impl SimulatorFiles {
    fn load_or_create(dir: &std::path::Path) -> Result<Self> {
        use hutong::crypto::sm::{self, Sm2KeyPair};
        use hutong::interop::simulator::TlsIdentity;
        let (cert, tls_key, key, public) = (
            dir.join("callback-ca.pem"),
            dir.join("callback-key.pem"),
            dir.join("member-key.hex"),
            dir.join("member-public.pem"),
        );
        let tls = match (
            std::fs::read_to_string(&cert),
            std::fs::read_to_string(&tls_key),
        ) {
            (Ok(cert_pem), Ok(key_pem)) => TlsIdentity { cert_pem, key_pem },
            _ => {
                let t = TlsIdentity::generate()?;
                std::fs::write(&cert, &t.cert_pem)?;
                write_private(&tls_key, &t.key_pem)?;
                t
            }
        };
        let request_key = match std::fs::read_to_string(&key) {
            Ok(h) => Sm2KeyPair::from_secret_bytes(
                &hex::decode(h.trim()).context("member-key.hex is not hex")?,
            )
            .context("member-key.hex")?,
            Err(_) => {
                let k = Sm2KeyPair::generate();
                write_private(&key, &hex::encode(k.secret_bytes().as_slice()))?;
                k
            }
        };
        std::fs::write(
            &public,
            sm::sm2_public_key_to_pem(&request_key.public_key()),
        )?;
        Ok(Self { tls, request_key })
    }
}

/// Writes a private key file readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?
        .write_all(text.as_bytes())?;
    // An existing file keeps its mode on open: make it private too.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    Ok(())
}
