//! App assembly: data directory, store, keys, TLS, routes, health/readiness/metrics, the
//! control socket, background maintenance and graceful shutdown.

pub mod connections;
pub mod control;
pub mod control_stream;
pub mod systemd;
pub mod tls;

use crate::api;
use crate::app::{AppState, metrics::Metrics};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::keys::{KeyError, Keyring};
use crate::store::{Store, StoreError};
use actix_web::{App, HttpResponse, HttpServer, middleware, web};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("数据目录 {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("监听 {0} 失败: {1}")]
    Bind(String, std::io::Error),
    #[error("监控令牌文件 {0}: {1}")]
    MetricsToken(String, String),
}

/// Everything opened and checked before the first connection is accepted.
pub struct Prepared {
    pub state: web::Data<AppState>,
    /// The first security administrator's credentials, on the very first start only.
    pub bootstrap: Option<(String, String)>,
    pub keys_created: bool,
    tls: rustls::ServerConfig,
    cert: Arc<tls::ServerCert>,
    metrics_token: Option<MetricsToken>,
}

/// The bearer token that opens `/metrics` on the public listener (`metrics.token_file`).
pub struct MetricsToken(zeroize::Zeroizing<String>);

/// Shortest token accepted: a guessable one would put the metrics back in public.
const MIN_TOKEN_CHARS: usize = 16;

impl MetricsToken {
    /// Reads the token file: one line, at least [`MIN_TOKEN_CHARS`] characters.
    pub fn read(path: &std::path::Path) -> Result<Self, ServerError> {
        let fail = |why: String| ServerError::MetricsToken(path.display().to_string(), why);
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?,
        );
        let token = text.trim();
        if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
            return Err(fail(format!(
                "令牌须为一行、至少 {MIN_TOKEN_CHARS} 个字符且不含空白"
            )));
        }
        Ok(Self(zeroize::Zeroizing::new(token.to_string())))
    }

    /// Whether `req` presents this token as `Authorization: Bearer …`.
    fn admits(&self, req: &actix_web::HttpRequest) -> bool {
        req.headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| crate::crypto::ct_eq(t.trim().as_bytes(), self.0.as_bytes()))
    }
}

/// Creates the data directory with owner-only access.
pub fn ensure_data_dir(config: &Config) -> Result<(), ServerError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = &config.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ServerError::DataDir(dir.display().to_string(), e))
}

