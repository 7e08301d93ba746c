//! Entry points for fuzzers (fuzz/) and for the tests below: arbitrary bytes
//! into every parser that network input or the command line reaches,
//! checking the properties the proxy relies on rather than just "no panic".
//! Each function is one fuzz target; [`TARGETS`] names them all. Inputs a
//! fuzzer found are kept in fuzz/regressions/TARGET/, the hand-written seeds
//! in fuzz/seeds/TARGET/, and `cargo test` runs every one of them.
//!
//! A failed property panics: that is how a fuzzer learns of it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::auth::allow::{Allow, Cidr};
use crate::auth::users::{self, AuthResult, Basic, Users};
use crate::auth::{base64, device, password};
use crate::body::ChunkedDecoder;
use crate::cli;
use crate::config::{Backend, BackendAuth, Listen, Route};
use crate::head::{self, Framing, Origin, Reject};

/// A property check on arbitrary bytes: panics when the property fails.
pub type Target = fn(&[u8]);

/// Every fuzz target, by the name of its binary in fuzz/Cargo.toml.
pub const TARGETS: [(&str, Target); 7] = [
    ("heads", heads),
    ("chunked", chunked),
    ("locations", locations),
    ("targets", targets),
    ("authorization", authorization),
    ("routes", routes),
    ("cidrs", cidrs),
];

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
const LOCAL_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 8443);

fn origin(backend: &Backend, tls: bool, preserve_host: bool) -> Origin<'_> {
    Origin {
        backend,
        client_ip: CLIENT_IP,
        local_addr: LOCAL_ADDR,
        tls,
        preserve_host,
        capture_authorization: false,
        backend_authorization: None,
    }
}

/// Feeds `data` to the request and response parsers and checks that every
/// head camtls would send is itself well-formed HTTP and reads back to the
/// same framing and status.
pub fn heads(data: &[u8]) {
    let backend = Backend::new("192.168.1.20", 80);
    let flags = data.first().copied().unwrap_or(0);
    let origin = Origin {
        capture_authorization: flags & 2 == 2,
        backend_authorization: (flags & 4 == 4).then_some("Basic eDp5"),
        ..origin(&backend, true, flags & 1 == 1)
    };
    // A head's length is never past the end of `data`: httparse guarantees
    // it, so it is not a property of camtls's to check.
    let Ok(Some((request, len))) = head::parse_request(data, &origin) else {
        return;
    };
    assert_well_formed(&request.head);
    // What the proxy sends upstream must parse back to the same framing.
    let mut fields = [httparse::EMPTY_HEADER; head::MAX_HEADERS + 8];
    let mut reparsed = httparse::Request::new(&mut fields);
    assert!(matches!(
        reparsed.parse(&request.head),
        Ok(httparse::Status::Complete(n)) if n == request.head.len()
    ));
    let rest = data.get(len..).unwrap_or_default();
    if let Ok(Some((response, _))) = head::parse_response(rest, &request, &backend) {
        assert_well_formed(&response.head);
        // And what goes back to the client parses as the same status.
        assert_eq!(
            response_fields(&response.head).map(|(status, _)| status),
            Some(response.status)
        );
        if request.is_head_method {
            assert_eq!(response.body, Framing::Empty);
        }
    }
}

fn assert_well_formed(head: &[u8]) {
    assert!(head.ends_with(b"\r\n\r\n"));
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' {
            assert!(
                i > 0 && head.get(i - 1) == Some(&b'\r'),
                "bare LF in an outgoing head"
            );
        }
        if b == b'\r' {
            assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR in an outgoing head");
        }
    }
}

/// The chunked decoder must find the same end however the bytes are split.
/// The first byte chooses the split point, the rest is the body.
pub fn chunked(input: &[u8]) {
    let Some((&choice, data)) = input.split_first() else {
        return;
    };
    let split = choice as usize % (data.len() + 1);
    let (front, back) = data.split_at(split);
    let mut whole = ChunkedDecoder::default();
    let whole_result = whole.advance(data);
    let mut parts = ChunkedDecoder::default();
    let first = parts.advance(front);
    let parts_result = match first {
        Ok(n) if n == split && !parts.is_done() => parts.advance(back).map(|m| n + m),
        other => other,
    };
    match (whole_result, parts_result) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            assert!(a <= data.len());
            assert_eq!(whole.is_done(), parts.is_done());
            // Unless the body ended, every byte given belongs to it.
            if !whole.is_done() {
                assert_eq!(a, data.len());
            }
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("split at {split} changed the outcome: {a:?} vs {b:?}"),
    }
}

