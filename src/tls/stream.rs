//! A small async adapter that drives a server-side OpenSSL stream over a
//! non-blocking socket on the reactor, in place of native-tls and
//! async-native-tls (Cargo.toml says why).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use foreign_types::ForeignTypeRef;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslStream};
use smol::io::{AsyncRead, AsyncWrite};
use smol::Async;

use crate::tls::first_reason;

// Neither the openssl crate nor openssl-sys declares these two.
extern "C" {
    // True while OpenSSL holds bytes not yet returned, decrypted or still
    // raw (read-ahead). OpenSSL 1.1.0 and later.
    fn SSL_has_pending(ssl: *const openssl_sys::SSL) -> std::os::raw::c_int;
    // Frees the record buffers of an idle connection. OpenSSL 1.1.1 and later.
    fn SSL_free_buffers(ssl: *mut openssl_sys::SSL) -> std::os::raw::c_int;
}

/// A socket as std::io for OpenSSL: the socket is non-blocking, so OpenSSL
/// sees WouldBlock and reports WANT_READ/WANT_WRITE.
#[derive(Debug)]
pub struct SocketIo(pub Async<TcpStream>);

impl Read for SocketIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.get_ref().read(buf)
    }
}

impl Write for SocketIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_ref().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A server-side TLS stream on the async reactor.
#[derive(Debug)]
pub struct TlsStream {
    ssl: SslStream<SocketIo>,
    shutdown_sent: bool,
}

impl TlsStream {
    /// Runs the server handshake to completion (or failure).
    pub async fn accept(ctx: &SslContext, socket: Async<TcpStream>) -> io::Result<TlsStream> {
        let ssl = Ssl::new(ctx).map_err(io::Error::other)?;
        let mut ssl = SslStream::new(ssl, SocketIo(socket)).map_err(io::Error::other)?;
        std::future::poll_fn(|cx| loop {
            match ssl.accept() {
                Ok(()) => return Poll::Ready(Ok::<(), io::Error>(())),
                Err(e) => ready!(wait_for_socket(&ssl, e, cx))?,
            }
        })
        .await?;
        Ok(TlsStream {
            ssl,
            shutdown_sent: false,
        })
    }

    pub fn socket(&self) -> &Async<TcpStream> {
        &self.ssl.get_ref().0
    }

    /// The SSL object, for the calls the openssl crate does not wrap.
    fn raw(&self) -> *mut openssl_sys::SSL {
        self.ssl.ssl().as_ptr()
    }

    /// Gives OpenSSL's record buffers back while the connection idles (they
    /// are taken again at the next record). Does nothing while bytes are
    /// pending in them.
    pub fn free_buffers(&mut self) {
        if !self.has_pending() {
            // SAFETY: the SSL object lives as long as self, and nothing else
            // uses it during the call.
            unsafe { SSL_free_buffers(self.raw()) };
        }
    }

    /// True when OpenSSL already holds received bytes, so that waiting for
    /// the socket to become readable could wait for nothing.
    pub fn has_pending(&self) -> bool {
        // SAFETY: the SSL object lives as long as self.
        unsafe { SSL_has_pending(self.raw()) == 1 }
    }
}

/// After an OpenSSL call that could not finish, waits for the socket state it
/// asked for; anything else becomes an io::Error.
fn wait_for_socket(
    ssl: &SslStream<SocketIo>,
    err: openssl::ssl::Error,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let socket = &ssl.get_ref().0;
    match err.code() {
        ErrorCode::WANT_READ => socket.poll_readable(cx),
        ErrorCode::WANT_WRITE => socket.poll_writable(cx),
        ErrorCode::ZERO_RETURN => Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
        _ => Poll::Ready(Err(match err.into_io_error() {
            Ok(io) => io,
            Err(e) => match e.ssl_error() {
                Some(stack) => io::Error::new(io::ErrorKind::InvalidData, first_reason(stack)),
                None => io::Error::from(io::ErrorKind::UnexpectedEof),
            },
        })),
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match this.ssl.ssl_read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => return Poll::Ready(Ok(0)),
                Err(e) => ready!(wait_for_socket(&this.ssl, e, cx))?,
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match this.ssl.ssl_write(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) => ready!(wait_for_socket(&this.ssl, e, cx))?,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SSL_write returns only once its record is in the socket.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shutdown_sent {
            loop {
                match this.ssl.shutdown() {
                    Ok(_) => break,
                    Err(e) if e.code() == ErrorCode::WANT_WRITE => {
                        ready!(this.socket().poll_writable(cx))?
                    }
                    // The peer may be gone already; closing goes on regardless.
                    Err(_) => break,
                }
            }
            this.shutdown_sent = true;
        }
        Poll::Ready(this.socket().get_ref().shutdown(std::net::Shutdown::Write))
    }
}
