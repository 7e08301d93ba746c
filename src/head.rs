//! HTTP/1.x heads: parsing requests and responses with httparse, the checks
//! that keep request smuggling out, and the rewriting a reverse proxy does
//! (Host, X-Forwarded-*, hop-by-hop headers, redirects that name the backend).
//! Bodies are never touched here; this module only decides how they are framed.
//! The responses camtls makes itself are in `answer`.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::config::Backend;

/// Largest request or response head accepted, in bytes: 16 KiB less 64
/// bytes, what a connection's read buffer holds (stream::BUFFER_BYTES; proxy
/// checks at compile time that a head fits). Bounds the memory a client can
/// make a connection hold and the work of re-parsing a head that arrives one
/// byte at a time; browsers' heads are a few KiB at most.
pub const MAX_HEAD_BYTES: usize = 16 * 1024 - 64;

/// Most header fields in one head. Bounds parsing work and stack use.
pub const MAX_HEADERS: usize = 64;

/// How a message body ends (RFC 9112 section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding, forwarded as it is.
    Chunked,
    /// Chunked from the backend, sent on without the chunk framing and
    /// ending at close (a response to an HTTP/1.0 client).
    Dechunked,
    /// Everything until the sender closes (responses only).
    UntilClose,
}

/// Why a request head is refused; each maps to one status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// 400: not HTTP, or ambiguous in a way that enables request smuggling.
    BadRequest(&'static str),
    /// 405: CONNECT; camtls is not a forward proxy.
    MethodNotAllowed,
    /// 417: an Expect other than 100-continue.
    ExpectationFailed,
    /// 431: head over MAX_HEAD_BYTES, or more than MAX_HEADERS fields.
    HeadTooLarge,
    /// 501: a transfer coding other than chunked.
    NotImplemented,
    /// 505: not HTTP/1.0 or HTTP/1.1.
    VersionNotSupported,
}

impl Reject {
    pub fn status(self) -> u16 {
        match self {
            Reject::BadRequest(_) => 400,
            Reject::MethodNotAllowed => 405,
            Reject::ExpectationFailed => 417,
            Reject::HeadTooLarge => 431,
            Reject::NotImplemented => 501,
            Reject::VersionNotSupported => 505,
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Reject::BadRequest(why) => why,
            Reject::MethodNotAllowed => "CONNECT is not supported",
            Reject::ExpectationFailed => "only Expect: 100-continue is supported",
            Reject::HeadTooLarge => "request head too large or too many header fields",
            Reject::NotImplemented => "only the chunked transfer coding is supported",
            Reject::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported",
        }
    }
}

/// What the proxy knows about the connection a request came on.
pub struct Origin<'a> {
    pub backend: &'a Backend,
    pub client_ip: IpAddr,
    pub local_addr: SocketAddr,
    pub tls: bool,
    pub preserve_host: bool,
    /// camtls checks logins itself: the client's Authorization is taken for
    /// that check and never forwarded.
    pub capture_authorization: bool,
    /// The Authorization value camtls sends the device instead.
    pub backend_authorization: Option<&'a str>,
}

/// A request head, checked and rewritten for the backend.
#[derive(Debug)]
pub struct Request {
    /// The head to send to the backend.
    pub head: Vec<u8>,
    pub body: Framing,
    pub is_head_method: bool,
    /// The client may send another request after this one.
    pub keep_alive: bool,
    /// The client asked to switch protocols (WebSocket).
    pub upgrade: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    pub http10: bool,
    /// `scheme://host[:port]` as the client sees the proxy; redirects to the
    /// backend are rewritten to this.
    pub public_origin: String,
    /// Method and target for the log, query values hidden.
    pub summary: String,
    /// The client's Authorization value, kept when camtls checks logins.
    pub authorization: Option<Vec<u8>>,
}

