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
