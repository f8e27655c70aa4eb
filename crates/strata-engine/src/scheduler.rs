//! The stage DAG scheduler: runs each node once all its dependencies are
//! done, independent nodes in parallel on a bounded pool of std threads.
//! The first failure cancels the rest: no new node starts, running nodes see
//! the cancel flag (and may stop early), and that first error is returned.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// Shared cancellation flag. Work functions should poll it between steps.
#[derive(Debug, Default)]
pub(crate) struct Cancel(AtomicBool);

impl Cancel {
    pub(crate) fn new() -> Cancel {
        Cancel(AtomicBool::new(false))
    }
    pub(crate) fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The default pool size: the machine's available parallelism.
pub(crate) fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1)
}

struct State<T, E> {
    pending: BTreeSet<usize>,
    running: usize,
    done: BTreeMap<usize, T>,
    error: Option<E>,
}

/// Runs `nodes` (each with the dependencies given by `deps`, which must all
/// be in `nodes`) with at most `parallelism` at once. `work(node, deps_results)`
/// gets the results of the node's dependencies. Returns every node's result,
/// or the first error.
pub(crate) fn run_dag<T, E, F>(
    nodes: &[usize],
    deps: &BTreeMap<usize, Vec<usize>>,
    parallelism: usize,
    cancel: &Cancel,
    work: F,
) -> Result<BTreeMap<usize, T>, E>
where
    T: Clone + Send,
    E: Send,
    F: Fn(usize, &BTreeMap<usize, T>) -> Result<T, E> + Sync,
{
    let state: Mutex<State<T, E>> = Mutex::new(State {
        pending: nodes.iter().copied().collect(),
        running: 0,
        done: BTreeMap::new(),
        error: None,
    });
    let wake = Condvar::new();
    let no_deps = Vec::new();
    let deps_of = |n: usize| deps.get(&n).unwrap_or(&no_deps);
    let threads = parallelism.max(1).min(nodes.len().max(1));

    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                // Pick a ready node, or leave when nothing is left to do.
                let (node, inputs) = {
                    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        if st.error.is_some() || cancel.is_cancelled() || st.pending.is_empty() {
                            wake.notify_all();
                            return;
                        }
                        let ready = st
                            .pending
                            .iter()
                            .copied()
                            .find(|n| deps_of(*n).iter().all(|d| st.done.contains_key(d)));
                        match ready {
                            Some(n) => {
                                st.pending.remove(&n);
                                st.running += 1;
                                let inputs: BTreeMap<usize, T> = deps_of(n)
                                    .iter()
                                    .map(|d| (*d, st.done[d].clone()))
                                    .collect();
                                break (n, inputs);
                            }
                            None if st.running == 0 => {
                                // Unsatisfiable dependencies (a dependency
                                // outside `nodes`): nothing can ever run.
                                st.pending.clear();
                                wake.notify_all();
                                return;
                            }
                            None => {
                                st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
                            }
                        }
                    }
                };
                let result = work(node, &inputs);
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                st.running -= 1;
                match result {
                    Ok(v) => {
                        st.done.insert(node, v);
                    }
                    Err(e) => {
                        if st.error.is_none() {
                            st.error = Some(e);
                        }
                        cancel.cancel();
                    }
                }
                wake.notify_all();
            });
        }
    });

    let st = state.into_inner().unwrap_or_else(|p| p.into_inner());
    match st.error {
        Some(e) => Err(e),
        None => Ok(st.done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn runs_dependencies_first_and_in_parallel() {
        // 0 and 1 independent, 2 depends on both.
        let deps = BTreeMap::from([(2, vec![0, 1])]);
        let start = Instant::now();
        let out = run_dag(&[0, 1, 2], &deps, 2, &Cancel::new(), |n, inputs| {
            if n < 2 {
                std::thread::sleep(Duration::from_millis(200));
                Ok::<_, String>(n * 10)
            } else {
                Ok(inputs.values().sum::<usize>() + 1)
            }
        })
        .unwrap();
        assert_eq!(out[&2], 11);
        assert!(start.elapsed() < Duration::from_millis(390));
    }

    #[test]
    fn first_error_cancels_the_rest() {
        let deps = BTreeMap::from([(1, vec![0]), (2, vec![1])]);
        let ran = Mutex::new(Vec::new());
        let err = run_dag(&[0, 1, 2], &deps, 4, &Cancel::new(), |n, _| {
            ran.lock().unwrap().push(n);
            if n == 1 {
                Err(format!("node {n} failed"))
            } else {
                Ok(n)
            }
        })
        .unwrap_err();
        assert_eq!(err, "node 1 failed");
        assert_eq!(*ran.lock().unwrap(), vec![0, 1]);
    }
}
