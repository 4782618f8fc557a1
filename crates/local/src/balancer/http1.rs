//! HTTP/1.1 on the balancer's target side: the request head it writes, the response head it
//! reads, and how the response body is framed (RFC 9112 §6.3).
//!
//! Our own codec rather than hyper's client: the forwarding path then reads the target's
//! response in the client connection's own task, without a connection task and a channel
//! between them (measured in BENCHMARKS.md). The client side stays hyper's server, which
//! validates what clients send; targets are the stack's own services, but a malformed or
//! ambiguous response from one is still a 502, never forwarded.

use std::fmt::Write as _;
use std::mem::MaybeUninit;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, request};

/// The largest response head accepted from a target.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most header lines accepted in a response head.
const MAX_HEADERS: usize = 128;
/// The longest chunk-size or trailer line accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// How a request body goes to the target: decided once, from the body hyper decoded, and
/// written by [`encode_request_head`] alone, so no client header can make the head say
/// something else (request smuggling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body and no `Content-Length` (a GET).
    None,
    /// `Content-Length: n` (0 for a POST with an empty body).
    Length(u64),
    /// `Transfer-Encoding: chunked`: a body of unknown length.
    Chunked,
}

/// Appends the request line and header section for a target to `out`: the header lines
/// come from `write_headers` (which must not write `Content-Length` or
/// `Transfer-Encoding`), the framing header from `framing`.
pub(crate) fn encode_request_head(
    parts: &request::Parts,
    framing: RequestFraming,
    out: &mut BytesMut,
    write_headers: impl FnOnce(&mut BytesMut),
) {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.put_slice(parts.method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    write_headers(out);
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(length) => {
            // Writing to a BytesMut cannot fail.
            let _ = write!(out, "content-length: {length}\r\n");
        }
        RequestFraming::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.put_slice(b"\r\n");
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body: a response to HEAD, or a 204 or 304.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the target closes the connection.
    UntilClose,
}

/// A target's response head, with the hop-by-hop headers already removed.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// Whether the connection may carry another request once this response is read.
    pub(crate) keep_alive: bool,
}

/// Why a target's response head was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    #[error("malformed response head: {0}")]
    Malformed(#[from] httparse::Error),
    #[error("response head larger than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("invalid header in the response")]
    InvalidHeader,
    #[error("invalid or conflicting Content-Length")]
    InvalidContentLength,
    #[error("unrequested protocol switch (101)")]
    Upgrade,
    #[error("both Transfer-Encoding and Content-Length")]
    TransferEncodingWithContentLength,
}

/// Takes the response head for a request with `method` off the start of `buf`, skipping
/// interim responses (`100 Continue`, `103 Early Hints`); `None` until a whole head is there.
///
/// Header values are slices of the head's bytes, not copies.
pub(crate) fn parse_response_head(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, HeadError> {
    loop {
        let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let (length, code) = match parse(buf, &mut lines)? {
            (httparse::Status::Complete(length), code) => (length, code),
            (httparse::Status::Partial, _) if buf.len() > MAX_HEAD => {
                return Err(HeadError::TooLarge);
            }
            (httparse::Status::Partial, _) => return Ok(None),
        };
        match code {
            101 => return Err(HeadError::Upgrade),
            100..=199 => buf.advance(length),
            _ => return response_head(buf.split_to(length).freeze(), method).map(Some),
        }
    }
}

/// Parses `buf` with httparse, for the head's length and status code.
fn parse<'b>(
    buf: &'b [u8],
    lines: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<(httparse::Status<usize>, u16), httparse::Error> {
    let mut response = httparse::Response::new(&mut []);
    let status = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        lines,
    )?;
    Ok((status, response.code.unwrap_or_default()))
}

