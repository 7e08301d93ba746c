//! One client connection, from its first request head to its close: reading
//! heads under timeouts, the paired backend connection, forwarding request
//! and response, protocol switches, and sending the error responses camtls
//! makes itself.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use smol::io::{AsyncWrite, AsyncWriteExt};
use smol::Async;

use std::cell::RefCell;

use crate::admission::ConnectionState;
use crate::answer;
use crate::auth::guard::RouteGuard;
use crate::auth::lockout::Lockout;
use crate::auth::users::{AuthResult, Users};
use crate::body::{self, CopyError};
use crate::config::{Backend, Timeouts};
use crate::connect;
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
            let socket = connect::connect(
                self.settings.deadlines,
                self.settings.backend,
                timeouts.connect,
            )
            .await
            .map_err(|f| BackendFailure::Status(f.status, f.why))?;
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