// ---------------------------------------------------------------------------
// Location and Content-Location

/// The backends [`locations`] chooses from: an address with the default
/// port, a name with another port, IPv6, and a name in mixed case.
const LOCATION_BACKENDS: [(&str, u16); 4] = [
    ("192.168.1.20", 80),
    ("cam.lan", 8080),
    ("fe80::1", 80),
    ("Cam.Example", 443),
];

/// A backend's response head, rewritten for a client. The first byte
/// chooses the backend (bits 0-1) and plain HTTP (bit 2); then comes the
/// Host the client sent, a newline, and the response head.
///
/// Properties: a rewritten Location or Content-Location is the public origin
/// followed by the value's own path, and only the backend's own URLs are
/// rewritten; every other value is passed byte for byte; the head camtls
/// sends is well-formed and keeps the status.
pub fn locations(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (host, port) = LOCATION_BACKENDS[usize::from(flags & 3)];
    let backend = Backend::new(host, port);
    let tls = flags & 4 == 0;
    let (client_host, response) = split_line(rest);
    let origin = origin(&backend, tls, false);
    let request = [b"GET / HTTP/1.1\r\nHost: ", client_host, b"\r\n\r\n"].concat();
    let request = match head::parse_request(&request, &origin) {
        Ok(Some((request, _))) => request,
        // No usable Host: the origin is then the address the client reached.
        _ => match head::parse_request(b"GET / HTTP/1.0\r\n\r\n", &origin) {
            Ok(Some((request, _))) => request,
            other => panic!("a plain HTTP/1.0 request refused: {other:?}"),
        },
    };
    let public_origin = request.public_origin.as_str();

    let Some((status, sent)) = response_fields(response) else {
        assert!(!matches!(
            head::parse_response(response, &request, &backend),
            Ok(Some(_))
        ));
        return;
    };
    // Each value on its own.
    let mut expected = Vec::new();
    for (name, value) in &sent {
        if is_location(name) {
            let out = check_location(value, &backend, public_origin);
            expected.push(out.map_or_else(|| value.clone(), String::into_bytes));
        }
    }
    let Ok(Some((rewritten, _))) = head::parse_response(response, &request, &backend) else {
        return;
    };
    assert_eq!(rewritten.status, status);
    assert_well_formed(&rewritten.head);
    let Some((status_out, got)) = response_fields(&rewritten.head) else {
        panic!(
            "camtls's own head does not parse: {:?}",
            String::from_utf8_lossy(&rewritten.head)
        );
    };
    assert_eq!(status_out, status);
    // In the head as sent: the same values in the same order, less any the
    // Connection field names.
    let mut left = expected.iter();
    for (name, value) in got.iter().filter(|(n, _)| is_location(n)) {
        assert!(
            left.any(|e| e == value),
            "{name}: {:?} is not what the backend sent, rewritten",
            String::from_utf8_lossy(value)
        );
    }
}

fn is_location(name: &str) -> bool {
    name.eq_ignore_ascii_case("location") || name.eq_ignore_ascii_case("content-location")
}

/// `(before, after)` the first newline; all of `data` after when none.
fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    }
}

/// A header field's name and value.
type Field = (String, Vec<u8>);

/// The status and fields of a complete response head, if httparse takes it.
fn response_fields(head: &[u8]) -> Option<(u16, Vec<Field>)> {
    let mut fields = [httparse::EMPTY_HEADER; head::MAX_HEADERS + 8];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => Some((
            response.code?,
            response
                .headers
                .iter()
                .map(|f| (f.name.to_string(), f.value.to_vec()))
                .collect(),
        )),
        _ => None,
    }
}

/// Checks one rewrite against an independent reading of the value, and
/// returns it.
pub fn check_location(value: &[u8], backend: &Backend, public_origin: &str) -> Option<String> {
    let got = head::rewrite_location(value, backend, public_origin);
    let names_backend = std::str::from_utf8(value)
        .ok()
        .and_then(|text| backend_url_tail(text, backend));
    match (&got, names_backend) {
        (Some(out), Some(tail)) => {
            let want = if tail.is_empty() { "/" } else { tail };
            assert_eq!(out, &format!("{public_origin}{want}"), "{value:?}");
        }
        (None, None) => {}
        (got, tail) => panic!(
            "{:?} (backend {backend}): rewritten to {got:?}, but names the backend with tail {tail:?}",
            String::from_utf8_lossy(value)
        ),
    }
    got
}