/// Builds the head from its bytes (a complete head, as `parse` found it). Parsed a second
/// time on purpose: header values can only be slices of the head once it is split off the
/// read buffer, which takes its length, which takes the first parse; recording the first
/// parse's positions instead would cost a 128-entry table per response, more than
/// re-scanning a head of a few hundred bytes.
fn response_head(head: Bytes, method: &Method) -> Result<ResponseHead, HeadError> {
    let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        &head,
        &mut lines,
    )?;
    let code = response.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| HeadError::InvalidHeader)?;
    // HTTP/1.0 closes after each response unless it asks otherwise.
    let mut keep_alive = response.version == Some(1);
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut named_by_connection: Vec<HeaderName> = Vec::new();
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for line in response.headers.iter() {
        let name =
            HeaderName::from_bytes(line.name.as_bytes()).map_err(|_| HeadError::InvalidHeader)?;
        let value = line.value;
        match name {
            header::CONNECTION => {
                for option in tokens(value) {
                    if option.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if option.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = keep_alive || response.version == Some(0);
                    } else if let Ok(named) = HeaderName::from_bytes(option) {
                        named_by_connection.push(named);
                    }
                }
                continue;
            }
            header::TRANSFER_ENCODING => {
                transfer_encoding = true;
                // Chunked must be the last coding; the last header line decides.
                chunked = tokens(value)
                    .last()
                    .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"));
                continue;
            }
            header::CONTENT_LENGTH => {
                let length = parse_content_length(value)?;
                if content_length.is_some_and(|seen| seen != length) {
                    return Err(HeadError::InvalidContentLength);
                }
                if content_length.replace(length).is_some() {
                    continue;
                }
            }
            header::TE | header::TRAILER | header::UPGRADE => continue,
            _ if is_keep_alive_or_proxy_connection(&name) => continue,
            _ => {}
        }
        let value = HeaderValue::from_maybe_shared(head.slice_ref(value))
            .map_err(|_| HeadError::InvalidHeader)?;
        headers.append(name, value);
    }
    for name in named_by_connection {
        headers.remove(name);
    }
    if transfer_encoding && content_length.is_some() {
        // RFC 9112 §6.3 item 3 lets Transfer-Encoding win, but a target sending both may
        // have framed by either: reading it our way could leave us out of step with it.
        return Err(HeadError::TransferEncodingWithContentLength);
    }
    if transfer_encoding && response.version == Some(0) {
        // HTTP/1.0 has no Transfer-Encoding: the framing is suspect, close after (§6.1).
        keep_alive = false;
    }
    let no_body = *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::Empty
    } else if transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    Ok(ResponseHead {
        status,
        headers,
        framing,
        keep_alive,
    })
}

fn is_keep_alive_or_proxy_connection(name: &HeaderName) -> bool {
    let name = name.as_str();
    name == "keep-alive" || name == "proxy-connection"
}

/// The comma-separated elements of a header value, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&c| c == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
}

fn parse_content_length(value: &[u8]) -> Result<u64, HeadError> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::InvalidContentLength);
    }
    digits.iter().try_fold(0u64, |total, &digit| {
        total
            .checked_mul(10)
            .and_then(|total| total.checked_add(u64::from(digit - b'0')))
            .ok_or(HeadError::InvalidContentLength)
    })
}

/// What a [`ChunkedDecoder`] got out of the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// Nothing yet: read more from the target.
    NeedMore,
    /// The last chunk and the trailer section have been read.
    Done,
}

/// Why a chunked body was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChunkError {
    #[error("invalid chunk size line")]
    Size,
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    #[error("chunk-size or trailer line longer than {MAX_CHUNK_LINE} bytes")]
    LineTooLong,
    #[error("trailer section larger than {MAX_HEAD} bytes")]
    TrailersTooLarge,
}

/// Decodes a chunked body (RFC 9112 §7.1) from a buffer that fills as the target sends.
/// Trailer fields are read and dropped, as hyper's server would drop them for HTTP/1 clients
/// that did not ask for them.
#[derive(Debug, Default)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    /// Bytes of trailer section read so far.
    trailers: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

impl ChunkedDecoder {
    /// Consumes from `buf` what it can, up to the next piece of body data.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ChunkError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ChunkError::MissingCrlf);
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.trailers += line.len() + 2;
                    if self.trailers > MAX_HEAD {
                        return Err(ChunkError::TrailersTooLarge);
                    }
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    }
                }
                ChunkState::Done => return Ok(Decoded::Done),
            }
        }
    }
}

/// Takes one CRLF-terminated line off `buf`, without its terminator; `None` if it is not
/// all there yet.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, ChunkError> {
    let Some(end) = buf.iter().position(|&c| c == b'\n') else {
        return if buf.len() > MAX_CHUNK_LINE {
            Err(ChunkError::LineTooLong)
        } else {
            Ok(None)
        };
    };
    if end > MAX_CHUNK_LINE {
        return Err(ChunkError::LineTooLong);
    }
    let mut line = buf.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Ok(Some(line))
}

