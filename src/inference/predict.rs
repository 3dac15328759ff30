//! Stance of every (sentence, target) pair of a stream of records, in bounded
//! memory (`stancekit predict` runs it from `commands/predict.rs`).
//!
//! One thread reads and tokenises the input a window at a time (a window is
//! `--window` batches); the calling thread runs the model over each window in
//! length-sorted batches ([`crate::tokenization::run_sorted`]) and writes its rows in input
//! order. At most [`WINDOWS_IN_FLIGHT`] windows wait between the two.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use serde::{Deserialize, Serialize};

use crate::input::{Record, Span};
use crate::model::{Classifier, PairEncoder};
use crate::tokenization::Encoded;
use crate::{Error, Result};

/// Tokenised windows waiting for the model: enough to keep it busy, few enough to bound memory.
const WINDOWS_IN_FLIGHT: usize = 2;

/// Invalid lines shown one by one under `--skip-invalid`; the rest are only counted.
const SHOWN_PROBLEMS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Jsonl,
    Csv,
}

/// The targets of a run: the model's own and those given with a description.
#[derive(Debug, Clone)]
pub struct TargetSet {
    ids: Vec<String>,
    descriptions: Vec<String>,
    /// What a record without its own `target` is scored on, in output order.
    selected: Vec<usize>,
}

impl TargetSet {
    /// `model`: the trained targets; `names`: --targets; `described`: --target `ID=DESCRIPTION` (or `ID`).
    pub fn new(model: &BTreeMap<String, String>, names: &[String], described: &[String]) -> Result<Self> {
        let mut set = Self {
            ids: model.keys().cloned().collect(),
            descriptions: model.values().cloned().collect(),
            selected: Vec::new(),
        };
        let mut wanted: Vec<&str> = names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect();
        for spec in described {
            let (id, description) = match spec.split_once('=') {
                Some((id, d)) => (id.trim(), Some(d.trim())),
                None => (spec.trim(), None),
            };
            if id.is_empty() || description == Some("") {
                return Err(Error::Other(format!("--target {spec:?}: expected ID=DESCRIPTION")));
            }
            if let Some(description) = description {
                set.define(id, description);
            }
            wanted.push(id);
        }
        if wanted.is_empty() {
            set.selected = (0..set.ids.len()).collect();
        }
        for id in wanted {
            let i = set.index(id).ok_or_else(|| set.unknown(id))?;
            if !set.selected.contains(&i) {
                set.selected.push(i);
            }
        }
        if set.selected.is_empty() {
            return Err(Error::Other("no targets: the model has none; name some with --target ID=DESCRIPTION".into()));
        }
        Ok(set)
    }

    fn define(&mut self, id: &str, description: &str) {
        match self.index(id) {
            Some(i) => self.descriptions[i] = description.to_string(),
            None => {
                self.ids.push(id.to_string());
                self.descriptions.push(description.to_string());
            }
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|t| t == id)
    }

    fn unknown(&self, id: &str) -> Error {
        Error::Other(format!(
            "unknown target `{id}` (the model knows: {}); a fine-tuned model reads a new target from its \
             description: --target '{id}=DESCRIPTION' (a frozen-encoder model scores only the targets it was \
             trained on)",
            self.ids.join(", ")
        ))
    }

    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    pub fn description(&self, i: usize) -> &str {
        &self.descriptions[i]
    }

    /// Targets scored by default, in output order.
    pub fn selected(&self) -> &[usize] {
        &self.selected
    }

    /// The target a record or request names: by id, or by description as
    /// SemEval-style files name it.
    pub fn lookup(&self, given: &str) -> Option<usize> {
        self.index(given).or_else(|| self.descriptions.iter().position(|d| crate::data::names_description(given, d)))
    }

    /// The known target ids, comma-separated, for messages.
    pub fn id_list(&self) -> String {
        self.ids.join(", ")
    }