/// When `url` is `http://AUTHORITY...` and AUTHORITY is how a URL names the
/// backend (its host, in brackets when IPv6, with its port, or without when
/// the port is 80; any case, the port with leading zeros), what follows it.
fn backend_url_tail<'a>(url: &'a str, backend: &Backend) -> Option<&'a str> {
    let scheme = url.as_bytes().get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"http://") {
        return None;
    }
    let rest = url.get(7..)?;
    let end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(end)?;
    let host = if backend.host.contains(':') {
        format!("[{}]", backend.host)
    } else {
        backend.host.clone()
    }
    .to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let named = if authority == host {
        backend.port == 80
    } else {
        authority
            .strip_prefix(&host)
            .and_then(|p| p.strip_prefix(':'))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .is_some_and(|digits| {
                let digits = digits.trim_start_matches('0');
                digits == backend.port.to_string() || (digits.is_empty() && backend.port == 0)
            })
    };
    named.then_some(tail)
}

// ---------------------------------------------------------------------------
// Request targets

/// How a request target reads, decided here without camtls's code.
#[derive(Debug, PartialEq, Eq)]
enum TargetForm<'a> {
    /// `/path`, passed as it is.
    Origin,
    /// `*` (OPTIONS).
    Asterisk,
    /// `http[s]://AUTHORITY[/path]`: the backend gets the path.
    Absolute { authority: &'a str, path: &'a str },
    /// `http[s]://AUTHORITY?query`: no path, refused.
    NoPath,
    /// Anything else, refused.
    Invalid,
}

fn target_form(target: &str) -> TargetForm<'_> {
    if target.starts_with('/') {
        return TargetForm::Origin;
    }
    if target == "*" {
        return TargetForm::Asterisk;
    }
    let bytes = target.as_bytes();
    let skip = if bytes.len() >= 7 && bytes[..7].eq_ignore_ascii_case(b"http://") {
        7
    } else if bytes.len() >= 8 && bytes[..8].eq_ignore_ascii_case(b"https://") {
        8
    } else {
        return TargetForm::Invalid;
    };
    let end = bytes[skip..]
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .map_or(bytes.len(), |i| skip + i);
    let (Some(authority), Some(path)) = (target.get(skip..end), target.get(end..)) else {
        return TargetForm::Invalid;
    };
    if authority.is_empty() || authority.contains('@') {
        TargetForm::Invalid
    } else if path.starts_with('?') {
        TargetForm::NoPath
    } else {
        TargetForm::Absolute {
            authority,
            path: if path.is_empty() { "/" } else { path },
        }
    }
}

