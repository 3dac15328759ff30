//! Dynamic batching: requests wait in a bounded queue; one thread takes them
//! off it, merges those that arrive close together into one model call, and
//! hands each request its own rows back.
//!
//! A call closes when it holds `max_pairs` pairs, when its first request has
//! waited `max_wait` since it was queued, or when no other request is on its
//! way (being checked and tokenised: an [`Arrival`]), whichever comes first.
//! Under load the queue fills while the model runs, so the next call closes at
//! once and full; a request alone does not wait at all, and one whose company
//! is still being tokenised waits at most `max_wait` for it. The model function
//! sorts a call's pairs by length into forward passes, as `predict` sorts a
//! window ([`crate::model::Classifier::proba_encoded`]).
//!
//! The model runs on a thread of its own, not on the async runtime: a forward
//! pass is seconds of blocking CPU work that would stall every connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::metrics::Metrics;
use crate::tokenization::Encoded;

/// How often a waiting call looks again whether its company is still on its way.
const ARRIVAL_POLL: Duration = Duration::from_millis(1);

/// One probability row per pair, in the order the pairs were given.
pub type Probabilities = Vec<Vec<f32>>;

/// What a request gets back: its rows, or why the model failed.
pub type Reply = std::result::Result<Answer, String>;

/// A request's rows and where its time went (for a `Server-Timing` header).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub rows: Probabilities,
    /// From being queued to the start of its model call.
    pub queued: Duration,
    /// The whole model call it was part of.
    pub model: Duration,
}

/// How requests are merged and how many may wait.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Pairs merged into one model call at most (a request is never split, so
    /// one larger than this runs alone).
    pub max_pairs: usize,
    /// How long a request may wait for others to join its call.
    pub max_wait: Duration,
    /// Requests waiting at most; more are refused.
    pub queue: usize,
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds `BatchOptions::queue` requests.
    Full,
    /// The model thread has stopped.
    Stopped,
}

struct Job {
    encoded: Vec<Encoded>,
    queued: Instant,
    reply: oneshot::Sender<Reply>,
    place: Place,
}

/// A request's place in the queue, given back once: when the model thread
/// takes it, or when the request stops waiting (it timed out), so that the
/// queue's bound counts only requests someone still waits for.
#[derive(Clone, Debug)]
struct Place {
    held: Arc<std::sync::atomic::AtomicBool>,
    waiting: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl Place {
    fn give_back(&self) {
        if self.held.swap(false, Ordering::SeqCst) {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            self.metrics.dequeued();
        }
    }
}

/// A queued request's answer to come; dropped unanswered (a request that timed
/// out), it gives its place back at once, and the model thread skips its work.
#[derive(Debug)]
pub struct Waiting {
    rx: oneshot::Receiver<Reply>,
    place: Place,
}

impl std::future::Future for Waiting {
    type Output = Result<Reply, oneshot::error::RecvError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx).poll(cx)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.place.give_back();
    }
}

/// The queue's sending end; dropping every clone stops the model thread once
/// the queue is empty.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
    /// Requests being checked and tokenised, not yet queued.
    arriving: Arc<AtomicUsize>,
    /// Requests queued that someone still waits for, and how many may be.
    waiting: Arc<AtomicUsize>,
    queue: usize,
}

/// A request on its way to the queue, counted until submitted or dropped:
/// while any is, a call waits (up to `max_wait`) for it to join.
pub struct Arrival<'a>(&'a Batcher);

