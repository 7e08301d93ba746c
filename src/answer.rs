//! The responses camtls makes itself, never the backend's: errors with
//! their status, the 401 challenge of its own login, and the redirect to
//! https for a plain-HTTP request on a TLS port.

use std::net::SocketAddr;

use crate::head::{valid_host, Reject, MAX_HEADERS, MAX_HEAD_BYTES};

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A complete response made by camtls itself. The body says what went wrong
/// in general terms only: nothing about the LAN behind the proxy.
pub fn error_response(status: u16, detail: &str) -> Vec<u8> {
    let body = format!("{status} {}: {detail}\n", reason(status));
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}

/// The `WWW-Authenticate` value sent with a 401.
const WWW_AUTHENTICATE: &str = "Basic realm=\"camtls\", charset=\"UTF-8\"";

/// 401 with the challenge for camtls's own login; the connection stays
/// usable when nothing of the request is left unread.
pub fn login_required(keep_alive: bool) -> Vec<u8> {
    let body = "401 Unauthorized: log in to reach this device\n";
    format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}Cache-Control: no-store\r\n\r\n{body}",
        WWW_AUTHENTICATE,
        body.len(),
        if keep_alive { "" } else { "Connection: close\r\n" },
    )
    .into_bytes()
}

/// The answer to a plain-HTTP request that reached a TLS port (someone
/// typed `http://`): a redirect to the same target over https, at the Host
/// the client named or else the address it reached. 301 for GET and HEAD,
/// 308 for the rest (a POST stays a POST). `Ok(None)`: incomplete. Parsed as
/// strictly as any request, under the same limits.
pub fn https_redirect(buf: &[u8], local: SocketAddr) -> Result<Option<Vec<u8>>, Reject> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => {}
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => return Ok(None),
        _ => return Err(Reject::BadRequest("not a request")),
    }
    let host = req
        .headers
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("host"))
        .map(|f| f.value)
        .filter(|h| valid_host(h))
        .and_then(|h| std::str::from_utf8(h).ok());
    let reached = SocketAddr::new(local.ip().to_canonical(), local.port()).to_string();
    let target = req.path.filter(|p| p.starts_with('/')).unwrap_or("/");
    let status = if matches!(req.method, Some("GET" | "HEAD")) {
        301
    } else {
        308
    };
    Ok(Some(
        format!(
            "HTTP/1.1 {status} {}\r\nLocation: https://{}{target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            reason(status),
            host.unwrap_or(&reached)
        )
        .into_bytes(),
    ))
}
