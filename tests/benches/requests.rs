//! What users feel on every call, measured on the release binaries as Lambda
//! runs them (`make bench`): cold starts beside a hello-world `lambda_http`
//! binary, warm latency and the function's own CPU per request, peak RSS,
//! and AWS requests per call, beside `sdk-floor`, which sends a purchase's
//! AWS requests and does nothing else, and `http-floor`, which sends them as
//! plain HTTP without the SDK. Prints a table; asserts nothing about time
//! (the machine is noisy), only that every request succeeded.

use integration_tests::runtime_api::{cpu_time, peak_rss, RuntimeApi};
use integration_tests::{app, buy, emulator::FaultProxy, new_user, service_event};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const COLD_RUNS: usize = 25;
const WARMUP: usize = 20;
/// Where the bench stores a signing secret for `stripe-webhook`'s cold start.
const STRIPE_SECRET_PARAMETER: &str = "/credits/bench/stripe-webhook-secret";

fn bin_dir() -> PathBuf {
    std::env::var("BENCH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release"))
}

/// The environment a deployed function gets, pointed at `endpoint`.
fn env(endpoint: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> =
        ["TABLE_NAME", "SENDER_EMAIL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
    vars.push(("AWS_ENDPOINT_URL".into(), endpoint.into()));
    vars
}

fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// A binary to start: the function it is, the file, and any variables of
/// its own beside the deployed environment.
struct Binary {
    name: &'static str,
    path: PathBuf,
    vars: Vec<(String, String)>,
}

/// Time from process start to the first poll of the runtime API, once.
async fn cold_start(binary: &Binary, endpoint: &str) -> Duration {
    let mut vars = env(endpoint);
    vars.extend(binary.vars.iter().cloned());
    if binary.name == "stripe-webhook" {
        vars.push(("STRIPE_SECRET_PARAMETER".into(), STRIPE_SECRET_PARAMETER.into()));
    }
    let api = RuntimeApi::start().await;
    let started = std::time::Instant::now();
    let mut child = api.spawn(&binary.path, &vars);
    let polled = api.first_poll(Duration::from_secs(10)).await;
    let _ = child.kill();
    let _ = child.wait();
    polled.map(|at| at - started).unwrap_or_else(|| panic!("{} never polled the runtime API", binary.path.display()))
}

/// The cold starts of each of `binaries`, `COLD_RUNS` each. The rounds start
/// every binary once, so that each median (the hello-world's too) covers the
/// same minutes of a noisy machine, and a round's ratio compares two starts
/// made seconds apart. Each round starts one place further along the list,
/// so no binary always follows the same one.
async fn cold_starts(binaries: &[Binary], endpoint: &str) -> Vec<Vec<Duration>> {
    let mut times = vec![Vec::with_capacity(COLD_RUNS); binaries.len()];
    for round in 0..COLD_RUNS {
        for k in 0..binaries.len() {
            let i = (k + round) % binaries.len();
            times[i].push(cold_start(&binaries[i], endpoint).await);
        }
    }
    times
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    percentile(&sorted, 0.5)
}

/// The median over the rounds of `f(a's start, b's start in the same round)`.
fn paired(a: &[Duration], b: &[Duration], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut values: Vec<f64> = a.iter().zip(b).map(|(a, b)| f(a.as_secs_f64(), b.as_secs_f64())).collect();
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

/// One line of the cold-start table: `times` beside the hello-world's and,
/// for a second set of binaries, beside the first set's build of the same one.
fn print_cold_start(binary: &Binary, times: &[Duration], hello: &[Duration], first_set: Option<&[Duration]>) {
    let (t, h) = (median(times), median(hello));
    let size = std::fs::metadata(&binary.path).map(|m| m.len()).unwrap_or(0);
    let against_first = first_set.map_or(String::new(), |first| {
        let difference = paired(times, first, |t, f| (t - f) * 1e3);
        format!("   {difference:+.2} ms against the first set's (paired)")
    });
    println!(
        "  {:<16} {:>8} ms   {:.2}x   {:>+6.2} ms   {:.2}x paired   binary {:.1} MB{against_first}",
        binary.name,
        ms(t),
        t.as_secs_f64() / h.as_secs_f64(),
        (t.as_secs_f64() - h.as_secs_f64()) * 1e3,
        paired(times, hello, |t, h| t / h),
        size as f64 / 1e6
    );
}

struct Warm {
    p50: Duration,
    p99: Duration,
    cpu_per_request: Duration,
    peak_rss: u64,
    aws_per_call: Vec<(String, f64)>,
}

/// `requests` invocations of `binary` with `event(i)`, warm, through the
/// fault proxy (no faults) so its AWS requests can be counted.
async fn warm(binary: &str, requests: usize, event: impl Fn(usize) -> Value) -> Warm {
    let proxy = FaultProxy::start();
    let mut api = RuntimeApi::start().await;
    let mut child = api.spawn(&bin_dir().join(binary), &env(&proxy.url));
    let pid = child.id();
    api.first_poll(Duration::from_secs(10)).await.expect("the function started");
    for i in 0..WARMUP {
        let (outcome, _) = api.invoke(&format!("warm-{i}"), &event(1_000_000 + i)).await;
        assert!(!outcome.error, "{}", outcome.body);
    }
    proxy.inject(0.0, 0).await;
    let cpu_before = cpu_time(pid).expect("/proc");
    let mut latencies = Vec::with_capacity(requests);
    for i in 0..requests {
        let (outcome, latency) = api.invoke(&format!("req-{i}"), &event(i)).await;
        let status = serde_json::from_str::<Value>(&outcome.body).ok().and_then(|b| b["statusCode"].as_u64());
        assert!(!outcome.error && status.is_some_and(|s| s < 300), "{}", outcome.body);
        latencies.push(latency);
    }
    let cpu = cpu_time(pid).expect("/proc").saturating_sub(cpu_before);
    let peak_rss = peak_rss(pid).expect("/proc");
    let stats = proxy.report().await;
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    let aws_per_call = stats["requests"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(op, n)| (op.clone(), n.as_f64().unwrap_or(0.0) / requests as f64))
        .collect();
    Warm {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        cpu_per_request: cpu / requests as u32,
        peak_rss,
        aws_per_call,
    }
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built by `cargo test --all-targets`; only `cargo bench` runs it
    }
    let requests: usize = std::env::var("BENCH_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(500);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (run through make bench)");
    println!("binaries: {}", bin_dir().display());

    let sdk = integration_tests::sdk_config();
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(STRIPE_SECRET_PARAMETER)
        .value("whsec_bench")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("the bench's Stripe secret stored");

    println!("\ncold start: process start to its first poll of the runtime API, median of {COLD_RUNS} rounds");
    println!("  (each round starts every binary once; stripe-webhook's includes reading its signing secret");
    println!("  from Parameter Store), then its ratio to the hello-world's and the difference in ms, and the");
    println!("  median of its ratios to the hello-world's start in the same round (paired)");
    let functions = [
        "sdk-floor",
        "referral-signup",
        "purchase",
        "upgrade-bonus",
        "spend",
        "corrections",
        "account",
        "rollover",
        "email-outbox",
        "hold-expiry",
        "stripe-webhook",
    ];
    // BENCH_FUNCTIONS=purchase,spend measures only those (bench/release-profiles.sh).
    let only: Option<Vec<String>> =
        std::env::var("BENCH_FUNCTIONS").ok().map(|list| list.split(',').map(|f| f.trim().to_owned()).collect());
    let wanted = |f: &str| only.as_ref().is_none_or(|only| only.iter().any(|o| o == f));
    let names: Vec<&'static str> =
        std::iter::once("hello-lambda").chain(functions.into_iter().filter(|f| wanted(f))).collect();
    let set = |dir: &Path, vars: &[(String, String)]| -> Vec<Binary> {
        names.iter().map(|&name| Binary { name, path: dir.join(name), vars: vars.to_vec() }).collect()
    };
    // A second set, started in the same rounds, each set against its own hello-world:
    // BENCH_COMPARE_DIR's binaries, built another way (bench/cargo-lambda-link.sh), or the
    // same files started with the variables BENCH_COMPARE_ENV lists ("NAME=value ...",
    // bench/cold-start-parts.sh), or both.
    let compare_env: Vec<(String, String)> = std::env::var("BENCH_COMPARE_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => panic!("BENCH_COMPARE_ENV: {pair:?} is not NAME=value"),
        })
        .collect();
    let compare =
        std::env::var("BENCH_COMPARE_DIR").ok().map(PathBuf::from).or_else(|| (!compare_env.is_empty()).then(bin_dir));
    let mut binaries = set(&bin_dir(), &[]);
    binaries.extend(compare.iter().flat_map(|dir| set(dir, &compare_env)));
    let times = cold_starts(&binaries, &endpoint).await;
    let n = names.len();
    for (binary, t) in binaries.iter().zip(&times).take(n) {
        print_cold_start(binary, t, &times[0], None);
    }
    if let Some(dir) = &compare {
        let with: Vec<String> = compare_env.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        println!("  the same, from {}{}, against its own hello-world:", dir.display(), with.concat());
        for ((binary, t), first_set) in binaries[n..].iter().zip(&times[n..]).zip(&times) {
            print_cold_start(binary, t, &times[n], Some(first_set));
        }
    }
    if requests == 0 {
        return; // BENCH_REQUESTS=0: cold starts only
    }

    // Accounts to buy and spend with.
    let app = app().await;
    let (buyer, _) = new_user(&app, "business").await;
    let (spender, _) = new_user(&app, "business").await;
    for i in 0..20 {
        let a = buy(&app, json!({"user_id": spender, "payment_id": format!("seed-{i}"), "amount_cents": 1_000_000, "currency": "USD"})).await;
        assert_eq!(a.status, 201, "{}", a.text);
    }

    let purchase = |i: usize| {
        service_event(
            "purchase.json",
            &json!({"user_id": buyer, "payment_id": format!("bench-{i}"), "amount_cents": 100, "currency": "USD"})
                .to_string(),
        )
    };
    let spend = |i: usize| {
        service_event(
            "spend.json",
            &json!({"user_id": spender, "spend_id": format!("bench-{i}"), "credits": 1}).to_string(),
        )
    };
    println!(
        "\nwarm requests through the release binary, {requests} each (after {WARMUP} to warm up), against the emulator"
    );
    println!("(hello: the Lambda runtime's own cost per invocation, no AWS request; http-floor: a purchase's");
    println!("four AWS requests as plain HTTP, without the SDK; sdk-floor: the same requests through the");
    println!("functions' SDK setup and logger, and nothing else):");
    println!(
        "  {:<9} {:>9} {:>9} {:>14} {:>12}   AWS requests per call",
        "route", "p50 ms", "p99 ms", "CPU/request", "peak RSS"
    );
    let routes = [
        ("hello", "hello-lambda", &purchase as &dyn Fn(usize) -> Value),
        ("http-floor", "http-floor", &purchase),
        ("sdk-floor", "sdk-floor", &purchase),
        ("purchase", "purchase", &purchase),
        ("spend", "spend", &spend),
    ];
    for (name, binary, event) in routes.into_iter().filter(|(_, binary, _)| *binary == "hello-lambda" || wanted(binary))
    {
        let w = warm(binary, requests, event).await;
        let calls: Vec<String> = w.aws_per_call.iter().map(|(op, n)| format!("{op} {n:.2}")).collect();
        println!(
            "  {name:<9} {:>9} {:>9} {:>11.3} ms {:>9.1} MB   {}",
            ms(w.p50),
            ms(w.p99),
            w.cpu_per_request.as_secs_f64() * 1e3,
            w.peak_rss as f64 / 1e6,
            calls.join(", ")
        );
    }
}
