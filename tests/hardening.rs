//! The robustness contract, tried as a hostile or unlucky user would: inputs, settings and
//! signals that must give an ordinary error (or work), never a crash, a hang or wrong output.
//!
//! Every run uses the values-file backend with the secrets below, from a cleared environment.

mod support;

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::output::{assert_failure, assert_output, stderr, stdout};
use support::run::Run;

const VALUES: &str = r#"
app:
  user: admin
  pw: s3cr3t-value
  n: 3
  tab: "a	b"
  query: "https://x.example/p?y=1"
  selfref: "a: &a [*a]"
  mergeloop: "&r\n<<: *r\nkind: A\n"
  laughs: "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
  lead: "  x"
  "bad\nkey": v
"#;

/// A directory holding the values file, kept for the test's duration.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("values.yaml"), VALUES).expect("write values");
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A one-placeholder document whose output is sixteen times a pipe's buffer, written to
    /// `big.yaml`: its text and path.
    fn bigger_than_a_pipe(&self) -> (String, String) {
        let doc = format!(
            "kind: A\nx: <path:app#user>\npad: {}\n",
            "p".repeat(1 << 20)
        );
        let path = self.write("big.yaml", &doc);
        (doc, path)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// The binary on the values file, from the directory, plus `env` (which may override it).
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run::new(args)
            .env("AVP_TYPE", "file")
            .env("AVP_VALUES_FILE", self.path("values.yaml"))
            .envs(env)
            .dir(self.dir.path())
    }

    /// Runs with `stdin` as input (`generate -`).
    fn run(&self, stdin: &str, env: &[(&str, &str)]) -> Output {
        self.command(&["generate", "-"], env).stdin(stdin).output()
    }
}