/// Opens the store and keys (creating them on first start) and prepares TLS.
pub fn prepare(config: Config) -> Result<Prepared, ServerError> {
    ensure_data_dir(&config)?;
    // Before anything is opened or audited: a bad token file is a configuration error.
    let metrics_token = config
        .metrics
        .token_file
        .as_deref()
        .map(MetricsToken::read)
        .transpose()?;
    let store = Store::open(&config.data_dir)?;
    let (keys, keys_created) = load_keys(&store, &config)?;
    // Data keys of a store from before tenant KEKs move under them now, not on first use, so
    // no backup taken from here on holds a data key that the platform KEK alone opens.
    let migrated = store.migrate_data_keys(keys.provider())?;
    if migrated > 0 {
        tracing::info!(migrated, "data keys re-wrapped under their tenant keys");
    }
    if config.keys.provider == crate::config::KeyProviderKind::File {
        tracing::warn!(
            "key provider \"file\" keeps the key-encryption key on disk: for evaluation only, use keys.provider = \"pkcs11\" in production"
        );
    }
    if crate::api::envelope::unaudited_bench() {
        tracing::warn!(
            "MEASUREMENT BUILD: API calls are not audited (UNAUDITED_BENCH); never use it in production"
        );
    }
    let bootstrap = crate::domain::accounts::bootstrap(&store).map_err(startup_fault)?;
    audit_system_event(
        &store,
        &keys,
        &config,
        crate::domain::audit_event::Action::PlatformStart,
    )?;
    store.flush_blocking()?;
    let (cert, key) = match (&config.tls.cert, &config.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => tls::ensure_self_signed(&config.data_dir)?,
    };
    let server_cert = tls::ServerCert::open(&cert, &key)?;
    let tls = tls::server_config(server_cert.clone())?;
    let gateway = Gateway::new(store.clone(), config.api.clone());
    let interop = crate::interop::MemberClient::new(std::time::Duration::from_millis(
        config.interop.member_timeout_ms,
    ));
    let state = web::Data::new(AppState {
        config,
        store,
        keys: Arc::new(keys),
        gateway,
        metrics: Arc::new({
            let m = Metrics::default();
            m.set_tls_expiry_ms(server_cert.summary().not_after_ms);
            m
        }),
        interop: Arc::new(interop),
    });
    Ok(Prepared {
        state,
        bootstrap,
        keys_created,
        tls,
        cert: server_cert,
        metrics_token,
    })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.store.is_ready() {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("storage not ready\n")
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(
            state.metrics.render()
                + &crate::app::metrics::render_breakers(&state.interop.open_breakers())
                + &crate::backup::schedule::metrics(&state.store, crate::time::now_ms()),
        )
}

/// `/metrics` on the public listener: only with the configured bearer token.
async fn guarded_metrics(
    state: web::Data<AppState>,
    token: web::Data<MetricsToken>,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    if token.admits(&req) {
        metrics(state).await
    } else {
        HttpResponse::Unauthorized()
            .insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"))
            .content_type("text/plain; charset=utf-8")
            .body("需要有效的监控令牌\n")
    }
}

/// Health and readiness, on every listener.
fn health(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// The separate monitoring listener: health, readiness and `/metrics` without a token.
fn probes(cfg: &mut web::ServiceConfig) {
    cfg.configure(health)
        .route("/metrics", web::get().to(metrics));
}

/// A started server: its bound addresses, a handle to stop it, and the future that runs it.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub handle: actix_web::dev::ServerHandle,
    pub state: web::Data<AppState>,
    control: Option<tokio::net::UnixListener>,
    server: actix_web::dev::Server,
    stop_signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
    hangup: Option<tokio::signal::unix::Signal>,
    cert: Arc<tls::ServerCert>,
    notifier: Option<Arc<systemd::Notifier>>,
}

/// Reads the TLS certificate and key files again (SIGHUP, `hutong tls reload`): new
/// connections get the new pair, open ones keep theirs; on an error the old pair stays.
pub fn reload_tls(
    cert: &tls::ServerCert,
    metrics: &Metrics,
) -> Result<tls::CertSummary, tls::TlsError> {
    match cert.reload() {
        Ok(summary) => {
            metrics.set_tls_expiry_ms(summary.not_after_ms);
            tracing::info!(
                subject = summary.subject,
                not_after = crate::time::format_time_ms(summary.not_after_ms),
                "TLS certificate reloaded"
            );
            Ok(summary)
        }
        Err(e) => {
            tracing::error!(error = %e, "TLS certificate not reloaded: the previous one is served");
            Err(e)
        }
    }
}

/// SIGTERM and SIGINT, registered before the server announces itself so a stop sent right
/// after the "listening" line drains and audits the shutdown instead of killing the process.
fn stop_signals() -> Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => Some((t, i)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot handle SIGTERM/SIGINT");
            None
        }
    }
}

/// Descriptors kept free of connections: the store, the control socket, logs, the HSM.
const RESERVED_FDS: u64 = 128;

/// Connections each worker accepts before it waits: what the open-file limit allows, so the
/// process stays able to open its own files under a flood (actix's default is 25,000).
fn max_connections_per_worker() -> usize {
    let soft = crate::hardening::open_file_limit().unwrap_or(1024);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    (soft.saturating_sub(RESERVED_FDS) / workers).clamp(16, 25_000) as usize
}

