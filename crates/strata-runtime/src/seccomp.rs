//! The seccomp profile every RUN step and `strata run` container gets.
//!
//! Docker's default profile is an allowlist (about 370 syscalls, everything
//! else `EPERM`). This one is the reverse: allow by default, and refuse what
//! Docker's profile refuses a container with Docker's default capabilities.
//! That closes the same known doors (kernel modules, kexec, keyrings,
//! namespaces and mounts, BPF, perf, userfaultfd, io_uring, file handles,
//! clock setting, obsolete syscalls) but, unlike Docker, lets through
//! syscalls added to the kernel after this list was written. The list is
//! taken from moby's `profiles/seccomp/default.json`: every syscall it only
//! allows with a capability outside [`crate::DEFAULT_CAPABILITIES`], plus
//! the ones it never allows.
//!
//! runc resolves names per architecture and skips names a kernel does not
//! have, so the list may name syscalls of other architectures.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::Error;

/// Syscalls that fail with `EPERM` in every container.
pub const BLOCKED_SYSCALLS: &[&str] = &[
    // Kernel modules and kexec (CAP_SYS_MODULE / CAP_SYS_BOOT in Docker).
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    "get_kernel_syms",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    // Keyrings are not namespaced (never allowed by Docker).
    "keyctl",
    "add_key",
    "request_key",
    // Mounts and namespaces (CAP_SYS_ADMIN): no new user namespace in
    // which the process would be root over fresh namespaces of its own.
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "sethostname",
    "setdomainname",
    "quotactl",
    "quotactl_fd",
    "fanotify_init",
    "lookup_dcookie",
    "syslog",
    // Large kernel attack surfaces (CAP_BPF, CAP_PERFMON, never).
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // File handles bypass the mount namespace ("shocker", CAP_DAC_READ_SEARCH).
    "open_by_handle_at",
    // Other processes' memory and files (CAP_SYS_PTRACE). ptrace itself and
    // process_vm_* stay allowed, as in Docker on Linux 4.8+.
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    // Clocks (CAP_SYS_TIME); adjtimex and clock_adjtime only read without it.
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_settime64",
    // Hardware, swap, accounting, NUMA placement, terminals.
    "iopl",
    "ioperm",
    "swapon",
    "swapoff",
    "acct",
    "get_mempolicy",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "mbind",
    "move_pages",
    "migrate_pages",
    "vhangup",
    // Obsolete or never implemented, with a history of bugs.
    "nfsservctl",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "vm86",
    "vm86old",
    "bdflush",
    "afs_syscall",
    "getpmsg",
    "putpmsg",
    "security",
    "tuxcall",
    "vserver",
];

/// Syscalls that fail with `ENOSYS`, so that libc falls back to an older
/// call seccomp can inspect: `clone3` passes its flags in memory, where a
/// filter cannot see the namespace flags (glibc then uses `clone`).
pub const ENOSYS_SYSCALLS: &[&str] = &["clone3"];

/// `clone` flags refused, as Docker refuses them without CAP_SYS_ADMIN:
/// NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (Docker's mask
/// `0x7E020000`). One rule per flag: runc turns several conditions on the
/// same argument into separate (OR-ed) rules, so "any of these bits" is
/// written as one masked-equal rule each.
const CLONE_NS_FLAGS: &[u64] = &[
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// `socket(AF_VSOCK, ...)`: Docker refuses it (host-guest sockets).
const AF_VSOCK: u64 = 40;

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;

fn architectures() -> Vec<Arch> {
    // The native ABI and the compat ones a process could switch to: a
    // denylist that left out the 32-bit ABI would be bypassed through it.
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

fn deny(names: &[&str], errno: u32) -> Result<LinuxSyscall, Error> {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno)
        .build()
        .map_err(Error::spec)
}

fn deny_if(
    name: &str,
    op: LinuxSeccompOperator,
    value: u64,
    two: u64,
) -> Result<LinuxSyscall, Error> {
    let arg = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(value)
        .value_two(two)
        .op(op)
        .build()
        .map_err(Error::spec)?;
    LinuxSyscallBuilder::default()
        .names(vec![name.to_string()])
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .args(vec![arg])
        .build()
        .map_err(Error::spec)
}

/// The profile (see the module doc).
pub fn profile() -> Result<LinuxSeccomp, Error> {
    let mut syscalls = vec![
        deny(BLOCKED_SYSCALLS, EPERM)?,
        deny(ENOSYS_SYSCALLS, ENOSYS)?,
    ];
    // clone's flags are argument 0 on every architecture we list (s390,
    // where they are argument 1, is not among them).
    for &flag in CLONE_NS_FLAGS {
        syscalls.push(deny_if(
            "clone",
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            flag,
            flag,
        )?);
    }
    syscalls.push(deny_if(
        "socket",
        LinuxSeccompOperator::ScmpCmpEq,
        AF_VSOCK,
        0,
    )?);
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(architectures())
        .syscalls(syscalls)
        .build()
        .map_err(Error::spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_is_a_denylist() {
        let json = serde_json::to_value(profile().unwrap()).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        let rules = json["syscalls"].as_array().unwrap();
        assert_eq!(rules[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(rules[0]["errnoRet"], 1);
        let names: Vec<&str> = rules[0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        for n in [
            "keyctl",
            "unshare",
            "mount",
            "bpf",
            "kexec_load",
            "userfaultfd",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        assert_eq!(rules[1]["names"], serde_json::json!(["clone3"]));
        assert_eq!(rules[1]["errnoRet"], 38);
        let clone: Vec<_> = rules
            .iter()
            .filter(|r| r["names"] == serde_json::json!(["clone"]))
            .collect();
        assert_eq!(clone.len(), 7);
        let mask: u64 = clone
            .iter()
            .map(|r| r["args"][0]["value"].as_u64().unwrap())
            .fold(0, |a, b| a | b);
        assert_eq!(mask, 0x7E02_0000, "Docker's namespace mask");
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        // Names are unique (a typo'd duplicate would hide a missing one).
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }
}
