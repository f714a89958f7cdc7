//! End-to-end scoring throughput: parse + score + write of a 100,000-row
//! customer CSV with the shipped model, on one thread.
//!
//! Run: `cargo bench -p retainwise-churn --bench score`. Rows per second is
//! criterion's "thrpt" line (elements/s). Target: ≥ 500,000 rows/s.
//!
//! Each benchmark runs twice: `wall/…` measures wall-clock time (criterion's
//! default); `cpu/…` measures the benchmark thread's own time on a core
//! (Linux `/proc/thread-self/schedstat`), which stays meaningful on a
//! machine shared with other work, where wall time includes waiting for a
//! core.

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use retainwise_churn::model::ModelFile;
use retainwise_churn::schema::{CATEGORIES, CustomerReader};
use retainwise_churn::score::{self, Scorer};
use retainwise_churn::summary::SummaryBuilder;

const ROWS: usize = 100_000;

/// A deterministic CSV in the Telco layout (xorshift-chosen values).
fn synthetic_csv(rows: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = String::from(
        "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,\
         InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,\
         StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn\n",
    );
    for i in 0..rows {
        let tenure = next() % 73;
        let monthly = 18.25 + (next() % 10_000) as f64 / 100.0;
        out += &format!("{:04}-{:05X}", i % 10_000, next() % 0xFFFFF);
        for (c, category) in CATEGORIES.iter().enumerate() {
            if c == 4 {
                out += &format!(",{tenure}");
            }
            let levels = category.levels;
            out.push(',');
            out += levels[(next() % levels.len() as u64) as usize];
        }
        let total = if tenure == 0 {
            String::new()
        } else {
            format!("{:.2}", monthly * tenure as f64)
        };
        out += &format!(",{monthly:.2},{total},No\n");
    }
    out.into_bytes()
}

/// Time the calling thread has spent on a core, in nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Criterion measurement of on-CPU time (see the module doc).
struct ThreadCpuTime;

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns().expect("schedstat is readable")
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().expect("schedstat is readable") - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as wall time's are.
        WALL.formatter()
    }
}

fn wall(c: &mut Criterion) {
    bench(c, "wall");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    if thread_cpu_ns().is_none() {
        eprintln!("cpu/…: /proc/thread-self/schedstat is not readable here; skipped");
        return;
    }
    bench(c, "cpu");
}

fn bench<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let model = ModelFile::shipped().expect("the shipped model loads");
    let scorer = Scorer::new(&model).expect("the shipped model fits this build");
    let input = synthetic_csv(ROWS);
    let mut group = c.benchmark_group(format!("{clock}/score_csv"));
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.bench_function("parse+score+write 100k rows", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(input.len());
            let (summary, _) = score::score_csv(&scorer, black_box(input.as_slice()), &mut out)
                .expect("synthetic rows are valid");
            black_box((summary, out))
        });
    });
    // The three stages alone, to see where the time goes.
    let rows = retainwise_churn::schema::read_customers(input.as_slice())
        .expect("synthetic rows are valid")
        .rows;
    let scores = score::score_rows(&scorer, &rows);
    group.bench_function("parse only", |b| {
        b.iter(|| retainwise_churn::schema::read_customers(black_box(input.as_slice())))
    });
    // What the upload check does: every row parsed and judged, ids
    // checked for repeats, nothing kept.
    group.bench_function("check only", |b| {
        b.iter(|| {
            let reader = CustomerReader::for_scoring(black_box(input.as_slice()))
                .expect("synthetic header is valid");
            reader.filter(Result::is_ok).count()
        })
    });
    group.bench_function("score only", |b| {
        b.iter(|| score::score_rows(&scorer, black_box(&rows)))
    });
    // What the worker adds to scoring for the prediction's page.
    group.bench_function("summary only", |b| {
        b.iter(|| {
            let mut summary = SummaryBuilder::new(scorer.thresholds());
            for (row, score) in rows.iter().zip(&scores) {
                summary.add_score(&scorer, row, score);
            }
            black_box(summary.finish())
        })
    });
    group.bench_function("write only", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(input.len());
            score::write_scores(&scorer, &rows, black_box(&scores), &mut out)
                .expect("writing to memory works");
            out
        })
    });
    group.finish();
}

criterion_group!(wall_clock, wall);
criterion_group! {
    name = cpu_clock;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}
criterion_main!(wall_clock, cpu_clock);
