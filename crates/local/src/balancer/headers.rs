//! Request and response header rewriting: hop-by-hop headers, `X-Forwarded-*`, `Host` and
//! `X-Amzn-Trace-Id` as the ALB sets them (S5.32–S5.35).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub(crate) const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// What the balancer knows about the client's connection, fixed for all its requests.
#[derive(Debug)]
pub(crate) struct ClientConnection {
    /// The client's IP address, as appended to `X-Forwarded-For`.
    pub(crate) ip: HeaderValue,
    /// The listener's port, for `X-Forwarded-Port` and `Host`.
    pub(crate) listener_port: u16,
    pub(crate) listener_port_value: HeaderValue,
}

/// Rewrites a client's request headers for the target.
pub(crate) fn forward_request(headers: &mut HeaderMap, client: &ClientConnection) {
    remove_hop_by_hop(headers);
    append_forwarded_for(headers, &client.ip);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.insert(X_FORWARDED_PORT, client.listener_port_value.clone());
    if let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| host_for_target(h, client.listener_port))
    {
        headers.insert(header::HOST, host);
    }
    let trace = trace_id(headers.get(X_AMZN_TRACE_ID), &new_trace_segment());
    headers.insert(X_AMZN_TRACE_ID, trace);
}

/// Rewrites a target's response headers for the client.
pub(crate) fn forward_response(headers: &mut HeaderMap) {
    remove_hop_by_hop(headers);
}

/// Removes headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// including those the `Connection` header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one pass over the few names present is cheaper than
    // hashing every hop-by-hop name for a removal.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if let Some(connection) = headers.remove(header::CONNECTION) {
        if let Ok(names) = connection.to_str() {
            for name in names.split(',') {
                let name = name.trim();
                // `close` and `keep-alive` are options, not header names; hyper handles them.
                if !name.is_empty() {
                    headers.remove(name);
                }
            }
        }
        // A second `Connection` header line is equally hop-by-hop.
        headers.remove(header::CONNECTION);
    }
    for name in [
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ]
    .contains(name)
}

/// Most addresses the ALB accepts in an incoming `X-Forwarded-For` (S5.13: more is a 463).
const MAX_FORWARDED_FOR: usize = 30;

/// Whether the client's `X-Forwarded-For` headers carry more than 30 addresses.
pub(crate) fn too_many_forwarded_for(headers: &HeaderMap) -> bool {
    let addresses: usize = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(|value| value.as_bytes().iter().filter(|&&c| c == b',').count() + 1)
        .sum();
    addresses > MAX_FORWARDED_FOR
}

/// Appends the client's IP to `X-Forwarded-For`, joining repeated headers (S5.32).
fn append_forwarded_for(headers: &mut HeaderMap, client_ip: &HeaderValue) {
    match headers.entry(X_FORWARDED_FOR) {
        header::Entry::Vacant(entry) => {
            entry.insert(client_ip.clone());
        }
        header::Entry::Occupied(mut entry) => {
            let mut joined = BytesMut::new();
            for value in entry.iter() {
                joined.put_slice(value.as_bytes());
                joined.put_slice(b", ");
            }
            joined.put_slice(client_ip.as_bytes());
            // Values came from valid headers, so the join is one too; keep the old ones if not.
            if let Ok(value) = HeaderValue::from_maybe_shared(joined.freeze()) {
                entry.insert(value);
            }
        }
    }
}

/// The `Host` the target sees, when it differs from the client's (S5.35): on listener ports
/// other than 80/443 the port is added if missing; on 80/443 any port is removed.
fn host_for_target(host: &str, listener_port: u16) -> Option<HeaderValue> {
    // `[v6]:port`, `[v6]`, `name:port`, `name`.
    let port_at = match host.rfind(']') {
        Some(bracket) => host[bracket..].find(':').map(|i| bracket + i),
        None => host.rfind(':'),
    };
    match (listener_port, port_at) {
        (80 | 443, Some(colon)) => HeaderValue::from_str(&host[..colon]).ok(),
        (80 | 443, None) | (_, Some(_)) => None,
        (port, None) => HeaderValue::from_str(&format!("{host}:{port}")).ok(),
    }
}

/// A fresh trace segment `1-<8 hex epoch seconds>-<24 hex random>` (S5.34).
fn new_trace_segment() -> [u8; 35] {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The format has room for 32 bits of seconds; wrapping in 2106 is fine.
    trace_segment(epoch as u32, fastrand::u128(..))
}

fn trace_segment(epoch: u32, random: u128) -> [u8; 35] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut segment = [0u8; 35];
    segment[0] = b'1';
    segment[1] = b'-';
    for (i, slot) in segment[2..10].iter_mut().enumerate() {
        *slot = HEX[((epoch >> (28 - 4 * i)) & 0xf) as usize];
    }
    segment[10] = b'-';
    for (i, slot) in segment[11..35].iter_mut().enumerate() {
        *slot = HEX[((random >> (92 - 4 * i)) & 0xf) as usize];
    }
    segment
}