impl Arrival<'_> {
    /// Stops counting the request as on its way, then queues it ([`Batcher::submit`]).
    pub fn submit(self, encoded: Vec<Encoded>) -> Result<Waiting, Refused> {
        let batcher = self.0;
        drop(self);
        batcher.submit(encoded)
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.0.arriving.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Batcher {
    /// Starts the model thread over `model`, which maps a call's pairs to their
    /// probability rows in the same order.
    pub fn start<F>(model: F, options: BatchOptions, metrics: Arc<Metrics>) -> (Self, JoinHandle<()>)
    where
        F: FnMut(&[Encoded]) -> crate::Result<Probabilities> + Send + 'static,
    {
        // Room for as many abandoned jobs as waiting ones, until the model thread skips them.
        let queue = options.queue.max(1);
        let (tx, rx) = sync_channel(2 * queue);
        let arriving = Arc::new(AtomicUsize::new(0));
        let worker = Worker { rx, options, metrics: metrics.clone(), arriving: arriving.clone(), held: None };
        let thread = std::thread::Builder::new()
            .name("stancekit-batcher".into())
            .spawn(move || worker.run(model))
            .expect("spawning the batcher thread");
        (Self { tx, metrics, arriving, waiting: Arc::new(AtomicUsize::new(0)), queue }, thread)
    }

    /// Counts a request as on its way until it is submitted through the
    /// returned guard, or the guard is dropped.
    pub fn arriving(&self) -> Arrival<'_> {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arrival(self)
    }

    /// Queues a request's encoded pairs; what it returns gets its rows.
    pub fn submit(&self, encoded: Vec<Encoded>) -> Result<Waiting, Refused> {
        let queue = self.queue;
        if self.waiting.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| (w < queue).then_some(w + 1)).is_err() {
            return Err(Refused::Full);
        }
        self.metrics.queued();
        let held = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let place = Place { held, waiting: self.waiting.clone(), metrics: self.metrics.clone() };
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job { encoded, queued: Instant::now(), reply, place: place.clone() }) {
            Ok(()) => Ok(Waiting { rx, place }),
            Err(e) => {
                place.give_back();
                Err(match e {
                    // Abandoned jobs fill the channel while the model runs a long call.
                    TrySendError::Full(_) => Refused::Full,
                    TrySendError::Disconnected(_) => Refused::Stopped,
                })
            }
        }
    }
}

struct Worker {
    rx: Receiver<Job>,
    options: BatchOptions,
    metrics: Arc<Metrics>,
    arriving: Arc<AtomicUsize>,
    /// A job taken off the queue that did not fit the last call: the next call's first.
    held: Option<Job>,
}

impl Worker {
    fn run(mut self, mut model: impl FnMut(&[Encoded]) -> crate::Result<Probabilities>) {
        while let Some(jobs) = self.gather() {
            // A request that timed out meanwhile has dropped its receiver: skip its work.
            let mut jobs: Vec<Job> = jobs.into_iter().filter(|j| !j.reply.is_closed()).collect();
            if jobs.is_empty() {
                continue;
            }
            let sizes: Vec<usize> = jobs.iter().map(|j| j.encoded.len()).collect();
            self.metrics.batch(sizes.iter().sum(), jobs.len());
            let encoded: Vec<Encoded> = jobs.iter_mut().flat_map(|j| std::mem::take(&mut j.encoded)).collect();
            let started = Instant::now();
            let result = model(&encoded).map_err(|e| e.to_string());
            let took = started.elapsed();
            self.metrics.model_call(took);
            reply_each(jobs, &sizes, result.map(|rows| (rows, started, took)));
        }
    }