/// Parses and rewrites a request head. `Ok(None)`: the head is incomplete.
/// On success also returns the head's length in `buf`; bytes after it are
/// body or the next request. Finding what the head says (`Facts::find`)
/// and writing the backend's head (`write_backend_head`) are separate steps.
pub fn parse_request(buf: &[u8], origin: &Origin) -> Result<Option<(Request, usize)>, Reject> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD_BYTES {
                Err(Reject::HeadTooLarge)
            } else {
                Ok(None)
            }
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Reject::HeadTooLarge),
        Err(httparse::Error::Version) if names_http_version(buf) => {
            return Err(Reject::VersionNotSupported)
        }
        Err(_) => return Err(Reject::BadRequest("malformed request head")),
    };
    if len > MAX_HEAD_BYTES {
        return Err(Reject::HeadTooLarge);
    }
    let facts = Facts::find(&req)?;
    let mut head = Vec::with_capacity(len + 160);
    write_backend_head(&mut head, &facts, req.headers, origin);
    let scheme = if origin.tls { "https" } else { "http" };
    let public_origin = match facts.client_host {
        Some(h) => format!("{scheme}://{h}"),
        None => format!("{scheme}://{}", origin.local_addr),
    };
    let request = Request {
        head,
        body: facts.body,
        is_head_method: facts.method.eq_ignore_ascii_case("HEAD"),
        keep_alive: !facts.http10 && !facts.wants_close,
        upgrade: facts.upgrade.is_some(),
        expect_continue: facts.expect_continue,
        http10: facts.http10,
        public_origin,
        summary: format!("{} {}", facts.method, redact_query(facts.path)),
        authorization: facts
            .authorization
            .filter(|_| origin.capture_authorization)
            .map(<[u8]>::to_vec),
    };
    Ok(Some((request, len)))
}

/// What a complete request head says, checked: everything the proxy acts
/// on, found in one pass over the fields, before anything is written.
struct Facts<'b> {
    method: &'b str,
    /// The origin-form path (or `*`) the backend gets.
    path: &'b str,
    http10: bool,
    body: Framing,
    /// A `Content-Length: 0` was sent, and goes on as sent.
    zero_length: bool,
    /// The host the client named (absolute-form target, else Host), valid.
    client_host: Option<&'b str>,
    /// The tokens of every Connection field.
    connection: Vec<&'b [u8]>,
    /// The protocol asked for, with `Connection: upgrade`, over HTTP/1.1.
    upgrade: Option<&'b [u8]>,
    expect_continue: bool,
    wants_close: bool,
    /// X-Forwarded-For values already present, in order.
    forwarded_for: Vec<&'b [u8]>,
    /// The last Authorization value.
    authorization: Option<&'b [u8]>,
}

impl<'b> Facts<'b> {
    fn find(req: &httparse::Request<'_, 'b>) -> Result<Facts<'b>, Reject> {
        let method = req.method.unwrap_or("");
        let target = req.path.unwrap_or("");
        let http10 = req.version == Some(0);
        if method.eq_ignore_ascii_case("CONNECT") {
            return Err(Reject::MethodNotAllowed);
        }

        // Never an open proxy: an absolute-form target names the host the
        // client thinks it talks to, but the request goes to this route's
        // backend.
        let (path, target_authority) = split_target(target)?;

