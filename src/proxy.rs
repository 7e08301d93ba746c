//! One client connection, from its first request head to its close: reading
//! heads under timeouts, the paired backend connection, forwarding request
//! and response, protocol switches, and the error responses camtls makes
//! itself.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use smol::io::{AsyncWrite, AsyncWriteExt};
use smol::Async;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::admission::ConnectionState;
use crate::answer;
use crate::auth::guard::RouteGuard;
use crate::auth::lockout::Lockout;
use crate::auth::users::{AuthResult, Users};
use crate::body::{self, CopyError};
use crate::config::{Backend, Timeouts};
use crate::deadline::Deadlines;
use crate::head::{self, Framing, Origin, Reject, Request, Response};
use crate::stream::{Buffered, ClientStream, FillError};

/// What a connection needs to know about its route and the process.
pub struct Settings<'a> {
    pub backend: &'a Backend,
    pub guard: &'a RouteGuard,
    pub timeouts: &'a Timeouts,
    pub preserve_host: bool,
    pub tls: bool,
    /// Failed logins per address, shared by every route.
    pub lockout: &'a RefCell<Lockout>,
    /// Resolves when camtls is shutting down: idle connections then close.
    pub shutdown: &'a smol::channel::Receiver<()>,
    pub deadlines: &'a Deadlines,
    /// Marked established at the first whole request head, which protects
    /// the connection from eviction at the connection limit.
    pub connection: &'a ConnectionState,
}

type BackendStream = Buffered<Async<TcpStream>>;

// A head up to head::MAX_HEAD_BYTES must fit in a connection's read buffer,
// or a head the limit allows would be refused as one that fills the buffer.
const _: () = assert!(crate::stream::BUFFER_BYTES >= head::MAX_HEAD_BYTES);

/// How long a keep-alive connection keeps its read buffers after a response.
/// Long enough for a client's next request in a burst (a page load, a
/// benchmark), short enough that connections opened one after another do not
/// all hold buffers at once: allocators keep freed memory, so the peak is
/// what a router pays.
const BUFFER_HOLD: Duration = Duration::from_millis(100);

pub struct Session<'a> {
    settings: &'a Settings<'a>,
    client: Buffered<ClientStream>,
    /// The client's address as logs and lockout show it (IPv4 for a
    /// dual-stack listener's mapped addresses).
    client_ip: IpAddr,
    local: SocketAddr,
    /// At most one, paired with this client for its whole life (cameras with
    /// digest authentication count on it); replaced only when the backend
    /// closes it.
    backend: Option<BackendStream>,
}

enum Next {
    KeepAlive,
    Close,
}

/// How waiting for the next request's first bytes ended, short of the
/// deadline.
enum Waited {
    /// A read: bytes, the end of the stream, or a failure.
    Read(Result<usize, FillError>),
    /// camtls began to shut down.
    Stopping,
}

enum HeadError {
    Reject(Reject),
    /// The head did not complete within the head timeout.
    Timeout,
    /// The client went away or broke the connection.
    Gone,
}

/// How forwarding one request to the backend failed.
enum BackendFailure {
    /// A status for the client (502 or 504) and a line for the log.
    Status(u16, String),
    /// A reused connection was closed by the backend before it answered:
    /// the request may be sent again on a new one.
    StaleConnection,
    /// The client side failed; nothing more can be sent to it.
    ClientGone,
}

