//! When each cluster is reconciled: one worker per cluster, so runs of one cluster never
//! overlap, and a semaphore bounds how many clusters run at once.
//!
//! A worker runs on its timer (every `interval` after its last run: the safety net), when
//! asked (a valid webhook), or when the runner says new evidence calls for it (the nodes'
//! answers moved the decision). Requests are a [`Notify`] permit: however many arrive while a
//! run is in flight, they leave one permit, so exactly one follow-up run is queued. Each requester
//! waits on a oneshot for the outcome of the first run that *starts* after its request, the
//! run that is guaranteed to have seen the state it was told about.
//!
//! The worker knows nothing of Patroni, AWS or metrics: a [`Runner`] does the run.
//!
//! Each worker is a task of its own (`tokio::spawn`), so a slow run of one cluster never
//! delays another's timer or webhook; `start` returns a future that ends when every worker
//! has.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tokio::time::Instant;

/// Why a run happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The watch loop's timer.
    Timer,
    /// One or more webhooks; the latest leader claim among them, if any.
    Webhook { claimed_leader: Option<String> },
    /// New answers from the nodes moved the decision.
    Evidence,
}

impl Trigger {
    pub fn label(&self) -> &'static str {
        match self {
            Trigger::Timer => "timer",
            Trigger::Webhook { .. } => "webhook",
            Trigger::Evidence => "evidence",
        }
    }
}

/// Does one run of one cluster. Its output goes to every requester the run covers.
pub trait Runner: Send + Sync + 'static {
    type Output: Clone + Send + 'static;
    fn run(&self, scope: &str, trigger: &Trigger) -> impl Future<Output = Self::Output> + Send;

    /// Resolves when new evidence calls for a run of `scope` (never, by default).
    fn evidence(&self, _scope: &str) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// Requests waiting for the next run.
struct Pending<O> {
    waiters: Vec<oneshot::Sender<O>>,
    /// Set by a request: the next run is a webhook run.
    requested: bool,
    claimed_leader: Option<String>,
    /// The worker has stopped: requests are answered at once by dropping their sender.
    closed: bool,
}

impl<O> Default for Pending<O> {
    fn default() -> Self {
        Pending {
            waiters: Vec::new(),
            requested: false,
            claimed_leader: None,
            closed: false,
        }
    }
}

impl<O> Pending<O> {
    /// The trigger of the run that takes these requests.
    fn trigger(&self) -> Trigger {
        if self.requested {
            Trigger::Webhook {
                claimed_leader: self.claimed_leader.clone(),
            }
        } else {
            Trigger::Timer
        }
    }
}

/// One cluster's queue.
pub struct Worker<O> {
    notify: Notify,
    pending: Mutex<Pending<O>>,
}

impl<O> Worker<O> {
    fn new() -> Worker<O> {
        Worker {
            notify: Notify::new(),
            pending: Mutex::new(Pending::default()),
        }
    }

    /// Ask for a run; the receiver gets the outcome of the first run that starts after this.
    /// A later claim replaces an earlier one; no claim keeps the earlier one.
    fn request(&self, claimed_leader: Option<String>) -> oneshot::Receiver<O> {
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.closed {
                return rx;
            }
            p.waiters.push(tx);
            p.requested = true;
            if claimed_leader.is_some() {
                p.claimed_leader = claimed_leader;
            }
        }
        // One stored permit at most: many requests during a run make one follow-up.
        self.notify.notify_one();
        rx
    }

    /// Ask for a timer-like run (no waiter, no claim) as soon as the worker is free.
    fn nudge(&self) {
        self.notify.notify_one();
    }

    fn take(&self) -> Pending<O> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Refuse further requests and drop the queued ones (their receivers see an error).
    fn close(&self) {
        let queued = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.closed = true;
            std::mem::take(&mut p.waiters)
        };
        drop(queued);
    }
}

/// The workers of every configured cluster.
pub struct Scheduler<O> {
    workers: BTreeMap<String, Arc<Worker<O>>>,
}

