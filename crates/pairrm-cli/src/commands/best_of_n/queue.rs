//! The blocking primitives between the stages: a priority work queue and a gate on lines in
//! flight.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks `mutex`, going on after a panic elsewhere (the state stays consistent: every update is
/// a single assignment).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A blocking queue handing out the smallest item first.
pub struct WorkQueue<T: Ord> {
    state: Mutex<QueueState<T>>,
    ready: Condvar,
}

struct QueueState<T> {
    items: BinaryHeap<Reverse<T>>,
    closed: bool,
}

impl<T: Ord> WorkQueue<T> {
    /// An empty, open queue.
    pub fn new() -> Self {
        WorkQueue { state: Mutex::new(QueueState { items: BinaryHeap::new(), closed: false }), ready: Condvar::new() }
    }

    /// Adds an item (dropped if the queue is closed).
    pub fn push(&self, item: T) {
        let mut state = lock(&self.state);
        if !state.closed {
            state.items.push(Reverse(item));
            self.ready.notify_one();
        }
    }

    /// The smallest item, waiting for one; `None` once the queue is closed.
    pub fn pop(&self) -> Option<T> {
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return None;
            }
            if let Some(Reverse(item)) = state.items.pop() {
                return Some(item);
            }
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Closes the queue: waiting and later [`pop`](Self::pop)s return `None`, items left are dropped.
    pub fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.items.clear();
        self.ready.notify_all();
    }
}

/// Lets at most `limit` lines be in flight (read but not yet written).
pub struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
    limit: usize,
}

struct GateState {
    in_flight: usize,
    closed: bool,
}

impl Gate {
    /// A gate for `limit` lines (at least 1).
    pub fn new(limit: usize) -> Self {
        Gate {
            state: Mutex::new(GateState { in_flight: 0, closed: false }),
            freed: Condvar::new(),
            limit: limit.max(1),
        }
    }

    /// Takes a place, waiting for one; `false` once the gate is closed.
    pub fn enter(&self) -> bool {
        let mut state = lock(&self.state);
        while !state.closed && state.in_flight >= self.limit {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.closed {
            return false;
        }
        state.in_flight += 1;
        true
    }

    /// Gives a place back.
    pub fn leave(&self) {
        let mut state = lock(&self.state);
        state.in_flight = state.in_flight.saturating_sub(1);
        self.freed.notify_one();
    }

    /// Closes the gate: waiting and later [`enter`](Self::enter)s return `false`.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread;

    use super::*;

    #[test]
    fn the_queue_hands_out_the_smallest_first_and_wakes_waiters() {
        let queue = Arc::new(WorkQueue::new());
        for i in [5, 1, 3] {
            queue.push(i);
        }
        assert_eq!([queue.pop(), queue.pop(), queue.pop()], [Some(1), Some(3), Some(5)]);
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let queue = queue.clone();
            thread::spawn(move || {
                tx.send(()).unwrap();
                queue.pop()
            })
        };
        rx.recv().unwrap();
        queue.push(9);
        assert_eq!(waiter.join().unwrap(), Some(9));
    }

    #[test]
    fn closing_the_queue_releases_waiters_and_drops_items() {
        let queue = Arc::new(WorkQueue::<u32>::new());
        let waiter = {
            let queue = queue.clone();
            thread::spawn(move || queue.pop())
        };
        queue.close();
        assert_eq!(waiter.join().unwrap(), None);
        queue.push(1);
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn the_gate_blocks_at_its_limit() {
        let gate = Arc::new(Gate::new(2));
        assert!(gate.enter() && gate.enter());
        let (tx, rx) = mpsc::channel();
        let third = {
            let gate = gate.clone();
            thread::spawn(move || {
                let entered = gate.enter();
                tx.send(entered).unwrap();
                entered
            })
        };
        // Still blocked: nothing was sent.
        assert!(rx.try_recv().is_err());
        gate.leave();
        assert!(rx.recv().unwrap());
        assert!(third.join().unwrap());
        // Closing releases a blocked enter with `false`.
        let fourth = {
            let gate = gate.clone();
            thread::spawn(move || gate.enter())
        };
        gate.close();
        assert!(!fourth.join().unwrap());
        assert!(!gate.enter());
    }
}