impl<'a> Session<'a> {
    pub fn new(
        settings: &'a Settings<'a>,
        client: ClientStream,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Self {
        Session {
            settings,
            client: Buffered::new(client),
            client_ip: peer.ip().to_canonical(),
            local,
            backend: None,
        }
    }

    pub async fn run(mut self) {
        let mut first = true;
        loop {
            let request = match self.read_request(first).await {
                Ok(Some(request)) => request,
                Ok(None) | Err(HeadError::Gone) => break,
                Err(HeadError::Reject(reject)) => {
                    log::info!(
                        "{}: {} {}",
                        self.client_ip,
                        reject.status(),
                        reject.detail()
                    );
                    self.send_error(reject.status(), reject.detail()).await;
                    break;
                }
                Err(HeadError::Timeout) => {
                    log::debug!("{}: request head timed out", self.client_ip);
                    self.send_error(408, "the request head took too long").await;
                    break;
                }
            };
            if first {
                self.settings.connection.set_established();
            }
            first = false;
            if let Some(users) = self.settings.guard.users.clone() {
                match self.check_login(&users, &request).await {
                    None => {}
                    Some(Next::KeepAlive) => continue,
                    Some(Next::Close) => break,
                }
            }
            // Boxed: forwarding's state (1.2 kB) then lives only while a
            // request is in flight, not in every idle connection's task.
            match Box::pin(self.forward(request)).await {
                Next::KeepAlive => continue,
                Next::Close => break,
            }
        }
        let close =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut self.client.io).poll_close(cx));
        let _ = self
            .settings
            .deadlines
            .limit_for(Duration::from_secs(1), close)
            .await;
    }

    /// Reads the next request head. Ok(None): the client closed, stayed idle
    /// past the idle timeout, or camtls is shutting down, between requests.
    async fn read_request(&mut self, first: bool) -> Result<Option<Request>, HeadError> {
        let origin = Origin {
            backend: self.settings.backend,
            client_ip: self.client_ip,
            local_addr: self.local,
            tls: self.settings.tls,
            preserve_host: self.settings.preserve_host,
            capture_authorization: self.settings.guard.users.is_some(),
            backend_authorization: self.settings.guard.backend_authorization.as_deref(),
        };
        let timeouts = self.settings.timeouts;
        let mut head_deadline = None::<Instant>;
        // Bytes already looked at for a line end; a head arriving in tiny
        // pieces is parsed again only when a new line has ended.
        let mut scanned: usize = 0;
        loop {
            let pending = self.client.pending();
            if !pending.is_empty() {
                // Pending bytes only grow between passes; `get` keeps that an
                // assumption that cannot panic if it ever stops holding.
                let fresh = pending.get(scanned.saturating_sub(1)..).unwrap_or(pending);
                if fresh.contains(&b'\n') || pending.len() >= head::MAX_HEAD_BYTES {
                    match head::parse_request(pending, &origin) {
                        Ok(Some((request, len))) => {
                            self.client.consume(len);
                            return Ok(Some(request));
                        }
                        Ok(None) => {}
                        Err(reject) => return Err(HeadError::Reject(reject)),
                    }
                }
                scanned = pending.len();
                head_deadline.get_or_insert_with(|| Instant::now() + timeouts.head);
            }
            let read = match head_deadline {
                Some(deadline) => {
                    let fill = self.client.fill();
                    match self.settings.deadlines.limit(deadline, fill).await {
                        Some(read) => read,
                        None => return Err(HeadError::Timeout),
                    }
                }
                None => {
                    let wait = if first { timeouts.head } else { timeouts.idle };
                    match self.wait_for_request(Instant::now() + wait).await {
                        Some(Waited::Read(read)) => read,
                        Some(Waited::Stopping) => return Ok(None),
                        None if first => return Err(HeadError::Timeout),
                        None => return Ok(None),
                    }
                }
            };
            match read {
                Ok(0) if self.client.pending().is_empty() => return Ok(None),
                Ok(0) => return Err(HeadError::Gone),
                Ok(_) => {}
                Err(FillError::Full) => return Err(HeadError::Reject(Reject::HeadTooLarge)),
                Err(FillError::Io(_)) => return Err(HeadError::Gone),
            }
        }
    }

    /// Waits for the first bytes of a request until `deadline` (then None),
    /// or until camtls begins to shut down. A keep-alive client
    /// usually sends its next request at once, so the buffers are kept for a
    /// moment; after that their memory goes back while the connection idles.
    async fn wait_for_request(&mut self, deadline: Instant) -> Option<Waited> {
        let shutdown = self.settings.shutdown;
        let deadlines = self.settings.deadlines;
        let stop = || async {
            let _ = shutdown.recv().await;
            Waited::Stopping
        };
        let hold_until = deadline.min(Instant::now() + BUFFER_HOLD);
        let waiting = smol::future::or(fill_when_readable(&mut self.client), stop());
        if let Some(read) = deadlines.limit(hold_until, waiting).await {
            return Some(read);
        }
        self.client.release();
        self.client.io.release_tls_buffers();
        if let Some(backend) = self.backend.as_mut() {
            backend.release();
        }
        let waiting = smol::future::or(fill_when_readable(&mut self.client), stop());
        deadlines.limit(deadline, waiting).await
    }

    /// camtls's own login. None: the request may go on. Otherwise a 401 or
    /// 403 has been sent, and the answer says whether the connection goes on.
    async fn check_login(&mut self, users: &Users, request: &Request) -> Option<Next> {
        let ip = self.client_ip;
        let now = Instant::now();
        let lockout = self.settings.lockout;
        if !lockout.borrow_mut().is_blocked(ip, now) {
            match users.check(request.authorization.as_deref()) {
                AuthResult::Ok(_) => {
                    lockout.borrow_mut().success(ip);
                    return None;
                }
                AuthResult::Missing => return self.ask_for_login(request).await,
                AuthResult::Wrong => {
                    log::warn!("{ip}: failed login");
                    if !lockout.borrow_mut().failure(ip, now) {
                        return self.ask_for_login(request).await;
                    }
                }
            }
        }
        self.send_error(403, "too many failed logins; try again later")
            .await;
        Some(Next::Close)
    }

    async fn ask_for_login(&mut self, request: &Request) -> Option<Next> {
        // An unread body would be taken for the next request: close instead.
        let keep_alive = request.keep_alive && request.body == Framing::Empty;
        let sent = self
            .settings
            .deadlines
            .limit_for(
                Duration::from_secs(2),
                self.client
                    .io
                    .write_all(&answer::login_required(keep_alive)),
            )
            .await;
        Some(if keep_alive && matches!(sent, Some(Ok(()))) {
            Next::KeepAlive
        } else {
            Next::Close
        })
    }

    async fn forward(&mut self, request: Request) -> Next {
        let client_ip = self.client_ip;
        let mut retried = false;
        loop {
            let reused = self.backend.is_some();
            match self.exchange(&request).await {
                Ok(next) => return next,
                Err(BackendFailure::StaleConnection)
                    if reused && !retried && request.body == Framing::Empty =>
                {
                    log::debug!(
                        "{client_ip}: backend closed a kept-alive connection; sending again"
                    );
                    self.backend = None;
                    retried = true;
                }
                Err(BackendFailure::StaleConnection) => {
                    log::warn!(
                        "{client_ip} \"{}\": backend closed the connection without answering",
                        request.summary
                    );
                    self.send_error(502, "the device closed the connection without answering")
                        .await;
                    return Next::Close;
                }
                Err(BackendFailure::Status(status, why)) => {
                    log::warn!("{client_ip} \"{}\": {status}: {why}", request.summary);
                    let detail = if status == 504 {
                        "the device did not answer in time"
                    } else {
                        "the device could not be reached or gave a bad answer"
                    };
                    self.send_error(status, detail).await;
                    return Next::Close;
                }
                Err(BackendFailure::ClientGone) => return Next::Close,
            }
        }
    }

    /// Sends one request and relays the answer.
    async fn exchange(&mut self, request: &Request) -> Result<Next, BackendFailure> {
        let timeouts = self.settings.timeouts;
        let deadlines = self.settings.deadlines;
        if self.backend.is_none() {
            let socket = connect(
                self.settings.deadlines,
                self.settings.backend,
                timeouts.connect,
            )
            .await?;
            self.backend = Some(Buffered::new(socket));
        }
        let backend = self.backend.as_mut().expect("connected above");

        // The head and the body bytes already received go out in one write.
        let mut framing = request.body;
        let mut joined = Vec::new();
        if matches!(framing, Framing::Length(_)) && !self.client.pending().is_empty() {
            joined.extend_from_slice(&request.head);
            framing = append_body_start(framing, &mut self.client, &mut joined);
        }
        let outgoing = if joined.is_empty() {
            &request.head
        } else {
            &joined
        };
        if backend.io.write_all(outgoing).await.is_err() {
            self.backend = None;
            return Err(BackendFailure::StaleConnection);
        }
        if framing != Framing::Empty {
            let continue_ = b"HTTP/1.1 100 Continue\r\n\r\n";
            if request.expect_continue
                && self.client.pending().is_empty()
                && self.client.io.write_all(continue_).await.is_err()
            {
                return Err(BackendFailure::ClientGone);
            }
            match body::copy_body(
                deadlines,
                framing,
                &mut self.client,
                &mut backend.io,
                timeouts.idle,
            )
            .await
            {
                Ok(()) => {}
                Err(CopyError::Write(e)) => {
                    self.backend = None;
                    return Err(BackendFailure::Status(
                        502,
                        format!("sending the request body: {e}"),
                    ));
                }
                Err(e) => {
                    log::debug!("{}: request body: {e}", self.client_ip);
                    return Err(BackendFailure::ClientGone);
                }
            }
        }

        let mut response = loop {
            let response = self.read_response(request).await?;
            if (100..200).contains(&response.status) && response.status != 101 {
                // Interim answers (103 Early Hints, 100 from the backend) are
                // passed on to HTTP/1.1 clients and skipped for HTTP/1.0 ones.
                if !request.http10 && self.client.io.write_all(&response.head).await.is_err() {
                    return Err(BackendFailure::ClientGone);
                }
                continue;
            }
            break response;
        };
        log::debug!(
            "{} \"{}\" {}",
            self.client_ip,
            request.summary,
            response.status
        );
        let backend = self.backend.as_mut().expect("still connected");
        // A small response goes out as one TLS record with its head.
        let rest = append_body_start(response.body, backend, &mut response.head);
        if self.client.io.write_all(&response.head).await.is_err() {
            self.backend = None;
            return Err(BackendFailure::ClientGone);
        }
        if response.status == 101 {
            if let Err(e) = body::tunnel(deadlines, &mut self.client, backend, timeouts.idle).await
            {
                log::debug!("{}: tunnel ended: {e}", self.client_ip);
            }
            self.backend = None;
            return Ok(Next::Close);
        }
        if let Err(e) = body::copy_body(
            deadlines,
            rest,
            backend,
            &mut self.client.io,
            timeouts.backend,
        )
        .await
        {
            log::debug!(
                "{} \"{}\": response body: {e}",
                self.client_ip,
                request.summary
            );
            self.backend = None;
            return Ok(Next::Close);
        }
        if !response.backend_keep_alive {
            self.backend = None;
        }
        // Once camtls is stopping (the channel closed), no next request.
        let stopping = self.settings.shutdown.is_closed();
        Ok(if response.client_keep_alive && !stopping {
            Next::KeepAlive
        } else {
            Next::Close
        })
    }

    /// The backend's next response head; on any failure the backend
    /// connection is dropped.
    async fn read_response(&mut self, request: &Request) -> Result<Response, BackendFailure> {
        let backend = self.backend.as_mut().expect("connected");
        let deadline = Instant::now() + self.settings.timeouts.backend;
        let read = next_response(backend, request, self.settings, deadline).await;
        if read.is_err() {
            self.backend = None;
        }
        read
    }

    async fn send_error(&mut self, status: u16, detail: &str) {
        let response = answer::error_response(status, detail);
        let _ = self
            .settings
            .deadlines
            .limit_for(Duration::from_secs(2), self.client.io.write_all(&response))
            .await;
    }
}