/// A whole request head, mostly to exercise the request target. Properties:
/// the backend gets an origin-form path (or `*`), never an authority; an
/// absolute-form target's authority becomes the public origin and
/// X-Forwarded-Host while Host names the backend; any other target is
/// refused with 400, never a panic (`GET abcdefgЀ HTTP/1.1` once was one).
pub fn targets(data: &[u8]) {
    let backend = Backend::new("192.168.1.20", 80);
    let origin = origin(&backend, true, false);
    let mut fields = [httparse::EMPTY_HEADER; head::MAX_HEADERS];
    let mut plain = httparse::Request::new(&mut fields);
    let parsed = plain.parse(data);
    let result = head::parse_request(data, &origin);
    let (Ok(httparse::Status::Complete(_)), Some(method), Some(target)) =
        (parsed, plain.method, plain.path)
    else {
        return;
    };
    let host = plain
        .headers
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("host"))
        .map(|f| f.value);
    let form = target_form(target);
    if method.eq_ignore_ascii_case("CONNECT") {
        assert_eq!(result.err(), Some(Reject::MethodNotAllowed));
        return;
    }
    match (&form, &result) {
        (TargetForm::Invalid, _) => assert_eq!(
            result.err(),
            Some(Reject::BadRequest("invalid request target")),
            "{target:?}"
        ),
        (TargetForm::NoPath, _) => assert_eq!(
            result.err(),
            Some(Reject::BadRequest("absolute-form target without a path")),
            "{target:?}"
        ),
        (_, Ok(None)) => panic!("a complete head taken as incomplete"),
        (_, Err(reject)) => assert!(
            !matches!(reject, Reject::BadRequest(why) if why.contains("target")),
            "{target:?} refused as {reject:?}"
        ),
        (_, Ok(Some((request, _)))) => {
            assert_well_formed(&request.head);
            let line_end = request
                .head
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap_or(request.head.len());
            let line = std::str::from_utf8(&request.head[..line_end]);
            let Ok(line) = line else {
                panic!("request line not UTF-8: {:?}", &request.head[..line_end]);
            };
            let sent = line
                .strip_prefix(method)
                .and_then(|l| l.strip_prefix(' '))
                .and_then(|l| l.rsplit_once(' '))
                .map(|(t, _)| t);
            let sent_host = header(&request.head, "host");
            let forwarded_host = header(&request.head, "x-forwarded-host");
            assert_eq!(sent_host.as_deref(), Some(backend.authority()));
            match form {
                TargetForm::Origin | TargetForm::Asterisk => {
                    assert_eq!(sent, Some(target));
                    if let Some(h) = host.filter(|h| !h.is_empty()) {
                        let h = String::from_utf8_lossy(h);
                        assert_eq!(request.public_origin, format!("https://{h}"));
                        assert_eq!(forwarded_host.as_deref(), Some(&*h));
                    }
                }
                TargetForm::Absolute { authority, path } => {
                    assert_eq!(sent, Some(path), "{target:?}");
                    assert_eq!(request.public_origin, format!("https://{authority}"));
                    assert_eq!(forwarded_host.as_deref(), Some(authority));
                }
                TargetForm::NoPath | TargetForm::Invalid => unreachable!("matched above"),
            }
        }
    }
}

/// The first value of field `name` in a head camtls made.
fn header(head: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    text.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(": ")?;
        n.eq_ignore_ascii_case(name).then(|| v.to_string())
    })
}

// ---------------------------------------------------------------------------
// Authorization

/// The auth file [`authorization`] checks against: `alice` with password
/// `pw`, at the cheapest cost an auth file may have.
fn with_users<T>(f: impl FnOnce(&Users) -> T) -> T {
    thread_local! {
        static USERS: Users = {
            let hash = password::hash_password_with("pw", password::MIN_ITERATIONS)
                .unwrap_or_else(|e| panic!("hash: {e}"));
            Users::parse(&format!("alice:{hash}\n"), "fuzz")
                .unwrap_or_else(|e| panic!("auth file: {e}"))
        };
    }
    USERS.with(f)
}

/// An Authorization value as a client sends it. Properties: the strict
/// base64 round-trips; credentials a browser encodes come back unchanged,
/// the user never holding a colon, the password never a NUL; the token is the only spelling of what
/// it decodes to; `Users::check` agrees with `parse_basic`, logs in
/// alice:pw only, and runs no slow hash for a malformed value; a
/// `--backend-auth` value reads back as the USER:PASS it was made from.
pub fn authorization(data: &[u8]) {
    for pad in [true, false] {
        let encoded = base64::encode(data, pad);
        assert_eq!(base64::decode(encoded.as_bytes()).as_deref(), Some(data));
    }
    let parsed = users::parse_basic(Some(data));
    if let Basic::Credentials { user, password } = &parsed {
        assert!(!user.contains(&b':') && !password.contains(&0));
        assert!(data.len() <= users::MAX_AUTHORIZATION_LEN);
        let decoded = [user.as_slice(), b":", password].concat();
        let token = basic_token(data);
        assert!(
            token == Some(base64::encode(&decoded, true).as_bytes())
                || token == Some(base64::encode(&decoded, false).as_bytes()),
            "{:?} decodes to {decoded:?}, which encodes otherwise",
            String::from_utf8_lossy(data)
        );
    }
    if let Some(colon) = data.iter().position(|&b| b == b':') {
        let value = format!("Basic {}", base64::encode(data, true));
        let (user, password) = (&data[..colon], &data[colon + 1..]);
        // A NUL in the password is refused: PBKDF2 cannot tell `pw` from
        // `pw\0` (users::split_user_pass).
        let want = if password.contains(&0) {
            Basic::Malformed
        } else {
            Basic::Credentials {
                user: user.to_vec(),
                password: password.to_vec(),
            }
        };
        if value.len() <= users::MAX_AUTHORIZATION_LEN {
            assert_eq!(users::parse_basic(Some(value.as_bytes())), want);
        }
    }
    with_users(|users| {
        let slow_before = users.slow_checks();
        let result = users.check(Some(data));
        match &parsed {
            Basic::Missing => assert_eq!(result, AuthResult::Missing),
            Basic::Malformed => {
                assert_eq!(result, AuthResult::Wrong);
                assert_eq!(users.slow_checks(), slow_before, "slow hash for nothing");
            }
            Basic::Credentials { user, password } => {
                let right = user == b"alice" && password == b"pw";
                let want = if right {
                    AuthResult::Ok("alice".into())
                } else {
                    AuthResult::Wrong
                };
                assert_eq!(result, want);
            }
        }
    });
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(value) = device::backend_auth(text) {
            let Some((user, password)) = text.split_once(':') else {
                panic!("--backend-auth took {text:?} without a colon");
            };
            if value.len() <= users::MAX_AUTHORIZATION_LEN {
                assert_eq!(
                    users::parse_basic(Some(value.as_bytes())),
                    Basic::Credentials {
                        user: user.as_bytes().to_vec(),
                        password: password.as_bytes().to_vec(),
                    }
                );
            }
        }
        if let Ok(parsed) = Users::parse(text, "fuzz") {
            assert!(!parsed.is_empty());
            for name in parsed.names() {
                assert_eq!(users::check_user_name(name), Ok(()));
            }
        }
    }
}