/// The `X-Amzn-Trace-Id` sent to the target (S5.34): a new `Root` when the client sent
/// none; otherwise the client's fields are kept and `Self` is set to the new segment.
fn trace_id(existing: Option<&HeaderValue>, segment: &[u8; 35]) -> HeaderValue {
    let mut value = BytesMut::with_capacity(64);
    match existing.map(HeaderValue::as_bytes) {
        None => {
            value.put_slice(b"Root=");
            value.put_slice(segment);
        }
        Some(existing) => {
            let fields = existing.split(|&c| c == b';').map(<[u8]>::trim_ascii);
            if fields.clone().any(|f| f.starts_with(b"Self=")) {
                for (i, field) in fields.enumerate() {
                    if i > 0 {
                        value.put_u8(b';');
                    }
                    if field.starts_with(b"Self=") {
                        value.put_slice(b"Self=");
                        value.put_slice(segment);
                    } else {
                        value.put_slice(field);
                    }
                }
            } else {
                let has_root = fields.clone().any(|f| f.starts_with(b"Root="));
                value.put_slice(if has_root { b"Self=" } else { b"Root=" });
                value.put_slice(segment);
                value.put_u8(b';');
                value.put_slice(existing);
            }
        }
    }
    HeaderValue::from_maybe_shared(value.freeze())
        .unwrap_or_else(|_| HeaderValue::from_static("Root=1-00000000-000000000000000000000000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientConnection {
        ClientConnection {
            ip: HeaderValue::from_static("10.0.0.7"),
            listener_port: 8080,
            listener_port_value: HeaderValue::from_static("8080"),
        }
    }

    fn forwarded(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        forward_request(&mut headers, &client());
        headers
    }

    #[test]
    fn forwarded_for_is_created_or_appended() {
        let fresh = forwarded(&[]);
        assert_eq!(fresh[X_FORWARDED_FOR], "10.0.0.7");
        let appended = forwarded(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
        ]);
        assert_eq!(appended[X_FORWARDED_FOR], "1.1.1.1, 2.2.2.2, 10.0.0.7");
        assert_eq!(appended.get_all(X_FORWARDED_FOR).iter().count(), 1);
    }

    #[test]
    fn more_than_30_forwarded_addresses_are_too_many() {
        let list = |n: usize| {
            let mut headers = HeaderMap::new();
            let value = vec!["10.0.0.1"; n].join(", ");
            headers.insert(X_FORWARDED_FOR, HeaderValue::from_str(&value).unwrap());
            headers
        };
        assert!(!too_many_forwarded_for(&HeaderMap::new()));
        assert!(!too_many_forwarded_for(&list(30)));
        assert!(too_many_forwarded_for(&list(31)));
        let mut split = list(20);
        split.append(
            X_FORWARDED_FOR,
            HeaderValue::from_str(&["10.0.0.2"; 11].join(",")).unwrap(),
        );
        assert!(too_many_forwarded_for(&split));
    }

    #[test]
    fn headers_without_hop_by_hop_ones_are_left_alone() {
        let mut headers = HeaderMap::new();
        headers.insert("x-kept", HeaderValue::from_static("yes"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        forward_response(&mut headers);
        assert_eq!(headers.len(), 2);
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        forward_response(&mut headers);
        assert_eq!(headers.len(), 2);
        assert!(!headers.contains_key(header::TRANSFER_ENCODING));
    }

    #[test]
    fn proto_and_port_are_set() {
        let headers = forwarded(&[("x-forwarded-proto", "https"), ("x-forwarded-port", "1")]);
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[X_FORWARDED_PORT], "8080");
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let headers = forwarded(&[
            ("connection", "keep-alive, x-private"),
            ("x-private", "secret-for-this-hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-kept", "yes"),
        ]);
        for gone in [
            "connection",
            "x-private",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(!headers.contains_key(gone), "{gone} should be removed");
        }
        assert_eq!(headers["x-kept"], "yes");
    }

    #[test]
    fn host_gets_the_listener_port_when_missing() {
        let cases = [
            ("example.com", 8080, Some("example.com:8080")),
            ("example.com:9000", 8080, None),
            ("[::1]", 8080, Some("[::1]:8080")),
            ("[::1]:8080", 8080, None),
            ("example.com:8080", 80, Some("example.com")),
            ("[::1]:443", 443, Some("[::1]")),
            ("example.com", 443, None),
        ];
        for (host, port, expected) in cases {
            assert_eq!(
                host_for_target(host, port)
                    .as_ref()
                    .map(|h| h.to_str().unwrap()),
                expected,
                "{host} on port {port}"
            );
        }
    }

    #[test]
    fn trace_segment_has_the_alb_format() {
        let segment = trace_segment(0x5f84_c7a6, 0x0123_4567_89ab_cdef_0011_2233);
        assert_eq!(
            std::str::from_utf8(&segment).unwrap(),
            "1-5f84c7a6-0123456789abcdef00112233"
        );
    }

    #[test]
    fn trace_id_follows_the_alb_rules() {
        let segment = trace_segment(1, 2);
        let seg = std::str::from_utf8(&segment).unwrap();
        let cases = [
            (None, format!("Root={seg}")),
            (Some("Root=1-aaa-bbb"), format!("Self={seg};Root=1-aaa-bbb")),
            (
                Some("Root=1-aaa-bbb;Custom=x"),
                format!("Self={seg};Root=1-aaa-bbb;Custom=x"),
            ),
            (
                Some("Self=1-old-old;Root=1-aaa-bbb;Custom=x"),
                format!("Self={seg};Root=1-aaa-bbb;Custom=x"),
            ),
            (Some("Custom=x"), format!("Root={seg};Custom=x")),
        ];
        for (existing, expected) in cases {
            let existing = existing.map(HeaderValue::from_static);
            assert_eq!(trace_id(existing.as_ref(), &segment), expected.as_str());
        }
    }

    #[test]
    fn a_new_trace_id_is_generated_per_request() {
        let first = forwarded(&[]);
        let value = first[X_AMZN_TRACE_ID].to_str().unwrap().to_owned();
        assert!(value.starts_with("Root=1-"), "{value}");
        assert_eq!(value.len(), "Root=".len() + 35);
        let second = forwarded(&[]);
        assert_ne!(second[X_AMZN_TRACE_ID], value);
    }
}
