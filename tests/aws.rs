//! The real binary against moto (an AWS Secrets Manager emulator), which `.ci/test` starts on a
//! loopback port and names in `SECRETSUBST_TEST_MOTO_URL`. Every run passes static credentials,
//! a region and `AWS_EC2_METADATA_DISABLED`, so the SDK never looks beyond loopback.

use std::process::Output;

mod support;

use support::output::{assert_failure, assert_output, stderr};
use support::run::Run;

use support::moto::{admin, create, put, runtime, url as moto};

fn generate(env: &[(&str, &str)], input: &str, extra: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let keys = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    generate_in(home.path(), &[&keys[..], env].concat(), input, extra)
}

/// A run with `HOME` at `home` and no credentials but those in `env` (or the home's profile).
fn generate_in(
    home: &std::path::Path,
    env: &[(&str, &str)],
    input: &str,
    extra: &[&str],
) -> Output {
    Run::generate(input)
        .home(home)
        .env("AVP_TYPE", "awssecretsmanager")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", moto())
        .envs(env)
        .args(extra)
        .output()
}

const REGION: [(&str, &str); 1] = [("AWS_REGION", "us-east-1")];

#[test]
fn json_plain_and_binary_secrets() {
    create(
        "us-east-1",
        "kinds/json",
        Some(r#"{"user":"app","port":5432,"cfg":{"replicas":2}}"#),
        None,
    );
    create("us-east-1", "kinds/plain", Some("plain-s3cr3t"), None);
    create("us-east-1", "kinds/binary", None, Some(&[0, 0xff, 1]));
    let input = "kind: Deployment\nspec:\n  replicas: <path:kinds/json#cfg | jsonPath {.replicas}>\n  port: <path:kinds/json#port>\n  user: <path:kinds/json#user>\n  plain: <path:kinds/plain#SecretString>\n  bin: <path:kinds/binary#SecretBinary>\n---\nkind: Secret\ndata:\n  bin: <path:kinds/binary#SecretBinary | base64encode>\n";
    let want = "kind: Deployment\nspec:\n  replicas: \"2\"\n  port: 5432\n  user: app\n  plain: plain-s3cr3t\n  bin: AP8B\n---\nkind: Secret\ndata:\n  bin: AP8B\n";
    assert_output(&generate(&REGION, input, &[]), want);
}

#[test]
fn names_and_arns_and_the_arn_region() {
    let arn = create(
        "us-west-2",
        "regions/db",
        Some(r#"{"password":"west-s3cr3t"}"#),
        None,
    );
    let input = format!("kind: Secret\nstringData:\n  a: <path:{arn}#password>\n");
    assert_output(
        &generate(&REGION, &input, &[]),
        &input.replace(&format!("<path:{arn}#password>"), "west-s3cr3t"),
    );
    let by_name = "kind: Secret\nstringData:\n  a: <path:regions/db#password>\n";
    let err = assert_failure(&generate(&REGION, by_name, &[]), &["west-s3cr3t"]);
    assert!(
        err.contains("ResourceNotFoundException: regions/db"),
        "{err}"
    );
    let west = [("AWS_REGION", "us-west-2")];
    assert_output(
        &generate(&west, by_name, &[]),
        &by_name.replace("<path:regions/db#password>", "west-s3cr3t"),
    );
}

#[test]
fn region_falls_back_to_aws_default_region_then_us_east_2() {
    create(
        "eu-central-1",
        "fallback/a",
        Some(r#"{"k":"eu-s3cr3t"}"#),
        None,
    );
    create(
        "us-east-2",
        "fallback/a",
        Some(r#"{"k":"ohio-s3cr3t"}"#),
        None,
    );
    let input = "kind: Secret\nstringData:\n  a: <path:fallback/a#k>\n";
    let eu = [("AWS_DEFAULT_REGION", "eu-central-1")];
    assert_output(
        &generate(&eu, input, &[]),
        &input.replace("<path:fallback/a#k>", "eu-s3cr3t"),
    );
    assert_output(
        &generate(&[], input, &[]),
        &input.replace("<path:fallback/a#k>", "ohio-s3cr3t"),
    );
}

#[test]
fn stages_and_version_ids_select_versions() {
    create(
        "us-east-1",
        "versions/app",
        Some(r#"{"pw":"v1-s3cr3t"}"#),
        None,
    );
    put("versions/app", r#"{"pw":"v2-s3cr3t"}"#, &[]);
    let release = put("versions/app", r#"{"pw":"v3-s3cr3t"}"#, &["release"]);
    let input = format!(
        "kind: Secret\nstringData:\n  current: <path:versions/app#pw#AWSCURRENT>\n  previous: <path:versions/app#pw#AWSPREVIOUS>\n  release: <path:versions/app#pw#release>\n  id: <path:versions/app#pw#{release}>\n  latest: <path:versions/app#pw>\n"
    );
    let want = "kind: Secret\nstringData:\n  current: v2-s3cr3t\n  previous: v1-s3cr3t\n  release: v3-s3cr3t\n  id: v3-s3cr3t\n  latest: v2-s3cr3t\n";
    assert_output(&generate(&REGION, &input, &[]), want);
}

#[test]
fn secret_version_annotation_selects_a_stage() {
    create(
        "us-east-1",
        "annotated/app",
        Some(r#"{"pw":"old-s3cr3t"}"#),
        None,
    );
    put("annotated/app", r#"{"pw":"new-s3cr3t"}"#, &[]);
    let input = "kind: Secret\nmetadata:\n  annotations:\n    avp.kubernetes.io/path: annotated/app\n    avp.kubernetes.io/secret-version: AWSPREVIOUS\nstringData:\n  pw: <pw>\n";
    assert_output(
        &generate(&REGION, input, &[]),
        &input.replace("<pw>", "old-s3cr3t"),
    );
}

#[test]
fn missing_and_deleted_secrets_are_reported_with_the_aws_error_code() {
    create(
        "us-east-1",
        "gone/app",
        Some(r#"{"pw":"deleted-s3cr3t"}"#),
        None,
    );
    runtime().block_on(async {
        admin("us-east-1")
            .delete_secret()
            .secret_id("gone/app")
            .send()
            .await
            .unwrap();
    });
    let input = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  a: <path:gone/app#pw>\n  b: <path:never/existed#pw>\n";
    let err = assert_failure(
        &generate(&REGION, input, &[]),
        &["deleted-s3cr3t", "testing"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn a_hundred_secrets_take_five_batch_calls() {
    for i in 0..100 {
        create(
            "us-east-1",
            &format!("batch/s{i:03}"),
            Some(&format!(r#"{{"v":"value-{i}"}}"#)),
            None,
        );
    }
    let mut input = String::new();
    let mut want = String::new();
    for i in 0..100 {
        input.push_str(&format!("---\nkind: ConfigMap\ndata:\n  v: <path:batch/s{i:03}#v>\n  again: <path:batch/s{i:03}#v>\n"));
        want.push_str(&format!(
            "---\nkind: ConfigMap\ndata:\n  v: value-{i}\n  again: value-{i}\n"
        ));
    }
    let out = generate(&REGION, &input, &["--verbose-sensitive-output"]);
    assert_output(&out, &want);
    let err = stderr(&out);
    assert!(
        err.contains("unique secrets: 100, backend requests: 5,"),
        "{err}"
    );
    assert!(
        !err.contains("value-"),
        "verbose output leaks values: {err}"
    );
}

#[test]
fn the_service_specific_endpoint_wins() {
    create(
        "us-east-1",
        "endpoint/app",
        Some(r#"{"k":"endpoint-s3cr3t"}"#),
        None,
    );
    let input = "kind: Secret\nstringData:\n  a: <path:endpoint/app#k>\n";
    let moto = moto();
    // Port 9 (discard) on loopback: nothing answers there, so only moto can succeed.
    let env = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.as_str()),
    ];
    assert_output(
        &generate(&env, input, &[]),
        &input.replace("<path:endpoint/app#k>", "endpoint-s3cr3t"),
    );
}

#[test]
fn credentials_and_region_come_from_the_profile() {
    create(
        "ap-south-1",
        "profile/app",
        Some(r#"{"k":"profile-s3cr3t"}"#),
        None,
    );
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    std::fs::write(aws.join("config"), "[default]\nregion = ap-south-1\n").unwrap();
    let input = "kind: Secret\nstringData:\n  a: <path:profile/app#k>\n";
    let out = generate_in(home.path(), &[], input, &[]);
    assert_output(
        &out,
        &input.replace("<path:profile/app#k>", "profile-s3cr3t"),
    );
}

#[test]
fn a_region_or_key_with_a_line_break_is_an_error_or_trimmed_never_a_panic() {
    create("us-east-1", "lf/app", Some(r#"{"k": "v-s3cr3t"}"#), None);
    let doc = "kind: A\nx: <path:lf/app#k>\n";
    let out = generate(&[("AWS_REGION", "us-east-1\n")], doc, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = generate(&[("AWS_REGION", "us\neast-1")], doc, &[]);
    let err = assert_failure(&out, &["v-s3cr3t"]);
    assert_eq!(
        err,
        "error: <stdin>: doc 1 (A): x: <path:lf/app#k>: awssecretsmanager: AWS_REGION \"us\\neast-1\" is not a region name (such as eu-west-1)\n"
    );
    let keys = [
        ("AWS_ACCESS_KEY_ID", "testing\n"),
        ("AWS_SECRET_ACCESS_KEY", "testing\n"),
        ("AWS_REGION", "us-east-1"),
    ];
    let home = tempfile::tempdir().unwrap();
    let out = generate_in(home.path(), &keys, doc, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `doctor` against moto with `env`'s credentials.
fn doctor(url: &str, env: &[(&str, &str)]) -> Output {
    let out = Run::new(["doctor", "--verbose-sensitive-output"])
        .env("AVP_TYPE", "awssecretsmanager")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", url)
        .env("AWS_REGION", "us-east-1")
        .envs(env)
        .output();
    let all = format!("{}{}", support::output::stdout(&out), stderr(&out));
    for (key, value) in env {
        if key.contains("SECRET") {
            assert!(!all.contains(value), "{key} leaked: {all}");
        }
    }
    out
}

#[test]
fn doctor_checks_the_region_the_credentials_and_that_secrets_manager_accepts_them() {
    let out = doctor(
        &moto(),
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "doctor-s3cr3t"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = support::output::stdout(&out);
    assert!(
        text.contains("  region       ok  us-east-1 (the endpoint of AWS_ENDPOINT_URL_SECRETS_MANAGER or AWS_ENDPOINT_URL)\n  credentials  ok  from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n  access       ok  Secrets Manager accepts the credentials\n"),
        "{text}"
    );
    assert!(
        text.contains("  AWS_SECRET_ACCESS_KEY  [redacted]"),
        "{text}"
    );
}

#[test]
fn doctor_tells_refused_credentials_from_a_role_without_list_secrets() {
    let moto = support::moto::OwnMoto::start();
    let (id, secret) = moto.deny_all_user("");
    let (id, secret) = (id.as_str(), secret.as_str());
    let out = doctor(
        &moto.url,
        &[("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        support::output::stdout(&out).contains("  access       ok  Secrets Manager accepts the credentials (ListSecrets is denied, which reads do not need)\n"),
        "{}",
        support::output::stdout(&out)
    );
    let out = doctor(
        &moto.url,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000"),
            ("AWS_SECRET_ACCESS_KEY", "unknown-s3cr3t"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        support::output::stdout(&out)
    );
    let text = support::output::stdout(&out);
    assert!(
        text.contains("  access       FAILED  Secrets Manager refuses the credentials: "),
        "{text}"
    );
    assert!(text.contains("hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the repo-server's service account an IAM role"), "{text}");
}
