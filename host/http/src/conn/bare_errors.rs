//! hyper answers some requests itself, before any handler runs: a request
//! it cannot parse (400), a URI it will not hold (414) and a request head
//! over the size limit (431). Those answers have no body. This socket
//! wrapper recognises them on their way out and writes them with a JSON
//! body instead, so that every error the server sends is JSON.
//!
//! hyper is set to write each response head in one flat buffer
//! (`writev(false)`), and its own answers are the only heads without a
//! `content-type`: every response the API produces carries one.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct BareErrors<IO> {
    io: IO,
    /// A rewritten head being written, and the length of the original it
    /// stands for (what hyper is told was written).
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<IO> BareErrors<IO> {
    pub fn new(io: IO) -> Self {
        BareErrors { io, pending: None }
    }
}

/// The JSON message for one of hyper's own statuses.
fn message(status: &[u8]) -> Option<String> {
    Some(match status {
        b"400" => "malformed HTTP request".to_string(),
        b"414" => "request URI is too long".to_string(),
        b"431" => format!(
            "request head (request line and headers) exceeds {} bytes, or has too many headers",
            super::MAX_HEAD_BYTES
        ),
        _ => return None,
    })
}

/// `head` with a JSON body, if it is one of hyper's bodiless answers.
fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?.strip_suffix("\r\n\r\n")?;
    let (status_line, headers) = rest.split_once("\r\n").unwrap_or((rest, ""));
    let error = message(status_line.as_bytes().get(..3)?)?;
    let lines: Vec<&str> = headers.split("\r\n").filter(|l| !l.is_empty()).collect();
    let named = |l: &&str, name: &str| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    };
    if lines.iter().any(|l| named(l, "content-type")) {
        return None;
    }
    let body = serde_json::json!({ "error": error }).to_string();
    let mut out = format!("HTTP/1.1 {status_line}\r\n");
    for line in lines.iter().filter(|l| !named(l, "content-length")) {
        out += line;
        out += "\r\n";
    }
    out += &format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    Some(out.into_bytes())
}

impl<IO: AsyncRead + Unpin> AsyncRead for BareErrors<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for BareErrors<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            match with_json_body(buf) {
                Some(rewritten) => this.pending = Some((rewritten, 0, buf.len())),
                None => return Pin::new(&mut this.io).poll_write(cx, buf),
            }
        }
        let (bytes, written, stands_for) = this.pending.as_mut().expect("set above");
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut this.io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let n = *stands_for;
        this.pending = None;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::with_json_body;

    #[test]
    fn only_bodiless_parse_error_heads_are_rewritten() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_json_body(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\nconnection: close\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(!head.contains("content-length: 0"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("exceeds"));

        // The API's own answers carry a content type and pass untouched.
        let json = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(with_json_body(json).is_none());
        // Other statuses, and anything that is not exactly one head, too.
        assert!(with_json_body(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(with_json_body(b"HTTP/1.1 400 Bad Request\r\n\r\n{}").is_none());
        assert!(with_json_body(b"data: {}\n\n").is_none());
    }
}
