//! A container's log: written by its monitor ([`LogWriter`], fed by
//! [`pump`]), read by `logs`, `start -a` and attached runs ([`LogReader`]).

use super::*;

#[derive(clap::Args, Debug)]
pub(crate) struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

/// Reads a container's log records from where it left off.
pub(super) struct LogReader {
    path: PathBuf,
    offset: u64,
    timestamps: bool,
}

impl LogReader {
    pub(super) fn new(root: &Path, id: &str, timestamps: bool) -> LogReader {
        let path = ctr_dir(root, id).join("ctr.log");
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        LogReader {
            path,
            offset,
            timestamps,
        }
    }

    fn records(&mut self) -> anyhow::Result<Vec<(String, String, Vec<u8>)>> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Ok(Vec::new());
        };
        let len = f.metadata()?.len();
        if len < self.offset {
            self.offset = 0; // rotated
        }
        f.seek(std::io::SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        // Only whole lines.
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
        self.offset += end as u64;
        Ok(parse_records(&bytes))
    }

    fn print(
        &self,
        recs: &[(String, String, Vec<u8>)],
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> anyhow::Result<()> {
        for (t, stream, text) in recs {
            let w: &mut dyn Write = if stream.starts_with("stderr") {
                &mut *err
            } else {
                &mut *out
            };
            if self.timestamps {
                write!(w, "{t} ")?;
            }
            let text = match stream.ends_with("-partial") {
                true => text.strip_suffix(b"\n").unwrap_or(text),
                false => text,
            };
            w.write_all(text)?;
            w.flush()?;
        }
        Ok(())
    }

    pub(super) fn print_new(
        &mut self,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let r = self.records()?;
        self.print(&r, out, err)
    }
}

pub(super) fn parse_records(bytes: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter_map(|l| {
            let mut it = l.splitn(3, |&b| b == b' ');
            let t = String::from_utf8_lossy(it.next()?).into_owned();
            let s = String::from_utf8_lossy(it.next()?).into_owned();
            Some((t, s, it.next()?.to_vec()))
        })
        .collect()
}

pub(crate) fn logs(g: &Global, a: LogsArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let s = find(&root, &a.container)?;
    let dir = ctr_dir(&root, &s.id);
    let mut bytes = std::fs::read(dir.join("ctr.log.1")).unwrap_or_default();
    let mut reader = LogReader {
        path: dir.join("ctr.log"),
        offset: 0,
        timestamps: a.timestamps,
    };
    let mut recs = parse_records(&std::mem::take(&mut bytes));
    recs.extend(reader.records()?);
    if a.tail != "all" {
        let n: usize = a
            .tail
            .parse()
            .with_context(|| format!("invalid --tail {:?}: a number or all", a.tail))?;
        let skip = recs.len().saturating_sub(n);
        recs.drain(..skip);
    }
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    reader.print(&recs, &mut out, &mut err)?;
    if a.follow {
        loop {
            let alive = monitor_alive(&root, &s.id);
            reader.print_new(&mut out, &mut err)?;
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(0)
}

/// The bounded log: `<time> <stream> <text>` lines.
pub(super) struct LogWriter {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    limit: u64,
}

impl LogWriter {
    pub(super) fn open(dir: &Path) -> anyhow::Result<LogWriter> {
        let path = dir.join("ctr.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path,
            file,
            size,
            limit: LOG_LIMIT,
        })
    }

    fn line(&mut self, stream: &str, text: &[u8]) {
        if self.size > self.limit {
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
            if let Ok(f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                self.file = f;
                self.size = 0;
            }
        }
        // A record without its own newline (output that does not end in
        // one) is marked partial: readers drop the newline added here.
        let partial = if text.ends_with(b"\n") {
            ""
        } else {
            "-partial"
        };
        let mut rec = format!("{} {stream}{partial} ", now()).into_bytes();
        rec.extend_from_slice(text);
        if !partial.is_empty() {
            rec.push(b'\n');
        }
        if self.file.write_all(&rec).is_ok() {
            self.size += rec.len() as u64;
        }
    }
}

pub(super) fn pump(
    r: std::io::PipeReader,
    stream: &'static str,
    log: &std::sync::Mutex<LogWriter>,
) {
    let mut r = std::io::BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if let Ok(mut l) = log.lock() {
                    l.line(stream, &buf);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_bounded_and_partial_lines_stay_exact() {
        let t = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(t.path()).unwrap();
        w.limit = 1000;
        for i in 0..100 {
            w.line("stdout", format!("line {i}\n").as_bytes());
        }
        w.line("stderr", b"no newline");
        let cur = std::fs::metadata(t.path().join("ctr.log")).unwrap().len();
        let old = std::fs::metadata(t.path().join("ctr.log.1")).unwrap().len();
        assert!(cur <= 1100 && old <= 1100, "{cur} {old}");
        let mut r = LogReader {
            path: t.path().join("ctr.log"),
            offset: 0,
            timestamps: false,
        };
        let recs = r.records().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        r.print(&recs, &mut out, &mut err).unwrap();
        assert!(String::from_utf8_lossy(&out).ends_with("line 99\n"));
        assert_eq!(err, b"no newline");
    }

    #[test]
    fn log_records_round_trip() {
        let r = parse_records(b"2026-01-01T00:00:00Z stdout hello world\n2026 stderr x\n");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].2, b"hello world\n");
        assert_eq!(r[1].1, "stderr");
    }
}
