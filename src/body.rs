//! Moving bodies from one stream to the other as they arrive, framed exactly
//! (Content-Length, chunked, until close) so that the bytes after a body stay
//! in the buffer for the next head, and two-way tunnels after a protocol
//! switch. Nothing waits for a buffer to fill: every read is written out at
//! once, which is what keeps an MJPEG stream moving frame by frame.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smol::io::{AsyncRead, AsyncWrite};

use crate::deadline::Deadlines;
use crate::head::Framing;
use crate::stream::{Buffered, FillError};

/// Longest chunk-size line, extensions included. Real senders use a few
/// bytes; the bound stops a line that never ends.
pub const MAX_CHUNK_LINE_BYTES: usize = 1024;

/// Most trailer bytes after the last chunk (same bound as a head).
pub const MAX_TRAILER_BYTES: usize = crate::head::MAX_HEAD_BYTES;

#[derive(Debug)]
pub enum CopyError {
    /// Reading the source failed or it ended before the body did.
    Read(FillError),
    /// Writing to the destination failed.
    Write(io::Error),
    /// The chunked framing was broken.
    Framing(&'static str),
    /// Neither side moved a byte for the idle time.
    Idle,
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::Read(e) => write!(f, "read failed: {e}"),
            CopyError::Write(e) => write!(f, "write failed: {e}"),
            CopyError::Framing(why) => write!(f, "bad chunked body: {why}"),
            CopyError::Idle => f.write_str("idle timeout"),
        }
    }
}

/// Follows chunked framing (RFC 9112 section 7.1) over bytes that pass
/// through unchanged, to find where the body ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    line_bytes: usize,
    trailer_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    Size { value: u64, digits: u8 },
    Extension { value: u64 },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerLineStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size {
                value: 0,
                digits: 0,
            },
            line_bytes: 0,
            trailer_bytes: 0,
        }
    }
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Data bytes left in the current chunk, when the next input byte is one.
    fn data_left(&self) -> Option<u64> {
        match self.state {
            ChunkState::Data(left) => Some(left),
            _ => None,
        }
    }

    /// How many bytes of `input` belong to the body (all of them, or up to
    /// and including the final CRLF).
    pub fn advance(&mut self, input: &[u8]) -> Result<usize, &'static str> {
        use ChunkState::*;
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            i += 1;
            self.state = match self.state {
                Size { value, digits } => {
                    self.line_bytes += 1;
                    match (b as char).to_digit(16) {
                        Some(d) if digits < 16 => Size {
                            value: value << 4 | u64::from(d),
                            digits: digits + 1,
                        },
                        Some(_) => return Err("chunk size too large"),
                        None if digits == 0 => return Err("chunk size missing"),
                        None if b == b'\r' => SizeLf { value },
                        None if b == b';' || b == b' ' || b == b'\t' => Extension { value },
                        None => return Err("invalid chunk size"),
                    }
                }
                Extension { value } => {
                    self.line_bytes += 1;
                    if self.line_bytes > MAX_CHUNK_LINE_BYTES {
                        return Err("chunk size line too long");
                    }
                    match b {
                        b'\r' => SizeLf { value },
                        b'\n' => return Err("bare LF in chunk size line"),
                        _ => Extension { value },
                    }
                }
                SizeLf { value } => {
                    if b != b'\n' {
                        return Err("chunk size line not ended by CRLF");
                    }
                    self.line_bytes = 0;
                    if value == 0 {
                        TrailerLineStart
                    } else {
                        Data(value)
                    }
                }
                Data(left) => {
                    // `b` is the first of the data bytes here; all of them
                    // up to the chunk's end are taken at once.
                    let here = (input.len() - (i - 1)) as u64;
                    let take = left.min(here).max(1);
                    i = i - 1 + take as usize;
                    if take >= left {
                        DataCr
                    } else {
                        Data(left - take)
                    }
                }
                DataCr if b == b'\r' => DataLf,
                DataLf if b == b'\n' => Size {
                    value: 0,
                    digits: 0,
                },
                DataCr | DataLf => return Err("chunk data not followed by CRLF"),
                TrailerLineStart if b == b'\r' => EndLf,
                TrailerLineStart | Trailer => {
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > MAX_TRAILER_BYTES {
                        return Err("trailer section too large");
                    }
                    match b {
                        b'\r' => TrailerLf,
                        b'\n' => return Err("bare LF in trailer"),
                        _ => Trailer,
                    }
                }
                TrailerLf if b == b'\n' => TrailerLineStart,
                EndLf if b == b'\n' => {
                    self.state = Done;
                    return Ok(i);
                }
                TrailerLf | EndLf => return Err("trailer line not ended by CRLF"),
                Done => return Ok(i - 1),
            };
        }
        Ok(i)
    }
}

