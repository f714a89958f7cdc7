//! Bridges between async byte streams and the blocking `io::Read` /
//! `io::Write` that the CSV parser and scorer use. The blocking side runs on
//! `spawn_blocking`; bounded channels give backpressure both ways, so a file
//! of any size passes through a few chunks of memory.

use std::io::{self, Read, Write};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

/// Chunks in flight between the two sides.
pub const CHANNEL_CHUNKS: usize = 4;
/// Output is sent on in pieces of about this size.
const WRITE_CHUNK: usize = 256 * 1024;

/// Reads what the async side sends; end of input when the sender is dropped.
#[derive(Debug)]
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(b)) => self.current = b,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Sends what is written to the async side, in chunks.
#[derive(Debug)]
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Bytes>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(WRITE_CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(WRITE_CHUNK),
        ));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the output stream was closed"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_cross_both_ways_intact() {
        let (in_tx, in_rx) = mpsc::channel(CHANNEL_CHUNKS);
        let (out_tx, mut out_rx) = mpsc::channel(CHANNEL_CHUNKS);
        let copier = tokio::task::spawn_blocking(move || {
            let mut r = ChannelReader::new(in_rx);
            let mut w = ChannelWriter::new(out_tx);
            io::copy(&mut r, &mut w)?;
            w.flush()
        });
        let input: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let feed = {
            let input = input.clone();
            async move {
                for chunk in input.chunks(70_000) {
                    in_tx
                        .send(Ok(Bytes::copy_from_slice(chunk)))
                        .await
                        .expect("reader alive");
                }
            }
        };
        let drain = async {
            let mut out = Vec::new();
            while let Some(b) = out_rx.recv().await {
                out.extend_from_slice(&b);
            }
            out
        };
        let ((), out) = tokio::join!(feed, drain);
        copier.await.expect("no panic").expect("copied");
        assert_eq!(out, input);
    }

    #[tokio::test]
    async fn an_error_from_the_stream_reaches_the_reader() {
        let (tx, rx) = mpsc::channel(1);
        tx.send(Err(io::Error::other("storage went away")))
            .await
            .expect("sent");
        let err = tokio::task::spawn_blocking(move || ChannelReader::new(rx).read(&mut [0; 8]))
            .await
            .expect("no panic")
            .expect_err("error passed through");
        assert!(err.to_string().contains("storage went away"));
    }
}