async fn next_response(
    backend: &mut BackendStream,
    request: &Request,
    settings: &Settings<'_>,
    deadline: Instant,
) -> Result<Response, BackendFailure> {
    let bad = |why: String| Err(BackendFailure::Status(502, why));
    loop {
        if !backend.pending().is_empty() {
            match head::parse_response(backend.pending(), request, settings.backend) {
                Ok(Some((response, len))) => {
                    backend.consume(len);
                    return Ok(response);
                }
                Ok(None) => {}
                Err(why) => return bad(why.0.to_string()),
            }
        }
        let nothing_yet = backend.pending().is_empty();
        match settings.deadlines.limit(deadline, backend.fill()).await {
            None => return Err(BackendFailure::Status(504, "no response in time".into())),
            Some(Ok(0)) | Some(Err(_)) if nothing_yet => {
                return Err(BackendFailure::StaleConnection)
            }
            Some(Ok(0)) => return bad("response head cut short".into()),
            Some(Err(FillError::Full)) => return bad("response head too large".into()),
            Some(Err(e)) => return bad(format!("reading the response: {e}")),
            Some(Ok(_)) => {}
        }
    }
}

/// Reads once the client has sent something. Waiting on the socket first
/// means a connection that sends nothing never takes a read buffer, and no
/// read is tried only to find the socket empty.
async fn fill_when_readable(client: &mut Buffered<ClientStream>) -> Waited {
    if !client.io.has_tls_pending() {
        if let Err(e) = client.io.socket().readable().await {
            return Waited::Read(Err(FillError::Io(e)));
        }
    }
    Waited::Read(client.fill().await)
}

