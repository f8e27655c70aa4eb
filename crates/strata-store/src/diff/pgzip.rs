//! Parallel gzip for layer blobs, pigz's scheme: the tar stream is cut into
//! [`BLOCK`]-sized blocks, each block is deflated on a worker thread as raw
//! deflate ending in a sync flush (so blocks end on a byte boundary and can
//! be concatenated), primed with the last 32 KiB of the block before it as
//! dictionary (so the ratio stays close to one stream's), and one writer
//! thread writes them in order between a single gzip header and trailer
//! (CRC-32s of the blocks combined). The result is one ordinary gzip member:
//! `gzip -t`, Go's `compress/gzip` (Docker, containerd, skopeo) and our own
//! reader accept it.
//!
//! Why: one deflate stream ran at ~200 MB/s on one core and was the whole
//! commit time of a big RUN layer, while the other cores idled.
//!
//! Blocks that do not compress (random data, already-compressed files) are
//! written as stored blocks instead of being run through deflate: a sample
//! of the block is compressed first and, when it does not shrink by 3%, the
//! block is stored (about a memcpy instead of ~200 MB/s of wasted deflate).
//!
//! Output depends only on the input and the level (block boundaries,
//! dictionaries and the stored/deflated choice are fixed by the data), never
//! on the number of threads or their timing: layer digests stay reproducible.
//! Memory is bounded: with N workers, at most 2N+1 blocks (input and
//! output, so about 2 MiB each) are queued or being compressed at once.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress};

/// Uncompressed bytes per block: big enough that the per-block sync flush
/// and dictionary reset cost nothing measurable, small enough to keep
/// memory low and all workers busy on medium-sized layers.
pub(crate) const BLOCK: usize = 1024 * 1024;
/// deflate's window: the dictionary carried from one block to the next.
const DICT: usize = 32 * 1024;
/// Sample size for the "is this block compressible" test.
const SAMPLE: usize = 32 * 1024;
/// Blocks whose sample compresses to at least this share (in %) are stored.
const STORE_THRESHOLD_PCT: usize = 97;
/// Most workers used: more cores than this add little for one layer.
const MAX_WORKERS: usize = 16;

/// A final, empty deflate block with fixed codes (BFINAL=1, BTYPE=01,
/// end-of-block code 0000000): ends the stream after the sync-flushed
/// blocks.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

type BlockResult = io::Result<(Vec<u8>, Crc)>;

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    done: SyncSender<BlockResult>,
}

/// The producer side: [`Write`] the uncompressed stream into it; finish
/// with [`ParallelGz::finish`], then join the writer thread for the output.
pub(crate) struct ParallelGz {
    buf: Vec<u8>,
    dict: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    ordered: Option<SyncSender<Receiver<BlockResult>>>,
    workers: Vec<JoinHandle<()>>,
}

