//! Listening sockets, the accept loops, the connection limit, certificate
//! reload on SIGHUP and graceful shutdown, all on one LocalExecutor on the
//! main thread.

use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use openssl::ssl::SslContext;
use smol::future::FutureExt;
use smol::{Async, LocalExecutor, Timer};

use crate::admission::{Admission, ConnectionState, Refusal, Slot};
use crate::auth::guard::{self, RouteGuard};
use crate::auth::lockout::{Lockout, LockoutPolicy};
use crate::config::{Config, Listen, Route, TlsFiles};
use crate::deadline::Deadlines;
use crate::proxy::{Session, Settings};
use crate::redirect::{self, Greeting};
use crate::signals::{Signal, Signals};
use crate::stream::ClientStream;
use crate::tls::stream::TlsStream;
use crate::tls::Identity;
use crate::Error;

/// A route with its socket bound (before any privilege drop or fork).
pub struct BoundRoute {
    pub route: Route,
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

/// Binds every route's port, or names the first that cannot be bound.
pub fn bind(routes: &[Route]) -> Result<Vec<BoundRoute>, Error> {
    routes
        .iter()
        .map(|route| {
            let listener = match route.listen {
                Listen::Addr(addr) => TcpListener::bind(addr),
                // All addresses: the IPv6 wildcard also takes IPv4 on Linux;
                // a kernel without IPv6 gets the IPv4 wildcard.
                Listen::Any(port) => TcpListener::bind((Ipv6Addr::UNSPECIFIED, port))
                    .or_else(|_| TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))),
            }
            .map_err(|e| Error::new(format!("cannot listen on {}: {e}", route.listen)))?;
            let addr = listener
                .local_addr()
                .map_err(|e| Error::new(format!("cannot listen on {}: {e}", route.listen)))?;
            Ok(BoundRoute {
                route: route.clone(),
                listener,
                addr,
            })
        })
        .collect()
}

/// The certificate in use, and where to reload it from.
pub struct TlsState {
    pub files: TlsFiles,
    pub context: SslContext,
}

struct Shared {
    config: Config,
    tls: Option<RefCell<TlsState>>,
    admission: Rc<Admission>,
    /// Dropped to tell open connections that camtls is stopping.
    shutdown_sender: RefCell<Option<smol::channel::Sender<()>>>,
    shutdown: smol::channel::Receiver<()>,
    limit_warning: Quiet,
    address_warning: Quiet,
    eviction_warning: Quiet,
    accept_warning: Quiet,
    lockout: RefCell<Lockout>,
    deadlines: Deadlines,
    /// Each route's access rules, by route index; replaced on SIGHUP.
    guards: RefCell<Vec<Rc<RouteGuard>>>,
}

/// A warning that may repeat many times a second under attack: logged at
/// most once per `QUIET_PERIOD`, saying how many were held back.
#[derive(Default)]
struct Quiet {
    last: Cell<Option<Instant>>,
    held_back: Cell<u64>,
}

const QUIET_PERIOD: Duration = Duration::from_secs(10);

impl Quiet {
    /// Calls `log` with the number held back since the last one, or counts.
    fn warn(&self, now: Instant, log: impl FnOnce(u64)) {
        if self
            .last
            .get()
            .is_none_or(|t| now.duration_since(t) >= QUIET_PERIOD)
        {
            self.last.set(Some(now));
            log(self.held_back.replace(0));
        } else {
            self.held_back.set(self.held_back.get() + 1);
        }
    }
}

/// " (N more like it ...)" for a warning that held back N others.
fn more(held_back: u64) -> String {
    if held_back == 0 {
        String::new()
    } else {
        format!(
            " ({held_back} more like it in the last {}s)",
            QUIET_PERIOD.as_secs()
        )
    }
}

