//! Request header rewriting: hop-by-hop headers, `X-Forwarded-*`, `Host` and
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

/// Writes the request's header lines as the target gets them (`name: value` CRLF each):
/// hop-by-hop headers dropped (RFC 9110 §7.6.1), `Host` adjusted, `X-Forwarded-For`
/// appended to, `X-Forwarded-Proto`/`-Port` and `X-Amzn-Trace-Id` set, `Cookie` lines
/// joined. `Content-Length` is left out: the body's framing is written from the body itself
/// (`http1::RequestFraming`).
///
/// Written straight into the outgoing head rather than edited in the `HeaderMap` first:
/// inserting four headers grows and rehashes the map on every request.
pub(crate) fn write_request_headers(
    headers: &HeaderMap,
    client: &ClientConnection,
    out: &mut BytesMut,
) {
    let has_connection_options = headers.contains_key(header::CONNECTION);
    let mut trace = None;
    let mut cookies = 0;
    for (name, value) in headers {
        if is_hop_by_hop(name)
            || *name == header::CONTENT_LENGTH
            || *name == X_FORWARDED_FOR
            || *name == X_FORWARDED_PROTO
            || *name == X_FORWARDED_PORT
            || (has_connection_options && named_by_connection(headers, name))
        {
            continue;
        }
        if *name == X_AMZN_TRACE_ID {
            trace = Some(value);
            continue;
        }
        if *name == header::COOKIE {
            cookies += 1;
            continue;
        }
        let adjusted_host = (*name == header::HOST)
            .then(|| value.to_str().ok())
            .flatten()
            .and_then(|host| host_for_target(host, client.listener_port));
        put_header(out, name.as_str(), adjusted_host.as_ref().unwrap_or(value));
    }
    if cookies > 0 {
        // HTTP/2 clients send one field per cookie; HTTP/1.1 wants one line (RFC 9113 §8.2.3).
        put_joined(out, "cookie", headers.get_all(header::COOKIE), "; ");
    }
    // Repeated headers are joined into one, the client's address last (S5.32).
    out.put_slice(b"x-forwarded-for: ");
    for value in headers.get_all(X_FORWARDED_FOR) {
        out.put_slice(value.as_bytes());
        out.put_slice(b", ");
    }
    out.put_slice(client.ip.as_bytes());
    out.put_slice(b"\r\n");
    put_header(out, "x-forwarded-proto", &HeaderValue::from_static("http"));
    put_header(out, "x-forwarded-port", &client.listener_port_value);
    out.put_slice(b"x-amzn-trace-id: ");
    put_trace_id(trace, &new_trace_segment(), out);
    out.put_slice(b"\r\n");
}

fn put_header(out: &mut BytesMut, name: &str, value: &HeaderValue) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

fn put_joined<'a>(
    out: &mut BytesMut,
    name: &str,
    values: impl IntoIterator<Item = &'a HeaderValue>,
    separator: &str,
) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.put_slice(separator.as_bytes());
        }
        out.put_slice(value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// Whether any `Connection` line names `name` as hop-by-hop. `Host` and the body's framing
/// are never removed this way (nginx ignores such options too).
fn named_by_connection(headers: &HeaderMap, name: &HeaderName) -> bool {
    if *name == header::HOST {
        return false;
    }
    headers.get_all(header::CONNECTION).iter().any(|options| {
        options.as_bytes().split(|&c| c == b',').any(|option| {
            option
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_str().as_bytes())
        })
    })
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
fn put_trace_id(existing: Option<&HeaderValue>, segment: &[u8; 35], out: &mut BytesMut) {
    match existing.map(HeaderValue::as_bytes) {
        None => {
            out.put_slice(b"Root=");
            out.put_slice(segment);
        }
        Some(existing) => {
            let fields = existing.split(|&c| c == b';').map(<[u8]>::trim_ascii);
            if fields.clone().any(|f| f.starts_with(b"Self=")) {
                for (i, field) in fields.enumerate() {
                    if i > 0 {
                        out.put_u8(b';');
                    }
                    if field.starts_with(b"Self=") {
                        out.put_slice(b"Self=");
                        out.put_slice(segment);
                    } else {
                        out.put_slice(field);
                    }
                }
            } else {
                let has_root = fields.clone().any(|f| f.starts_with(b"Root="));
                out.put_slice(if has_root { b"Self=" } else { b"Root=" });
                out.put_slice(segment);
                out.put_u8(b';');
                out.put_slice(existing);
            }
        }
    }
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

    /// The header lines written for a request with `pairs`, read back into a map.
    fn forwarded(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        let mut out = BytesMut::new();
        write_request_headers(&headers, &client(), &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.ends_with("\r\n"), "{text:?}");
        text.split_terminator("\r\n")
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
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
    fn end_to_end_headers_are_kept_as_they_came() {
        let headers = forwarded(&[
            ("host", "example.com:8080"),
            ("x-kept", "yes"),
            ("x-kept", "again"),
        ]);
        assert_eq!(headers["host"], "example.com:8080");
        let kept: Vec<_> = headers.get_all("x-kept").iter().collect();
        assert_eq!(kept, ["yes", "again"]);
        // The four the balancer adds, and nothing else.
        assert_eq!(headers.len(), 7);
    }

    #[test]
    fn headers_named_by_any_connection_line_are_removed() {
        let headers = forwarded(&[
            ("connection", "keep-alive"),
            ("connection", "x-private"),
            ("x-private", "secret-for-this-hop"),
        ]);
        assert!(!headers.contains_key("x-private"));
    }

    #[test]
    fn connection_options_never_remove_host_and_content_length_is_never_copied() {
        let headers = forwarded(&[
            ("connection", "content-length, host"),
            ("content-length", "5"),
            ("host", "example.com:8080"),
        ]);
        assert_eq!(headers["host"], "example.com:8080");
        // Written from the body by http1::encode_request_head, never from the client.
        assert!(!headers.contains_key("content-length"));
    }

    #[test]
    fn cookie_fields_are_joined_into_one_line() {
        let headers = forwarded(&[("cookie", "a=1"), ("cookie", "b=2")]);
        let cookies: Vec<_> = headers.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1; b=2"]);
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
            ("connection", "keep-alive, X-Private"),
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
            let mut out = BytesMut::new();
            put_trace_id(existing.as_ref(), &segment, &mut out);
            assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
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
