//! The two kinds of byte stream a connection has (a client, TLS or plain; a
//! backend, plain TCP) and the read buffer that keeps bytes received past a
//! head for the body or the next head.

use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};

use smol::io::{AsyncRead, AsyncWrite};
use smol::Async;

use crate::tls::stream::TlsStream;

/// Size of each connection's read buffer: a head must fit in it
/// (head::MAX_HEAD_BYTES), and a body moves through it about one TLS record
/// (16 KiB) at a time. 64 bytes short of 16 KiB so that, with an allocator's
/// header, it fits an allocator's 16 KiB size class (the static builds'
/// dlmalloc has none; glibc's and many others do).
pub const BUFFER_BYTES: usize = 16 * 1024 - 64;

/// A client connection: TLS, or plain with `--plain`.
#[derive(Debug)]
pub enum ClientStream {
    Plain(Async<TcpStream>),
    Tls(TlsStream),
}

impl ClientStream {
    pub fn socket(&self) -> &Async<TcpStream> {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(s) => s.socket(),
        }
    }

    /// Frees TLS record buffers while the connection idles.
    pub fn release_tls_buffers(&mut self) {
        if let ClientStream::Tls(s) = self {
            s.free_buffers();
        }
    }

    /// True when TLS holds received bytes not yet read, so that waiting for
    /// the socket to become readable could wait for nothing.
    pub fn has_tls_pending(&self) -> bool {
        match self {
            ClientStream::Plain(_) => false,
            ClientStream::Tls(s) => s.has_pending(),
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_close(cx),
            ClientStream::Tls(s) => Pin::new(s).poll_close(cx),
        }
    }
}

/// Why a read into a [`Buffered`] stream's buffer took no bytes.
#[derive(Debug)]
pub enum FillError {
    /// The buffer is full of pending bytes: a head larger than the buffer.
    Full,
    /// The stream failed.
    Io(io::Error),
}

impl From<io::Error> for FillError {
    fn from(e: io::Error) -> FillError {
        FillError::Io(e)
    }
}

impl std::fmt::Display for FillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FillError::Full => f.write_str("the read buffer is full"),
            FillError::Io(e) => e.fmt(f),
        }
    }
}

/// A stream with a read buffer. Bytes in `buf[start..end]` have been received
/// but not yet used: the rest of a head, a body, or the next request.
#[derive(Debug)]
pub struct Buffered<S> {
    pub io: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<S: AsyncRead + Unpin> Buffered<S> {
    pub fn new(io: S) -> Buffered<S> {
        Buffered {
            io,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// Received bytes not yet consumed.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops the first `n` pending bytes (all of them if fewer are pending).
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Gives the buffer's memory back while nothing is pending, so an idle
    /// keep-alive connection costs little.
    pub fn release(&mut self) {
        if self.start == self.end {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes after the pending ones. Ready(Ok(0)) means end of
    /// stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, FillError>> {
        if self.buf.is_empty() {
            self.buf = vec![0; BUFFER_BYTES];
        }
        if self.end == self.buf.len() {
            if self.start == 0 {
                return Poll::Ready(Err(FillError::Full));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = std::task::ready!(Pin::new(&mut self.io).poll_read(cx, &mut self.buf[self.end..]))?;
        // A reader never reports more than the room it was given.
        let n = n.min(self.buf.len() - self.end);
        self.end += n;
        Poll::Ready(Ok(n))
    }

    pub async fn fill(&mut self) -> Result<usize, FillError> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }
}