/// Binds the listeners (port 0 allowed) without serving yet.
pub fn start(prepared: Prepared) -> Result<Running, ServerError> {
    let state = prepared.state.clone();
    let listen = state.config.listen.clone();
    let data = state.clone();
    // One per server, not per worker: a report page and its pictures may reach different workers.
    let pictures = web::Data::new(crate::console::ReportPictures::default());
    let limits = state.config.server.clone();
    let limiter =
        connections::ConnectionLimiter::new(limits.max_connections_per_ip, state.metrics.clone());
    let head_timeout = std::time::Duration::from_secs(limits.header_timeout_secs);
    let metrics_token = prepared.metrics_token.map(web::Data::new);
    let server = HttpServer::new(move || {
        let token = metrics_token.clone();
        App::new()
            .app_data(data.clone())
            .app_data(pictures.clone())
            .wrap(middleware::from_fn(crate::app::body_timeout::guard))
            .wrap(
                middleware::DefaultHeaders::new()
                    .add(("Strict-Transport-Security", "max-age=31536000"))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Cache-Control", "no-store")),
            )
            .configure(health)
            .configure(move |cfg| {
                if let Some(token) = token {
                    cfg.app_data(token)
                        .route("/metrics", web::get().to(guarded_metrics));
                }
            })
            .configure(api::configure)
            .configure(crate::console::configure)
    })
    .on_connect(move |conn, ext| limiter.on_connect(conn, ext))
    .tls_handshake_timeout(head_timeout)
    .client_request_timeout(head_timeout)
    .client_disconnect_timeout(std::time::Duration::from_secs(1))
    .keep_alive(match limits.keep_alive_secs {
        0 => actix_web::http::KeepAlive::Disabled,
        n => actix_web::http::KeepAlive::Timeout(std::time::Duration::from_secs(n)),
    })
    .max_connections(max_connections_per_worker())
    .shutdown_timeout(30)
    .disable_signals()
    .bind_rustls_0_23(&listen, prepared.tls)
    .map_err(|e| ServerError::Bind(listen.clone(), e))?;
    let addr = *server
        .addrs()
        .first()
        .ok_or_else(|| ServerError::Bind(listen.clone(), std::io::Error::other("no address")))?;
    let mut metrics_addr = None;
    if let Some(m) = state.config.metrics.listener().map(str::to_string) {
        let data = state.clone();
        let probe_server =
            HttpServer::new(move || App::new().app_data(data.clone()).configure(probes))
                .workers(1)
                .bind(&m)
                .map_err(|e| ServerError::Bind(m.clone(), e))?;
        metrics_addr = probe_server.addrs().first().copied();
        let probe_run = probe_server.run();
        tokio::spawn(probe_run);
    }
    // Serving does not depend on the socket (a data directory path too long for a Unix
    // socket, say); management commands then cannot reach this server, and the log says so.
    let control = match control::bind(&state.config.data_dir) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(
                socket = %control::socket_path(&state.config.data_dir).display(),
                error = %e,
                "control socket unavailable: management commands cannot reach this server"
            );
            None
        }
    };
    let server = server.run();
    let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot handle SIGHUP: TLS reload only through hutong tls reload");
            None
        }
    };
    Ok(Running {
        addr,
        metrics_addr,
        control,
        stop_signals: stop_signals(),
        hangup,
        cert: prepared.cert,
        handle: server.handle(),
        state,
        server,
        notifier: None,
    })
}

impl Running {
    /// Tells the service manager named by `$NOTIFY_SOCKET` (if any) when the server is ready,
    /// alive and stopping; only `hutong serve` does, never a server embedded in a test.
    pub fn notify_service_manager(mut self) -> Self {
        self.notifier = systemd::Notifier::from_env().map(Arc::new);
        self
    }

