//! The performance contract, measured: `cargo bench` (or `.ci/bench`, which also starts moto for
//! W4) builds the workloads, runs the release binary on them, and prints one table of figures,
//! targets and ratios, all measured in this one run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize as _;
use support::vault::{Policy, VaultServer};

const EXE: &str = env!("CARGO_BIN_EXE_secretsubst");

/// What one child process cost.
struct Usage {
    wall: Duration,
    cpu: Duration,
    max_rss_bytes: u64,
    stdout: Vec<u8>,
    stderr: String,
    success: bool,
}

/// Runs the binary with `args` and `env` (on top of a cleared environment), measuring the child
/// alone with wait4.
fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Usage {
    run_at(Path::new("."), args, env, stdin)
}

/// Like [`run`], in directory `dir`, without input.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Usage {
    run_at(dir, args, env, None)
}

/// Runs `EXE` through the [`spawn`] trampoline, which measures it.
fn run_at(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Usage {
    measured(EXE, dir, args, env, stdin)
}

/// Runs `program` with `args` and `env` (on top of a cleared environment) in `dir`, measured by a
/// fresh copy of this bench process (`--spawn`): a child's peak memory (`ru_maxrss`) starts from
/// its parent's at fork, and this process holds the large inputs.
fn measured(
    program: &str,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Usage {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--spawn")
        .arg(report.path())
        .arg(dir)
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the bench's trampoline");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || pipe.write_all(&input));
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut bytes).map(|_| bytes)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).map(|_| text)
    });
    assert!(child.wait().unwrap().success(), "the trampoline failed");
    let figures: Vec<u64> = std::fs::read_to_string(report.path())
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    Usage {
        wall: Duration::from_nanos(figures[1]),
        cpu: Duration::from_nanos(figures[2]),
        max_rss_bytes: figures[3],
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
        success: figures[0] == 0,
    }
}

/// The trampoline: `--spawn REPORT DIR PROGRAM ARGS…` runs PROGRAM with this process's stdio and
/// environment and writes `status wall-ns cpu-ns peak-bytes` to REPORT.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also reads its usage"
)]
fn spawn(args: &[String]) {
    let [report, dir, program, rest @ ..] = args else {
        panic!("--spawn REPORT DIR PROGRAM ARGS…");
    };
    let started = Instant::now();
    let child = Command::new(program)
        .current_dir(dir)
        .args(rest)
        .spawn()
        .expect("run the measured program");
    let (status, (cpu, peak)) = wait4(child.id());
    let wall = started.elapsed();
    std::fs::write(
        report,
        format!("{status} {} {} {peak}", wall.as_nanos(), cpu.as_nanos()),
    )
    .unwrap();
}

/// Waits for `pid`; its exit status, CPU time (user + system) and peak resident memory.
fn wait4(pid: u32) -> (i32, (Duration, u64)) {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 fills `status` and `usage`, both valid for writes.
    let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid as libc::pid_t, "wait4 failed");
    let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    (
        libc::WEXITSTATUS(status),
        (cpu, usage.ru_maxrss as u64 * 1024),
    )
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// CPU time of this process so far.
fn self_cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills `usage`, valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

struct Row {
    figure: String,
    measured: String,
    target: String,
    ratio: String,
    ok: bool,
}

fn row(figure: &str, measured: String, target: String, ratio: f64, limit: f64) -> Row {
    Row {
        figure: figure.to_owned(),
        measured,
        target,
        ratio: format!("{ratio:.2}"),
        ok: ratio <= limit,
    }
}

/// 500 documents, 2000 placeholders over 100 (path, version) pairs: 90 latest, 10 pinned.
fn w1_input() -> String {
    let kinds = ["Deployment", "Secret", "ConfigMap"];
    let mut input = String::new();
    for doc in 0..500 {
        let kind = kinds[doc % 3];
        write!(
            input,
            "---\napiVersion: v1\nkind: {kind}\nmetadata:\n  name: w1-{doc}\ndata:\n"
        )
        .unwrap();
        for j in 0..4 {
            let n = (doc * 4 + j) % 100;
            let version = if n >= 90 { "#1" } else { "" };
            writeln!(input, "  k{j}: <path:secret/data/app{n}#user{version}>").unwrap();
        }
    }
    input
}

