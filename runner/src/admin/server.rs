//! The admin HTTP server: an axum router on a single-threaded tokio runtime
//! that lives on its own OS thread.
//!
//! One runtime thread is enough: every handler either reads atomics, renders
//! metrics, or waits on the engine, and the machine's cores belong to the
//! engine. Binding happens in `start`, on the caller's thread, so a port
//! conflict is an error the caller sees (not a log line from a background
//! thread) and port 0 yields the real port.

use super::auth::{Action, AdminAuth};
use super::tls::TlsSettings;
use super::{AdminRequest, LookupFailure, LookupReply, Metrics, SavepointReply};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// What accepted `identifier` values look like, for error messages.
const IDENTIFIER_FORM: &str =
    "expected identifier=TYPE:VALUE (split at the first colon, both sides non-empty, \
     percent-encoded), e.g. identifier=email:ada%40example.com";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot bind the admin port on {addr}: {source} (use port 0 for any free port)")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the admin server runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("the admin server on {addr} failed: {source}")]
    Serve { addr: SocketAddr, source: io::Error },
    #[error("the admin server thread on {addr} panicked")]
    Panicked { addr: SocketAddr },
    #[error(transparent)]
    Auth(#[from] super::auth::AuthError),
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
}

/// How long the server waits for the engine, and for itself on shutdown.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Longest wait for a lookup answer before answering 503.
    pub lookup_timeout: Duration,
    /// Longest wait for a savepoint before answering 503; long, because a
    /// savepoint writes the whole state.
    pub savepoint_timeout: Duration,
    /// How long shutdown lets in-flight requests finish before abandoning
    /// them; bounds how long `shutdown` (and `Drop`) can block, even with a
    /// savepoint request pending.
    pub shutdown_grace: Duration,
    /// Longest wait for a request's headers, counted from the connection's
    /// start or the end of its previous request: a slow or idle client
    /// does not hold a connection longer (TLS handshakes included).
    pub header_read_timeout: Duration,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            lookup_timeout: Duration::from_secs(5),
            savepoint_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(1),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// Readiness, set by the runner and read by `/readyz`. Starts not ready
/// ("starting"): the runner says when it can serve.
pub struct Health {
    ready: AtomicBool,
    reason: Mutex<String>,
}

impl Health {
    pub fn new() -> Self {
        Health {
            ready: AtomicBool::new(false),
            reason: Mutex::new("starting".to_owned()),
        }
    }

    /// Marks the runner ready or not; not ready keeps the last reason given.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Marks the runner not ready and says why, e.g. "restoring state".
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        // The reason first, so a reader that sees "not ready" sees this reason.
        *self.lock_reason() = reason.into();
        self.ready.store(false, Ordering::Release);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Why the runner is (or was last) not ready.
    pub fn reason(&self) -> String {
        self.lock_reason().clone()
    }

    fn lock_reason(&self) -> std::sync::MutexGuard<'_, String> {
        // A panic while holding the lock cannot leave a String half-written
        // in a way that matters; keep serving rather than propagate poison.
        self.reason
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

/// What the server reads and where it sends requests for the engine.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub requests: SyncSender<AdminRequest>,
    /// Who may read profiles and take savepoints.
    pub auth: AdminAuth,
    /// The certificate to serve HTTPS with; plain HTTP without.
    pub tls: Option<TlsSettings>,
}

/// A running admin server; `shutdown` or dropping it stops it.
pub struct AdminServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl AdminServer {
    /// Binds `addr` and serves with the default timeouts.
    pub fn start(addr: SocketAddr, state: AdminState) -> Result<AdminServer, AdminError> {
        Self::start_with_config(addr, state, AdminConfig::default())
    }

    /// Binds `addr` now, then serves on a thread of its own.
    pub fn start_with_config(
        addr: SocketAddr,
        state: AdminState,
        config: AdminConfig,
    ) -> Result<AdminServer, AdminError> {
        // Before anything listens: profiles must not be served openly to
        // the network by mistake.
        state.auth.check_address(addr)?;
        let tls = state.tls.as_ref().map(TlsSettings::acceptor).transpose()?;
        let bind_error = |source| AdminError::Bind { addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        // tokio requires a non-blocking socket.
        std_listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = std_listener.local_addr().map_err(bind_error)?;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AdminError::Runtime)?;
        let listener = {
            // Registering the socket needs the runtime's reactor.
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(AdminError::Runtime)?
        };

        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            grace: config.shutdown_grace,
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections,
        };
        let app = router(Arc::new(Shared {
            state,
            config,
            savepoint_running: AtomicBool::new(false),
        }));
        let thread = std::thread::Builder::new()
            .name("kith-admin".to_owned())
            // Dropping the runtime when `block_on` returns cancels whatever
            // the grace period left running.
            .spawn(move || runtime.block_on(serve(listener, app, stopped, limits, tls)))
            .map_err(AdminError::Runtime)?;