    /// Serves until SIGTERM/SIGINT or [`actix_web::dev::ServerHandle::stop`]; in-flight
    /// requests drain first, then the store is flushed.
    pub async fn serve(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let mut listeners = vec![format!("API 与控制台 https://{}", self.addr)];
        if let Some(m) = self.metrics_addr {
            listeners.push(format!("监控 http://{m}/metrics"));
        }
        let status_line = listeners.join("，");
        let live = std::sync::Arc::new(control::Live {
            started_ms: crate::time::now_ms(),
            listeners,
            interop: state.interop.clone(),
            tls: self.cert.clone(),
            metrics: state.metrics.clone(),
        });
        let control = self.control.map(|listener| {
            tokio::spawn(control::serve(
                listener,
                state.config.clone(),
                state.store.clone(),
                state.keys.clone(),
                live,
            ))
        });
        let maintenance = tokio::spawn(maintenance(state.clone()));
        let checkpoints = tokio::spawn(audit_checkpoints(state.clone()));
        let indexer = tokio::spawn(audit_indexer(state.clone()));
        let backups = tokio::spawn(scheduled_backups(state.clone()));
        let reloader = self.hangup.map(|mut hup| {
            let (cert, metrics) = (self.cert.clone(), state.metrics.clone());
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let _ = reload_tls(&cert, &metrics);
                }
            })
        });
        let notifier = self.notifier;
        let stopper = self.stop_signals.map(|(mut term, mut int)| {
            let handle = self.handle.clone();
            let notifier = notifier.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                tracing::info!("stop signal received: draining requests");
                if let Some(n) = &notifier {
                    n.notify("STOPPING=1");
                }
                handle.stop(true).await;
            })
        });
        // The listeners are bound and the control socket accepts: the service is up.
        let watchdog = notifier.as_ref().and_then(|n| {
            n.notify(&format!("READY=1\nSTATUS=hutong {}", status_line));
            systemd::watchdog_interval()
                .map(|every| tokio::spawn(feed_watchdog(state.clone(), n.clone(), every)))
        });
        let res = self.server.await;
        if let Some(n) = &notifier {
            n.notify("STOPPING=1");
        }
        if let Some(w) = watchdog {
            w.abort();
        }
        if let Some(s) = stopper {
            s.abort();
        }
        checkpoints.abort();
        indexer.abort();
        backups.abort();
        if let Some(r) = reloader {
            r.abort();
        }
        if let Some(c) = control {
            c.abort();
        }
        maintenance.abort();
        let _ = std::fs::remove_file(control::socket_path(&state.config.data_dir));
        if let Err(e) = audit_system_event(
            &state.store,
            &state.keys,
            &state.config,
            crate::domain::audit_event::Action::PlatformStop,
        ) {
            tracing::error!(error = %e, "audit of the shutdown failed");
        }
        if let Err(e) = state.store.flush_blocking() {
            tracing::error!(error = %e, "final flush failed");
        }
        res
    }
}

/// Feeds the service manager's watchdog every `every` while the store answers reads; a store
/// that stops answering (or a wedged runtime that stops running this task) lets the watchdog
/// expire, and systemd restarts the service.
async fn feed_watchdog(
    state: web::Data<AppState>,
    notifier: Arc<systemd::Notifier>,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let store = state.store.clone();
        let probe = tokio::task::spawn_blocking(move || store.is_ready());
        match tokio::time::timeout(every, probe).await {
            Ok(Ok(true)) => notifier.notify("WATCHDOG=1"),
            _ => tracing::error!("store not answering: watchdog not fed"),
        }
    }
}

/// Loads (or on first start creates) the platform key and records the key operation; a
/// refused unwrap is recorded too, so a wrong PIN or a foreign KEK leaves a trace.
fn load_keys(store: &Store, config: &Config) -> Result<(Keyring, bool), ServerError> {
    use crate::domain::audit_event::{Action, Actor, Outcome};
    let provider = format!("provider={}", config.keys.provider.as_str());
    let res = Keyring::load_or_init(config);
    let (action, outcome, detail) = match &res {
        Ok((_, true)) => (Action::KeyCreate, Outcome::Ok, provider),
        Ok((_, false)) => (Action::KeyUnwrap, Outcome::Ok, provider),
        Err(e) => (
            Action::KeyUnwrap,
            Outcome::Failed,
            format!("{provider}; {e}"),
        ),
    };
    crate::domain::audit::record(store, &Actor::system(), action, outcome, "platform", detail)
        .map_err(startup_fault)?;
    if res.is_err() {
        store.flush_blocking()?;
    }
    Ok(res?)
}

/// Records a start or stop of the platform and signs a checkpoint covering it (SPEC §6.1).
fn audit_system_event(
    store: &Store,
    keys: &Keyring,
    config: &Config,
    action: crate::domain::audit_event::Action,
) -> Result<(), ServerError> {
    use crate::domain::audit_event::{Actor, Outcome};
    crate::domain::audit::record(store, &Actor::system(), action, Outcome::Ok, "", "")
        .map_err(startup_fault)?;
    crate::audit::checkpoint::make(store, keys, &config.region_code).map_err(startup_fault)?;
    Ok(())
}

/// A domain step of start-up that failed (bootstrap, an audit write): the platform does not
/// start without its log.
fn startup_fault(e: crate::domain::DomainError) -> ServerError {
    match e {
        crate::domain::DomainError::Store(s) => ServerError::Store(s),
        other => ServerError::Store(StoreError::Corrupt(other.to_string())),
    }
}