fn w1(rows: &mut Vec<Row>) {
    let mut builder = VaultServer::builder()
        .kv2("secret")
        .token("w1-root", Policy::Root)
        .approle("approle", "w1-role", "w1-secret-id", Policy::Root)
        .latency(Duration::from_millis(20));
    for n in 0..100 {
        builder = builder.put(
            &format!("secret/app{n}"),
            serde_json::json!({"user": format!("user-{n}-v1")}),
        );
        builder = builder.put(
            &format!("secret/app{n}"),
            serde_json::json!({"user": format!("user-{n}-v2")}),
        );
    }
    let server = builder.start();
    let input = w1_input();
    let home = tempfile::tempdir().unwrap();
    let addr = server.addr();
    let base = [
        ("AVP_TYPE", "vault"),
        ("VAULT_ADDR", addr.as_str()),
        ("HOME", home.path().to_str().unwrap()),
    ];
    let variants: [(&str, &[(&str, &str)]); 2] = [
        (
            "token",
            &[("AVP_AUTH_TYPE", "token"), ("VAULT_TOKEN", "w1-root")],
        ),
        (
            "approle",
            &[
                ("AVP_AUTH_TYPE", "approle"),
                ("AVP_ROLE_ID", "w1-role"),
                ("AVP_SECRET_ID", "w1-secret-id"),
            ],
        ),
    ];
    for (name, auth) in variants {
        let env: Vec<_> = base.iter().chain(auth.iter()).copied().collect();
        let mut walls = Vec::new();
        let mut reads = 0;
        let mut logins = 0;
        for _ in 0..5 {
            server.clear_requests();
            let usage = run(
                &["generate", "-", "--disable-token-cache"],
                &env,
                Some(input.as_bytes()),
            );
            assert!(usage.success, "W1 {name} failed: {}", usage.stderr);
            walls.push(usage.wall);
            reads = server.count("GET", "/v1/secret/data/");
            logins = server.count("POST", "/v1/auth/") + server.count("PUT", "/v1/auth/");
        }
        let wall = median(walls);
        rows.push(row(
            &format!("W1 {name}: backend reads / logins"),
            format!("{reads} / {logins}"),
            "100 / ≤ 1 (AVP: 2000)".into(),
            reads as f64 / 100.0 + if logins <= 1 { 0.0 } else { 1.0 },
            1.0,
        ));
        rows.push(row(
            &format!("W1 {name}: wall time at 20 ms latency"),
            format!("{:.3} s", wall.as_secs_f64()),
            "≤ 0.10 s".into(),
            wall.as_secs_f64() / 0.10,
            1.0,
        ));
    }
    w1_concurrency(rows, &input, &base);
    w1_profiles(rows, &home);
}

/// W1 token at several `AVP_MAX_CONCURRENCY` bounds, to size the default by measurement.
fn w1_concurrency(rows: &mut Vec<Row>, input: &str, base: &[(&str, &str)]) {
    for bound in ["16", "32", "64", "128", "256"] {
        let env: Vec<_> = base
            .iter()
            .copied()
            .chain([
                ("AVP_AUTH_TYPE", "token"),
                ("VAULT_TOKEN", "w1-root"),
                ("AVP_MAX_CONCURRENCY", bound),
            ])
            .collect();
        let walls = (0..5)
            .map(|_| {
                let usage = run(
                    &["generate", "-", "--disable-token-cache"],
                    &env,
                    Some(input.as_bytes()),
                );
                assert!(usage.success, "W1 at {bound} failed: {}", usage.stderr);
                usage.wall
            })
            .collect();
        rows.push(Row {
            figure: format!("W1 token, AVP_MAX_CONCURRENCY={bound}: wall time"),
            measured: format!("{:.3} s", median(walls).as_secs_f64()),
            target: "report".into(),
            ratio: "-".into(),
            ok: true,
        });
    }
}