/// Serves until SIGTERM or SIGINT, then lets open exchanges finish for the
/// grace period.
pub fn run(
    config: Config,
    tls: Option<TlsState>,
    bound: Vec<BoundRoute>,
    guards: Vec<RouteGuard>,
    signals: Signals,
) -> Result<(), Error> {
    let (sender, receiver) = smol::channel::bounded(1);
    let admission = Rc::new(Admission::new(
        config.max_connections,
        config.max_per_address,
    ));
    let shared = Rc::new(Shared {
        config,
        tls: tls.map(RefCell::new),
        admission,
        shutdown_sender: RefCell::new(Some(sender)),
        shutdown: receiver,
        limit_warning: Quiet::default(),
        address_warning: Quiet::default(),
        eviction_warning: Quiet::default(),
        accept_warning: Quiet::default(),
        lockout: RefCell::new(Lockout::new(LockoutPolicy::default())),
        guards: RefCell::new(guards.into_iter().map(Rc::new).collect()),
        deadlines: Deadlines::default(),
    });
    let executor = Rc::new(LocalExecutor::new());
    smol::block_on(executor.run(async {
        let ticking = shared.clone();
        executor
            .spawn(async move { ticking.deadlines.run().await })
            .detach();
        let mut accept_tasks = Vec::new();
        for (index, b) in bound.into_iter().enumerate() {
            let scheme = if shared.tls.is_some() {
                "https"
            } else {
                "http"
            };
            log::info!(
                "listening on {scheme}://{} for http://{}",
                b.addr,
                b.route.backend
            );
            let listener = Async::new(b.listener)
                .map_err(|e| Error::new(format!("cannot listen on {}: {e}", b.addr)))?;
            accept_tasks.push(executor.spawn(accept_loop(
                shared.clone(),
                executor.clone(),
                listener,
                index,
                b.route,
            )));
        }
        loop {
            match signals.next().await {
                Signal::Reload => reload(&shared),
                Signal::Stop(name) => {
                    log::info!(
                        "{name}: no new connections; {} open",
                        shared.admission.open()
                    );
                    break;
                }
            }
        }
        drop(accept_tasks);
        shared.shutdown_sender.borrow_mut().take();
        let grace = shared.config.timeouts.shutdown_grace;
        let drained = shared
            .deadlines
            .limit_for(grace, async {
                while shared.admission.open() > 0 {
                    Timer::after(Duration::from_millis(50)).await;
                }
            })
            .await;
        if drained.is_none() {
            log::info!(
                "{} connections still open after {grace:?}; closing them",
                shared.admission.open()
            );
        }
        log::info!("stopped");
        Ok(())
    }))
}

async fn accept_loop(
    shared: Rc<Shared>,
    executor: Rc<LocalExecutor<'static>>,
    listener: Async<TcpListener>,
    index: usize,
    route: Route,
) {
    let route = Rc::new(route);
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                shared.accept_warning.warn(Instant::now(), |n| {
                    log::warn!("accepting on {}: {e}{}", route.listen, more(n))
                });
                // Out of descriptors or memory: give open connections time to
                // finish instead of spinning on the error.
                // The numbers differ between architectures (ENOBUFS is 105
                // on x86 and ARM, 132 on MIPS): the C library's names only.
                use nix::libc::{EMFILE, ENFILE, ENOBUFS, ENOMEM};
                if matches!(e.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM)) {
                    Timer::after(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        // Outside --allow, or locked out after failed logins: closed before
        // the handshake, which is where the CPU would go.
        let guard = shared.guards.borrow()[index].clone();
        if !guard.admits(peer.ip(), &shared.lockout) {
            log::debug!(
                "{}: refused by the route's access rules",
                peer.ip().to_canonical()
            );
            continue;
        }
        // A refusal closes at once: that keeps the accept loop and the others
        // moving, where a handshake first would spend the CPU the limits are
        // there to save.
        let now = Instant::now();
        let slot = match shared.admission.admit(peer.ip(), now) {
            Ok((slot, evicting)) => {
                if let Some(evicting) = evicting {
                    shared.eviction_warning.warn(now, |n| {
                        log::warn!(
                            "connection limit ({}) reached: closed an unfinished connection \
                             from {} ({:.1}s old) to let {} in{}",
                            shared.config.max_connections,
                            evicting.key,
                            evicting.age.as_secs_f32(),
                            peer.ip().to_canonical(),
                            more(n)
                        )
                    });
                    // Let the evicted task run and close its socket before the
                    // next accept: under a burst, descriptors are what runs out.
                    smol::future::yield_now().await;
                }
                slot
            }
            Err(Refusal::AddressFull) => {
                shared.address_warning.warn(now, |n| {
                    log::warn!(
                        "{} already has {} connections open (--max-per-address): refusing more{}",
                        peer.ip().to_canonical(),
                        shared.config.max_per_address,
                        more(n)
                    )
                });
                continue;
            }
            Err(Refusal::Full) => {
                shared.limit_warning.warn(now, |n| {
                    log::warn!(
                        "connection limit ({}) reached: refusing {}{}",
                        shared.config.max_connections,
                        peer.ip().to_canonical(),
                        more(n)
                    )
                });
                continue;
            }
        };
        let shared = shared.clone();
        let route = route.clone();
        executor
            .spawn(async move {
                let slot: Slot = slot;
                let evicted = slot.state.evicted();
                let serving = smol::future::or(
                    handle(&shared, &route, &guard, &slot.state, socket, peer),
                    evicted,
                );
                // A bug that panics closes this connection only, where panics
                // unwind (the OpenWrt feed build); the static router builds
                // abort instead (docs/security.md says why).
                if std::panic::AssertUnwindSafe(serving)
                    .catch_unwind()
                    .await
                    .is_err()
                {
                    log::error!(
                        "{}: internal error; connection closed",
                        peer.ip().to_canonical()
                    );
                }
            })
            .detach();
    }
}