    /// The targets a record is scored on: its own ([`Self::lookup`]), or the selected ones.
    fn for_record(&self, record: &Record) -> Result<Vec<usize>> {
        match &record.target {
            None => Ok(self.selected.clone()),
            Some(id) => match self.lookup(id) {
                Some(i) => Ok(vec![i]),
                None => Err(Error::Invalid(crate::Problems(vec![crate::Problem {
                    file: record.file.to_string(),
                    line: record.line,
                    field: "target".into(),
                    message: format!("unknown target `{id}` (known by id or description: {})", self.id_list()),
                }]))),
            },
        }
    }

    /// Fails now, rather than mid-stream, when a description leaves no room for a sentence.
    pub fn check_fit(&self, encoder: &PairEncoder<'_>) -> Result<()> {
        let pairs: Vec<(&str, &str)> = self.descriptions.iter().map(|d| (d.as_str(), "x")).collect();
        encoder.encode(&pairs).map(|_| ())
    }
}

/// How the stream is cut and what happens to invalid records.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    pub batch_size: usize,
    /// Batches per sorting window.
    pub window: usize,
    pub skip_invalid: bool,
}

/// One prediction, as the sink receives it.
#[derive(Debug, Clone, Copy)]
pub struct Prediction<'a> {
    pub record: &'a Record,
    pub target: &'a str,
    /// One probability per label, in the model's label order.
    pub probabilities: &'a [f32],
}

/// Running totals of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records (sentences) scored.
    pub sentences: usize,
    /// Predictions written: one per (sentence, target).
    pub rows: usize,
    /// Invalid records skipped.
    pub skipped: usize,
    /// Rows whose sentence was cut to the model's token limit.
    pub truncated: usize,
    /// Input bytes read when the last finished window was complete.
    pub bytes: u64,
}

/// Receives predictions in input order.
pub trait Sink {
    fn prediction(&mut self, prediction: &Prediction) -> Result<()>;
    /// After each window: the place to flush and to report progress.
    fn window_done(&mut self, _counts: &Counts) -> Result<()> {
        Ok(())
    }
}

/// Records and the (record index, target index) pairs to score, in output
/// order: what `predict` scores a window at a time and `serve` a request at a time.
#[derive(Debug, Default)]
pub struct RecordPairs {
    pub records: Vec<Record>,
    pub pairs: Vec<(usize, usize)>,
}

impl RecordPairs {
    /// (target description, sentence) per pair, as the model reads them.
    pub fn texts<'a>(&'a self, targets: &'a TargetSet) -> Vec<(&'a str, &'a str)> {
        self.pairs.iter().map(|&(r, t)| (targets.description(t), self.records[r].text.as_str())).collect()
    }

    /// Each pair's prediction, given one probability row per pair.
    pub fn predictions<'a>(
        &'a self,
        targets: &'a TargetSet,
        probabilities: &'a [Vec<f32>],
    ) -> impl Iterator<Item = Prediction<'a>> {
        self.pairs.iter().zip(probabilities).map(|(&(r, t), p)| Prediction {
            record: &self.records[r],
            target: targets.id(t),
            probabilities: p,
        })
    }
}

/// A window of records, their pairs tokenised.
#[derive(Default)]
struct Window {
    scored: RecordPairs,
    encoded: Vec<Encoded>,
    skipped: usize,
    bytes: u64,
}

/// Scores `records` on `targets` and hands each prediction to `sink`, in input order.
/// `bytes_read` (if any) is the input reader's byte counter, for progress.
pub fn predict_stream(
    classifier: &Classifier,
    targets: &TargetSet,
    records: impl Iterator<Item = Result<Record>> + Send,
    options: &StreamOptions,
    bytes_read: Option<&AtomicU64>,
    sink: &mut dyn Sink,
) -> Result<Counts> {
    let (tx, rx) = sync_channel(WINDOWS_IN_FLIGHT);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let encoder = classifier.pair_encoder();
            let producer = Producer { encoder: &encoder, targets, options, bytes_read, tx, skipped: 0 };
            producer.run(records);
        });
        consume(classifier, targets, rx, options.batch_size, sink)
    })
}

/// Reads, validates and tokenises on its own thread.
struct Producer<'a> {
    encoder: &'a PairEncoder<'a>,
    targets: &'a TargetSet,
    options: &'a StreamOptions,
    bytes_read: Option<&'a AtomicU64>,
    tx: SyncSender<Result<Window>>,
    skipped: usize,
}

