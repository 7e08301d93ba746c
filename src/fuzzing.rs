//! Entry points for fuzzers (fuzz/) and for the randomized tests below:
//! arbitrary bytes into the head parsers and the chunked decoder, checking
//! the properties the proxy relies on rather than just "no panic".

use crate::body::ChunkedDecoder;
use crate::cli::Backend;
use crate::head::{self, Framing, Origin};

/// Feeds `data` to the request and response parsers and checks that a
/// parsed head never claims more bytes than it was given and that every head
/// camtls would send is itself well-formed HTTP.
pub fn heads(data: &[u8]) {
    let backend = Backend::new("192.168.1.20", 80);
    let origin = Origin {
        backend: &backend,
        client_ip: "203.0.113.9".parse().unwrap(),
        local_addr: "10.0.0.1:8443".parse().unwrap(),
        tls: true,
        preserve_host: data.first().is_some_and(|b| b & 1 == 1),
        capture_authorization: data.first().is_some_and(|b| b & 2 == 2),
        backend_authorization: data
            .first()
            .is_some_and(|b| b & 4 == 4)
            .then_some("Basic eDp5"),
    };
    let Ok(Some((request, len))) = head::parse_request(data, &origin) else {
        return;
    };
    assert!(len <= data.len());
    assert_well_formed(&request.head);
    // What the proxy sends upstream must parse back to the same framing.
    let mut fields = [httparse::EMPTY_HEADER; head::MAX_HEADERS + 8];
    let mut reparsed = httparse::Request::new(&mut fields);
    assert!(matches!(
        reparsed.parse(&request.head),
        Ok(httparse::Status::Complete(n)) if n == request.head.len()
    ));
    if let Ok(Some((response, rlen))) = head::parse_response(&data[len..], &request, &backend) {
        assert!(rlen <= data.len() - len);
        assert_well_formed(&response.head);
        if request.is_head_method {
            assert_eq!(response.body, Framing::Empty);
        }
    }
}

fn assert_well_formed(head: &[u8]) {
    assert!(head.ends_with(b"\r\n\r\n"));
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && head[i - 1] == b'\r', "bare LF in an outgoing head");
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
    let mut whole = ChunkedDecoder::default();
    let whole_result = whole.advance(data);
    let mut parts = ChunkedDecoder::default();
    let first = parts.advance(&data[..split]);
    let parts_result = match first {
        Ok(n) if n == split && !parts.is_done() => parts.advance(&data[split..]).map(|m| n + m),
        other => other,
    };
    match (whole_result, parts_result) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            assert!(a <= data.len());
            assert_eq!(whole.is_done(), parts.is_done());
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("split at {split} changed the outcome: {a:?} vs {b:?}"),
    }
}

#[cfg(test)]
mod tests {
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
    /// and runs of separators, which is where parsers go wrong.
    fn mutants(count: usize, mut check: impl FnMut(&[u8])) {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let pieces: [&[u8]; 8] = [
            b"\r\n",
            b"\n",
            b":",
            b" ",
            b",",
            b"0",
            b"chunked",
            b"\r\n\r\n",
        ];
        for i in 0..count {
            let mut data = SEEDS[i % SEEDS.len()].to_vec();
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

    #[test]
    fn heads_hold_their_properties_on_mutated_input() {
        mutants(20_000, super::heads);
    }

    #[test]
    fn chunked_end_does_not_depend_on_how_bytes_arrive() {
        mutants(20_000, |data| {
            for split in [0u8, 7, 31, 200] {
                super::chunked(&[&[split], data].concat());
            }
        });
        for seed in super::tests::SEEDS {
            for split in 0..seed.len() {
                let mut data = vec![split as u8];
                data.extend_from_slice(seed);
                super::chunked(&data);
            }
        }
    }
}
