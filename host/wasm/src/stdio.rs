//! The guest's stdout and stderr: kept in memory up to a capacity. A write
//! past it stops the guest with [`Interrupt::LogLimit`], so the failure is
//! classified by its type.

use super::interrupt::Interrupt;
use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Writes into `MemoryOutputPipe`, whose contents the host reads afterwards.
#[derive(Clone)]
pub struct Capture(pub MemoryOutputPipe);

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let room = match self.0.check_write() {
            Ok(n) => n,
            // The pipe reports itself closed once it is full.
            Err(StreamError::Closed) => 0,
            Err(e) => return Err(e),
        };
        if bytes.len() > room {
            return Err(StreamError::Trap(Interrupt::LogLimit.trap()));
        }
        self.0.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.0.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.0.check_write()
    }
}

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    // Only WASIp2 is linked, which takes `p2_stream`.
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        self.0.async_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_past_capacity_is_a_log_limit_and_keeps_nothing_of_it() {
        let mut out = Capture(MemoryOutputPipe::new(4));
        out.write(Bytes::from_static(b"abc")).unwrap();
        match out.write(Bytes::from_static(b"de")) {
            Err(StreamError::Trap(e)) => {
                assert!(matches!(e.downcast_ref(), Some(Interrupt::LogLimit)));
            }
            other => panic!("expected a trap, got {other:?}"),
        }
        assert_eq!(&out.0.contents()[..], b"abc");
    }
}
