//! Reading a Dockerfile and turning it into a plan: the one way the
//! build and every command that only looks at a Dockerfile (check, the dry
//! run, suggest, `--call`) go from a path to an AST and a plan.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::FileType;
use strata_frontend::{Ast, BuildOptions, Plan};

/// A Dockerfile's text and the name its diagnostics carry.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// What messages call the file (a path as given, or a file name).
    pub name: String,
    /// The file's text.
    pub text: String,
}

impl Dockerfile {
    /// Reads `path` with [`read_dockerfile`]'s rules; `name` is what the
    /// diagnostics call it.
    pub fn read(path: &Path, name: impl Into<String>) -> io::Result<Dockerfile> {
        Ok(Dockerfile {
            name: name.into(),
            text: read_dockerfile(path)?,
        })
    }

    /// Parses the text.
    pub fn parse(&self) -> Result<Ast, strata_frontend::Error> {
        strata_frontend::parse(&self.text, &self.name)
    }

    /// Parses and plans it with `opts` (build args, target, platform).
    pub fn plan(&self, opts: &BuildOptions) -> Result<(Ast, Plan), strata_frontend::Error> {
        let ast = self.parse()?;
        let plan = strata_frontend::plan(&ast, opts)?;
        Ok((ast, plan))
    }
}

/// How long [`read_dockerfile`] waits for a pipe's writer.
const PIPE_WAIT_MS: i32 = 2000;

/// Reads a Dockerfile named on the command line without ever hanging on
/// it. A regular file (or a symlink to one) is read. A pipe is read too
/// (`-f <(generate)`, or a named FIFO someone writes to), but only once it
/// has data or its writer closed within 2 s: a FIFO nobody writes to is
/// refused instead of blocking the build forever (the open itself is
/// `O_NONBLOCK`, so it never waits for a writer). Anything else (a
/// directory, a device, a socket) is refused before a byte is read.
#[allow(unsafe_code)]
pub fn read_dockerfile(path: &Path) -> io::Result<String> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Fifo => {
            use std::os::fd::AsRawFd;
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for an fd we own.
            let n = unsafe { libc::poll(&mut p, 1, PIPE_WAIT_MS) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "is a FIFO (named pipe) and nothing wrote to it within {} s; \
                         give a regular file, or start the writer first",
                        PIPE_WAIT_MS / 1000
                    ),
                ));
            }
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "is {}, not a regular file or a pipe",
                    strata_store::safe_path::file_kind(st.st_mode as u32)
                ),
            ))
        }
    }
    // A writer is there (or gone after writing): plain blocking reads.
    rustix::fs::fcntl_setfl(&fd, rustix::fs::fcntl_getfl(&fd)? - OFlags::NONBLOCK)?;
    let mut text = String::new();
    File::from(fd).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_fifo_dockerfile_without_a_writer_is_refused_with_one_it_is_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("Dockerfile");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let e = read_dockerfile(&p).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let w = {
            let p = p.clone();
            std::thread::spawn(move || fs::write(p, "FROM scratch\n").unwrap())
        };
        assert_eq!(read_dockerfile(&p).unwrap(), "FROM scratch\n");
        w.join().unwrap();
        assert!(read_dockerfile(d.path()).is_err());
    }

    #[test]
    fn plans_with_its_name_in_diagnostics() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("Dockerfile");
        fs::write(&p, "FROM scratch AS a\nCOPY x /\n").unwrap();
        let df = Dockerfile::read(&p, "my.Dockerfile").unwrap();
        let (_, plan) = df.plan(&BuildOptions::default()).unwrap();
        assert_eq!(plan.stages.len(), 1);
        fs::write(&p, "FROM scratch\nNOPE x\n").unwrap();
        let e = Dockerfile::read(&p, "my.Dockerfile")
            .unwrap()
            .plan(&BuildOptions::default())
            .unwrap_err();
        assert!(e.to_string().contains("my.Dockerfile"), "{e}");
    }
}
