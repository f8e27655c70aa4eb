//! Capabilities: Docker's default set with `--cap-add` and `--cap-drop`
//! applied (`ALL` included).

use super::*;

/// Every capability name the kernel knows (for `--cap-add ALL`).
pub(super) const ALL_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capability set after `--cap-add`/`--cap-drop` (Docker's order:
/// drops apply to the defaults, adds after them; `ALL` in either).
pub fn effective_capabilities(add: &[String], drop: &[String]) -> Result<Vec<String>, Error> {
    let norm = |c: &String| -> Result<String, Error> {
        let n = c.trim().to_ascii_uppercase();
        let n = n.trim_start_matches("CAP_").to_string();
        if n == "ALL" || ALL_CAPABILITIES.contains(&n.as_str()) {
            Ok(n)
        } else {
            Err(Error::InvalidSpec(format!("unknown capability: {c:?}")))
        }
    };
    let add: Vec<String> = add.iter().map(norm).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop.iter().map(norm).collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if drop.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.trim_start_matches("CAP_").to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if add.iter().any(|a| a == "ALL") {
        caps = ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    } else {
        for a in add {
            if !caps.contains(&a) {
                caps.push(a);
            }
        }
    }
    Ok(caps.into_iter().map(|c| format!("CAP_{c}")).collect())
}
