//! The token graph against a reference model (proptest): random sequences
//! of creating and linking sources (1–3 parents), registering and dropping
//! callbacks, cancelling with reasons, and dropping sources. After every
//! step each token's state and reason must match the model, and each
//! callback must have run exactly once if it was registered when
//! cancellation reached it, never otherwise. At the end everything is
//! dropped and the heap must be back where it started (a counting global
//! allocator: no node or registration is left behind).
//!
//! Cases: `PROPTEST_CASES` (default 256 here); CI runs the default.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use taskscope::{CancelReason, CancellationSource, CancellationToken, Registration};

#[path = "support/alloc.rs"]
mod alloc;

#[derive(Clone, Debug)]
enum Op {
    New,
    Link(Vec<usize>),
    Register(usize),
    DropRegistration(usize),
    Cancel(usize, u8),
    DropSource(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::New),
        3 => prop::collection::vec(any::<usize>(), 1..=3).prop_map(Op::Link),
        3 => any::<usize>().prop_map(Op::Register),
        1 => any::<usize>().prop_map(Op::DropRegistration),
        2 => (any::<usize>(), 0u8..4).prop_map(|(i, r)| Op::Cancel(i, r)),
        1 => any::<usize>().prop_map(Op::DropSource),
    ]
}

/// The model of one source.
#[derive(Clone, Debug)]
struct Node {
    parents: Vec<usize>,
    /// Still linked (its source not dropped).
    alive: bool,
    /// (original reason, inherited).
    cancelled: Option<(CancelReason, bool)>,
}

struct Reg {
    node: usize,
    handle: Option<Registration>,
    runs: Arc<AtomicUsize>,
    /// What the model expects the count to be.
    expected: usize,
    /// Still registered (not dropped, not run).
    armed: bool,
}

fn reason(r: u8) -> CancelReason {
    match r {
        0 => CancelReason::requested(),
        1 => CancelReason::Timeout,
        2 => CancelReason::Shutdown,
        _ => CancelReason::message("model"),
    }
}

/// What the model says a token reports.
fn expected_reason(node: &Node) -> Option<CancelReason> {
    node.cancelled.as_ref().map(|(root, inherited)| {
        if *inherited && !root.is_inherited() {
            CancelReason::Ancestor(Arc::new(root.clone()))
        } else {
            root.clone()
        }
    })
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model: Vec<Node> = Vec::new();
    let mut sources: Vec<Option<CancellationSource>> = Vec::new();
    let mut tokens: Vec<CancellationToken> = Vec::new();
    let mut regs: Vec<Reg> = Vec::new();

    for op in ops.iter().cloned() {
        match op {
            Op::New => {
                let source = CancellationSource::new();
                tokens.push(source.token());
                sources.push(Some(source));
                model.push(Node {
                    parents: vec![],
                    alive: true,
                    cancelled: None,
                });
            }
            Op::Link(picks) if !model.is_empty() => {
                let parents: Vec<usize> = picks.iter().map(|p| p % model.len()).collect();
                let parent_tokens: Vec<&CancellationToken> =
                    parents.iter().map(|&p| &tokens[p]).collect();
                let source = CancellationSource::linked(parent_tokens);
                // The first cancelled parent, in order, cancels the new source.
                let cancelled = parents
                    .iter()
                    .find_map(|&p| model[p].cancelled.clone())
                    .map(|(root, _)| (root, true));
                tokens.push(source.token());
                sources.push(Some(source));
                model.push(Node {
                    parents,
                    alive: true,
                    cancelled,
                });
            }
            Op::Register(i) if !model.is_empty() => {
                let node = i % model.len();
                let runs = Arc::new(AtomicUsize::new(0));
                let handle = tokens[node].on_cancel({
                    let runs = runs.clone();
                    move |_| {
                        runs.fetch_add(1, Ordering::SeqCst);
                    }
                });
                let inline = model[node].cancelled.is_some();
                regs.push(Reg {
                    node,
                    handle: Some(handle),
                    runs,
                    expected: usize::from(inline),
                    armed: !inline,
                });
            }
            Op::DropRegistration(i) if !regs.is_empty() => {
                let count = regs.len();
                let reg = &mut regs[i % count];
                reg.handle = None;
                reg.armed = false;
            }
            Op::Cancel(i, r) if !model.is_empty() => {
                let start = i % model.len();
                let Some(source) = &sources[start] else {
                    continue;
                };
                let first = model[start].cancelled.is_none();
                prop_assert_eq!(source.cancel_with(reason(r)), first);
                if first {
                    // Breadth first through live descendants not yet cancelled.
                    model[start].cancelled = Some((reason(r), false));
                    let mut queue = std::collections::VecDeque::from([start]);
                    let mut reached = vec![start];
                    while let Some(n) = queue.pop_front() {
                        for (c, child) in model.clone().iter().enumerate() {
                            if child.alive
                                && child.cancelled.is_none()
                                && child.parents.contains(&n)
                            {
                                model[c].cancelled = Some((reason(r), true));
                                reached.push(c);
                                queue.push_back(c);
                            }
                        }
                    }
                    for reg in regs
                        .iter_mut()
                        .filter(|g| g.armed && reached.contains(&g.node))
                    {
                        reg.expected = 1;
                        reg.armed = false;
                    }
                }
            }
            Op::DropSource(i) if !model.is_empty() => {
                let n = i % model.len();
                sources[n] = None;
                model[n].alive = false;
            }
            _ => continue,
        }
        for (n, node) in model.iter().enumerate() {
            prop_assert_eq!(
                tokens[n].is_cancelled(),
                node.cancelled.is_some(),
                "token {}",
                n
            );
            prop_assert_eq!(tokens[n].reason(), expected_reason(node), "token {}", n);
        }
        for (k, reg) in regs.iter().enumerate() {
            prop_assert_eq!(
                reg.runs.load(Ordering::SeqCst),
                reg.expected,
                "callback {}",
                k
            );
        }
    }
    Ok(())
}

/// Runs one callback, so this thread's stack of running callbacks (a
/// thread-local buffer kept for the thread's life) is allocated before the
/// heap is measured.
fn warm_up() {
    let source = CancellationSource::new();
    let _registration = source.token().on_cancel(|_| {});
    source.cancel();
}

proptest! {
    #[test]
    fn token_graph_matches_the_model_and_frees_everything(ops in prop::collection::vec(op(), 1..60)) {
        warm_up();
        let before = alloc::live_bytes();
        run(&ops)?;
        let after = alloc::live_bytes();
        prop_assert_eq!(after, before, "bytes left allocated after dropping everything");
    }
}