        let mut lengths = None::<u64>;
        let mut transfer_encodings = Vec::new();
        let mut connection = Vec::new();
        let mut host = None::<&[u8]>;
        let mut upgrade = None::<&[u8]>;
        let mut expect = None::<&[u8]>;
        let mut forwarded_for = Vec::new();
        let mut authorization = None;
        for f in req.headers.iter() {
            let name = f.name;
            if name.eq_ignore_ascii_case("content-length") {
                merge_content_length(&mut lengths, f.value).map_err(Reject::BadRequest)?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encodings.push(f.value);
            } else if name.eq_ignore_ascii_case("connection") {
                connection.extend(tokens(f.value));
            } else if name.eq_ignore_ascii_case("host") {
                if host.is_some() {
                    return Err(Reject::BadRequest("more than one Host"));
                }
                host = Some(f.value);
            } else if name.eq_ignore_ascii_case("upgrade") {
                upgrade = Some(f.value);
            } else if name.eq_ignore_ascii_case("expect") {
                expect = Some(f.value);
            } else if name.eq_ignore_ascii_case("x-forwarded-for") {
                forwarded_for.push(f.value);
            } else if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(f.value);
            }
        }

        let body = if !transfer_encodings.is_empty() {
            if lengths.is_some() {
                // RFC 9112 section 6.1: both together is how smuggling starts.
                return Err(Reject::BadRequest(
                    "Content-Length together with Transfer-Encoding",
                ));
            }
            if http10 {
                return Err(Reject::BadRequest(
                    "Transfer-Encoding in an HTTP/1.0 request",
                ));
            }
            let codings: Vec<&[u8]> = transfer_encodings.iter().flat_map(|v| tokens(v)).collect();
            if !matches!(codings.as_slice(), [only] if only.eq_ignore_ascii_case(b"chunked")) {
                return Err(Reject::NotImplemented);
            }
            Framing::Chunked
        } else {
            match lengths {
                Some(0) | None => Framing::Empty,
                Some(n) => Framing::Length(n),
            }
        };

        let host = host.filter(|h| !h.is_empty());
        if !http10 && host.is_none() && target_authority.is_none() {
            return Err(Reject::BadRequest("missing Host"));
        }
        let client_host = match target_authority.or(host) {
            Some(h) if valid_host(h) => Some(std::str::from_utf8(h).unwrap_or_default()),
            Some(_) => return Err(Reject::BadRequest("invalid Host")),
            None => None,
        };

        let expect_continue = match expect {
            None => false,
            Some(v) if v.eq_ignore_ascii_case(b"100-continue") => body != Framing::Empty,
            Some(_) => return Err(Reject::ExpectationFailed),
        };
        let wants_close = connection.iter().any(|t| t.eq_ignore_ascii_case(b"close"));
        let upgrade = match upgrade {
            Some(proto)
                if !http10
                    && connection
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(b"upgrade")) =>
            {
                Some(proto)
            }
            _ => None,
        };
        Ok(Facts {
            method,
            path,
            http10,
            body,
            zero_length: lengths == Some(0),
            client_host,
            connection,
            upgrade,
            expect_continue,
            wants_close,
            forwarded_for,
            authorization,
        })
    }
}