/// The base64 token of a `Basic` value, read here by hand: ASCII
/// whitespace (optional whitespace, and the CR, LF and FF that httparse keeps
/// out of a value), the scheme in any case, a space, optional whitespace, the
/// token, optional whitespace.
fn basic_token(value: &[u8]) -> Option<&[u8]> {
    let ows = u8::is_ascii_whitespace;
    let start = value.iter().position(|b| !ows(b))?;
    let end = value.iter().rposition(|b| !ows(b))? + 1;
    let value = value.get(start..end)?;
    let scheme = value.get(..5)?;
    if !scheme.eq_ignore_ascii_case(b"basic") || value.get(5) != Some(&b' ') {
        return None;
    }
    let token = value.get(6..)?;
    let from = token.iter().position(|b| !ows(b)).unwrap_or(token.len());
    token.get(from..)
}

// ---------------------------------------------------------------------------
// Routes and address ranges

/// A `--route` value, and the same text as a backend and as a listen
/// address. Properties: whatever parses reads back to the same value from
/// the text camtls would show for it; a backend's authority is plain ASCII
/// fit for a Host field, and a redirect to it is always recognised.
pub fn routes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(route) = cli::parse_route(text) {
        let shown = route_text(&route);
        assert_eq!(cli::parse_route(&shown), Ok(route.clone()), "{text:?}");
        check_backend(&route.backend);
    }
    if let Ok(backend) = cli::parse_backend(text) {
        let shown = backend.to_string();
        assert_eq!(cli::parse_backend(&shown), Ok(backend.clone()), "{text:?}");
        check_backend(&backend);
    }
    if let Ok(listen) = cli::parse_listen(text) {
        assert_eq!(
            cli::parse_listen(&listen_text(listen)),
            Ok(listen),
            "{text:?}"
        );
    }
}

fn listen_text(listen: Listen) -> String {
    match listen {
        Listen::Any(port) => port.to_string(),
        Listen::Addr(addr) => addr.to_string(),
    }
}

/// A route written back as `LISTEN=BACKEND[,OPTION=VALUE]...`.
fn route_text(route: &Route) -> String {
    let mut text = format!("{}={}", listen_text(route.listen), route.backend);
    if let Some(file) = &route.guard.auth_file {
        text += &format!(",auth={}", file.display());
    }
    for range in route.guard.allow.ranges() {
        text += &format!(",allow={range}");
    }
    match &route.guard.backend_auth {
        Some(BackendAuth::File(file)) => text += &format!(",backend-auth-file={}", file.display()),
        Some(BackendAuth::Inline(_)) => panic!("a route option gave an inline password"),
        None => {}
    }
    text
}

