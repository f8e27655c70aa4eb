//! Hostile and large inputs: planning cost, nesting depth, expansion size.
//! Bad input gets a located error, never a panic, a stack overflow or an
//! abort on allocation.

use std::sync::mpsc;
use std::time::Duration;

use strata_frontend::{parse, plan, BuildOptions, Error, Plan, StageScope};

/// Runs `f` on a thread with a normal 2 MiB stack and fails if it takes
/// longer than `limit` (the thread is left behind; the test binary exits).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn");
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("did not finish within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the worker thread panicked"),
    }
}

fn plan_of(text: &str) -> Result<Plan, Error> {
    plan(&parse(text, "Dockerfile")?, &BuildOptions::default())
}

/// Plans and resolves every step of every stage, as `strata check` does.
fn check(text: &str) -> Result<(), Error> {
    let p = plan_of(text)?;
    for s in &p.stages {
        let mut scope = StageScope::new(&p, s.index, &p.known_base_env(s.index));
        for step in &s.steps {
            scope.resolve(step)?;
        }
    }
    Ok(())
}

#[test]
fn two_thousand_chained_stages_plan_quickly() {
    let mut text = String::from("FROM busybox AS s0\nARG A0=x\n");
    for i in 1..2000 {
        text.push_str(&format!("FROM s{} AS s{i}\nRUN true\n", i - 1));
    }
    // The old planner replayed every ancestor for every stage (cubic):
    // 3.5 s for 500 stages, more than 300 s for 2,000.
    let p = within(Duration::from_secs(20), move || {
        check(&text).unwrap();
        plan_of(&text).unwrap()
    });
    assert_eq!(p.stages.len(), 2000);
    assert_eq!(p.build_order().len(), 2000);
    assert_eq!(p.stages[1999].depends_on, vec![1998]);
    // ARGs and ENV flow down the whole chain.
    let scope = StageScope::new(&p, 1999, &p.known_base_env(1999));
    assert_eq!(scope.lookup("A0").as_deref(), Some("x"));
}

fn check_err(text: String) -> String {
    within(Duration::from_secs(60), move || check(&text))
        .expect_err("hostile input must be an error")
        .to_string()
}

#[test]
fn doubling_env_stops_at_the_word_limit_with_the_line() {
    let mut text = String::from("FROM busybox\nENV A=x\n");
    for _ in 0..40 {
        text.push_str("ENV A=$A$A\n");
    }
    // 2^21 bytes is the first value over 1 MiB: the 21st doubling, line 23.
    let e = check_err(text);
    assert!(e.starts_with("Dockerfile:23:1: "), "{e}");
    assert!(e.contains("larger than 1 MiB"), "{e}");
}

#[test]
fn doubling_global_arg_stops_at_the_word_limit() {
    let mut text = String::from("ARG A=x\n");
    for _ in 0..40 {
        text.push_str("ARG A=$A$A\n");
    }
    text.push_str("FROM busybox\n");
    let e = check_err(text);
    assert!(e.starts_with("Dockerfile:22:1: "), "{e}");
    assert!(e.contains("larger than 1 MiB"), "{e}");
}

/// `ENV A=<1 MiB>` built by doubling from a 1-byte value (20 steps).
fn one_mib_env() -> String {
    let mut text = String::from("FROM busybox\nENV A=x\n");
    for _ in 0..20 {
        text.push_str("ENV A=$A$A\n");
    }
    text
}

#[test]
fn total_env_label_and_arg_bytes_are_bounded() {
    let base = one_mib_env(); // 22 lines
    let e = check_err(format!("{base}ENV B=$A\nENV C=$A\nENV D=$A\n"));
    assert!(e.starts_with("Dockerfile:25:1: ENV: "), "{e}");
    assert!(e.contains("more than the limit of 4 MiB"), "{e}");

    let e = check_err(format!("{base}LABEL a=$A b=$A\nLABEL c=$A d=$A e=$A\n"));
    assert!(e.starts_with("Dockerfile:24:1: LABEL: "), "{e}");
    assert!(e.contains("more than the limit of 4 MiB"), "{e}");

    let e = check_err(format!("{base}ARG a=$A b=$A\nARG c=$A d=$A e=$A\n"));
    assert!(e.starts_with("Dockerfile:24:1: ARG: "), "{e}");

    // Pattern replacement cannot multiply past the limit either.
    let e = check_err(format!(
        "FROM busybox\nENV A={}\nENV B=${{A//?/$A}}\n",
        "y".repeat(2048)
    ));
    assert!(e.starts_with("Dockerfile:3:1: "), "{e}");
    assert!(e.contains("larger than 1 MiB"), "{e}");
}