/// The head camtls sends the backend for a request: the request line with
/// an origin-form path, Host naming the backend (or the client's with
/// --preserve-host), the client's end-to-end fields, the framing, the
/// X-Forwarded-* fields, and the login policy's Authorization: the client's
/// own is dropped when camtls checks logins itself or sends the device's.
fn write_backend_head(
    head: &mut Vec<u8>,
    facts: &Facts,
    fields: &[httparse::Header],
    origin: &Origin,
) {
    let drop_authorization = origin.capture_authorization || origin.backend_authorization.is_some();
    head.extend_from_slice(facts.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(facts.path.as_bytes());
    head.extend_from_slice(if facts.http10 {
        b" HTTP/1.0\r\n".as_slice()
    } else {
        b" HTTP/1.1\r\n".as_slice()
    });
    head.extend_from_slice(b"Host: ");
    match facts.client_host {
        Some(h) if origin.preserve_host => head.extend_from_slice(h.as_bytes()),
        _ => head.extend_from_slice(origin.backend.authority().as_bytes()),
    }
    head.extend_from_slice(b"\r\n");
    for f in fields {
        if is_hop_by_hop(f.name, &facts.connection)
            || [
                "host",
                "content-length",
                "expect",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host",
            ]
            .iter()
            .any(|n| f.name.eq_ignore_ascii_case(n))
            || (drop_authorization && f.name.eq_ignore_ascii_case("authorization"))
        {
            continue;
        }
        push_field(head, f.name.as_bytes(), f.value);
    }
    if let Some(credentials) = origin.backend_authorization {
        push_field(head, b"Authorization", credentials.as_bytes());
    }
    match facts.body {
        Framing::Length(n) => {
            let _ = write!(head, "Content-Length: {n}\r\n");
        }
        Framing::Chunked => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::Empty if facts.zero_length => head.extend_from_slice(b"Content-Length: 0\r\n"),
        _ => {}
    }
    head.extend_from_slice(b"X-Forwarded-For: ");
    for prior in &facts.forwarded_for {
        head.extend_from_slice(prior);
        head.extend_from_slice(b", ");
    }
    let _ = write!(head, "{}\r\n", origin.client_ip.to_canonical());
    head.extend_from_slice(b"X-Forwarded-Proto: ");
    head.extend_from_slice(if origin.tls { b"https" } else { b"http" });
    head.extend_from_slice(b"\r\n");
    if let Some(h) = facts.client_host {
        push_field(head, b"X-Forwarded-Host", h.as_bytes());
    }
    if let Some(proto) = facts.upgrade {
        head.extend_from_slice(b"Connection: upgrade\r\n");
        push_field(head, b"Upgrade", proto);
    } else if facts.http10 {
        head.extend_from_slice(b"Connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
}

/// Whether the request line's last word is `HTTP/` and a version number
/// (digit, dot, digit), one camtls does not speak: 505. Any other word
/// there (`FOO/1.1`, `HTTP/x`) means it is not HTTP at all: 400.
fn names_http_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let word = line.trim_ascii_end().rsplit(|&b| b == b' ').next();
    matches!(word, Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// A response head, rewritten for the client.
#[derive(Debug)]
pub struct Response {
    pub head: Vec<u8>,
    pub status: u16,
    pub body: Framing,
    /// The backend connection can carry another request after this one.
    pub backend_keep_alive: bool,
    /// The client connection can carry another request after this one.
    pub client_keep_alive: bool,
}

/// A backend answer camtls cannot pass on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadResponse(pub &'static str);

/// Parses a backend's response head to `request` and rewrites it for the
/// client: the framing and keep-alive found first, then the client's head
/// written (`write_client_head`). `Ok(None)`: incomplete.
pub fn parse_response(
    buf: &[u8],
    request: &Request,
    backend: &Backend,
) -> Result<Option<(Response, usize)>, BadResponse> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    // What device firmware does that browsers accept, bare LF line ends and
    // a status line without a reason phrase, passes httparse's defaults.
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD_BYTES {
                Err(BadResponse("response head too large"))
            } else {
                Ok(None)
            };
        }
        Err(_) => return Err(BadResponse("malformed response head")),
    };
    let status = resp.code.unwrap_or(0);
    // httparse reads any three digits; "020" would go out as "20", which no
    // client parses (RFC 9110 section 15: 100 to 599, three digits).
    if status < 100 {
        return Err(BadResponse("invalid status code"));
    }
    let http10 = resp.version == Some(0);
    let mut lengths = None::<u64>;
    let mut chunked = None::<bool>;
    let mut connection = Vec::new();
    for f in resp.headers.iter() {
        if f.name.eq_ignore_ascii_case("content-length") {
            merge_content_length(&mut lengths, f.value).map_err(BadResponse)?;
        } else if f.name.eq_ignore_ascii_case("transfer-encoding") {
            // The codings of every field, in order: only the last one
            // decides whether the body is chunked.
            if let Some(last) = tokens(f.value).last() {
                chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
            chunked.get_or_insert(false);
        } else if f.name.eq_ignore_ascii_case("connection") {
            connection.extend(tokens(f.value));
        }
    }
    let switching = status == 101;
    if switching && !request.upgrade {
        return Err(BadResponse("protocol switch that was not asked for"));
    }
    // RFC 9112 section 6.3, in order. Chunked as the last coding: chunked,
    // taken apart for an HTTP/1.0 client, which cannot read it. Any other
    // last coding: the body ends at close, the codings forwarded as sent.
    let body =
        if request.is_head_method || (100..200).contains(&status) || status == 204 || status == 304
        {
            Framing::Empty
        } else {
            match (chunked, lengths) {
                (Some(true), _) if request.http10 => Framing::Dechunked,
                (Some(true), _) => Framing::Chunked,
                (Some(false), _) => Framing::UntilClose,
                (None, Some(0)) => Framing::Empty,
                (None, Some(n)) => Framing::Length(n),
                (None, None) => Framing::UntilClose,
            }
        };
    // With both, TE frames the body; a sender that says both is not trusted
    // with the next response on the same connection.
    let both = chunked.is_some() && lengths.is_some();
    let backend_keep_alive = !switching
        && !both
        && body != Framing::UntilClose
        && !connection.iter().any(|t| t.eq_ignore_ascii_case(b"close"))
        && (!http10
            || connection
                .iter()
                .any(|t| t.eq_ignore_ascii_case(b"keep-alive")));
    let informational = (100..200).contains(&status) && !switching;
    let client_keep_alive = informational
        || (request.keep_alive
            && !matches!(body, Framing::UntilClose | Framing::Dechunked)
            && !switching);

    let mut head = Vec::with_capacity(len + 64);
    let sent = Sent {
        status,
        chunked: chunked.is_some(),
        dechunk: body == Framing::Dechunked,
        switching,
        client_keep_alive,
    };
    write_client_head(&mut head, &resp, &sent, &connection, request, backend);
    Ok(Some((
        Response {
            head,
            status,
            body,
            backend_keep_alive,
            client_keep_alive,
        },
        len,
    )))
}

/// What the head sent to the client depends on, besides the backend's fields.
struct Sent {
    status: u16,
    /// The backend framed the body with Transfer-Encoding.
    chunked: bool,
    /// The chunks are taken apart for an HTTP/1.0 client.
    dechunk: bool,
    switching: bool,
    client_keep_alive: bool,
}

/// The response head camtls sends the client: the backend's status and
/// end-to-end fields, its redirects to itself rewritten to the public
/// origin, and the connection fields of this hop.
fn write_client_head(
    head: &mut Vec<u8>,
    resp: &httparse::Response,
    sent: &Sent,
    connection: &[&[u8]],
    request: &Request,
    backend: &Backend,
) {
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        sent.status,
        resp.reason.unwrap_or("")
    );
    for f in resp.headers.iter() {
        // Transfer-Encoding goes on as it came (the framing passes through
        // unchanged), unless the chunks are taken apart here.
        let coding = f.name.eq_ignore_ascii_case("transfer-encoding");
        if (is_hop_by_hop(f.name, connection) && !coding) || (coding && sent.dechunk) {
            continue;
        }
        // With chunked framing a stray Content-Length is dropped (RFC 9112
        // section 6.3, point 3).
        if sent.chunked && f.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let rewritable = f.name.eq_ignore_ascii_case("location")
            || f.name.eq_ignore_ascii_case("content-location");
        match rewritable
            .then(|| rewrite_location(f.value, backend, &request.public_origin))
            .flatten()
        {
            Some(value) => push_field(head, f.name.as_bytes(), value.as_bytes()),
            None => push_field(head, f.name.as_bytes(), f.value),
        }
    }
    if sent.switching {
        head.extend_from_slice(b"Connection: upgrade\r\n");
        if let Some(f) = resp
            .headers
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("upgrade"))
        {
            push_field(head, b"Upgrade", f.value);
        }
    } else if !sent.client_keep_alive && !request.http10 {
        head.extend_from_slice(b"Connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
}

/// `proxy_redirect default`: `http://BACKEND/...` (the port may be left out
/// when it is 80) becomes `PUBLIC_ORIGIN/...`. Anything else is left alone.
pub fn rewrite_location(value: &[u8], backend: &Backend, public_origin: &str) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?;
    let rest = strip_prefix_ignore_case(value, "http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(end)?;
    if !authority_is_backend(authority, backend) {
        return None;
    }
    let tail = if tail.is_empty() { "/" } else { tail };
    Some(format!("{public_origin}{tail}"))
}

/// `value` after an ASCII `prefix` matched without regard to case. Compared
/// as bytes and cut with `get`: a value may hold any UTF-8 at any offset, and
/// slicing a `str` inside a character panics.
fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.as_bytes().get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix.as_bytes()) {
        return None;
    }
    value.get(prefix.len()..)
}