fn check_backend(backend: &Backend) {
    let authority = backend.authority();
    assert!(
        !authority.is_empty() && authority.bytes().all(|b| b.is_ascii_graphic()),
        "{authority:?}"
    );
    let public = "https://router:8443";
    for url in [
        format!("http://{authority}/x?y"),
        format!("HTTP://{}/x?y", authority.to_ascii_uppercase()),
        format!("http://{backend}/x?y"),
    ] {
        assert_eq!(
            head::rewrite_location(url.as_bytes(), backend, public).as_deref(),
            Some("https://router:8443/x?y"),
            "{url}"
        );
    }
}

/// An `--allow` range on the first line, and as a comma-separated list of
/// ranges; what follows the newline is an address to test (4 bytes IPv4, 16
/// bytes IPv6, and IPv4 also as mapped IPv6). Properties: a range shows as
/// text that parses back to it, holds its own network address, and holds an
/// address exactly when their leading prefix bits agree; a list allows what
/// one of its ranges holds.
pub fn cidrs(data: &[u8]) {
    let (line, probe) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    let mut probes = Vec::new();
    if let Ok(v6) = <[u8; 16]>::try_from(probe.get(..16).unwrap_or_default()) {
        probes.push(IpAddr::from(v6));
    }
    if let Ok(v4) = <[u8; 4]>::try_from(probe.get(..4).unwrap_or_default()) {
        let v4 = Ipv4Addr::from(v4);
        probes.extend([IpAddr::V4(v4), IpAddr::V6(v4.to_ipv6_mapped())]);
    }
    if let Ok(range) = Cidr::parse(text) {
        let shown = range.to_string();
        assert_eq!(Cidr::parse(&shown), Ok(range), "{text:?} shown as {shown}");
        let width = if range.addr().is_ipv4() { 32 } else { 128 };
        assert!(range.prefix() <= width);
        assert!(range.contains(range.addr()));
        for ip in &probes {
            assert_eq!(range.contains(*ip), holds(&range, *ip), "{range} and {ip}");
        }
    }
    let specs: Vec<&str> = text.split(',').collect();
    let each: Vec<Result<Cidr, String>> = specs.iter().map(|s| Cidr::parse(s)).collect();
    match Allow::parse(&specs) {
        Ok(allow) => {
            let ranges: Vec<Cidr> = each
                .into_iter()
                .map(|r| r.ok())
                .collect::<Option<_>>()
                .unwrap_or_else(|| panic!("{text:?}: a list with a bad range taken"));
            assert_eq!(allow.ranges(), ranges.as_slice());
            for ip in &probes {
                assert_eq!(allow.allows(*ip), ranges.iter().any(|r| r.contains(*ip)));
            }
        }
        Err(_) => assert!(each.iter().any(Result::is_err), "{text:?}"),
    }
}