/// How often the audit log is checkpointed while entries arrive (SPEC §6.1: at least every
/// minute).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Signs a checkpoint every [`CHECKPOINT_EVERY`] when entries arrived since the last one.
async fn audit_checkpoints(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.tick().await; // the first tick is immediate; start-up already made one
    loop {
        tick.tick().await;
        let (store, keys, region) = (
            state.store.clone(),
            state.keys.clone(),
            state.config.region_code.clone(),
        );
        let res = tokio::task::spawn_blocking(move || {
            crate::audit::checkpoint::make_if_due(&store, &keys, &region)
        })
        .await;
        match res {
            Ok(Ok(_)) => {
                if let Err(e) = state.store.commit().await {
                    tracing::error!(error = %e, "audit checkpoint not flushed");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "audit checkpoint failed"),
            Err(e) => tracing::error!(error = %e, "audit checkpoint task failed"),
        }
    }
}

/// How often the search index catches up with the log in the background (a search also
/// catches up first, so this only keeps that step short).
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `backup.schedule` daily (off when empty).
async fn scheduled_backups(state: web::Data<AppState>) {
    let Ok(Some(secs)) = state.config.backup.daily_secs() else {
        return;
    };
    loop {
        let now = crate::time::now_ms();
        let next = crate::time::next_daily_ms(now, secs);
        tokio::time::sleep(std::time::Duration::from_millis((next - now).max(0) as u64)).await;
        let s = state.clone();
        let run = tokio::task::spawn_blocking(move || {
            crate::backup::schedule::run(&s.store, &s.keys, &s.config)
        });
        if let Err(e) = run.await {
            tracing::error!(error = %e, "scheduled backup task failed");
        }
        if let Err(e) = state.store.commit().await {
            tracing::error!(error = %e, "scheduled backup not committed");
        }
    }
}

/// Keeps the audit search index close to the log, off the request path.
async fn audit_indexer(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(INDEX_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let store = state.store.clone();
        match tokio::task::spawn_blocking(move || store.catch_up_audit_index()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "audit index catch-up failed"),
            Err(e) => tracing::error!(error = %e, "audit index task failed"),
        }
    }
}

/// Periodic housekeeping: forget nonces that can no longer pass the time check, expired
/// signIds and authIds; once a day, usage counters past their retention.
async fn maintenance(state: web::Data<AppState>) {
    let window_ms = state.config.api.time_window_secs as i64 * 1000;
    let retention = state.config.metering.retention_days;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    let mut pruned_day = None;
    loop {
        tick.tick().await;
        let store = state.store.clone();
        let now = crate::time::now_ms();
        let cutoff = now - 2 * window_ms;
        let today = crate::time::Day::of_ms(now);
        let prune_usage = pruned_day != Some(today);
        pruned_day = Some(today);
        let (keys, region) = (state.keys.clone(), state.config.region_code.clone());
        let audit_days = state.config.audit.retention_days;
        let audit_pruned = tokio::task::spawn_blocking(move || {
            let _ = store.prune_nonces(cutoff);
            let _ = store.prune_sign_ids(now);
            let _ = store.prune_cloud_auths(now);
            if prune_usage && let Err(e) = crate::domain::metering::prune(&store, retention, now) {
                tracing::warn!(error = %e, "usage pruning failed");
            }
            prune_usage && prune_audit(&store, &keys, &region, audit_days, now)
        })
        .await;
        if matches!(audit_pruned, Ok(true))
            && let Err(e) = state.store.commit().await
        {
            tracing::error!(error = %e, "audit prune not flushed");
        }
    }
}

/// The daily audit retention prune (SPEC §6.1); whether it pruned anything.
fn prune_audit(store: &Store, keys: &Keyring, region: &str, days: u32, now: i64) -> bool {
    match crate::audit::prune::prune(store, keys, region, days, now) {
        Ok(Some(p)) => {
            tracing::info!(
                removed = p.removed,
                first_seq = p.first_seq,
                "audit log pruned"
            );
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::error!(error = %e, "audit pruning failed");
            false
        }
    }
}