        tracing::info!(%local_addr, "admin server listening");
        Ok(AdminServer {
            local_addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when started with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish within the grace
    /// period, and waits for the server thread.
    pub fn shutdown(mut self) -> Result<(), AdminError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), AdminError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // `send_replace` succeeds even if the server already stopped.
        self.stop.send_replace(true);
        let addr = self.local_addr;
        match thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(AdminError::Serve { addr, source }),
            Err(_) => Err(AdminError::Panicked { addr }),
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Err(err) = self.stop_and_join() {
            tracing::warn!(error = %err, "admin server did not stop cleanly");
        }
    }
}

/// What bounds the server's connections.
struct Limits {
    grace: Duration,
    header_read_timeout: Duration,
    max_connections: usize,
}

/// Accepts connections until told to stop, serving each with HTTP/1 and a
/// header-read timeout, over TLS when configured; then lets open requests
/// finish for at most `grace`.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stopped: watch::Receiver<bool>,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    let stop = stop_signal(stopped);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "admin port cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(
                limit = limits.max_connections,
                "admin port at its connection limit; closing a new one"
            );
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), tls.clone());
        let handshake_limit = limits.header_read_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let served =
                match tls {
                    None => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(handshake_limit, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "admin TLS handshake failed");
                                    return;
                                }
                                Err(_) => return,
                            };
                        watcher
                            .watch(http.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                };
            if let Err(e) = served {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.grace) => {
            tracing::warn!(grace = ?limits.grace, "admin requests still in flight after the grace period; abandoning them");
        }
    }
    Ok(())
}

/// Resolves once stop is requested, or once the `AdminServer` is gone.
async fn stop_signal(mut stopped: watch::Receiver<bool>) {
    // An error means the sender was dropped: stop as well.
    let _ = stopped.wait_for(|stop| *stop).await;
}

struct Shared {
    state: AdminState,
    config: AdminConfig,
    /// A savepoint request is being served: the next waits its turn (429).
    savepoint_running: AtomicBool,
}

fn router(shared: Arc<Shared>) -> Router {
    // Personal data and control need a caller the runner trusts; probes
    // and metrics stay open (auth.rs).
    let profiles = get(profiles).route_layer(axum::middleware::from_fn_with_state(
        (shared.clone(), Action::ReadProfiles),
        authorize,
    ));
    let savepoints = post(savepoint).route_layer(axum::middleware::from_fn_with_state(
        (shared.clone(), Action::TakeSavepoint),
        authorize,
    ));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/profiles", profiles)
        .route("/v1/savepoints", savepoints)
        // A wrong method on a known path is "anything else" too: one answer,
        // listing what exists, is more useful to a human with curl.
        .method_not_allowed_fallback(not_found)
        .fallback(not_found)
        .with_state(shared)
}

/// Lets the request through when its bearer token may do the action.
async fn authorize(
    State((shared, action)): State<(Arc<Shared>, Action)>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match shared.state.auth.authorize(authorization, action).await {
        Ok(()) => next.run(request).await,
        Err(denied) => {
            let status = StatusCode::from_u16(denied.status).unwrap_or(StatusCode::FORBIDDEN);
            shared.state.metrics.add_admin_denied(status.as_u16());
            let mut response = json_error(status, denied.message);
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            response
        }
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.state.metrics.render();
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response()
}

/// Liveness: answering at all is the signal.
async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let health = &shared.state.health;
    if health.ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, health.reason()).into_response()
    }
}

#[derive(Deserialize)]
struct ProfilesQuery {
    identifier: Option<String>,
}

async fn profiles(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> Response {
    let (identifier_type, value) = match identifier_of(&uri) {
        Ok(parsed) => parsed,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, message),
    };
    // The type is not personal data; the value is, so it stays out of logs.
    tracing::debug!(%identifier_type, "admin profile lookup");
    let (reply, answer) = oneshot::channel::<LookupReply>();
    let request = AdminRequest::Lookup {
        identifier_type: identifier_type.clone(),
        value,
        reply,
    };
    match ask(&shared, request, answer, shared.config.lookup_timeout).await {
        Ok(Ok(found)) if found.is_empty() => json_error(
            StatusCode::NOT_FOUND,
            format!("no profile holds that `{identifier_type}` identifier"),
        ),
        Ok(Ok(found)) => (
            StatusCode::OK,
            Json(serde_json::json!({ "profiles": found })),
        )
            .into_response(),
        Ok(Err(failure)) => lookup_failure(&identifier_type, failure),
        Err(unavailable) => unavailable.into_response(),
    }
}

