//! A bounded in-process pipe: a `Write` end on the caller's thread and a
//! `Read` end handed to a helper thread. Used to decompress (load) or
//! compress (import) a blob on a second core while the first one hashes
//! and writes it, or to apply a COPY's tar into its snapshot as it is
//! made, with at most a few chunks in flight (flat memory).

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

const CHUNK: usize = 256 * 1024;
const DEPTH: usize = 4;

/// The write end. Dropping it (or [`PipeWriter::close`]) ends the stream.
pub(crate) struct PipeWriter {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
}

/// The read end, on the helper thread.
pub(crate) struct PipeReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

/// Starts `f` on a named thread reading from the returned writer.
pub(crate) fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce(PipeReader) -> T + Send + 'static,
) -> io::Result<(PipeWriter, JoinHandle<T>)> {
    let (tx, rx) = sync_channel(DEPTH);
    let reader = PipeReader {
        rx,
        cur: Vec::new(),
        pos: 0,
    };
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || f(reader))?;
    Ok((
        PipeWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
        },
        handle,
    ))
}

impl PipeWriter {
    /// Sends what is buffered and closes the stream.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        let r = self.send();
        self.tx = None;
        r
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        match &self.tx {
            Some(tx) => tx
                .send(chunk)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "helper thread ended")),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed")),
        }
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Sends what is buffered (a short chunk): a writer that only
    /// flushes, as a layer builder finishing its tar does, loses nothing.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0), // writer closed: end of stream
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl PipeReader {
    /// Reads and discards the rest, so the writer never blocks on a helper
    /// that stopped early (e.g. trailing bytes after a gzip stream).
    pub(crate) fn drain(&mut self) {
        let _ = io::copy(self, &mut io::sink());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_every_byte_in_order() {
        let (mut w, h) = spawn("test-pipe", |mut r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        })
        .unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        w.write_all(&data).unwrap();
        w.close().unwrap();
        assert_eq!(h.join().unwrap(), data);
    }
}