/// Copies one body from a buffered source to a destination.
#[derive(Debug)]
pub struct BodyCopy {
    framing: Progress,
    /// Bytes at the front of the source's pending data that belong to the
    /// body and are still to be written.
    to_write: usize,
}

#[derive(Debug)]
enum Progress {
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Chunked in, only the data out.
    Dechunk(ChunkedDecoder),
    UntilClose {
        ended: bool,
    },
}

impl BodyCopy {
    pub fn new(framing: Framing) -> BodyCopy {
        let framing = match framing {
            Framing::Empty => Progress::Length(0),
            Framing::Length(n) => Progress::Length(n),
            Framing::Chunked => Progress::Chunked(ChunkedDecoder::default()),
            Framing::Dechunked => Progress::Dechunk(ChunkedDecoder::default()),
            Framing::UntilClose => Progress::UntilClose { ended: false },
        };
        BodyCopy {
            framing,
            to_write: 0,
        }
    }

    fn finished(&self) -> bool {
        self.to_write == 0
            && match &self.framing {
                Progress::Length(left) => *left == 0,
                Progress::Chunked(d) | Progress::Dechunk(d) => d.is_done(),
                Progress::UntilClose { ended } => *ended,
            }
    }

    /// Drives the copy; `moved` is set when any byte was read or written.
    pub fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut Buffered<R>,
        dst: &mut W,
        moved: &mut bool,
    ) -> Poll<Result<(), CopyError>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.to_write > 0 {
                let pending = src.pending();
                let data = &pending[..self.to_write.min(pending.len())];
                match Pin::new(&mut *dst).poll_write(cx, data) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(CopyError::Write(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(n)) => {
                        // A writer never reports more than it was given.
                        let n = n.min(self.to_write);
                        src.consume(n);
                        self.to_write -= n;
                        *moved = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(CopyError::Write(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.finished() {
                return Pin::new(&mut *dst).poll_flush(cx).map_err(CopyError::Write);
            }
            if src.pending().is_empty() {
                match src.poll_fill(cx) {
                    Poll::Ready(Ok(0)) => match &mut self.framing {
                        Progress::UntilClose { ended } => {
                            *ended = true;
                            continue;
                        }
                        _ => {
                            return Poll::Ready(Err(CopyError::Read(FillError::Io(
                                io::ErrorKind::UnexpectedEof.into(),
                            ))))
                        }
                    },
                    Poll::Ready(Ok(_)) => *moved = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(CopyError::Read(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let available = src.pending();
            self.to_write = match &mut self.framing {
                Progress::Length(left) => {
                    let n = (*left).min(available.len() as u64);
                    *left -= n;
                    n as usize
                }
                Progress::Chunked(decoder) => {
                    decoder.advance(available).map_err(CopyError::Framing)?
                }
                Progress::Dechunk(decoder) => match decoder.data_left() {
                    // Data is written; framing bytes are read and dropped.
                    Some(left) => {
                        let n = left.min(available.len() as u64) as usize;
                        decoder
                            .advance(&available[..n])
                            .map_err(CopyError::Framing)?
                    }
                    None => {
                        let mut framing = 0;
                        while framing < available.len()
                            && decoder.data_left().is_none()
                            && !decoder.is_done()
                        {
                            framing += decoder
                                .advance(&available[framing..framing + 1])
                                .map_err(CopyError::Framing)?;
                        }
                        src.consume(framing);
                        0
                    }
                },
                Progress::UntilClose { .. } => available.len(),
            };
        }
    }
}

/// Runs `step` until it is ready, failing with CopyError::Idle when it moves
/// no byte for `idle`. Progress only records the time; the wait is renewed
/// when it runs out, so a busy transfer costs no timer work per read.
pub async fn guard_idle<T>(
    deadlines: &Deadlines,
    idle: Duration,
    mut step: impl FnMut(&mut Context<'_>, &mut bool) -> Poll<Result<T, CopyError>>,
) -> Result<T, CopyError> {
    let mut last_move = Instant::now();
    let mut wait = Box::pin(deadlines.sleep_until(last_move + idle));
    poll_fn(move |cx| {
        let mut moved = false;
        if let Poll::Ready(result) = step(cx, &mut moved) {
            return Poll::Ready(result);
        }
        if moved {
            last_move = Instant::now();
        }
        while wait.as_mut().poll(cx).is_ready() {
            let deadline = last_move + idle;
            if Instant::now() >= deadline {
                return Poll::Ready(Err(CopyError::Idle));
            }
            wait.set(deadlines.sleep_until(deadline));
        }
        Poll::Pending
    })
    .await
}

/// Copies one body, failing after `idle` without progress.
pub async fn copy_body<R, W>(
    deadlines: &Deadlines,
    framing: Framing,
    src: &mut Buffered<R>,
    dst: &mut W,
    idle: Duration,
) -> Result<(), CopyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut copy = BodyCopy::new(framing);
    if copy.finished() {
        return Ok(());
    }
    guard_idle(deadlines, idle, |cx, moved| {
        copy.poll_copy(cx, src, dst, moved)
    })
    .await
}

/// Two-way copy after a protocol switch, until both sides have closed. When
/// one side ends, its end is passed on (a half-close) and the other
/// direction carries on.
pub async fn tunnel<A, B>(
    deadlines: &Deadlines,
    a: &mut Buffered<A>,
    b: &mut Buffered<B>,
    idle: Duration,
) -> Result<(), CopyError>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut a_to_b = Direction::new();
    let mut b_to_a = Direction::new();
    guard_idle(deadlines, idle, |cx, moved| {
        let ab = a_to_b.poll(cx, a, &mut b.io, moved)?;
        let ba = b_to_a.poll(cx, b, &mut a.io, moved)?;
        if ab.is_ready() && ba.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

struct Direction {
    copy: BodyCopy,
    copied: bool,
    closed: bool,
}

impl Direction {
    fn new() -> Direction {
        Direction {
            copy: BodyCopy::new(Framing::UntilClose),
            copied: false,
            closed: false,
        }
    }

    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut Buffered<R>,
        dst: &mut W,
        moved: &mut bool,
    ) -> Result<Poll<()>, CopyError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        if !self.copied {
            match self.copy.poll_copy(cx, src, dst, moved) {
                Poll::Ready(Ok(())) => self.copied = true,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(Poll::Pending),
            }
        }
        if !self.closed {
            match Pin::new(&mut *dst).poll_close(cx) {
                Poll::Ready(_) => self.closed = true,
                Poll::Pending => return Ok(Poll::Pending),
            }
        }
        Ok(Poll::Ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<usize, &'static str> {
        let mut d = ChunkedDecoder::default();
        let n = d.advance(input)?;
        assert!(d.is_done(), "not done after {n}");
        Ok(n)
    }

    #[test]
    fn chunked_bodies_end_where_they_should() {
        let body = b"5\r\nhello\r\n6;name=v\r\n world\r\n0\r\n\r\n";
        assert_eq!(
            decode_all(&[body.as_slice(), b"GET /next"].concat()),
            Ok(body.len())
        );
        let with_trailer = b"1\r\na\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n";
        assert_eq!(decode_all(with_trailer), Ok(with_trailer.len()));
        assert_eq!(decode_all(b"A\r\n0123456789\r\n0\r\n\r\n"), Ok(20));
    }

    #[test]
    fn chunked_byte_by_byte_matches_whole() {
        let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: x\r\n\r\n";
        let mut d = ChunkedDecoder::default();
        let mut total = 0;
        for b in body.iter() {
            total += d.advance(std::slice::from_ref(b)).unwrap();
        }
        assert!(d.is_done());
        assert_eq!(total, body.len());
    }

    #[test]
    fn broken_chunked_framing_is_an_error() {
        for bad in [
            b"x\r\n".as_slice(),
            b"\r\n",
            b"5\nhello",
            b"5\r\nhelloX",
            b"11111111111111111\r\n",
            b"0\r\nX: y\n",
            b"0\r\n\rX",
        ] {
            assert!(ChunkedDecoder::default().advance(bad).is_err(), "{:?}", bad);
        }
        let long_ext = [b"1;".as_slice(), &[b'a'; MAX_CHUNK_LINE_BYTES]].concat();
        assert!(ChunkedDecoder::default().advance(&long_ext).is_err());
        let big_trailer = [b"0\r\n".as_slice(), &[b'a'; MAX_TRAILER_BYTES + 1]].concat();
        assert!(ChunkedDecoder::default().advance(&big_trailer).is_err());
    }
}