/// W1 over five Vault profiles (one server each) of 20 paths each, named by prefix in a `-c`
/// file: the profiles must resolve in parallel, not one after another.
fn w1_profiles(rows: &mut Vec<Row>, home: &tempfile::TempDir) {
    let servers: Vec<VaultServer> = (0..5)
        .map(|p| {
            let mut builder = VaultServer::builder()
                .kv2("secret")
                .token(&format!("w1-p{p}"), Policy::Root)
                .latency(Duration::from_millis(20));
            for n in 0..20 {
                builder = builder.put(
                    &format!("secret/app{n}"),
                    serde_json::json!({"user": format!("user-{p}-{n}")}),
                );
            }
            builder.start()
        })
        .collect();
    let mut config = String::from("backends:\n");
    for (p, server) in servers.iter().enumerate() {
        write!(
            config,
            "  p{p}:\n    AVP_TYPE: vault\n    VAULT_ADDR: {}\n    AVP_AUTH_TYPE: token\n    VAULT_TOKEN: w1-p{p}\n",
            server.addr()
        )
        .unwrap();
    }
    let config_file = home.path().join("w1-profiles.yaml");
    std::fs::write(&config_file, config).unwrap();
    let input = w1_input().replace("<path:secret/data/app", "<path:p@secret/data/app");
    // app{n} of the input becomes profile n / 20, path app{n % 20}.
    let input = (0..100).rev().fold(input, |text, n| {
        text.replace(
            &format!("<path:p@secret/data/app{n}#"),
            &format!("<path:p{}:secret/data/app{}#", n / 20, n % 20),
        )
    });
    let env = [
        ("AVP_TYPE", "vault"),
        ("HOME", home.path().to_str().unwrap()),
    ];
    let mut walls = Vec::new();
    let mut reads = 0;
    for _ in 0..5 {
        servers.iter().for_each(VaultServer::clear_requests);
        let usage = run(
            &[
                "generate",
                "-",
                "-c",
                config_file.to_str().unwrap(),
                "--disable-token-cache",
            ],
            &env,
            Some(input.as_bytes()),
        );
        assert!(usage.success, "W1 profiles failed: {}", usage.stderr);
        walls.push(usage.wall);
        reads = servers
            .iter()
            .map(|s| s.count("GET", "/v1/secret/data/"))
            .sum::<usize>();
    }
    rows.push(row(
        "W1 5 profiles × 20 paths: backend reads",
        reads.to_string(),
        "100".into(),
        reads as f64 / 100.0,
        1.0,
    ));
    let wall = median(walls);
    rows.push(row(
        "W1 5 profiles × 20 paths: wall time at 20 ms latency",
        format!("{:.3} s", wall.as_secs_f64()),
        "≤ 0.12 s".into(),
        wall.as_secs_f64() / 0.12,
        1.0,
    ));
}

/// A `helm template`-like stream of about `size` bytes; every `every`th document holds a
/// placeholder.
fn helm_stream(size: usize, every: usize) -> String {
    let mut input = String::with_capacity(size + 4096);
    let mut i = 0;
    while input.len() < size {
        let value = if i % every == 0 {
            "<path:secret/data/app#user>"
        } else {
            "plain-value"
        };
        write!(
            input,
            "---\n# Source: platform/templates/deploy-{i}.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  labels:\n    app.kubernetes.io/name: app-{i}\n    helm.sh/chart: platform-1.2.3\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: main\n          image: \"registry.example.com/app:{i}\"\n          args: [\"--port\", \"8080\", '--verbose']\n          env:\n            - name: TOKEN\n              value: {value}\n          command:\n            - /bin/sh\n            - -c\n            - |\n              echo starting {i}\n              exec app\n"
        )
        .unwrap();
        i += 1;
    }
    input
}