/// Whether a URL's authority names the backend: its host (in brackets when
/// IPv6, and only then) and its port as digits, or no port when it is 80.
fn authority_is_backend(authority: &str, backend: &Backend) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p),
        _ => (authority, "80"),
    };
    let port_matches = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>() == Ok(backend.port);
    let host = if backend.host.contains(':') {
        host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
    } else {
        Some(host)
    };
    port_matches && host.is_some_and(|h| h.eq_ignore_ascii_case(&backend.host))
}

/// Splits a request target into the origin-form path sent to the backend and
/// the authority an absolute-form target named.
fn split_target(target: &str) -> Result<(&str, Option<&[u8]>), Reject> {
    if target.starts_with('/') {
        return Ok((target, None));
    }
    if target == "*" {
        return Ok((target, None));
    }
    let invalid = Reject::BadRequest("invalid request target");
    let rest = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))
        .ok_or(invalid)?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at_checked(end).ok_or(invalid)?;
    if authority.is_empty() || authority.contains('@') {
        return Err(Reject::BadRequest("invalid request target"));
    }
    let path = if path.is_empty() {
        "/"
    } else if path.starts_with('?') {
        // "http://cam?x" has an empty path; the backend gets "/?x".
        return Err(Reject::BadRequest("absolute-form target without a path"));
    } else {
        path
    };
    Ok((path, Some(authority.as_bytes())))
}