/// `1*HEXDIG [ BWS ";" chunk-ext ]`: the size, extensions ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits_end = line
        .iter()
        .position(|c| !c.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    let rest = rest.trim_ascii_start();
    if digits.is_empty() || digits.len() > 16 || !(rest.is_empty() || rest[0] == b';') {
        return Err(ChunkError::Size);
    }
    digits.iter().try_fold(0u64, |size, &c| {
        let digit = char::from(c).to_digit(16).ok_or(ChunkError::Size)?;
        Ok(size << 4 | u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head parsed from `raw`, and the bytes left after it.
    fn complete(raw: &str, method: Method) -> (ResponseHead, BytesMut) {
        let mut buf = BytesMut::from(raw);
        match parse_response_head(&mut buf, &method) {
            Ok(Some(head)) => (head, buf),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn the_request_head_is_origin_form_http_1_1() {
        let (mut parts, ()) = http::Request::post("http://example.com/api/files?limit=5")
            .body(())
            .unwrap()
            .into_parts();
        parts.uri = http::Uri::from_static("/api/files?limit=5");
        let mut out = BytesMut::new();
        encode_request_head(&parts, RequestFraming::Chunked, &mut out, |out| {
            out.put_slice(b"x-a: 1\r\n");
        });
        assert_eq!(
            &out[..],
            b"POST /api/files?limit=5 HTTP/1.1\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        out.clear();
        encode_request_head(&parts, RequestFraming::Length(0), &mut out, |_| {});
        assert_eq!(
            &out[..],
            b"POST /api/files?limit=5 HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn a_content_length_response_is_length_framed_and_kept_alive() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello";
        let (head, rest) = complete(raw, Method::GET);
        assert_eq!(&rest[..], b"hello");
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(head.headers["content-length"], "5");
        assert_eq!(head.headers["x-a"], "1");
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        let start = "HTTP/1.1 200 OK\r\nContent-Le";
        let mut partial = BytesMut::from(start);
        let parsed = parse_response_head(&mut partial, &Method::GET);
        assert!(matches!(parsed, Ok(None)));
        assert_eq!(&partial[..], start.as_bytes(), "nothing consumed");
        let mut huge =
            BytesMut::from(format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD)).as_str());
        let parsed = parse_response_head(&mut huge, &Method::GET);
        assert!(matches!(parsed, Err(HeadError::TooLarge)));
    }

    #[test]
    fn hop_by_hop_headers_are_removed_with_those_connection_names() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\n\
                   Keep-Alive: timeout=5\r\nUpgrade: h2c\r\nTrailer: x\r\nX-Kept: yes\r\n\
                   Content-Length: 0\r\n\r\n";
        let (head, _) = complete(raw, Method::GET);
        let mut names: Vec<_> = head.headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-length", "x-kept"]);
        assert!(head.keep_alive);
    }

    #[test]
    fn connection_close_and_http_1_0_end_the_connection() {
        let (head, _) = complete(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            Method::GET,
        );
        assert!(!head.keep_alive);
        let (head, _) = complete("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Method::GET);
        assert!(!head.keep_alive);
        let (head, _) = complete(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            Method::GET,
        );
        assert!(head.keep_alive);
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                Method::HEAD,
                Framing::Empty,
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                Method::GET,
                Framing::Empty,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                Method::GET,
                Framing::Empty,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Method::GET,
                Framing::Chunked,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Method::GET,
                Framing::UntilClose,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Method::GET, Framing::UntilClose),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
                Method::GET,
                Framing::Length(7),
            ),
        ];
        for (raw, method, framing) in cases.clone() {
            let (head, _) = complete(raw, method);
            assert_eq!(head.framing, framing, "{raw:?}");
            assert_eq!(head.keep_alive, framing != Framing::UntilClose, "{raw:?}");
        }
        let (head, _) = complete(cases[3].0, Method::GET);
        assert!(!head.headers.contains_key("transfer-encoding"));
        let (head, _) = complete(
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
            Method::GET,
        );
        assert!(!head.keep_alive, "HTTP/1.0 with Transfer-Encoding closes");
    }

    #[test]
    fn ambiguous_or_unrequested_responses_are_refused() {
        let refused = [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ];
        for raw in refused {
            assert!(
                parse_response_head(&mut BytesMut::from(raw), &Method::GET).is_err(),
                "{raw:?} should be refused"
            );
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                   HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        let (head, rest) = complete(raw, Method::POST);
        assert_eq!(head.status, StatusCode::CREATED);
        assert!(!head.headers.contains_key("link"));
        assert_eq!(&rest[..], b"ok");
    }

    fn decode_all(input: &[u8], step: usize) -> Result<Vec<u8>, ChunkError> {
        let mut decoder = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::Done => return Ok(body),
                Decoded::NeedMore => {
                    assert!(fed < input.len(), "decoder wants more than the whole input");
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let input = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 3, 7, input.len()] {
            let body = decode_all(input, step).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
        }
    }

    #[test]
    fn broken_chunked_bodies_are_errors() {
        assert!(matches!(
            decode_all(b"zz\r\nhello\r\n0\r\n\r\n", 64),
            Err(ChunkError::Size)
        ));
        assert!(matches!(
            decode_all(b"5\r\nhelloXX0\r\n\r\n", 64),
            Err(ChunkError::MissingCrlf)
        ));
        assert!(matches!(
            decode_all(b"11111111111111111\r\n", 64),
            Err(ChunkError::Size)
        ));
        assert!(matches!(
            decode_all(b"5 garbage\r\nhello\r\n0\r\n\r\n", 64),
            Err(ChunkError::Size)
        ));
        let endless_trailers = [b"0\r\n".as_slice(), &b"x-t: 1\r\n".repeat(20_000)].concat();
        assert!(matches!(
            decode_all(&endless_trailers, 4096),
            Err(ChunkError::TrailersTooLarge)
        ));
        let long = [b"5;".as_slice(), &[b'x'; 5000]].concat();
        assert!(matches!(
            decode_all(&long, 64),
            Err(ChunkError::LineTooLong)
        ));
    }

    #[test]
    fn bytes_after_the_chunked_body_stay_in_the_buffer() {
        let mut decoder = ChunkedDecoder::default();
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1"[..]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"abc"))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::Done);
        assert_eq!(&buf[..], b"HTTP/1.1");
    }
}