/// The `identifier` parameter split into type and value, or a message for a
/// 400 naming the parameter and the accepted form.
/// The `identifier` parameter of a request target, split into type and
/// value, or a message for a 400 naming the parameter and the accepted form.
pub fn identifier_of(uri: &axum::http::Uri) -> Result<(String, String), String> {
    parse_query(Query::<ProfilesQuery>::try_from_uri(uri))
}

fn parse_query(
    query: Result<Query<ProfilesQuery>, QueryRejection>,
) -> Result<(String, String), String> {
    let identifier = match query {
        Ok(Query(ProfilesQuery { identifier })) => identifier,
        Err(rejection) => {
            return Err(format!(
                "cannot read the query string ({}); {IDENTIFIER_FORM}",
                rejection.body_text()
            ))
        }
    };
    let Some(identifier) = identifier else {
        return Err(format!(
            "missing query parameter `identifier`; {IDENTIFIER_FORM}"
        ));
    };
    split_identifier(&identifier)
        .ok_or_else(|| format!("query parameter `identifier` is not TYPE:VALUE; {IDENTIFIER_FORM}"))
}

/// Splits `TYPE:VALUE` at the first colon (values such as URLs may hold
/// more); both parts must be non-empty.
fn split_identifier(identifier: &str) -> Option<(String, String)> {
    let (kind, value) = identifier.split_once(':')?;
    if kind.is_empty() || value.is_empty() {
        return None;
    }
    Some((kind.to_owned(), value.to_owned()))
}

fn lookup_failure(identifier_type: &str, failure: LookupFailure) -> Response {
    match failure {
        LookupFailure::UnknownType { accepted } => {
            let message = format!(
                "unknown identifier type `{identifier_type}` in query parameter `identifier`; \
                 accepted types: {}",
                accepted.join(", ")
            );
            let body = serde_json::json!({ "error": message, "accepted": accepted });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
        LookupFailure::Unavailable(reason) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("lookup unavailable: {reason}"),
        ),
    }
}

/// Clears the savepoint-in-progress flag however the request ends.
struct SavepointTurn<'a>(&'a AtomicBool);

impl Drop for SavepointTurn<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn savepoint(State(shared): State<Arc<Shared>>) -> Response {
    // One at a time: each writes a full copy of the state.
    if shared
        .savepoint_running
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        let mut response = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "a savepoint is being written; ask again when it is done",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return response;
    }
    let _turn = SavepointTurn(&shared.savepoint_running);
    let (reply, answer) = oneshot::channel::<SavepointReply>();
    let request = AdminRequest::Savepoint { reply };
    match ask(&shared, request, answer, shared.config.savepoint_timeout).await {
        Ok(Ok(done)) => {
            tracing::info!(path = %done.path, records = done.records, bytes = done.bytes, "savepoint written on request");
            (StatusCode::CREATED, Json(done)).into_response()
        }
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "savepoint on request failed");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("savepoint failed: {reason}"),
            )
        }
        Err(unavailable) => unavailable.into_response(),
    }
}

async fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "no such endpoint; available: GET /metrics, GET /healthz, GET /readyz, \
         GET /v1/profiles?identifier=TYPE:VALUE, POST /v1/savepoints",
    )
}

/// Why the engine gave no answer; always a 503, since a retry may succeed.
#[derive(Debug)]
enum Unavailable {
    /// The request channel is full: the engine has not taken earlier ones.
    Busy,
    /// The engine's receiver is gone: the runner is stopping.
    Closed,
    /// The engine took the request and dropped it unanswered.
    Dropped,
    /// No answer within the configured time.
    TimedOut(Duration),
}

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        let message = match self {
            Unavailable::Busy => {
                "the engine is busy with earlier admin requests; retry later".to_owned()
            }
            Unavailable::Closed => {
                "the engine is not taking requests (the runner is stopping)".to_owned()
            }
            Unavailable::Dropped => "the engine dropped the request without an answer".to_owned(),
            // The engine may still act on it (a savepoint may still be
            // written); say so rather than imply it failed.
            Unavailable::TimedOut(limit) => format!(
                "the engine did not answer within {limit:?}; the request may still complete"
            ),
        };
        let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, message);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        response
    }
}

/// Hands `request` to the engine without blocking and waits up to `limit`
/// for its answer on `answer`.
async fn ask<T>(
    shared: &Shared,
    request: AdminRequest,
    answer: oneshot::Receiver<T>,
    limit: Duration,
) -> Result<T, Unavailable> {
    match shared.state.requests.try_send(request) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(Unavailable::Busy),
        Err(TrySendError::Disconnected(_)) => return Err(Unavailable::Closed),
    }
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(Unavailable::Dropped),
        Err(_) => {
            tracing::warn!(?limit, "the engine did not answer an admin request in time");
            Err(Unavailable::TimedOut(limit))
        }
    }
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, Json(body)).into_response()
}