impl Producer<'_> {
    fn run(mut self, records: impl Iterator<Item = Result<Record>>) {
        let window_pairs = self.options.batch_size.max(1) * self.options.window.max(1);
        let mut window = Window::default();
        for record in records {
            match record.and_then(|r| Ok((self.targets.for_record(&r)?, r))) {
                Ok((targets, record)) => {
                    let scored = &mut window.scored;
                    scored.pairs.extend(targets.into_iter().map(|t| (scored.records.len(), t)));
                    scored.records.push(record);
                    if scored.pairs.len() >= window_pairs && !self.send(std::mem::take(&mut window)) {
                        return;
                    }
                }
                Err(Error::Invalid(problems)) if self.options.skip_invalid => self.skip(&problems),
                Err(e) => {
                    let _ = self.tx.send(Err(e));
                    return;
                }
            }
        }
        if !window.scored.records.is_empty() || self.skipped > 0 {
            self.send(window);
        }
    }

    fn skip(&mut self, problems: &crate::Problems) {
        for problem in &problems.0 {
            self.skipped += 1;
            if self.skipped <= SHOWN_PROBLEMS {
                tracing::warn!("skipped {problem}");
            } else if self.skipped == SHOWN_PROBLEMS + 1 {
                tracing::warn!("more invalid lines: counted, not shown");
            }
        }
    }

    /// Tokenises and sends a window; false once the consumer has gone.
    fn send(&mut self, mut window: Window) -> bool {
        window.skipped = std::mem::take(&mut self.skipped);
        window.bytes = self.bytes_read.map_or(0, |b| b.load(Ordering::Relaxed));
        let encoded = self.encoder.encode(&window.scored.texts(self.targets));
        let message = encoded.map(|encoded| Window { encoded, ..window });
        self.tx.send(message).is_ok()
    }
}

/// Runs the model over each window and writes its rows; dropping `rx` on
/// return stops the producer.
fn consume(
    classifier: &Classifier,
    targets: &TargetSet,
    rx: Receiver<Result<Window>>,
    batch_size: usize,
    sink: &mut dyn Sink,
) -> Result<Counts> {
    let mut counts = Counts::default();
    for window in rx {
        let window = window?;
        let probabilities = classifier.proba_encoded(&window.encoded, batch_size)?;
        for prediction in window.scored.predictions(targets, &probabilities) {
            sink.prediction(&prediction)?;
        }
        counts.sentences += window.scored.records.len();
        counts.rows += window.scored.pairs.len();
        counts.skipped += window.skipped;
        counts.truncated += window.encoded.iter().filter(|e| e.truncated).count();
        counts.bytes = window.bytes;
        sink.window_done(&counts)?;
    }
    Ok(counts)
}

/// Writes predictions as JSONL or CSV rows.
pub struct RowWriter<W: Write> {
    out: Rows<W>,
    labels: Vec<String>,
    /// CSV has the span columns.
    spans: bool,
    /// Output name for error messages.
    name: String,
    /// Flush after each window (a pipe's reader sees rows as they come).
    flush: bool,
    progress: Option<indicatif::ProgressBar>,
}

enum Rows<W: Write> {
    Jsonl(W),
    Csv(Box<csv::Writer<W>>),
}

#[derive(Serialize)]
struct JsonRow<'a> {
    id: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    span: Option<&'a Span>,
    text: &'a str,
    target: &'a str,
    label: &'a str,
    /// The same key as `stancekit eval`'s predictions files, so either reads the other.
    probs: Probabilities<'a>,
}

/// `{"label": probability, …}` in label order.
struct Probabilities<'a>(&'a [String], &'a [f32]);

impl Serialize for Probabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().zip(self.1))
    }
}

