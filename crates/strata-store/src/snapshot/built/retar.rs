//! [`RetarReader`]: a built layer's tar, made again from its snapshot by a
//! thread and read as a stream (flat memory: a few chunks in flight).
//!
//! The tar's last chunk is held back until the whole tar is hashed: when
//! the digest is not the recorded diff ID (the snapshot's files were
//! changed), the reader gets an error instead of it, so no consumer (push,
//! save, export) ever finishes a tar with a digest other than the one the
//! image names.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use strata_oci::Digest;

use crate::diff::{tar_dir, LayerOptions};

/// Bytes per chunk sent to the reader.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the walking thread and the reader.
const IN_FLIGHT: usize = 8;

type Chunk = io::Result<Vec<u8>>;

/// Reads the tar of a built snapshot (see the module docs).
pub struct RetarReader {
    rx: Receiver<Chunk>,
    chunk: Vec<u8>,
    pos: usize,
    walker: Option<JoinHandle<()>>,
}

impl RetarReader {
    /// Starts making the tar of the snapshot directory `dir`, which must
    /// hash to `diff_id`.
    pub fn start(dir: PathBuf, diff_id: Digest) -> RetarReader {
        let (tx, rx) = sync_channel::<Chunk>(IN_FLIGHT);
        let walker = std::thread::spawn(move || walk(dir, diff_id, tx));
        RetarReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
            walker: Some(walker),
        }
    }
}

fn walk(dir: PathBuf, diff_id: Digest, tx: SyncSender<Chunk>) {
    let tail = Arc::new(Mutex::new(Vec::with_capacity(CHUNK)));
    let out = ChunkWriter {
        tx: tx.clone(),
        tail: tail.clone(),
    };
    let made = tar_dir(&dir, Box::new(out), LayerOptions::default());
    let last = match made {
        Ok(info) if info.diff_id == diff_id => Ok(std::mem::take(
            &mut *tail.lock().unwrap_or_else(|p| p.into_inner()),
        )),
        Ok(info) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the files of built layer {diff_id} were changed since it was built \
                 (its snapshot {} now gives {}); run `strata system check`",
                dir.display(),
                info.diff_id
            ),
        )),
        Err(e) => Err(io::Error::other(format!(
            "making the tar of built layer {diff_id} from {}: {e}",
            dir.display()
        ))),
    };
    // The reader may be gone (it stopped early): nothing to tell it.
    let _ = tx.send(last);
}

impl Read for RetarReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => continue,
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The walker ended: the tar is complete (its last message
                // was the verified tail).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for RetarReader {
    fn drop(&mut self) {
        // Unblock a walker waiting to send, then wait for it: it must not
        // outlive a lease that keeps its snapshot.
        let (_, rx) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(w) = self.walker.take() {
            let _ = w.join();
        }
    }
}

/// Sends full chunks to the reader and keeps the rest in `tail`, which the
/// walker sends only once the digest is checked.
struct ChunkWriter {
    tx: SyncSender<Chunk>,
    tail: Arc<Mutex<Vec<u8>>>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let n = data.len().min(CHUNK - tail.len());
        tail.extend_from_slice(&data[..n]);
        if tail.len() == CHUNK {
            let full = std::mem::replace(&mut *tail, Vec::with_capacity(CHUNK));
            drop(tail);
            self.tx
                .send(Ok(full))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "tar reader stopped"))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunk boundaries never matter to the reader; the tail waits for
        // the digest check.
        Ok(())
    }
}