/// Moves the start of a Content-Length body that is already buffered to the
/// end of `out` (its head), and returns the framing of what remains.
fn append_body_start<S: smol::io::AsyncRead + Unpin>(
    framing: Framing,
    from: &mut Buffered<S>,
    out: &mut Vec<u8>,
) -> Framing {
    let Framing::Length(n) = framing else {
        return framing;
    };
    let take = from
        .pending()
        .len()
        .min(usize::try_from(n).unwrap_or(usize::MAX));
    out.extend_from_slice(&from.pending()[..take]);
    from.consume(take);
    match n - take as u64 {
        0 => Framing::Empty,
        left => Framing::Length(left),
    }
}

/// What a client's first byte on a TLS port says it speaks.
pub enum Greeting {
    /// A TLS handshake record.
    Tls,
    /// An upper-case letter: the start of a plain-HTTP request line.
    PlainHttp,
    /// Anything else, or nothing before `deadline`.
    Other,
}

/// Waits until `deadline` for the client's first byte, and leaves it unread.
pub async fn greeting(
    deadlines: &Deadlines,
    socket: &Async<TcpStream>,
    deadline: Instant,
) -> Greeting {
    let mut first = [0u8; 1];
    let peeked = deadlines.limit(deadline, socket.peek(&mut first)).await;
    match (peeked, first[0]) {
        (Some(Ok(1)), 0x16) => Greeting::Tls,
        (Some(Ok(1)), b'A'..=b'Z') => Greeting::PlainHttp,
        _ => Greeting::Other,
    }
}