impl<W: Write> RowWriter<W> {
    /// `spans`: add the document, sentence index and offsets columns to CSV
    /// (JSONL rows carry them whenever a record has them).
    pub fn new(out: W, format: OutputFormat, labels: &[String], spans: bool, name: &str) -> Result<Self> {
        let out = match format {
            OutputFormat::Jsonl => Rows::Jsonl(out),
            OutputFormat::Csv => {
                let mut w = csv::Writer::from_writer(out);
                let mut header: Vec<String> = vec!["id".into()];
                if spans {
                    header.extend(["doc", "sentence", "start", "end"].map(String::from));
                }
                header.extend(["text", "target", "label"].map(String::from));
                header.extend(labels.iter().map(|l| format!("p_{l}")));
                w.write_record(&header).map_err(|e| csv_write_error(name, e))?;
                Rows::Csv(Box::new(w))
            }
        };
        Ok(Self { out, labels: labels.to_vec(), spans, name: name.to_string(), flush: false, progress: None })
    }

    pub fn flush_each_window(mut self, yes: bool) -> Self {
        self.flush = yes;
        self
    }

    pub fn with_progress(mut self, bar: Option<indicatif::ProgressBar>) -> Self {
        self.progress = bar;
        self
    }

    /// Flushes and gives the writer back.
    pub fn finish(self) -> Result<W> {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
        match self.out {
            Rows::Jsonl(mut w) => w.flush().map(|()| w).map_err(|e| Error::io(&self.name, e)),
            Rows::Csv(w) => w.into_inner().map_err(|e| Error::io(&self.name, e.into_error())),
        }
    }

    fn label(&self, probabilities: &[f32]) -> &str {
        let best = crate::kernels::argmax(probabilities);
        self.labels.get(best).map_or("", String::as_str)
    }
}

impl<W: Write> Sink for RowWriter<W> {
    fn prediction(&mut self, p: &Prediction) -> Result<()> {
        let label = self.label(p.probabilities).to_string();
        let r = p.record;
        match &mut self.out {
            Rows::Jsonl(w) => {
                let row = JsonRow {
                    id: &r.id,
                    span: r.span.as_ref(),
                    text: &r.text,
                    target: p.target,
                    label: &label,
                    probs: Probabilities(&self.labels, p.probabilities),
                };
                serde_json::to_writer(&mut *w, &row).map_err(std::io::Error::from).and_then(|()| w.write_all(b"\n"))
            }
            Rows::Csv(w) => {
                let mut fields: Vec<String> = vec![r.id.clone()];
                match &r.span {
                    Some(s) if self.spans => {
                        fields.extend([s.doc.clone(), s.sentence.to_string(), s.start.to_string(), s.end.to_string()])
                    }
                    _ if self.spans => fields.extend(std::iter::repeat_n(String::new(), 4)),
                    _ => {}
                }
                fields.extend([r.text.clone(), p.target.to_string(), label]);
                fields.extend(p.probabilities.iter().map(f32::to_string));
                w.write_record(&fields).map_err(|e| {
                    let message = e.to_string();
                    match e.into_kind() {
                        csv::ErrorKind::Io(io) => io,
                        _ => std::io::Error::other(message),
                    }
                })
            }
        }
        .map_err(|e| Error::io(&self.name, e))
    }

    fn window_done(&mut self, counts: &Counts) -> Result<()> {
        if let Some(bar) = &self.progress {
            bar.set_position(counts.bytes);
            bar.set_message(format!("{} sentences", counts.sentences));
        }
        if !self.flush {
            return Ok(());
        }
        match &mut self.out {
            Rows::Jsonl(w) => w.flush(),
            Rows::Csv(w) => w.flush(),
        }
        .map_err(|e| Error::io(&self.name, e))
    }
}

