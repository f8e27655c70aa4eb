//! `strata top CONTAINER`: the container's processes in `ps -ef` columns.
//! They are the processes of the container's PID namespace (its init's
//! `/proc/PID/ns/pid`), which covers `exec`ed ones too and needs neither
//! runc nor a particular cgroup layout.

use std::path::Path;

use anyhow::bail;

use super::ctr;
use super::Global;

#[derive(clap::Args, Debug)]
pub(crate) struct TopArgs {
    /// The container
    pub container: String,
}

fn ns_of(pid: &str) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

fn boot_time() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// One `ps -ef` row of `pid`, or None when it is gone.
fn row(pid: &str, ticks: u64, btime: u64, now: u64) -> Option<[String; 8]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let comm = &stat[stat.find('(')? + 1..close];
    // Fields after the comm, starting at field 3 (state).
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    let num = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ppid = num(4);
    let tty = num(7);
    let cpu = num(14) + num(15);
    let start = btime + num(22) / ticks.max(1);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        String::from_utf8_lossy(cmdline.strip_suffix(b"\0").unwrap_or(&cmdline)).replace('\0', " ")
    };
    let elapsed = now.saturating_sub(start).max(1);
    let c = (cpu / ticks.max(1)) * 100 / elapsed;
    let stime = time::OffsetDateTime::from_unix_timestamp(start as i64)
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_else(|_| "?".into());
    let tty = if tty == 0 {
        "?".to_string()
    } else if (tty >> 8) & 0xfff == 136 {
        format!("pts/{}", (tty & 0xff) | ((tty >> 12) & 0xfff00))
    } else {
        format!("{}", tty)
    };
    let secs = cpu / ticks.max(1);
    let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    Some([
        user_name(uid),
        pid.to_string(),
        ppid.to_string(),
        c.to_string(),
        stime,
        tty,
        time,
        cmd,
    ])
}

/// The rows of the processes in the PID namespace of `init`.
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn rows(init: u32) -> anyhow::Result<Vec<[String; 8]>> {
    let Some(ns) = ns_of(&init.to_string()) else {
        bail!("cannot read the PID namespace of the container's init ({init})");
    };
    // SAFETY: plain libc call.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let btime = boot_time();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut pids: Vec<u64> = std::fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort();
    Ok(pids
        .into_iter()
        .map(|p| p.to_string())
        .filter(|p| ns_of(p).as_ref() == Some(&ns))
        .filter_map(|p| row(&p, ticks, btime, now))
        .collect())
}

pub(crate) fn top(g: &Global, a: TopArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let s = ctr::find_container(&root, &a.container)?;
    if s.status != "running" || s.pid == 0 || !Path::new(&format!("/proc/{}", s.pid)).exists() {
        bail!("container {} is not running", s.name);
    }
    let header = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"].map(String::from);
    let mut all = vec![header];
    all.extend(rows(s.pid)?);
    let mut widths = [0usize; 8];
    for r in &all {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &all {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i == 7 {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    print!("{out}");
    Ok(0)
}