pub(crate) fn valid_host(host: &[u8]) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(b))
}

/// Takes one Content-Length field into `length`: repeats must agree, or the
/// message's end is ambiguous (RFC 9112 section 6.3).
fn merge_content_length(length: &mut Option<u64>, value: &[u8]) -> Result<(), &'static str> {
    let n = parse_content_length(value).ok_or("invalid Content-Length")?;
    if length.is_some_and(|m| m != n) {
        return Err("conflicting Content-Length values");
    }
    *length = Some(n);
    Ok(())
}

/// Digits only (RFC 9110 section 8.6); no sign, no spaces, no lists.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The comma-separated tokens of a list-valued field, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// RFC 9110 section 7.6.1: fields meant for one connection only, plus the
/// ones the Connection field names. Transfer-Encoding is handled by framing.
fn is_hop_by_hop(name: &str, connection_tokens: &[&[u8]]) -> bool {
    const HOP_BY_HOP: [&str; 7] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || connection_tokens
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
}

fn push_field(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// Query values can carry passwords (Foscam puts `usr` and `pwd` there):
/// the log keeps the keys only.
pub fn redact_query(path: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{key}=…"),
            None => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        Backend::new("192.168.1.20", 80)
    }

    fn origin(b: &Backend) -> Origin<'_> {
        Origin {
            backend: b,
            client_ip: "203.0.113.9".parse().unwrap(),
            local_addr: "10.0.0.1:8443".parse().unwrap(),
            tls: true,
            preserve_host: false,
            capture_authorization: false,
            backend_authorization: None,
        }
    }

    fn req(text: &str) -> Result<Option<(Request, usize)>, Reject> {
        let b = backend();
        parse_request(text.as_bytes(), &origin(&b))
    }

    fn head_text(r: &Request) -> String {
        String::from_utf8(r.head.clone()).unwrap()
    }

    #[test]
    fn rewrites_a_plain_get() {
        let (r, len) = req("GET /video.mjpg?usr=a&pwd=b HTTP/1.1\r\nHost: cam.example:8443\r\nUser-Agent: t\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nX-Forwarded-For: 198.51.100.1\r\n\r\nNEXT")
            .unwrap()
            .unwrap();
        assert_eq!(len, "GET /video.mjpg?usr=a&pwd=b HTTP/1.1\r\nHost: cam.example:8443\r\nUser-Agent: t\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n".len());
        assert_eq!(
            head_text(&r),
            "GET /video.mjpg?usr=a&pwd=b HTTP/1.1\r\nHost: 192.168.1.20\r\nUser-Agent: t\r\nX-Forwarded-For: 198.51.100.1, 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: cam.example:8443\r\n\r\n"
        );
        assert!(r.keep_alive && !r.upgrade && r.body == Framing::Empty);
        assert_eq!(r.public_origin, "https://cam.example:8443");
        assert_eq!(r.summary, "GET /video.mjpg?usr=…&pwd=…");
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        let both =
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(req(both).unwrap_err().status(), 400);
        let two = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(req(two).unwrap_err().status(), 400);
        let same = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(req(same).unwrap().unwrap().0.body, Framing::Length(3));
        for cl in ["-1", "+3", "0x3", "3,3", "", "99999999999999999999"] {
            let t = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(req(&t).unwrap_err().status(), 400, "{cl:?}");
        }
        for te in [
            "gzip",
            "chunked, gzip",
            "gzip, chunked",
            "identity",
            "chunked, chunked",
        ] {
            let t = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(req(&t).unwrap_err().status(), 501, "{te}");
        }
        let t = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n";
        assert_eq!(req(t).unwrap().unwrap().0.body, Framing::Chunked);
    }

    #[test]
    fn host_rules() {
        assert_eq!(req("GET / HTTP/1.1\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(
            req("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            req("GET / HTTP/1.1\r\nHost: a/b@c\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
        let (r, _) = req("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(r.public_origin, "https://10.0.0.1:8443");
        assert!(!r.keep_alive && r.http10);
        assert!(head_text(&r).starts_with("GET / HTTP/1.0\r\nHost: 192.168.1.20\r\n"));
        assert!(head_text(&r).ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn absolute_form_goes_to_the_backend_only() {
        let (r, _) = req("GET http://evil.example:25/x?y HTTP/1.1\r\nHost: other\r\n\r\n")
            .unwrap()
            .unwrap();
        let h = head_text(&r);
        assert!(
            h.starts_with("GET /x?y HTTP/1.1\r\nHost: 192.168.1.20\r\n"),
            "{h}"
        );
        assert_eq!(r.public_origin, "https://evil.example:25");
        assert_eq!(
            req("CONNECT 192.168.1.1:22 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(
            req("GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn targets_with_multibyte_characters_are_refused_not_cut() {
        for target in [
            "abcdefgЀ",
            "abcdefЀ",
            "http:/Ѐx",
            "httpsЀ://x/",
            "Ѐ",
            "http://",
        ] {
            let text = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(
                req(&text).unwrap_err(),
                Reject::BadRequest("invalid request target"),
                "{target}"
            );
        }
        assert_eq!(
            req("GET http://Ѐ.example/ HTTP/1.1\r\nHost: a\r\n\r\n").unwrap_err(),
            Reject::BadRequest("invalid Host")
        );
        let (r, _) = req("GET http://a/Ѐ HTTP/1.1\r\nHost: b\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head_text(&r).starts_with("GET /Ѐ HTTP/1.1\r\n"));
    }

    #[test]
    fn limits() {
        let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..MAX_HEADERS {
            many += &format!("X-{i}: v\r\n");
        }
        assert_eq!(req(&(many + "\r\n")).unwrap_err().status(), 431);
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(req(&big).unwrap_err().status(), 431);
        assert!(req("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        assert_eq!(req("GET / HTTP/2.0\r\n\r\n").unwrap_err().status(), 505);
        assert_eq!(
            req("\x16\x03\x01\x02\x00\x01\x00").unwrap_err().status(),
            400
        );
        assert_eq!(
            req("GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n")
                .unwrap_err()
                .status(),
            417
        );
    }

    #[test]
    fn hop_by_hop_and_upgrade() {
        let (r, _) = req("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Secret\r\nUpgrade: websocket\r\nX-Secret: 1\r\nTE: trailers\r\nSec-WebSocket-Key: k\r\n\r\n")
            .unwrap()
            .unwrap();
        let h = head_text(&r);
        assert!(r.upgrade);
        assert!(!h.contains("X-Secret") && !h.contains("TE:"), "{h}");
        assert!(h.contains("Sec-WebSocket-Key: k\r\n"));
        assert!(
            h.ends_with("Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
            "{h}"
        );
    }

    #[test]
    fn authorization_is_passed_taken_or_replaced() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Digest x\r\n\r\n";
        let b = backend();
        let mut o = origin(&b);
        let (r, _) = parse_request(text.as_bytes(), &o).unwrap().unwrap();
        assert!(head_text(&r).contains("Authorization: Digest x\r\n"));
        assert_eq!(r.authorization, None);
        o.capture_authorization = true;
        let (r, _) = parse_request(text.as_bytes(), &o).unwrap().unwrap();
        assert!(!head_text(&r).contains("Authorization"));
        assert_eq!(r.authorization.as_deref(), Some(b"Digest x".as_slice()));
        o.backend_authorization = Some("Basic YWRtaW46");
        let (r, _) = parse_request(text.as_bytes(), &o).unwrap().unwrap();
        let h = head_text(&r);
        assert!(
            h.contains("Authorization: Basic YWRtaW46\r\n") && !h.contains("Digest"),
            "{h}"
        );
    }

    #[test]
    fn expect_continue_is_answered_by_the_proxy() {
        let (r, _) =
            req("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(r.expect_continue);
        assert!(!head_text(&r).contains("Expect"));
        assert!(head_text(&r).contains("Content-Length: 5\r\n"));
    }

    fn resp(request: &str, text: &str) -> Result<Option<(Response, usize)>, BadResponse> {
        let (r, _) = req(request).unwrap().unwrap();
        parse_response(text.as_bytes(), &r, &backend())
    }

    const GET: &str = "GET / HTTP/1.1\r\nHost: router:8443\r\n\r\n";

    #[test]
    fn response_framing() {
        let f = |t: &str| resp(GET, t).unwrap().unwrap().0.body;
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Framing::Length(5)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(f("HTTP/1.0 200 OK\r\n\r\n"), Framing::UntilClose);
        assert_eq!(
            f("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
            Framing::Empty
        );
        assert_eq!(f("HTTP/1.1 304 Not Modified\r\n\r\n"), Framing::Empty);
        let head = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
        let r = resp(head, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(r.body, Framing::Empty);
        assert!(String::from_utf8_lossy(&r.head).contains("Content-Length: 5"));
        assert!(resp(
            GET,
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        )
        .is_err());
        assert!(resp(GET, "HTTP/1.1 101 Switching Protocols\r\n\r\n").is_err());
        assert!(resp(GET, "garbage\r\n\r\n").is_err());
        for status in ["000", "020", "099"] {
            let text = format!("HTTP/1.1 {status} OK\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(
                resp(GET, &text).unwrap_err(),
                BadResponse("invalid status code")
            );
        }
    }

    #[test]
    fn read_until_close_closes_the_client_too() {
        let r = resp(
            GET,
            "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=f\r\n\r\n",
        )
        .unwrap()
        .unwrap()
        .0;
        assert!(!r.client_keep_alive && !r.backend_keep_alive);
        assert_eq!(
            String::from_utf8(r.head).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=f\r\nConnection: close\r\n\r\n"
        );
        let r = resp(
            GET,
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap()
        .unwrap()
        .0;
        assert!(r.client_keep_alive && r.backend_keep_alive);
    }

    #[test]
    fn redirects_to_the_backend_are_rewritten() {
        let r = resp(GET, "HTTP/1.1 302 Found\r\nLocation: http://192.168.1.20/login.htm?x=1\r\nContent-Location: http://192.168.1.20:80\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap()
            .0;
        let h = String::from_utf8(r.head).unwrap();
        assert!(
            h.contains("Location: https://router:8443/login.htm?x=1\r\n"),
            "{h}"
        );
        assert!(
            h.contains("Content-Location: https://router:8443/\r\n"),
            "{h}"
        );
        let b = Backend::new("cam.lan", 8080);
        let o = "https://r:1";
        assert_eq!(
            rewrite_location(b"HTTP://CAM.lan:8080/a", &b, o).as_deref(),
            Some("https://r:1/a")
        );
        assert_eq!(rewrite_location(b"http://cam.lan/a", &b, o), None);
        assert_eq!(rewrite_location(b"http://cam.lan:80801/a", &b, o), None);
        assert_eq!(rewrite_location(b"http://cam.lan.evil:8080/a", &b, o), None);
        assert_eq!(rewrite_location(b"/relative", &b, o), None);
        // Only the forms a URL can take: digits for the port, brackets for
        // IPv6 only, and never around a name or twice.
        for odd in [
            "http://cam.lan:+8080/a",
            "http://[cam.lan]:8080/a",
            "http://[[cam.lan]]:8080/a",
            "http://cam.lan:/a",
            "http://user@cam.lan:8080/a",
        ] {
            assert_eq!(rewrite_location(odd.as_bytes(), &b, o), None, "{odd}");
        }
        assert_eq!(
            rewrite_location(b"http://cam.lan:08080", &b, o).as_deref(),
            Some("https://r:1/")
        );
        // Any UTF-8 anywhere in the value is passed over, never cut inside.
        for value in ["/a登录.htm", "http://cam.lan:8080登录", "http:/Ѐx", "登录"] {
            assert_eq!(rewrite_location(value.as_bytes(), &b, o), None, "{value}");
        }
        assert_eq!(
            rewrite_location("http://cam.lan:8080/a登录.htm".as_bytes(), &b, o).as_deref(),
            Some("https://r:1/a登录.htm")
        );
        let v6 = Backend::new("fe80::1", 80);
        assert_eq!(
            rewrite_location(b"http://[fe80::1]/x", &v6, o).as_deref(),
            Some("https://r:1/x")
        );
        assert_eq!(
            rewrite_location(b"http://[FE80::1]:80?q", &v6, o).as_deref(),
            Some("https://r:1?q")
        );
        assert_eq!(rewrite_location(b"http://fe80::1/x", &v6, o), None);
    }

    #[test]
    fn query_values_are_hidden() {
        assert_eq!(redact_query("/a"), "/a");
        assert_eq!(redact_query("/cgi?cmd=snap&pwd=x"), "/cgi?cmd=…&pwd=…");
        assert_eq!(redact_query("/a?flag"), "/a?flag");
    }
}