async fn handle(
    shared: &Shared,
    route: &Route,
    guard: &RouteGuard,
    connection: &ConnectionState,
    socket: Async<TcpStream>,
    peer: SocketAddr,
) {
    let local = match socket.get_ref().local_addr() {
        Ok(addr) => addr,
        Err(_) => return,
    };
    let _ = socket.get_ref().set_nodelay(true);
    let timeouts = &shared.config.timeouts;
    let client = match &shared.tls {
        None => ClientStream::Plain(socket),
        Some(tls) => {
            // Someone who typed http:// gets a redirect, in plain HTTP.
            let deadline = Instant::now() + timeouts.handshake;
            match redirect::greeting(&shared.deadlines, &socket, deadline).await {
                Greeting::Tls => {}
                Greeting::PlainHttp => {
                    let head = timeouts.head;
                    return redirect::redirect_to_https(&shared.deadlines, socket, local, head)
                        .await;
                }
                Greeting::Other => {
                    log::debug!("{}: not TLS; closed", peer.ip().to_canonical());
                    return;
                }
            }
            let context = tls.borrow().context.clone();
            match shared
                .deadlines
                .limit(deadline, TlsStream::accept(&context, socket))
                .await
            {
                Some(Ok(stream)) => ClientStream::Tls(stream),
                Some(Err(e)) => {
                    log::debug!("{}: TLS handshake failed: {e}", peer.ip().to_canonical());
                    return;
                }
                None => {
                    log::debug!("{}: TLS handshake timed out", peer.ip().to_canonical());
                    return;
                }
            }
        }
    };
    let settings = Settings {
        backend: &route.backend,
        guard,
        lockout: &shared.lockout,
        timeouts,
        preserve_host: shared.config.preserve_host,
        tls: shared.tls.is_some(),
        shutdown: &shared.shutdown,
        deadlines: &shared.deadlines,
        connection,
    };
    Session::new(&settings, client, peer, local).run().await;
}

/// SIGHUP: the certificate and key, and the login and allowlist settings,
/// read again for new connections; open ones keep theirs. Whatever cannot be
/// read leaves the running version in place.
fn reload(shared: &Shared) {
    match guard::load_guards(&shared.config.routes) {
        Ok(guards) => *shared.guards.borrow_mut() = guards.into_iter().map(Rc::new).collect(),
        Err(e) => log::error!("SIGHUP: {e}; still using the previous logins and ranges"),
    }
    let Some(tls) = &shared.tls else {
        return;
    };
    let files = tls.borrow().files.clone();
    match Identity::load(&files).and_then(|id| Ok((id.server_context()?, id))) {
        Ok((context, identity)) => {
            tls.borrow_mut().context = context;
            log::info!(
                "SIGHUP: certificate reloaded, SHA-256 fingerprint {}",
                identity.fingerprint()
            );
            for warning in crate::tls::startup_warnings(&files, &identity) {
                log::warn!("{warning}");
            }
        }
        Err(e) => log::error!("SIGHUP: {e}; still serving the previous certificate"),
    }
}