/// Answers a plain-HTTP request on a TLS port with a redirect to https
/// (answer::https_redirect); nothing reaches the backend. The head gets the
/// head timeout and size limit a request over TLS gets; anything that is not
/// a request is closed without an answer.
pub async fn redirect_to_https(
    deadlines: &Deadlines,
    socket: Async<TcpStream>,
    local: SocketAddr,
    head_timeout: Duration,
) {
    let mut client = Buffered::new(socket);
    let deadline = Instant::now() + head_timeout;
    let answer = loop {
        match deadlines.limit(deadline, client.fill()).await {
            Some(Ok(n)) if n > 0 => {}
            _ => return,
        }
        match answer::https_redirect(client.pending(), local) {
            Ok(Some(answer)) => break answer,
            Ok(None) => {}
            Err(_) => return,
        }
    };
    let peer = client
        .io
        .get_ref()
        .peer_addr()
        .map(|a| a.ip().to_canonical());
    log::debug!("{peer:?}: plain HTTP on a TLS port: redirected to https");
    let written = deadlines.limit_for(Duration::from_secs(2), client.io.write_all(&answer));
    if let Some(Ok(())) = written.await {
        // The client may still be sending a body: read it away for a moment
        // so that closing does not reset the connection before it reads the
        // answer.
        let _ = client.io.get_ref().shutdown(std::net::Shutdown::Write);
        let drain = async {
            while matches!(client.fill().await, Ok(n) if n > 0) {
                let len = client.pending().len();
                client.consume(len);
            }
        };
        let _ = deadlines.limit_for(Duration::from_secs(1), drain).await;
    }
}

/// Connects to the backend, resolving a name at each connect (a camera's
/// DHCP address may change). Names are resolved off the event loop.
async fn connect(
    deadlines: &Deadlines,
    backend: &Backend,
    timeout: Duration,
) -> Result<Async<TcpStream>, BackendFailure> {
    let addrs: Vec<SocketAddr> = match backend.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, backend.port)],
        Err(_) => {
            let lookup = resolve(&backend.host, backend.port);
            match deadlines.limit_for(timeout, lookup).await {
                Some(Some(addrs)) => addrs,
                Some(None) => {
                    return Err(BackendFailure::Status(
                        502,
                        format!("cannot resolve {}", backend.host),
                    ))
                }
                None => {
                    return Err(BackendFailure::Status(
                        504,
                        format!("resolving {} timed out", backend.host),
                    ))
                }
            }
        }
    };
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    for addr in addrs {
        match deadlines
            .limit(deadline, Async::<TcpStream>::connect(addr))
            .await
        {
            Some(Ok(socket)) => {
                // Heads and small frames must not wait for Nagle's timer.
                let _ = socket.get_ref().set_nodelay(true);
                return Ok(socket);
            }
            Some(Err(e)) => last_error = Some(format!("connecting to {backend}: {e}")),
            None => {
                return Err(BackendFailure::Status(
                    504,
                    format!("connecting to {backend} timed out"),
                ))
            }
        }
    }
    Err(BackendFailure::Status(502, last_error.unwrap_or_default()))
}