fn nested(depth: usize) -> String {
    format!("{}x{}", "${x:-".repeat(depth), "}".repeat(depth))
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = nested(10_000);
    for (line, text) in [
        (2, format!("FROM busybox\nENV A={deep}\n")),
        (1, format!("FROM {deep}\n")),
        (2, format!("FROM busybox\nWORKDIR /{deep}\n")),
        (1, format!("ARG V={deep}\nFROM busybox\n")),
        (2, format!("FROM busybox\nCOPY <<EOF /f\n{deep}\nEOF\n")),
        (
            2,
            format!("FROM busybox\nRUN --mount=type=cache,target=/{deep} true\n"),
        ),
    ] {
        let e = check_err(text);
        assert!(e.contains("nested more than 64 levels deep"), "{e}");
        assert!(e.starts_with(&format!("Dockerfile:{line}:")), "{e}");
        // The 60 KB line is not repeated in full.
        assert!(e.len() < 1000, "{} bytes: {}", e.len(), &e[..300]);
    }
    // 64 levels are fine, on an ordinary thread stack.
    let ok = nested(64);
    within(Duration::from_secs(20), move || {
        check(&format!("FROM busybox\nENV A={ok}\nWORKDIR /$A\n")).unwrap()
    });
}

#[test]
fn onbuild_chained_ten_thousand_times_is_refused_without_recursion() {
    let text = format!("FROM busybox\n{}RUN true\n", "ONBUILD ".repeat(10_000));
    let e = check_err(text);
    assert!(e.starts_with("Dockerfile:2:1: "), "{e}");
    assert!(
        e.contains("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        "{e}"
    );
}

#[test]
fn pattern_operators_stay_linear_on_large_values() {
    let mut text = String::from("FROM busybox\nENV A=a\n");
    for _ in 0..17 {
        text.push_str("ENV A=$A$A\n"); // 128 KiB
    }
    text.push_str("ENV B=${A//*x/y} C=${A%*x} D=${A%%*x} E=${A/a*x/y}\n");
    // Trying every start was quadratic: (2^17)^2 steps per operator.
    within(Duration::from_secs(30), move || check(&text).unwrap());
}

#[test]
fn deeply_nested_json_forms_do_not_overflow() {
    let deep = "[".repeat(10_000);
    for inst in ["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "VOLUME"] {
        let text = format!("FROM busybox\n{inst} {deep}\n");
        // Not a JSON array of strings: the shell form (or a located error).
        let _ = within(Duration::from_secs(20), move || {
            let r = check(&text);
            if let Err(e) = &r {
                assert!(e.to_string().starts_with("Dockerfile:2:"), "{e}");
            }
            r.is_ok()
        });
    }
}

/// An ignore file that is a FIFO (or a directory) is refused with its
/// kind, never skipped and never read (a FIFO nobody writes to would block
/// the read forever); a regular one is read.
#[test]
fn ignore_file_that_is_not_a_regular_file_is_refused_not_read() {
    let dir = std::env::temp_dir().join(format!("strata-ignore-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let df = dir.join("Dockerfile");
    std::fs::write(&df, "FROM scratch\n").unwrap();
    let ign = dir.join(".dockerignore");
    let st = std::process::Command::new("mkfifo")
        .arg(&ign)
        .status()
        .unwrap();
    assert!(st.success());
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (df, dir) = (df.clone(), dir.clone());
        std::thread::spawn(move || {
            let _ = tx.send(strata_frontend::ignore::load(&df, &dir).map_err(|e| e.to_string()));
        });
    }
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("reading a FIFO .dockerignore blocked");
    let e = r.unwrap_err();
    assert!(e.contains(".dockerignore") && e.contains("FIFO"), "{e}");
    std::fs::remove_file(&ign).unwrap();
    std::fs::create_dir(&ign).unwrap();
    let e = strata_frontend::ignore::load(&df, &dir)
        .unwrap_err()
        .to_string();
    assert!(e.contains("directory"), "{e}");
    std::fs::remove_dir(&ign).unwrap();
    std::fs::write(&ign, "*.log\n").unwrap();
    assert_eq!(
        strata_frontend::ignore::load(&df, &dir).unwrap(),
        vec!["*.log"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