impl ParallelGz {
    /// Starts the workers and the writer thread, which writes the gzip
    /// stream into `out` and returns it once the stream is complete.
    pub(crate) fn start<W: Write + Send + 'static>(
        out: W,
        level: u32,
    ) -> io::Result<(ParallelGz, JoinHandle<io::Result<W>>)> {
        let level = Compression::new(level.min(9));
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, MAX_WORKERS);
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(2 * n);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let rx = Arc::clone(&jobs_rx);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("layer-gzip-{i}"))
                    .spawn(move || worker(&rx, level))?,
            );
        }
        let (ordered_tx, ordered_rx) = sync_channel(2 * n);
        let writer = std::thread::Builder::new()
            .name("layer-gzip".into())
            .spawn(move || write_stream(out, level, ordered_rx))?;
        Ok((
            ParallelGz {
                buf: Vec::with_capacity(BLOCK),
                dict: Vec::new(),
                jobs: Some(jobs_tx),
                ordered: Some(ordered_tx),
                workers,
            },
            writer,
        ))
    }

    /// A stand-in that accepts nothing (for moving the real one out).
    pub(crate) fn closed() -> ParallelGz {
        ParallelGz {
            buf: Vec::new(),
            dict: Vec::new(),
            jobs: None,
            ordered: None,
            workers: Vec::new(),
        }
    }

    fn dispatch(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
        let dict = std::mem::replace(
            &mut self.dict,
            data[data.len().saturating_sub(DICT)..].to_vec(),
        );
        let stopped = || io::Error::new(io::ErrorKind::BrokenPipe, "layer compressor stopped");
        let (done, result) = sync_channel(1);
        // Order first: the writer then waits for this block's result, and
        // the bounded ordered channel is what caps the blocks in flight.
        self.ordered
            .as_ref()
            .ok_or_else(stopped)?
            .send(result)
            .map_err(|_| stopped())?;
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job { data, dict, done })
            .map_err(|_| stopped())
    }

    /// Sends the last partial block and closes the stream: the writer
    /// thread writes the trailer and ends.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        let r = self.dispatch();
        self.close();
        r
    }

    /// Stops everything (also on error paths); the workers end once the
    /// queue is empty.
    fn close(&mut self) {
        self.jobs = None;
        self.ordered = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Write for ParallelGz {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= BLOCK {
            self.dispatch()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Block boundaries must not depend on when callers flush.
        Ok(())
    }
}

impl Drop for ParallelGz {
    fn drop(&mut self) {
        self.close();
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, level: Compression) {
    let mut deflate = Compress::new(level, false);
    let mut store = Compress::new(Compression::none(), false);
    let mut scratch = Vec::with_capacity(SAMPLE + SAMPLE / 8);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let mut crc = Crc::new();
        crc.update(&job.data);
        let stored = level.level() == 0 || incompressible(&mut deflate, &job.data, &mut scratch);
        let out = if stored {
            compress_block(&mut store, &job.data, &[])
        } else {
            compress_block(&mut deflate, &job.data, &job.dict)
        };
        // The writer may have stopped (error): nothing more to do then.
        let _ = job.done.send(out.map(|o| (o, crc)));
    }
}

/// True when a sample of `data` (its start, and its middle when that
/// fails) does not compress by [`STORE_THRESHOLD_PCT`].
fn incompressible(c: &mut Compress, data: &[u8], scratch: &mut Vec<u8>) -> bool {
    if data.len() < 2 * SAMPLE {
        return false;
    }
    let mid = data.len() / 2;
    for sample in [&data[..SAMPLE], &data[mid..mid + SAMPLE]] {
        c.reset();
        scratch.clear();
        scratch.reserve(SAMPLE + SAMPLE / 8 + 64);
        let ok = c.compress_vec(sample, scratch, FlushCompress::Finish);
        if ok.is_err() || scratch.len() * 100 < sample.len() * STORE_THRESHOLD_PCT {
            return false;
        }
    }
    true
}

/// Raw deflate of one block, ending in a sync flush (byte-aligned, not
/// final), with `dict` as the preceding window.
fn compress_block(c: &mut Compress, data: &[u8], dict: &[u8]) -> io::Result<Vec<u8>> {
    c.reset();
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    // Stored blocks cost 5 bytes per 64 KiB; deflate never exceeds that.
    let mut out = Vec::with_capacity(data.len() + data.len() / 1000 * 5 + 1024);
    let start = c.total_in();
    loop {
        let used = (c.total_in() - start) as usize;
        c.compress_vec(&data[used..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // Done once all input is in and the flush left spare room (zlib's
        // rule: a flush that fills the output must be repeated).
        if (c.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

/// The writer thread: header, the blocks in order, final block, trailer.
fn write_stream<W: Write>(
    mut out: W,
    level: Compression,
    ordered: Receiver<Receiver<BlockResult>>,
) -> io::Result<W> {
    let xfl = match level.level() {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL OS=unknown, as flate2 writes it.
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
    let mut crc = Crc::new();
    for result in ordered {
        let (bytes, block_crc) = result
            .recv()
            .map_err(|_| io::Error::other("a layer compression worker stopped"))??;
        out.write_all(&bytes)?;
        crc.combine(&block_crc);
    }
    out.write_all(&FINAL_BLOCK)?;
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&crc.amount().to_le_bytes())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let (mut gz, writer) = ParallelGz::start(Vec::new(), level).unwrap();
        for chunk in data.chunks(100_003) {
            gz.write_all(chunk).unwrap();
        }
        gz.finish().unwrap();
        writer.join().unwrap().unwrap()
    }

    /// Compressible text, zeros and pseudo-random bytes, several blocks.
    fn sample_data() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..60_000 {
            v.extend_from_slice(format!("line {i} of some layer text\n").as_bytes());
        }
        v.extend(std::iter::repeat_n(0u8, 3 * BLOCK + 123));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..(2 * BLOCK + 777) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x as u8);
        }
        v
    }

    #[test]
    fn round_trips_through_flate2() {
        let data = sample_data();
        for level in [0, 1, 6] {
            let gz = gzip(&data, level);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "level {level}: round trip differs");
        }
    }

    #[test]
    fn empty_stream_is_valid() {
        let gz = gzip(&[], 1);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn random_blocks_are_stored_and_text_compressed() {
        let data = sample_data();
        let gz = gzip(&data, 1);
        // Random part (~2 MiB) stored, the rest shrinks a lot.
        assert!(gz.len() < 2 * BLOCK + BLOCK / 2, "{}", gz.len());
        assert!(gz.len() > 2 * BLOCK, "{}", gz.len());
    }

    #[test]
    fn output_is_deterministic() {
        let data = sample_data();
        assert!(gzip(&data, 1) == gzip(&data, 1));
    }

    /// The system's gzip (the reference implementation Docker's tooling
    /// matches) must accept the stream and give back the same bytes.
    #[test]
    fn system_gzip_accepts_it() {
        use std::process::{Command, Stdio};
        let Ok(probe) = Command::new("gzip").arg("--version").output() else {
            eprintln!("SKIP: no gzip binary in PATH");
            return;
        };
        assert!(probe.status.success());
        let data = sample_data();
        let gz = gzip(&data, 1);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("layer.tar.gz");
        std::fs::write(&file, &gz).unwrap();
        let t = Command::new("gzip").arg("-t").arg(&file).status().unwrap();
        assert!(t.success(), "gzip -t rejected the stream");
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(&file)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(out.stdout == data, "gzip -dc output differs");
    }
}