impl<O: Clone + Send + 'static> Scheduler<O> {
    /// One worker per scope, and the future that drives them all; the first run of each is
    /// immediate. The future ends when `shutdown` turns true and the runs in flight are done
    /// (queued requests are dropped: their receivers see the sender gone).
    pub fn start<R: Runner<Output = O>>(
        scopes: &[String],
        runner: Arc<R>,
        interval: Duration,
        max_parallel: usize,
        shutdown: watch::Receiver<bool>,
    ) -> (Arc<Scheduler<O>>, impl Future<Output = ()> + use<R, O>) {
        let limit = Arc::new(Semaphore::new(max_parallel.max(1)));
        let mut tasks = Vec::new();
        let mut workers = BTreeMap::new();
        for scope in scopes {
            let worker = Arc::new(Worker::new());
            workers.insert(scope.clone(), Arc::clone(&worker));
            tasks.push(tokio::spawn(work(
                scope.clone(),
                worker,
                Arc::clone(&runner),
                Arc::clone(&limit),
                interval,
                shutdown.clone(),
            )));
        }
        let all = async move {
            // A worker that panicked has stopped; the others go on until the shutdown.
            join_all(tasks).await;
        };
        (Arc::new(Scheduler { workers }), all)
    }

    /// Queue a run of `scope` (None: not a configured cluster).
    pub fn request(
        &self,
        scope: &str,
        claimed_leader: Option<String>,
    ) -> Option<oneshot::Receiver<O>> {
        self.workers.get(scope).map(|w| w.request(claimed_leader))
    }

    /// Run `scope` soon, as its timer would (what AWS holds changed under it).
    pub fn nudge(&self, scope: &str) {
        if let Some(w) = self.workers.get(scope) {
            w.nudge();
        }
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // A dropped sender counts as a shutdown too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn work<R: Runner>(
    scope: String,
    worker: Arc<Worker<R::Output>>,
    runner: Arc<R>,
    limit: Arc<Semaphore>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    // The first run is the timer's, at once (a zero sleep may lose the race to evidence).
    let mut due = None;
    loop {
        let mut by_evidence = false;
        if let Some(due) = due {
            tokio::select! {
                biased;
                () = stopped(&mut shutdown) => break,
                () = worker.notify.notified() => {}
                () = tokio::time::sleep_until(due) => {}
                () = runner.evidence(&scope) => by_evidence = true,
            }
        }
        let permit = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            p = limit.acquire() => p,
        };
        // Requests made until now are covered by this run; later ones wait for the next.
        let pending = worker.take();
        let trigger = match pending.trigger() {
            Trigger::Timer if by_evidence => Trigger::Evidence,
            t => t,
        };
        // Not raced against the shutdown: the run in flight always finishes.
        let output = runner.run(&scope, &trigger).await;
        drop(permit);
        for waiter in pending.waiters {
            let _ = waiter.send(output.clone());
        }
        due = Some(Instant::now() + interval);
    }
    // Requests queued for a run that will not happen: dropping their senders answers them.
    worker.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs take `delay`, count themselves, and record the most that ever overlapped per
    /// scope and overall.
    #[derive(Default)]
    struct Fake {
        delay: Duration,
        runs: Mutex<Vec<(String, Trigger)>>,
        in_flight: Mutex<BTreeMap<String, usize>>,
        max_same_scope: AtomicUsize,
        total: AtomicUsize,
        max_total: AtomicUsize,
    }

    impl Runner for Fake {
        type Output = usize;
        async fn run(&self, scope: &str, trigger: &Trigger) -> usize {
            let now = {
                let mut f = self.in_flight.lock().unwrap();
                let n = f.entry(scope.to_string()).or_default();
                *n += 1;
                *n
            };
            self.max_same_scope.fetch_max(now, Ordering::SeqCst);
            let t = self.total.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_total.fetch_max(t, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.total.fetch_sub(1, Ordering::SeqCst);
            *self.in_flight.lock().unwrap().get_mut(scope).unwrap() -= 1;
            let mut runs = self.runs.lock().unwrap();
            runs.push((scope.to_string(), trigger.clone()));
            runs.len()
        }
    }

    fn scopes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[tokio::test]
    async fn requests_during_a_run_queue_exactly_one_follow_up() {
        let fake = Arc::new(Fake {
            delay: Duration::from_millis(400),
            ..Fake::default()
        });
        let (_tx, rx) = watch::channel(false);
        let (s, tasks) = Scheduler::start(
            &scopes(1),
            Arc::clone(&fake),
            Duration::from_secs(3600),
            4,
            rx,
        );
        tokio::spawn(tasks);
        // The first (timer) run starts at once and takes 400 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let a = s.request("c0", Some("pg1".into())).unwrap();
        let b = s.request("c0", None).unwrap();
        let c = s.request("c0", Some("pg2".into())).unwrap();
        // All three were made during run 1: all get run 2's outcome.
        assert_eq!((a.await, b.await, c.await), (Ok(2), Ok(2), Ok(2)));
        tokio::time::sleep(Duration::from_millis(600)).await;
        let runs = fake.runs.lock().unwrap().clone();
        assert_eq!(
            runs,
            vec![
                ("c0".into(), Trigger::Timer),
                (
                    "c0".into(),
                    Trigger::Webhook {
                        claimed_leader: Some("pg2".into())
                    }
                ),
            ],
            "one follow-up, with the latest claim, and no extra run"
        );
        assert_eq!(fake.max_same_scope.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_request_on_an_idle_worker_runs_at_once() {
        let fake = Arc::new(Fake {
            delay: Duration::from_millis(10),
            ..Fake::default()
        });
        let (_tx, rx) = watch::channel(false);
        let (s, tasks) = Scheduler::start(
            &scopes(1),
            Arc::clone(&fake),
            Duration::from_secs(3600),
            4,
            rx,
        );
        let _tasks = tokio::spawn(tasks);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        assert_eq!(s.request("c0", None).unwrap().await, Ok(2));
        assert!(started.elapsed() < Duration::from_millis(300));
        assert!(s.request("nope", None).is_none());
    }

    #[tokio::test]
    async fn the_timer_runs_every_interval_after_the_last_run() {
        let fake = Arc::new(Fake {
            delay: Duration::from_millis(50),
            ..Fake::default()
        });
        let (_tx, rx) = watch::channel(false);
        let (_s, tasks) = Scheduler::start(
            &scopes(1),
            Arc::clone(&fake),
            Duration::from_millis(200),
            4,
            rx,
        );
        let _tasks = tokio::spawn(tasks);
        // Runs start at 0, 250, 500, 750 ms (and end 50 ms later): 4, give or take a
        // late wake-up on a busy machine.
        tokio::time::sleep(Duration::from_millis(900)).await;
        let n = fake.runs.lock().unwrap().len();
        assert!((3..=4).contains(&n), "{n} runs");
    }

    #[tokio::test]
    async fn clusters_run_in_parallel_up_to_the_bound() {
        let fake = Arc::new(Fake {
            delay: Duration::from_millis(300),
            ..Fake::default()
        });
        let (_tx, rx) = watch::channel(false);
        let (_s, tasks) = Scheduler::start(
            &scopes(5),
            Arc::clone(&fake),
            Duration::from_secs(3600),
            2,
            rx,
        );
        let _tasks = tokio::spawn(tasks);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(fake.max_total.load(Ordering::SeqCst), 2);
        assert_eq!(fake.runs.lock().unwrap().len(), 2, "two done after 300 ms");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(fake.runs.lock().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn shutdown_lets_the_run_in_flight_finish_and_drops_queued_requests() {
        let fake = Arc::new(Fake {
            delay: Duration::from_millis(300),
            ..Fake::default()
        });
        let (tx, rx) = watch::channel(false);
        let (s, tasks) = Scheduler::start(
            &scopes(1),
            Arc::clone(&fake),
            Duration::from_secs(3600),
            4,
            rx,
        );
        let tasks = tokio::spawn(tasks);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let queued = s.request("c0", None).unwrap();
        tx.send(true).unwrap();
        tasks.await.unwrap();
        assert_eq!(
            fake.runs.lock().unwrap().len(),
            1,
            "the run in flight finished"
        );
        assert!(
            queued.await.is_err(),
            "the queued request sees the worker gone"
        );
    }
}
