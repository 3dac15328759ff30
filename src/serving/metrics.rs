//! What `GET /metrics` reports, in Prometheus' text format: requests by route
//! and status, their latency, the size of each model call, and the queue.
//! Written by hand: a few counters and histograms behind one mutex cost less
//! than a metrics crate and its registry, and nothing here is on a hot path
//! (a handful of updates per request).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Request latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Model-call size buckets (pairs, requests): powers of two.
const SIZE_BUCKETS: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0];

/// A cumulative histogram over fixed buckets.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound (the last slot is +Inf).
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0 }
    }

    fn observe(&mut self, value: f64) {
        let slot = self.bounds.iter().position(|&b| value <= b).unwrap_or(self.bounds.len());
        self.counts[slot] += 1;
        self.sum += value;
    }

    /// `labels` is empty or `key="value",…` without the braces.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count;
            let le = self.bounds.get(i).map_or("+Inf".to_string(), f64::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

#[derive(Debug, Clone)]
struct Inner {
    /// (route, status) → requests answered.
    requests: BTreeMap<(String, u16), u64>,
    /// route → latency, seconds.
    latency: BTreeMap<String, Histogram>,
    batch_pairs: Histogram,
    batch_requests: Histogram,
    /// Seconds per model call.
    batch_seconds: Histogram,
}

/// The server's counters, shared by the handlers and the batcher.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    queue_depth: AtomicUsize,
    queue_capacity: usize,
}

impl Metrics {
    pub fn new(queue_capacity: usize) -> Self {
        let inner = Inner {
            requests: BTreeMap::new(),
            latency: BTreeMap::new(),
            batch_pairs: Histogram::new(&SIZE_BUCKETS),
            batch_requests: Histogram::new(&SIZE_BUCKETS),
            batch_seconds: Histogram::new(&LATENCY_BUCKETS),
        };
        Self { inner: Mutex::new(inner), queue_depth: AtomicUsize::new(0), queue_capacity }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counters stay meaningful after a panic elsewhere: keep counting.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One answered request.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        let mut inner = self.lock();
        *inner.requests.entry((route.to_string(), status)).or_default() += 1;
        let latency = inner.latency.entry(route.to_string()).or_insert_with(|| Histogram::new(&LATENCY_BUCKETS));
        latency.observe(elapsed.as_secs_f64());
    }

    /// One model call: how many pairs it ran, merged from how many requests.
    pub fn batch(&self, pairs: usize, requests: usize) {
        let mut inner = self.lock();
        inner.batch_pairs.observe(pairs as f64);
        inner.batch_requests.observe(requests as f64);
    }

    /// How long one model call ran.
    pub fn model_call(&self, took: Duration) {
        self.lock().batch_seconds.observe(took.as_secs_f64());
    }

    pub fn queued(&self) {
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dequeued(&self) {
        self.queue_depth.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn queue_depth(&self) -> usize {
        self.queue_depth.load(Ordering::Relaxed)
    }

    /// Everything, in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        // A copy, so that the lock is not held while formatting.
        let inner = self.lock().clone();
        let mut out = String::new();
        header(&mut out, "stancekit_requests_total", "counter", "HTTP requests answered, by route and status.");
        for ((route, status), n) in &inner.requests {
            let _ = writeln!(out, "stancekit_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let name = "stancekit_request_duration_seconds";
        header(&mut out, name, "histogram", "Time from a request's arrival to its answer, by route.");
        for (route, histogram) in &inner.latency {
            histogram.render(&mut out, name, &format!("route=\"{route}\""));
        }
        let name = "stancekit_batch_pairs";
        header(&mut out, name, "histogram", "(target, sentence) pairs per model call.");
        inner.batch_pairs.render(&mut out, name, "");
        let name = "stancekit_batch_requests";
        header(&mut out, name, "histogram", "Requests merged into one model call.");
        inner.batch_requests.render(&mut out, name, "");
        let name = "stancekit_batch_duration_seconds";
        header(&mut out, name, "histogram", "Time per model call.");
        inner.batch_seconds.render(&mut out, name, "");
        header(&mut out, "stancekit_queue_depth", "gauge", "Requests waiting for the model.");
        let _ = writeln!(out, "stancekit_queue_depth {}", self.queue_depth());
        header(&mut out, "stancekit_queue_capacity", "gauge", "Requests the queue holds before answering 429.");
        let _ = writeln!(out, "stancekit_queue_capacity {}", self.queue_capacity);
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_the_queue() {
        let metrics = Metrics::new(8);
        metrics.request("/v1/predict", 200, Duration::from_millis(3));
        metrics.request("/v1/predict", 200, Duration::from_millis(40));
        metrics.request("/v1/predict", 429, Duration::from_micros(200));
        metrics.batch(48, 2);
        metrics.model_call(Duration::from_millis(20));
        metrics.queued();
        let text = metrics.render();
        for line in [
            "stancekit_requests_total{route=\"/v1/predict\",status=\"200\"} 2",
            "stancekit_requests_total{route=\"/v1/predict\",status=\"429\"} 1",
            "stancekit_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.001\"} 1",
            "stancekit_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.005\"} 2",
            "stancekit_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"+Inf\"} 3",
            "stancekit_request_duration_seconds_count{route=\"/v1/predict\"} 3",
            "stancekit_batch_pairs_bucket{le=\"32\"} 0",
            "stancekit_batch_pairs_bucket{le=\"64\"} 1",
            "stancekit_batch_pairs_sum 48",
            "stancekit_batch_requests_bucket{le=\"2\"} 1",
            "stancekit_batch_duration_seconds_bucket{le=\"0.025\"} 1",
            "# TYPE stancekit_request_duration_seconds histogram",
            "stancekit_queue_depth 1",
            "stancekit_queue_capacity 8",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