/// How long a name's addresses are used before it is looked up again: a
/// page's burst of connections costs one lookup, and a camera whose DHCP
/// address changed is found within seconds. A failed lookup is kept for
/// less, so that a camera coming up is not kept waiting.
const NAME_KEPT: Duration = Duration::from_secs(10);
const NAME_FAILURE_KEPT: Duration = Duration::from_secs(2);

/// One lookup's answer, filled in by the resolver thread; None while it runs.
type Answer = Arc<Mutex<Option<Option<Vec<SocketAddr>>>>>;

struct Job {
    host: String,
    port: u16,
    answer: Answer,
    /// Dropped when the answer is in, which wakes every waiter.
    _done: smol::channel::Sender<()>,
}

enum Name {
    Known(Instant, Option<Vec<SocketAddr>>),
    Looking(Answer, smol::channel::Receiver<()>),
}

thread_local! {
    /// By backend name and port; a handful of routes, so a list.
    static NAMES: RefCell<Vec<(String, u16, Name)>> = const { RefCell::new(Vec::new()) };
}

/// The resolver thread's queue.
static JOBS: Mutex<Vec<Job>> = Mutex::new(Vec::new());
static JOB_ADDED: Condvar = Condvar::new();
static RESOLVER_STARTED: AtomicBool = AtomicBool::new(false);

/// The backend's addresses, or None when the name does not resolve.
/// getaddrinfo blocks, so names are looked up on one thread of their own,
/// started at the first lookup, one name at a time: stalled lookups never
/// add threads (on a 32 MB router a thread each would be the end), and a
/// stalled name delays only the routes to names, never an address route.
/// Connections asking for a name already being looked up share that lookup.
async fn resolve(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let find = |names: &mut Vec<(String, u16, Name)>| {
        names.iter().position(|(h, p, _)| h == host && *p == port)
    };
    let known = NAMES.with_borrow_mut(|names| {
        let at = find(names);
        match at.map(|i| &names[i].2) {
            Some(Name::Known(until, addrs)) if Instant::now() < *until => return Ok(addrs.clone()),
            Some(Name::Looking(answer, done)) => return Err((answer.clone(), done.clone())),
            _ => {}
        }
        let answer = Answer::default();
        let (done_tx, done) = smol::channel::bounded(1);
        let job = Job {
            host: host.to_string(),
            port,
            answer: answer.clone(),
            _done: done_tx,
        };
        if !queue_lookup(job) {
            return Ok(None);
        }
        let entry = (
            host.to_string(),
            port,
            Name::Looking(answer.clone(), done.clone()),
        );
        match at {
            Some(i) => names[i] = entry,
            None => names.push(entry),
        }
        Err((answer, done))
    });
    let (answer, done) = match known {
        Ok(addrs) => return addrs,
        Err(looking) => looking,
    };
    let _ = done.recv().await;
    let addrs = answer.lock().ok()?.clone()?;
    NAMES.with_borrow_mut(|names| {
        if let Some(i) = find(names) {
            if matches!(&names[i].2, Name::Looking(a, _) if Arc::ptr_eq(a, &answer)) {
                let kept = if addrs.is_some() {
                    NAME_KEPT
                } else {
                    NAME_FAILURE_KEPT
                };
                names[i].2 = Name::Known(Instant::now() + kept, addrs.clone());
            }
        }
    });
    addrs
}

/// Hands a lookup to the resolver thread, starting it the first time;
/// false if it cannot be started.
fn queue_lookup(job: Job) -> bool {
    if !RESOLVER_STARTED.swap(true, Ordering::Relaxed) {
        let started = std::thread::Builder::new()
            .name("resolver".into())
            .stack_size(256 * 1024)
            .spawn(resolver_thread);
        if started.is_err() {
            RESOLVER_STARTED.store(false, Ordering::Relaxed);
            return false;
        }
    }
    let Ok(mut jobs) = JOBS.lock() else {
        return false;
    };
    jobs.push(job);
    JOB_ADDED.notify_one();
    true
}

fn resolver_thread() {
    loop {
        let job = {
            let Ok(mut jobs) = JOBS.lock() else { return };
            while jobs.is_empty() {
                let Ok(woken) = JOB_ADDED.wait(jobs) else {
                    return;
                };
                jobs = woken;
            }
            jobs.remove(0)
        };
        let found = (job.host.as_str(), job.port)
            .to_socket_addrs()
            .ok()
            .map(Vec::from_iter)
            .filter(|addrs| !addrs.is_empty());
        if let Ok(mut answer) = job.answer.lock() {
            *answer = Some(found);
        }
        drop(job);
    }
}
