//! A client's first byte on a TLS port, and the answer to someone who typed
//! http:// there: a redirect to https, in plain HTTP, that never reaches the
//! backend.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use smol::io::AsyncWriteExt;
use smol::Async;

use crate::answer;
use crate::deadline::Deadlines;
use crate::stream::Buffered;

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