/// The naive alternative: parse each document into a serde_yaml value and serialise it again.
fn naive_reserialise(text: &str) -> usize {
    let mut bytes = 0;
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(doc).unwrap();
        bytes += serde_yaml::to_string(&value).unwrap().len();
    }
    bytes
}

fn w2(rows: &mut Vec<Row>, dir: &Path) {
    let size = 50 * 1024 * 1024;
    let input = helm_stream(size, 100);
    let file = dir.join("w2.yaml");
    std::fs::write(&file, &input).unwrap();
    let values = dir.join("values.yaml");
    std::fs::write(&values, "secret/data/app:\n  user: w2-user\n").unwrap();
    let env = [
        ("AVP_TYPE", "file"),
        ("AVP_VALUES_FILE", values.to_str().unwrap()),
    ];
    let usage = run(&["generate", file.to_str().unwrap()], &env, None);
    assert!(usage.success, "W2 failed: {}", usage.stderr);
    assert!(
        usage.stdout
            == input
                .replace("<path:secret/data/app#user>", "w2-user")
                .as_bytes()
    );
    let before = self_cpu();
    std::hint::black_box(naive_reserialise(&input));
    let naive = self_cpu() - before;
    rows.push(row(
        "W2 CPU time, 50 MB stream, vs serde_yaml parse+reserialise",
        format!(
            "{:.2} s vs {:.2} s",
            usage.cpu.as_secs_f64(),
            naive.as_secs_f64()
        ),
        "≤ 0.25 ×".into(),
        usage.cpu.as_secs_f64() / naive.as_secs_f64(),
        0.25,
    ));
    rows.push(peak("W2 peak memory", &usage, input.len(), 1.2));
}

/// Peak memory of `usage` against `factor` × the input + 20 MiB.
fn peak(figure: &str, usage: &Usage, input: usize, factor: f64) -> Row {
    let limit = factor * input as f64 + 20.0 * 1024.0 * 1024.0;
    row(
        figure,
        format!(
            "{:.1} MB (input {:.1} MB)",
            usage.max_rss_bytes as f64 / 1e6,
            input as f64 / 1e6
        ),
        format!("≤ {factor} × input + 20 MiB = {:.1} MB", limit / 1e6),
        usage.max_rss_bytes as f64 / limit,
        1.0,
    )
}

/// Memory where many documents hold placeholders: a 15 MB stream with one in every 5th
/// document, and 10,000 small documents of one placeholder each (over 100 paths).
fn w6(rows: &mut Vec<Row>, dir: &Path) {
    let values = dir.join("w6-values.yaml");
    let mut stored = String::from("secret/data/app:\n  user: w6-user\n");
    for n in 0..100 {
        writeln!(stored, "secret/data/app{n}:\n  user: w6-user-{n}").unwrap();
    }
    std::fs::write(&values, stored).unwrap();
    let env = [
        ("AVP_TYPE", "file"),
        ("AVP_VALUES_FILE", values.to_str().unwrap()),
    ];
    let stream = helm_stream(15 * 1024 * 1024, 5);
    let mut small = String::new();
    for i in 0..10_000 {
        write!(
            small,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w6-{i}\ndata:\n  user: <path:secret/data/app{}#user>\n",
            i % 100
        )
        .unwrap();
    }
    for (figure, input) in [
        ("W6 peak memory, 15 MB, every 5th document", stream),
        ("W6 peak memory, 10,000 one-placeholder documents", small),
    ] {
        let file = dir.join("w6.yaml");
        std::fs::write(&file, &input).unwrap();
        let usage = run(&["generate", file.to_str().unwrap()], &env, None);
        assert!(usage.success, "W6 failed: {}", usage.stderr);
        assert!(!usage.stdout.windows(6).any(|w| w == b"<path:"));
        rows.push(peak(figure, &usage, input.len(), 1.5));
    }
}

