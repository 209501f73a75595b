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

pub fn init(config: Config) -> Result<()> {
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

pub fn simulate_member(args: SimulateArgs) -> Result<()> {
    use hutong::interop::simulator::{self, Behaviour, MemberIdentity, SimulatorConfig};
    let behaviour = Behaviour::from(args.behaviour);
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
