//! moto, the AWS Secrets Manager emulator: the shared server `.ci/test` starts (named in
//! `SECRETSUBST_TEST_MOTO_URL`), a client to set secrets up in it, and servers of a test's own
//! for what changes a whole server (IAM checks).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::primitives::Blob;

/// The shared server's URL.
pub fn url() -> String {
    std::env::var("SECRETSUBST_TEST_MOTO_URL")
        .expect("the AWS tests need moto: run the suite with .ci/test, which starts it")
}

/// The settings every run against moto at `url` needs: static credentials and the endpoint,
/// so that the SDK never looks beyond loopback.
pub fn env(url: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL", url),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// A Secrets Manager client for the shared moto in `region`, to set up secrets.
pub fn admin(region: &str) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(url())
        .build();
    Client::from_conf(config)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Creates a secret (string or binary) and returns its ARN.
pub fn create(region: &str, name: &str, string: Option<&str>, binary: Option<&[u8]>) -> String {
    runtime().block_on(async {
        let out = admin(region)
            .create_secret()
            .name(name)
            .set_secret_string(string.map(str::to_owned))
            .set_secret_binary(binary.map(Blob::new))
            .send()
            .await
            .unwrap();
        out.arn().unwrap().to_owned()
    })
}

/// Adds a version in `us-east-1` with `stages` (AWSCURRENT when empty) and returns its version
/// id.
pub fn put(name: &str, value: &str, stages: &[&str]) -> String {
    runtime().block_on(async {
        let out = admin("us-east-1")
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .set_version_stages(
                (!stages.is_empty()).then(|| stages.iter().map(|s| (*s).to_owned()).collect()),
            )
            .send()
            .await
            .unwrap();
        out.version_id().unwrap().to_owned()
    })
}

/// A moto server of the test's own, stopped when dropped.
pub struct OwnMoto {
    child: Child,
    pub url: String,
}

impl OwnMoto {
    /// Starts `moto_server` from the venv `.ci/test` made, on a free loopback port.
    pub fn start() -> OwnMoto {
        let python = std::path::PathBuf::from(
            std::env::var("SECRETSUBST_TEST_PYTHON").expect("run the suite with .ci/test"),
        );
        let server = python.with_file_name("moto_server");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = OwnMoto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Runs a Python script with boto3 (moto's dependency) against this server: `URL` is
    /// defined for it; returns its stdout.
    pub fn python(&self, script: &str) -> String {
        let python = std::env::var("SECRETSUBST_TEST_PYTHON").unwrap();
        let out = Command::new(python)
            .arg("-c")
            .arg(format!("URL = {:?}\n{script}", self.url))
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl OwnMoto {
    /// IAM checks turned on, with a user whose policy denies every Secrets Manager action, after
    /// `setup` (Python with `kw`, the admin client arguments) ran: the user's access key id and
    /// secret key.
    pub fn deny_all_user(&self, setup: &str) -> (String, String) {
        let keys = self.python(&format!(
            r#"
import boto3, json, urllib.request
kw = dict(endpoint_url=URL, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="reader")
iam.put_user_policy(UserName="reader", PolicyName="no-secrets", PolicyDocument=json.dumps(
    {{"Version": "2012-10-17", "Statement": [{{"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}}]}}))
key = iam.create_access_key(UserName="reader")["AccessKey"]
{setup}
urllib.request.urlopen(urllib.request.Request(URL + "/moto-api/reset-auth", data=b"0", method="POST", headers={{"Content-Type": "application/octet-stream"}}))
print(key["AccessKeyId"], key["SecretAccessKey"])
"#
        ));
        let (id, secret) = keys.trim().split_once(' ').expect("two keys");
        (id.to_owned(), secret.to_owned())
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
