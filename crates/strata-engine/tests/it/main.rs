//! The engine's integration tests: whole builds through
//! `strata_engine::build` against a fake executor ([`fake`]), so no runc,
//! no base image with binaries and no network. Modules per area.
//!
//! They need no root either. A RUN's root filesystem is an overlay mount,
//! which an unprivileged user may make only inside a user namespace of its
//! own; so this binary has its own small runner (`harness = false`) that
//! first enters one through `strata_runtime::enter_user_namespace`, the
//! same call the `strata` binary makes at start (it must happen while the
//! process is still single-threaded, before any test thread exists). As
//! root it does nothing. When the machine cannot give a user namespace at
//! all, every test is skipped with a message saying why.
//!
//! Arguments, as libtest's: `FILTER...` (substrings of test names),
//! `--exact`, `--skip FILTER`, `--list`, `--test-threads N` (or
//! `RUST_TEST_THREADS`), `--ignored` (none is); other flags are ignored.

mod cache_keys;
mod copy_rules;
mod fake;
mod onbuild;
mod rootless;
mod run_steps;
mod scheduling;
mod support;

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A module's tests as `(name, fn)`, names prefixed with the module.
#[macro_export]
macro_rules! tests {
    ($($f:ident),* $(,)?) => {
        pub(crate) const TESTS: &[(&str, fn())] = &[$(
            (concat!(module_path!(), "::", stringify!($f)), $f as fn()),
        )*];
    };
}

struct Args {
    filters: Vec<String>,
    skip: Vec<String>,
    /// `--ignored`: only ignored tests, of which there are none.
    ignored_only: bool,
    exact: bool,
    list: bool,
    threads: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        filters: Vec::new(),
        skip: Vec::new(),
        ignored_only: false,
        exact: false,
        list: false,
        threads: std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--exact" => a.exact = true,
            "--list" => a.list = true,
            "--ignored" => a.ignored_only = true,
            "--skip" => a.skip.extend(it.next()),
            "--test-threads" => a.threads = it.next().and_then(|n| n.parse().ok()).unwrap_or(1),
            s if s.starts_with("--test-threads=") => {
                a.threads = s["--test-threads=".len()..].parse().unwrap_or(1)
            }
            // libtest's other options that take a value: the value is no filter.
            "--color" | "--format" | "--logfile" | "--shuffle-seed" | "-Z" => {
                it.next();
            }
            s if s.starts_with('-') => {}
            s => a.filters.push(s.to_string()),
        }
    }
    a
}

fn main() -> ExitCode {
    let args = parse_args();
    let all = [
        scheduling::TESTS,
        cache_keys::TESTS,
        onbuild::TESTS,
        copy_rules::TESTS,
        run_steps::TESTS,
        rootless::TESTS,
    ];
    let selected: Vec<(&str, fn())> = all
        .iter()
        .flat_map(|t| t.iter())
        .map(|&(name, f)| (name.trim_start_matches("it::"), f))
        .filter(|(name, _)| {
            !args.ignored_only && !args.skip.iter().any(|s| name.contains(s.as_str()))
        })
        .filter(|(name, _)| {
            args.filters.is_empty()
                || args.filters.iter().any(|f| {
                    if args.exact {
                        name == f
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .collect();
    if args.list {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if selected.is_empty() {
        return run(&selected, 1);
    }
    if let Some(why) = enter_user_namespace() {
        eprintln!(
            "\nSKIPPED: all {} engine tests: {why}\n(they need root or an unprivileged user \
             namespace with overlay, Linux 5.11+)\n",
            selected.len()
        );
        return ExitCode::SUCCESS;
    }
    run(&selected, args.threads.max(1))
}

/// Enters strata's user namespace when not root; the reason the tests
/// cannot run, if so.
fn enter_user_namespace() -> Option<String> {
    use strata_runtime::Userns;
    match strata_runtime::enter_user_namespace() {
        Ok(Userns::NotNeeded) => None,
        Ok(u @ (Userns::Range { .. } | Userns::Single { .. } | Userns::Joined { .. })) => {
            if strata_runtime::rootless::kernel_has_userns_overlay() {
                let ids = match u {
                    Userns::Range { .. } => "with the user's subordinate id range",
                    _ => "with only the user's own uid and gid mapped",
                };
                eprintln!("not root: the engine tests run in strata's user namespace ({ids})");
                None
            } else {
                Some("this kernel cannot mount overlay in a user namespace".into())
            }
        }
        Ok(Userns::Disabled) => Some("STRATA_USERNS=0 and not root".into()),
        Ok(Userns::Unavailable { why }) => Some(format!("no user namespace: {why}")),
        Err(e) => Some(format!("entering a user namespace failed: {e}")),
    }
}

/// Runs the tests on `threads` workers, each test on a thread named after
/// it (a panic message names the test); libtest's output format.
fn run(tests: &[(&str, fn())], threads: usize) -> ExitCode {
    println!("\nrunning {} tests", tests.len());
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.min(tests.len()) {
            s.spawn(|| {
                while let Some(&(name, f)) = tests.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let ok = std::thread::Builder::new()
                        .name(name.to_string())
                        .spawn(f)
                        .expect("spawn a test thread")
                        .join()
                        .is_ok();
                    println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
                    if !ok {
                        failed.lock().unwrap().push(name);
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    if failed.is_empty() {
        println!("\ntest result: ok. {} passed\n", tests.len());
        ExitCode::SUCCESS
    } else {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
        println!(
            "\ntest result: FAILED. {} passed; {} failed\n",
            tests.len() - failed.len(),
            failed.len()
        );
        ExitCode::FAILURE
    }
}