fn one_error_line(out: &Output) -> String {
    let err = assert_failure(out, &["s3cr3t-value", "admin"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn the_exec_timeout_with_a_placeholder_to_fetch_works() {
    let env = Env::new();
    let out = env.run(
        "kind: A\nx: <path:app#user>\n",
        &[("ARGOCD_EXEC_TIMEOUT", "90s")],
    );
    assert_output(&out, "kind: A\nx: admin\n");
}

#[test]
fn out_of_range_timeouts_are_errors_naming_the_setting() {
    let env = Env::new();
    for key in ["ARGOCD_EXEC_TIMEOUT", "ARGOCD_ENV_ARGOCD_EXEC_TIMEOUT"] {
        let out = env.run(
            "kind: A\nx: <path:app#user>\n",
            &[(key, "18446744073709551615")],
        );
        assert_eq!(
            one_error_line(&out),
            "error: ARGOCD_EXEC_TIMEOUT must be a duration from 1ms to 168h, such as 90s or 2m, got \"18446744073709551615\"\n"
        );
    }
}

#[test]
fn any_nesting_depth_is_an_error_not_a_crash() {
    let env = Env::new();
    for (open, close) in [("[", "]"), ("{a: ", "}"), ("- ", "")] {
        let doc = format!(
            "kind: A\nx:\n  {}1{}\n",
            open.repeat(8500),
            close.repeat(8500)
        );
        let out = env.run(&doc, &[]);
        let err = one_error_line(&out);
        assert!(
            err.starts_with("error: <stdin>: doc 1: invalid YAML at line "),
            "{err}"
        );
        assert!(
            err.contains("collections nest deeper than 500 levels"),
            "{err}"
        );
    }
    // Without kind, and as JSON.
    let out = env.run(&format!("x: {}\n", "[".repeat(100_000)), &[]);
    one_error_line(&out);
    let out = env.run(&format!("{{\"a\": {}}}", "[".repeat(100_000)), &[]);
    one_error_line(&out);
    let nested = format!(
        "kind: A\nx: {}<path:app#user>{}\n",
        "[".repeat(450),
        "]".repeat(450)
    );
    let out = env.run(&nested, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn modifier_outputs_and_alias_expansion_are_bounded() {
    let env = Env::new();
    let cases = [
        (
            "<path:app#mergeloop | indent 9223372036854775807>",
            "indent: the result would be larger than 16 MiB",
        ),
        (
            "<path:app#selfref | yamlParse>",
            "yamlParse: invalid YAML at line 1 column 8",
        ),
        (
            "<path:app#mergeloop | yamlParse>",
            "yamlParse: invalid YAML at line 2 column 5",
        ),
        (
            "<path:app#laughs | yamlParse>",
            "yamlParse: aliases expand to more than 4 million nodes and bytes",
        ),
    ];
    for (placeholder, reason) in cases {
        let out = env.run(&format!("kind: A\nx: {placeholder}\n"), &[]);
        let err = one_error_line(&out);
        assert_eq!(
            err,
            format!("error: <stdin>: doc 1 (A): x: {placeholder}: {reason}\n")
        );
    }
}

#[test]
fn a_merge_key_loop_in_a_manifest_is_an_error() {
    let env = Env::new();
    let out = env.run("&r\n<<: *r\nkind: A\n", &[]);
    assert_eq!(
        one_error_line(&out),
        "error: <stdin>: doc 1: invalid YAML at line 2 column 5: unknown anchor 'r' referenced\n"
    );
    let mut doc = String::from("a0: &a0 {x: 1}\n");
    for i in 1..12 {
        let p = i - 1;
        doc.push_str(&format!("a{i}: &a{i} {{<<: [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]}}\n"));
    }
    doc.push_str("<<: *a11\ny: <path:app#user>\n");
    let out = env.run(&doc, &[]);
    // No kind anywhere, even merged in: not a manifest, so empty input.
    assert!(
        stderr(&out).contains("no Kubernetes manifests"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn control_characters_from_manifests_cannot_forge_error_lines() {
    let env = Env::new();
    let out = env.run(
        "kind: A\nx: \"<path:app#no\\nerror: forged\\u001b[31m>\"\n",
        &[],
    );
    let err = one_error_line(&out);
    assert!(err.contains("no\\nerror: forged\\u{1b}[31m"), "{err}");
}

#[test]
fn long_placeholders_are_cut_in_errors() {
    let env = Env::new();
    let path = "p".repeat(100_000);
    let out = env.run(&format!("kind: A\nx: <path:{path}#k>\n"), &[]);
    let err = one_error_line(&out);
    assert!(err.len() < 2500, "{} bytes", err.len());
    assert!(err.contains("characters)…"), "{err}");
}

/// Whether PyYAML and ruamel.yaml (YAML 1.1 mode) both read `text` as a document whose value at
/// `key_path` is `want`. `None` without them (they come with moto's venv, set up by `.ci/test`).
fn pyyaml_reads(text: &str, key_path: &str, want: &str) -> Option<bool> {
    let python = std::env::var("SECRETSUBST_TEST_PYTHON").ok()?;
    let script = format!(
        "import sys, yaml, json, ruamel.yaml\n\
         text = sys.stdin.read()\n\
         r = ruamel.yaml.YAML(typ='safe', pure=True)\n\
         r.version = (1, 1)\n\
         values = []\n\
         for d in (yaml.safe_load(text), r.load(text)):\n\
         \x20   for k in {key_path}: d = d[k]\n\
         \x20   values.append(d)\n\
         assert values[0] == values[1], values\n\
         print(json.dumps(values[0]))"
    );
    let mut child = Command::new(python)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Some(false);
    }
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(got == serde_json::Value::String(want.to_owned()))
}

fn require_python() -> bool {
    let have = std::env::var_os("SECRETSUBST_TEST_PYTHON").is_some();
    assert!(
        have || std::env::var_os("CI").is_none(),
        "SECRETSUBST_TEST_PYTHON must name a Python with PyYAML under CI (.ci/test sets it)"
    );
    have
}

#[test]
fn tabs_and_question_marks_are_written_so_every_reader_reads_them_back() {
    let env = Env::new();
    let cases = [
        ("x: <path:app#tab>\n", "a\tb", "['x']"),
        (
            "x: {a: <path:app#query>}\n",
            "https://x.example/p?y=1",
            "['x', 'a']",
        ),
        (
            "x: [<path:app#query>]\n",
            "https://x.example/p?y=1",
            "['x', 0]",
        ),
        ("x: '<path:app#tab>'\n", "a\tb", "['x']"),
    ];
    let python = require_python();
    for (body, value, key_path) in cases {
        let out = env.run(&format!("kind: ConfigMap\n{body}"), &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        if python {
            assert_eq!(pyyaml_reads(&text, key_path, value), Some(true), "{text}");
        }
        assert!(!text.contains('\t'), "{text:?}");
    }
}

#[test]
fn windows_line_endings_are_kept() {
    let env = Env::new();
    let out = env.run(
        "kind: A\r\nx: <path:app#user>\r\nm: |\r\n  <path:app#selfref>\r\n  more\r\ny: <path:app#lead>\r\n",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let bare = text
        .match_indices('\n')
        .any(|(i, _)| !text[..i].ends_with('\r'));
    assert!(!bare, "{text:?}");
}

#[test]
fn a_block_at_the_end_without_a_final_newline_gains_none() {
    let env = Env::new();
    let out = env.run("kind: A\nx: |\n  <path:app#lead>", &[]);
    assert_output(&out, "kind: A\nx: \"  x\"");
}

#[test]
fn byte_order_marks_are_legal() {
    let env = Env::new();
    let out = env.run("\u{feff}kind: A\nx: <path:app#user>\n", &[]);
    assert_output(&out, "\u{feff}kind: A\nx: admin\n");
    let out = env.run("kind: A\n---\n\u{feff}kind: B\nx: <path:app#user>\n", &[]);
    assert_output(&out, "kind: A\n---\n\u{feff}kind: B\nx: admin\n");
}

#[test]
fn a_broken_link_in_the_app_directory_is_an_error() {
    let env = Env::new();
    env.write("app/a.yaml", "kind: A\nx: <path:app#user>\n");
    std::os::unix::fs::symlink(env.path("gone.yaml"), env.path("app/b.yaml")).unwrap();
    let out = env.command(&["generate", "app"], &[]).output();
    assert_eq!(
        one_error_line(&out),
        "error: app/b.yaml: a broken symbolic link (its target does not exist)\n"
    );
}

#[test]
fn a_reader_that_closes_stdout_early_makes_the_run_fail() {
    let env = Env::new();
    let (_, path) = env.bigger_than_a_pipe();
    let (mut cmd, _home) = env.command(&["generate", &path], &[]).command();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the reader closed it before the output ended"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_closed_stdout_makes_the_run_fail() {
    let env = Env::new();
    let path = env.write("a.yaml", "kind: A\nx: <path:app#user>\n");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "'{}' generate '{path}' >&-",
                env!("CARGO_BIN_EXE_secretsubst")
            ),
        ])
        .env("AVP_TYPE", "file")
        .env("AVP_VALUES_FILE", env.path("values.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: stdout is closed, so the manifests cannot be printed\n"
    );
}

#[test]
fn sigterm_ends_the_run_at_once_naming_what_it_waited_for() {
    let env = Env::new();
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let marker = env.path(&format!("child-of-{name}"));
        let script = format!("(sleep 2; touch '{}') & sleep 30", marker.display());
        let (out, took) = env
            .command(&["generate", "--", "sh", "-c", &script], &[])
            .interrupted(signal, Duration::from_millis(500));
        assert!(took < Duration::from_secs(10));
        assert_eq!(
            one_error_line(&out),
            format!("error: interrupted by {name} while waiting for `sh -c {script}`\n")
        );
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the renderer's child outlived the signal");
    }
}

#[test]
fn a_signal_while_stdout_is_not_read_names_its_reader() {
    let env = Env::new();
    let (doc, path) = env.bigger_than_a_pipe();
    // The run blocks on the full pipe until the signal.
    let (out, _) = env
        .command(&["generate", &path], &[])
        .interrupted(libc::SIGTERM, Duration::from_millis(1500));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: interrupted by SIGTERM while waiting for the reader of stdout\n"
    );
    // What the pipe took before the signal; the rest never comes.
    assert!(out.stdout.len() < doc.len(), "{}", out.stdout.len());
}

#[test]
fn errors_of_every_file_are_reported_even_when_one_does_not_parse() {
    let env = Env::new();
    env.write("app/a.yaml", "kind: A\n---foo\n");
    env.write("app/b.yaml", "kind: B\nx: <path:app#nope>\n");
    env.write("app/c.yaml", "kind: C\na: 1\nb: 2\nc: x\0y\n");
    let out = env.command(&["generate", "app"], &[]).output();
    let err = assert_failure(&out, &["admin"]);
    assert_eq!(
        err,
        "error: app/a.yaml: line 2: invalid Yaml document separator: foo\n\
         error: app/b.yaml: doc 1 (B): x: <path:app#nope>: missing value: key \"nope\" not found in app\n\
         error: app/c.yaml: doc 1: invalid YAML at line 4 column 5: the character U+0000 is not allowed in YAML\n"
    );
}

#[test]
fn removing_eighty_thousand_missing_fields_finishes() {
    let env = Env::new();
    let mut doc = String::from(
        "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/remove-missing: \"true\"\nstringData:\n  keep: <path:app#user>\n",
    );
    for i in 0..80_000 {
        doc.push_str(&format!("  k{i}: <path:app#missing>\n"));
    }
    let path = env.write("big.yaml", &doc);
    let out = env.command(&["generate", &path], &[]).output();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("stringData:\n  keep: admin\n"));
}

#[test]
fn tokens_and_namespaces_with_line_breaks_never_reach_a_header() {
    let env = Env::new();
    let doc = "kind: A\nmetadata:\n  annotations:\n    avp.kubernetes.io/namespace: \"team\\n\"\nx: <path:app#user>\n";
    let out = env.run(doc, &[]);
    assert_eq!(
        one_error_line(&out),
        "error: <stdin>: doc 1 (A): metadata.annotations['avp.kubernetes.io/namespace']: a namespace cannot hold the control character '\\n'\n"
    );
}

/// `s` as a double-quoted YAML scalar with every non-ASCII or control character escaped.
fn escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

#[test]
fn every_character_reads_back_in_block_and_flow_context_under_pyyaml_and_ruamel() {
    if !require_python() {
        return;
    }
    let env = Env::new();
    // Every ASCII, Latin-1 and C1 character, the Unicode spaces, separators and marks, and some
    // beyond: the pure-Python readers are slow, so not all of Unicode.
    let chars = (1u32..0x250)
        .chain(0x2000..0x2070)
        .chain([0x3000, 0xfeff, 0xfffd, 0xfffe, 0xffff, 0x1f600, 0x10ffff])
        .filter_map(char::from_u32);
    let mut values = Vec::new();
    for c in chars {
        for form in ["a{}b", "{}", "{}a", "a{}", "{} {}"] {
            values.push(form.replace("{}", &c.to_string()));
        }
    }
    for special in [
        "a: b", "a #b", "- x", "? x", "x?", ":x", "x:", "-", "?", "~", "yes", "0o17", "1_0", "<<",
        "=", "...",
    ] {
        values.push(special.to_owned());
    }
    let mut file = String::from("chars:\n");
    let mut doc = String::from("kind: ConfigMap\ndata:\n");
    let mut flow = String::from("flow:\n");
    for (i, value) in values.iter().enumerate() {
        file.push_str(&format!("  v{i}: {}\n", escaped(value)));
        doc.push_str(&format!("  b{i}: <path:chars#v{i}>\n"));
        flow.push_str(&format!(
            "  f{i}: [<path:chars#v{i}>, {{k: <path:chars#v{i}>}}]\n"
        ));
    }
    doc.push_str(&flow);
    std::fs::write(env.path("values.yaml"), file).unwrap();
    let out = env.run(&doc, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rendered = env.write("rendered.yaml", &stdout(&out));
    let expected = env.write("expected.json", &serde_json::to_string(&values).unwrap());
    let script = "import sys, json, yaml, ruamel.yaml\n\
        want = json.load(open(sys.argv[2]))\n\
        text = open(sys.argv[1], encoding='utf-8').read()\n\
        r = ruamel.yaml.YAML(typ='safe', pure=True)\n\
        r.version = (1, 1)\n\
        bad = []\n\
        for name, d in (('pyyaml', yaml.safe_load(text)), ('ruamel', r.load(text))):\n\
        \x20   for i, v in enumerate(want):\n\
        \x20       got = (d['data']['b%d' % i], d['flow']['f%d' % i][0], d['flow']['f%d' % i][1]['k'])\n\
        \x20       if got != (v, v, v): bad.append((name, v, got))\n\
        print(repr(bad[:5]))\n\
        sys.exit(1 if bad else 0)\n";
    let check = Command::new(std::env::var("SECRETSUBST_TEST_PYTHON").unwrap())
        .args(["-c", script, &rendered, &expected])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn a_yaml_parser_panic_is_an_ordinary_error() {
    // Found by fuzzing: libyaml-safer panics on a tag followed by `,` in a flow collection.
    let env = Env::new();
    let out = env.run("kind: A\nx: [!, <path:app#user>]\n", &[]);
    assert_eq!(
        one_error_line(&out),
        "error: <stdin>: doc 1: invalid YAML at line 2 column 5: the YAML parser cannot read this text (a tag followed by `,`?)\n"
    );
}

#[test]
fn removing_a_last_field_whose_value_ends_in_a_multibyte_character() {
    // Found by fuzzing: the removal looked at the byte before the value's end.
    let env = Env::new();
    let out = env.run(
        "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/remove-missing: \"true\"\nstringData:\n  a: <path:app#user>\n  b: x<path:app#nope>é",
        &[],
    );
    assert_output(
        &out,
        "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/remove-missing: \"true\"\nstringData:\n  a: admin\n",
    );
}