fn csv_write_error(name: &str, e: csv::Error) -> Error {
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(name, io),
        _ => Error::Other(format!("{name}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn classifier() -> (tempfile::TempDir, Classifier) {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_classifier(dir.path(), 7).unwrap();
        let model = crate::resolve::ModelDir::open(dir.path()).unwrap();
        let classifier = Classifier::load_frozen(&model, &Device::Cpu).unwrap();
        (dir, classifier)
    }

    fn record(id: &str, text: &str, target: Option<&str>) -> Record {
        Record {
            id: id.into(),
            text: text.into(),
            target: target.map(String::from),
            span: None,
            file: "in.jsonl".into(),
            line: id.parse().unwrap_or(0),
        }
    }

    /// Sentences whose lengths zigzag, so that sorting reorders them inside a window.
    fn records() -> Vec<Record> {
        let words = "the war must end and europe will never give up its borders for peace talks";
        let words: Vec<&str> = words.split(' ').collect();
        (0..40).map(|i| record(&i.to_string(), &words[..1 + (i * 7) % words.len()].join(" "), None)).collect()
    }

    #[derive(Default)]
    struct Collect(Vec<(String, String, Vec<f32>)>, usize);

    impl Sink for Collect {
        fn prediction(&mut self, p: &Prediction) -> Result<()> {
            self.0.push((p.record.id.clone(), p.target.to_string(), p.probabilities.to_vec()));
            Ok(())
        }
        fn window_done(&mut self, _: &Counts) -> Result<()> {
            self.1 += 1;
            Ok(())
        }
    }

    fn run_stream(
        c: &Classifier,
        targets: &TargetSet,
        records: Vec<Record>,
        batch_size: usize,
        window: usize,
    ) -> (Counts, Collect) {
        let options = StreamOptions { batch_size, window, skip_invalid: false };
        let mut sink = Collect::default();
        let counts = predict_stream(c, targets, records.into_iter().map(Ok), &options, None, &mut sink).unwrap();
        (counts, sink)
    }

    #[test]
    fn rows_come_back_in_input_order_whatever_the_batching() {
        let (_dir, c) = classifier();
        let targets = TargetSet::new(&c.spec.targets, &[], &[]).unwrap();
        let records = records();
        // Reference: every pair alone, no padding, no sorting.
        let mut expected = Vec::new();
        for r in &records {
            for &t in targets.selected() {
                let p = c.predict_proba(&[(targets.description(t), r.text.as_str())], 1).unwrap().remove(0);
                expected.push((r.id.clone(), targets.id(t).to_string(), p));
            }
        }
        for (batch_size, window) in [(1, 1), (3, 2), (4, 16), (32, 1), (64, 4)] {
            let (counts, got) = run_stream(&c, &targets, records.clone(), batch_size, window);
            assert_eq!((counts.sentences, counts.rows), (40, 80));
            // A record's pairs (two targets) never straddle windows.
            let per_window = (batch_size * window).div_ceil(2);
            assert_eq!(got.1, 40usize.div_ceil(per_window), "windows at bs {batch_size}, window {window}");
            for (g, e) in got.0.iter().zip(&expected) {
                assert_eq!((&g.0, &g.1), (&e.0, &e.1), "order at bs {batch_size}, window {window}");
                let diff = g.2.iter().zip(&e.2).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(diff < 1e-5, "{} {} differs by {diff} at bs {batch_size}", g.0, g.1);
            }
        }
    }

    #[test]
    fn the_reader_stays_a_bounded_distance_ahead_of_the_writer() {
        use std::sync::atomic::AtomicUsize;
        struct Watch<'a> {
            pulled: &'a AtomicUsize,
            written: usize,
            ahead: usize,
        }
        impl Sink for Watch<'_> {
            fn prediction(&mut self, _: &Prediction) -> Result<()> {
                self.written += 1;
                self.ahead = self.ahead.max(self.pulled.load(Ordering::SeqCst) - self.written);
                Ok(())
            }
        }
        let (_dir, c) = classifier();
        let targets = TargetSet::new(&c.spec.targets, &["nato".into()], &[]).unwrap();
        let pulled = AtomicUsize::new(0);
        let records = (0..3000).map(|i| {
            pulled.fetch_add(1, Ordering::SeqCst);
            Ok(record(&i.to_string(), "the war must end", None))
        });
        let options = StreamOptions { batch_size: 4, window: 2, skip_invalid: false };
        let mut watch = Watch { pulled: &pulled, written: 0, ahead: 0 };
        let counts = predict_stream(&c, &targets, records, &options, None, &mut watch).unwrap();
        assert_eq!(counts.rows, 3000);
        // Queued windows, plus the one being filled, the one being sent and the one being written.
        assert!(watch.ahead <= (WINDOWS_IN_FLIGHT + 3) * 8, "the reader ran {} records ahead", watch.ahead);
    }

    #[test]
    fn targets_default_to_the_models_and_new_ones_need_a_description() {
        let model: BTreeMap<String, String> =
            [("a", "alpha"), ("b", "beta")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let all = TargetSet::new(&model, &[], &[]).unwrap();
        assert_eq!(all.selected().iter().map(|&i| all.id(i)).collect::<Vec<_>>(), ["a", "b"]);
        let some =
            TargetSet::new(&model, &["b".into()], &["eu=Ukraine joining the EU".into(), "a=new".into()]).unwrap();
        let picked: Vec<(&str, &str)> = some.selected().iter().map(|&i| (some.id(i), some.description(i))).collect();
        assert_eq!(picked, [("b", "beta"), ("eu", "Ukraine joining the EU"), ("a", "new")]);
        let err = TargetSet::new(&model, &["eu".into()], &[]).unwrap_err().to_string();
        assert!(err.contains("unknown target `eu`") && err.contains("--target 'eu=DESCRIPTION'"), "{err}");
        assert!(TargetSet::new(&model, &[], &["x=".into()]).is_err());
        let err = some.for_record(&record("3", "text", Some("zz"))).unwrap_err().to_string();
        assert!(err.contains("in.jsonl:3: target: unknown target `zz`"), "{err}");
        // A record may name its target by description, as SemEval-style files do.
        let by_description = some.for_record(&record("4", "text", Some(" Beta"))).unwrap();
        assert_eq!(by_description.iter().map(|&i| some.id(i)).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn a_records_own_target_replaces_the_selection_and_invalid_records_can_be_skipped() {
        let (_dir, c) = classifier();
        let targets = TargetSet::new(&c.spec.targets, &[], &[]).unwrap();
        let records = || {
            vec![
                Ok(record("1", "peace talks", Some("defence"))),
                Err(Error::Invalid(crate::Problems(vec![]))),
                Ok(record("3", "the war must end", Some("nope"))),
                Ok(record("4", "never", None)),
            ]
        };
        let mut options = StreamOptions { batch_size: 2, window: 1, skip_invalid: true };
        let mut sink = Collect::default();
        let counts = predict_stream(&c, &targets, records().into_iter(), &options, None, &mut sink).unwrap();
        let rows: Vec<(&str, &str)> = sink.0.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
        assert_eq!(rows, [("1", "defence"), ("4", "defence"), ("4", "nato")]);
        assert_eq!((counts.sentences, counts.rows, counts.skipped), (2, 3, 1));
        options.skip_invalid = false;
        let records = records().into_iter().filter(|r| r.is_ok());
        let err = predict_stream(&c, &targets, records, &options, None, &mut Collect::default()).unwrap_err();
        assert!(err.to_string().contains("in.jsonl:3: target"), "{err}");
    }

    #[test]
    fn rows_as_jsonl_and_csv() {
        let labels = ["favor", "against"].map(String::from);
        let mut r = record("7", "Hi, \"there\"", None);
        r.span = Some(Span { doc: "a.txt".into(), sentence: 2, start: 10, end: 21 });
        let p = Prediction { record: &r, target: "nato", probabilities: &[0.25, 0.75] };
        let mut w = RowWriter::new(Vec::new(), OutputFormat::Jsonl, &labels, true, "out").unwrap();
        w.prediction(&p).unwrap();
        assert_eq!(
            String::from_utf8(w.finish().unwrap()).unwrap(),
            "{\"id\":\"7\",\"doc\":\"a.txt\",\"sentence\":2,\"start\":10,\"end\":21,\"text\":\"Hi, \\\"there\\\"\",\
             \"target\":\"nato\",\"label\":\"against\",\"probs\":{\"favor\":0.25,\"against\":0.75}}\n"
        );
        let mut w = RowWriter::new(Vec::new(), OutputFormat::Csv, &labels, true, "out").unwrap();
        w.prediction(&p).unwrap();
        assert_eq!(
            String::from_utf8(w.finish().unwrap()).unwrap(),
            "id,doc,sentence,start,end,text,target,label,p_favor,p_against\n\
             7,a.txt,2,10,21,\"Hi, \"\"there\"\"\",nato,against,0.25,0.75\n"
        );
    }
}
