//! Reading the Dockerfile named on the command line.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::FileType;

/// How long [`read_dockerfile`] waits for a pipe's writer.
const PIPE_WAIT_MS: i32 = 2000;

/// Reads a Dockerfile named on the command line without ever hanging on
/// it. A regular file (or a symlink to one) is read. A pipe is read too
/// (`-f <(generate)`, or a named FIFO someone writes to), but only once it
/// has data or its writer closed within 2 s: a FIFO nobody writes to is
/// refused instead of blocking the build forever (the open itself is
/// `O_NONBLOCK`, so it never waits for a writer). Anything else (a
/// directory, a device, a socket) is refused before a byte is read.
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
            #[allow(unsafe_code)]
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