/// Whether `range` holds `ip`, computed on the bits: a mapped IPv4 address
/// is IPv4, and the first `prefix` bits must agree.
fn holds(range: &Cidr, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.octets() {
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d] => {
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            }
            _ => ip,
        },
        v4 => v4,
    };
    let bits = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (32u32, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (128, u128::from(v6)),
    };
    let (width, a) = bits(range.addr());
    let (ip_width, b) = bits(ip);
    width == ip_width
        && (a ^ b)
            .checked_shr(width - u32::from(range.prefix()))
            .unwrap_or(0)
            == 0
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// A fixed-seed generator, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const SEEDS: [&[u8]; 5] = [
        b"GET /video.mjpg?usr=a&pwd=b HTTP/1.1\r\nHost: cam:8443\r\nConnection: keep-alive\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: http://192.168.1.20/x\r\n\r\n",
        b"GET http://x/ HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nHTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n\r\n",
        b"HEAD / HTTP/1.1\r\nHost: [::1]:1\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    ];

    /// Random edits of realistic inputs: bytes flipped, inserted, removed,
    /// and runs of separators and multi-byte characters, which is where
    /// parsers go wrong.
    fn mutants(seeds: &[Vec<u8>], count: usize, mut check: impl FnMut(&[u8])) {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let pieces: [&[u8]; 12] = [
            b"\r\n",
            b"\n",
            b":",
            b" ",
            b",",
            b"0",
            b"chunked",
            b"\r\n\r\n",
            "Ѐ".as_bytes(),
            "登录".as_bytes(),
            b"/",
            b"[",
        ];
        for i in 0..count {
            let mut data = seeds[i % seeds.len()].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(data.len() + 1);
                match rng.below(4) {
                    0 if at < data.len() => data[at] = rng.next() as u8,
                    1 => data.insert(at, rng.next() as u8),
                    2 if at < data.len() => {
                        data.remove(at);
                    }
                    _ => {
                        let p = pieces[rng.below(pieces.len())];
                        data.splice(at..at, p.iter().copied());
                    }
                }
            }
            check(&data);
        }
    }

    fn builtin_seeds() -> Vec<Vec<u8>> {
        SEEDS.iter().map(|s| s.to_vec()).collect()
    }

    #[test]
    fn heads_hold_their_properties_on_mutated_input() {
        mutants(&builtin_seeds(), 20_000, super::heads);
    }

    #[test]
    fn chunked_end_does_not_depend_on_how_bytes_arrive() {
        mutants(&builtin_seeds(), 20_000, |data| {
            for split in [0u8, 7, 31, 200] {
                super::chunked(&[&[split], data].concat());
            }
        });
        for seed in SEEDS {
            for split in 0..seed.len() {
                let mut data = vec![split as u8];
                data.extend_from_slice(seed);
                super::chunked(&data);
            }
        }
    }

    fn fuzz_dir(kind: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(kind)
    }

    /// The files of fuzz/KIND/TARGET, sorted.
    fn kept_inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let Ok(dir) = std::fs::read_dir(fuzz_dir(kind).join(target)) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect()
    }

    /// Runs `check` on `data`, naming `file` if it fails.
    fn run_named(file: &Path, check: super::Target, data: &[u8]) {
        if let Err(e) = std::panic::catch_unwind(|| check(data)) {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{} fails its property: {why}", file.display());
        }
    }

    /// Every seed and every input a fuzzer once found is run through its
    /// target's property check, so a fixed crash stays fixed.
    #[test]
    fn seeds_and_regressions_hold_their_properties() {
        let mut ran = 0;
        for (name, check) in super::TARGETS {
            let seeds = kept_inputs("seeds", name);
            assert!(!seeds.is_empty(), "fuzz/seeds/{name} has no seed");
            for (file, data) in seeds.iter().chain(&kept_inputs("regressions", name)) {
                run_named(file, check, data);
                ran += 1;
            }
        }
        assert!(ran >= super::TARGETS.len());
        // A directory for a target that does not exist would be skipped
        // without a word.
        for kind in ["seeds", "regressions"] {
            for entry in std::fs::read_dir(fuzz_dir(kind)).unwrap() {
                let name = entry.unwrap().file_name();
                let name = name.to_string_lossy();
                assert!(
                    super::TARGETS.iter().any(|(t, _)| *t == name),
                    "fuzz/{kind}/{name} is no fuzz target"
                );
            }
        }
    }

    /// fuzz/Cargo.toml builds one binary per entry of TARGETS, each calling
    /// the function of its name.
    #[test]
    fn every_target_has_a_fuzz_binary() {
        let manifest = std::fs::read_to_string(fuzz_dir("Cargo.toml")).unwrap();
        for (name, _) in super::TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "fuzz/Cargo.toml has no [[bin]] {name}"
            );
            let source = fuzz_dir("fuzz_targets").join(format!("{name}.rs"));
            let text = std::fs::read_to_string(&source).unwrap();
            assert!(
                text.contains(&format!("camtls::fuzzing::{name}(")),
                "{}",
                source.display()
            );
        }
    }

    /// The new targets, on random edits of their own seeds.
    #[test]
    fn targets_hold_their_properties_on_mutated_seeds() {
        for (name, check) in super::TARGETS {
            if matches!(name, "heads" | "chunked") {
                continue;
            }
            let seeds: Vec<Vec<u8>> = kept_inputs("seeds", name)
                .into_iter()
                .map(|(_, data)| data)
                .collect();
            let count = if name == "authorization" {
                2_000
            } else {
                10_000
            };
            mutants(&seeds, count, check);
        }
    }

    /// The two inputs that once took the process down, by hand.
    #[test]
    fn the_first_crash_inputs() {
        super::targets("GET abcdefgЀ HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes());
        let mut data = vec![0u8];
        data.extend_from_slice(
            "router:8443\nHTTP/1.1 302 Found\r\nLocation: /a登录.htm\r\n\r\n".as_bytes(),
        );
        super::locations(&data);
    }
}
