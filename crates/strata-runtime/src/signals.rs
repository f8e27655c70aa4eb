//! Forwarding SIGINT, SIGTERM, SIGHUP and SIGQUIT to running containers.
//!
//! While at least one container runs, process-wide handlers record the
//! signals this process receives (they no longer kill it); each run loop
//! polls for them and passes signals on to its runc. The previous
//! handlers are restored when the last container ends.
//!
//! A signal the terminal sends (Ctrl-C: `si_code == SI_KERNEL`) already
//! reached runc, which is in our foreground process group, and runc forwards
//! it to the container itself; it is counted but not sent again. A signal
//! sent with `kill` to our pid only is forwarded.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

/// The signals we forward.
pub const FORWARDED: &[i32] = &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

static COUNT: AtomicU64 = AtomicU64::new(0);
/// Bits 0..8: last signal number; bit 8: it came from the terminal (kernel).
static LAST: AtomicI32 = AtomicI32::new(0);

struct Installed {
    users: usize,
    saved: Vec<(i32, libc::sigaction)>,
}

static STATE: Mutex<Installed> = Mutex::new(Installed {
    users: 0,
    saved: Vec::new(),
});

#[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    LAST.store(sig | if from_kernel { 0x100 } else { 0 }, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// How many forwarded signals this process received while a container
/// ran. Two readings that differ tell a caller (the build's progress
/// display) that the user interrupted a run: the container's own exit
/// status (130 for Ctrl-C) is then a cancellation, not a failure.
pub fn received_count() -> u64 {
    COUNT.load(Ordering::SeqCst)
}

/// Keeps the handlers installed while alive.
pub(crate) struct Guard(());

impl Guard {
    #[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
    pub(crate) fn install() -> Guard {
        let mut st = STATE.lock().unwrap_or_else(|p| p.into_inner());
        if st.users == 0 {
            for &sig in FORWARDED {
                // SAFETY: plain sigaction calls with a zeroed, filled-in struct.
                unsafe {
                    let mut act: libc::sigaction = std::mem::zeroed();
                    act.sa_sigaction = on_signal as *const () as usize;
                    act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                    libc::sigemptyset(&mut act.sa_mask);
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(sig, &act, &mut old) == 0 {
                        st.saved.push((sig, old));
                    }
                }
            }
        }
        st.users += 1;
        Guard(())
    }
}

impl Drop for Guard {
    #[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
    fn drop(&mut self) {
        let mut st = STATE.lock().unwrap_or_else(|p| p.into_inner());
        st.users -= 1;
        if st.users == 0 {
            for (sig, old) in st.saved.drain(..) {
                // SAFETY: restores the action saved by `install`.
                unsafe {
                    libc::sigaction(sig, &old, std::ptr::null_mut());
                }
            }
        }
    }
}

/// One received signal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub signal: i32,
    /// Sent by the terminal to the whole foreground process group.
    pub from_terminal: bool,
}

/// Tracks which signals a single run has seen.
pub(crate) struct Watch {
    seen: u64,
}

impl Watch {
    pub(crate) fn new() -> Watch {
        Watch {
            seen: COUNT.load(Ordering::SeqCst),
        }
    }

    /// The latest signal received since the previous poll, if any.
    pub(crate) fn poll(&mut self) -> Option<Received> {
        let now = COUNT.load(Ordering::SeqCst);
        if now == self.seen {
            return None;
        }
        self.seen = now;
        let last = LAST.load(Ordering::SeqCst);
        Some(Received {
            signal: last & 0xff,
            from_terminal: last & 0x100 != 0,
        })
    }
}