    /// The next call's requests; `None` once every sender is gone and the queue is empty.
    fn gather(&mut self) -> Option<Vec<Job>> {
        let first = match self.held.take() {
            Some(job) => job,
            None => self.next_live()?,
        };
        let deadline = first.queued + self.options.max_wait;
        let mut pairs = first.encoded.len();
        let mut jobs = vec![first];
        while pairs < self.options.max_pairs {
            let next = match self.rx.try_recv() {
                Ok(job) => job,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || self.arriving.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    match self.rx.recv_timeout(left.min(ARRIVAL_POLL)) {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            let next = self.take(next);
            // One that stopped waiting takes no room in the call.
            if next.reply.is_closed() {
                continue;
            }
            if pairs + next.encoded.len() > self.options.max_pairs {
                self.held = Some(next);
                break;
            }
            pairs += next.encoded.len();
            jobs.push(next);
        }
        Some(jobs)
    }

    /// The next job someone still waits for, blocking; `None` once every sender is gone.
    fn next_live(&self) -> Option<Job> {
        loop {
            let job = self.take(self.rx.recv().ok()?);
            if !job.reply.is_closed() {
                return Some(job);
            }
        }
    }

    fn take(&self, job: Job) -> Job {
        job.place.give_back();
        job
    }
}

/// Splits a call's rows (with when it started and how long it took) back into its requests, in order.
fn reply_each(jobs: Vec<Job>, sizes: &[usize], result: Result<(Probabilities, Instant, Duration), String>) {
    match result {
        Ok((mut rows, started, model)) => {
            // Back to front, so that each request's rows come off the end.
            for (job, &n) in jobs.into_iter().zip(sizes).rev() {
                let rows = rows.split_off(rows.len() - n);
                let queued = started.saturating_duration_since(job.queued);
                let _ = job.reply.send(Ok(Answer { rows, queued, model }));
            }
        }
        Err(message) => {
            for job in jobs {
                let _ = job.reply.send(Err(message.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A pair whose one token is `value`: the fake model answers `[value]`.
    fn pairs(values: &[u32]) -> Vec<Encoded> {
        values.iter().map(|&v| Encoded { ids: vec![v], type_ids: vec![0], target: None, truncated: false }).collect()
    }

    fn options(max_pairs: usize, max_wait_ms: u64, queue: usize) -> BatchOptions {
        BatchOptions { max_pairs, max_wait: Duration::from_millis(max_wait_ms), queue }
    }

    /// A model that echoes each pair's token and records the size of each call.
    fn echo(calls: Arc<Mutex<Vec<usize>>>) -> impl FnMut(&[Encoded]) -> crate::Result<Probabilities> + Send {
        move |encoded| {
            calls.lock().unwrap().push(encoded.len());
            Ok(encoded.iter().map(|e| vec![e.ids[0] as f32]).collect())
        }
    }

    fn rows(values: &[u32]) -> Probabilities {
        values.iter().map(|&v| vec![v as f32]).collect()
    }

    #[tokio::test]
    async fn requests_that_arrive_together_share_a_call_and_get_their_own_rows_back() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let metrics = Arc::new(Metrics::new(16));
        let (batcher, thread) = Batcher::start(echo(calls.clone()), options(100, 200, 16), metrics.clone());
        let arrival = batcher.arriving();
        let a = batcher.submit(pairs(&[1, 2, 3])).unwrap();
        let b = batcher.submit(pairs(&[4])).unwrap();
        let c = batcher.submit(pairs(&[5, 6])).unwrap();
        drop(arrival);
        let (a, b, c) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap(), c.await.unwrap().unwrap());
        assert_eq!([a.rows, b.rows, c.rows], [rows(&[1, 2, 3]), rows(&[4]), rows(&[5, 6])]);
        // One call: the same model time for all, and the first waited longest for the others.
        assert_eq!((a.model, b.model), (c.model, c.model));
        assert!(a.queued >= c.queued);
        assert_eq!(*calls.lock().unwrap(), [6]);
        drop(batcher);
        thread.join().unwrap();
        assert_eq!(metrics.queue_depth(), 0);
        assert!(metrics.render().contains("stancekit_batch_requests_sum 3"));
    }

    #[tokio::test]
    async fn a_call_closes_when_full_and_the_request_that_does_not_fit_opens_the_next() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (batcher, thread) = Batcher::start(echo(calls.clone()), options(4, 200, 16), Arc::new(Metrics::new(16)));
        let arrival = batcher.arriving();
        let waiting: Vec<_> =
            [&[1, 2][..], &[3], &[4, 5], &[6]].iter().map(|p| batcher.submit(pairs(p)).unwrap()).collect();
        drop(arrival);
        let got: Vec<Probabilities> = futures_all(waiting).await;
        assert_eq!(got, [rows(&[1, 2]), rows(&[3]), rows(&[4, 5]), rows(&[6])]);
        // 2 + 1 fit in 4, the third request would make 5: it starts the next call.
        assert_eq!(*calls.lock().unwrap(), [3, 3]);
        drop(batcher);
        thread.join().unwrap();
    }

    #[tokio::test]
    async fn a_lone_request_runs_at_once_and_one_with_company_on_its_way_waits_at_most_max_wait() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (batcher, _thread) = Batcher::start(echo(calls.clone()), options(100, 300, 4), Arc::new(Metrics::new(4)));
        let alone = batcher.submit(pairs(&[1])).unwrap().await.unwrap().unwrap();
        assert!(alone.queued < Duration::from_millis(200), "{alone:?}");
        // Another request is being tokenised: the first waits for it, and they share a call.
        let arrival = batcher.arriving();
        let first = batcher.submit(pairs(&[2]));
        std::thread::sleep(Duration::from_millis(50));
        let second = batcher.submit(pairs(&[3]));
        drop(arrival);
        let (first, second) = (first.unwrap().await.unwrap().unwrap(), second.unwrap().await.unwrap().unwrap());
        assert_eq!((first.rows, second.rows), (rows(&[2]), rows(&[3])));
        assert_eq!(*calls.lock().unwrap(), [1, 2]);
        // One that never comes: the wait ends at max_wait.
        let _never = batcher.arriving();
        let waited = batcher.submit(pairs(&[4])).unwrap().await.unwrap().unwrap().queued;
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_millis(2000), "{waited:?}");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_abandoned_requests_are_not_computed() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let mut echo = echo(calls.clone());
        let model = move |encoded: &[Encoded]| {
            gate.lock().unwrap().recv().unwrap();
            echo(encoded)
        };
        let (batcher, thread) = Batcher::start(model, options(1, 0, 2), Arc::new(Metrics::new(2)));
        // The first call holds the model until released; two more fill the queue.
        let first = batcher.submit(pairs(&[1])).unwrap();
        while batcher.metrics.queue_depth() > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let abandoned = batcher.submit(pairs(&[2])).unwrap();
        let kept = batcher.submit(pairs(&[3])).unwrap();
        assert_eq!(batcher.submit(pairs(&[4])).unwrap_err(), Refused::Full);
        // A request that stops waiting (it timed out) gives its place back at once.
        drop(abandoned);
        assert_eq!(batcher.metrics.queue_depth(), 1);
        let late = batcher.submit(pairs(&[5])).unwrap();
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        assert_eq!(first.await.unwrap().unwrap().rows, rows(&[1]));
        assert_eq!(kept.await.unwrap().unwrap().rows, rows(&[3]));
        assert_eq!(late.await.unwrap().unwrap().rows, rows(&[5]));
        assert_eq!(*calls.lock().unwrap(), [1, 1, 1]);
        drop(batcher);
        thread.join().unwrap();
    }

    #[tokio::test]
    async fn a_model_error_reaches_every_request_of_the_call() {
        let model = |_: &[Encoded]| -> crate::Result<Probabilities> { Err(crate::Error::Model("boom".into())) };
        let (batcher, _thread) = Batcher::start(model, options(10, 100, 4), Arc::new(Metrics::new(4)));
        let arrival = batcher.arriving();
        let (a, b) = (batcher.submit(pairs(&[1])).unwrap(), batcher.submit(pairs(&[2])).unwrap());
        drop(arrival);
        assert_eq!(a.await.unwrap().unwrap_err(), "model: boom");
        assert_eq!(b.await.unwrap().unwrap_err(), "model: boom");
    }

    async fn futures_all(receivers: Vec<Waiting>) -> Vec<Probabilities> {
        let mut out = Vec::new();
        for rx in receivers {
            out.push(rx.await.unwrap().unwrap().rows);
        }
        out
    }
}