fn w3(rows: &mut Vec<Row>, dir: &Path) {
    let mut input = String::new();
    for i in 0..5 {
        let value = if i < 3 {
            format!("<path:secret/data/app#k{i}>")
        } else {
            "plain".to_owned()
        };
        write!(input, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small-{i}\ndata:\n  v: {value}\n").unwrap();
    }
    let file = dir.join("w3.yaml");
    std::fs::write(&file, input).unwrap();
    let values = dir.join("w3-values.yaml");
    std::fs::write(&values, "secret/data/app:\n  k0: a\n  k1: b\n  k2: c\n").unwrap();
    let env = [
        ("AVP_TYPE", "file"),
        ("AVP_VALUES_FILE", values.to_str().unwrap()),
    ];
    // Alternating runs, so that load from other work on the machine weighs on both medians alike.
    let (ours, truth): (Vec<_>, Vec<_>) = (0..200)
        .map(|_| {
            (
                run(&["generate", file.to_str().unwrap()], &env, None).wall,
                measured("/bin/true", Path::new("."), &[], &[], None).wall,
            )
        })
        .unzip();
    let (ours, truth) = (median(ours), median(truth));
    rows.push(row(
        "W3 process wall time, 5 documents, vs /bin/true",
        format!(
            "{:.2} ms vs {:.2} ms",
            ours.as_secs_f64() * 1e3,
            truth.as_secs_f64() * 1e3
        ),
        "≤ 3 ×".into(),
        ours.as_secs_f64() / truth.as_secs_f64(),
        3.0,
    ));
}

/// The release binary's size; stripped means no symbol table (`.symtab`) is left in it.
fn size(rows: &mut Vec<Row>) {
    let binary = std::fs::read(EXE).unwrap();
    let stripped = !binary.windows(8).any(|w| w == b".symtab\0");
    rows.push(Row {
        figure: "Release binary size, all backends".into(),
        measured: format!(
            "{:.1} MB, {}",
            binary.len() as f64 / 1e6,
            if stripped { "stripped" } else { "not stripped" }
        ),
        target: "stripped".into(),
        ratio: "-".into(),
        ok: stripped,
    });
}

fn w4(rows: &mut Vec<Row>) {
    let Ok(moto) = std::env::var("SECRETSUBST_TEST_MOTO_URL") else {
        rows.push(Row {
            figure: "W4 AWS API calls, 100 secrets".into(),
            measured: "not run: moto is not running (use .ci/bench)".into(),
            target: "≤ 5".into(),
            ratio: "-".into(),
            ok: false,
        });
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .endpoint_url(&moto)
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    let run_id = std::process::id();
    let mut input = String::new();
    runtime.block_on(async {
        for i in 0..100 {
            let name = format!("w4-{run_id}/s{i}");
            client
                .create_secret()
                .name(&name)
                .secret_string(format!(r#"{{"v":"value-{i}"}}"#))
                .send()
                .await
                .unwrap();
            write!(
                input,
                "---\nkind: ConfigMap\nmetadata:\n  name: w4-{i}\ndata:\n  v: <path:{name}#v>\n"
            )
            .unwrap();
        }
    });
    let env = [
        ("AVP_TYPE", "awssecretsmanager"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL", moto.as_str()),
    ];
    let usage = run(
        &["generate", "-", "--verbose-sensitive-output"],
        &env,
        Some(input.as_bytes()),
    );
    assert!(usage.success, "W4 failed: {}", usage.stderr);
    let calls: usize = usage
        .stderr
        .split("backend requests: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("verbose counters on stderr");
    rows.push(row(
        "W4 AWS API calls, 100 secrets",
        calls.to_string(),
        "≤ 5".into(),
        calls as f64 / 5.0,
        1.0,
    ));
}

/// 100 SOPS files of 50 values each (encrypted by the real sops, which `.ci/bench` installs),
/// read by one manifest through the `sops` backend: decrypted concurrently (the default bound)
/// and one after another (`AVP_MAX_CONCURRENCY=1`), in this one run.
fn w5(rows: &mut Vec<Row>, dir: &Path) {
    let figure = "W5 SOPS: 100 files × 50 values, concurrent vs one after another";
    let Ok(sops) = std::env::var("SECRETSUBST_BENCH_SOPS") else {
        rows.push(Row {
            figure: figure.into(),
            measured: "not run: no sops binary (use .ci/bench)".into(),
            target: "< 1 ×".into(),
            ratio: "-".into(),
            ok: false,
        });
        return;
    };
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let keys = dir.join("w5-keys.txt");
    {
        use age::secrecy::ExposeSecret as _;
        std::fs::write(&keys, identity.to_string().expose_secret()).unwrap();
    }
    let secrets = dir.join("w5");
    std::fs::create_dir_all(&secrets).unwrap();
    let mut manifest = String::from("kind: ConfigMap\nmetadata:\n  name: w5\ndata:\n");
    for f in 0..100 {
        let mut plain = String::new();
        for k in 0..50 {
            writeln!(plain, "k{k}: value-{f}-{k}").unwrap();
        }
        let source = secrets.join(format!("f{f}.yaml"));
        std::fs::write(&source, plain).unwrap();
        let encrypted = Command::new(&sops)
            .env_clear()
            .env("HOME", dir)
            .args(["encrypt", "--age", &recipient])
            .arg(&source)
            .output()
            .expect("run sops");
        assert!(encrypted.status.success(), "sops failed");
        std::fs::write(secrets.join(format!("f{f}.enc.yaml")), encrypted.stdout).unwrap();
        writeln!(manifest, "  f{f}: <path:f{f}.enc.yaml#k{}>", f % 50).unwrap();
    }
    let input = dir.join("w5-manifest.yaml");
    std::fs::write(&input, manifest).unwrap();
    let timed = |concurrency: &str| {
        let env = [
            ("AVP_TYPE", "sops"),
            ("SOPS_AGE_KEY_FILE", keys.to_str().unwrap()),
            ("AVP_MAX_CONCURRENCY", concurrency),
        ];
        median(
            (0..5)
                .map(|_| {
                    let usage = run_in(&secrets, &["generate", input.to_str().unwrap()], &env);
                    assert!(usage.success, "{}", usage.stderr);
                    usage.wall
                })
                .collect(),
        )
    };
    let concurrent = timed("32");
    let sequential = timed("1");
    rows.push(row(
        figure,
        format!(
            "{:.3} s vs {:.3} s",
            concurrent.as_secs_f64(),
            sequential.as_secs_f64()
        ),
        "report (< 1 ×)".into(),
        concurrent.as_secs_f64() / sequential.as_secs_f64(),
        0.99,
    ));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--spawn") {
        return spawn(&args[1..]);
    }
    // `cargo bench -- w1 w3` runs only those workloads; `cargo bench` passes `--bench` itself.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    if wanted("w1") {
        w1(&mut rows);
    }
    if wanted("w2") {
        w2(&mut rows, dir.path());
    }
    if wanted("w3") {
        w3(&mut rows, dir.path());
    }
    if wanted("w6") {
        w6(&mut rows, dir.path());
    }
    if wanted("size") {
        size(&mut rows);
    }
    if wanted("w4") {
        w4(&mut rows);
    }
    if wanted("w5") {
        w5(&mut rows, dir.path());
    }
    let width = rows
        .iter()
        .map(|r| r.figure.chars().count())
        .max()
        .unwrap_or(0);
    let measured = rows
        .iter()
        .map(|r| r.measured.chars().count())
        .max()
        .unwrap_or(0);
    println!(
        "| {:width$} | {:measured$} | target | ratio | met |",
        "figure", "measured"
    );
    println!(
        "|{}|{}|---|---|---|",
        "-".repeat(width + 2),
        "-".repeat(measured + 2)
    );
    for r in &rows {
        println!(
            "| {:width$} | {:measured$} | {} | {} | {} |",
            r.figure,
            r.measured,
            r.target,
            r.ratio,
            if r.ok { "yes" } else { "NO" }
        );
    }
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    );
}
