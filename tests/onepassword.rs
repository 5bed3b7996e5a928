//! The real binary against the in-repo 1Password Connect test server (tests/support/onepassword.rs):
//! paths by id and by title, field labels as keys, refusals, retries, the requests each run
//! makes (asserted on the server's log), doctor and profiles. Every run is verbose, and no
//! stored value or token may reach stderr.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use support::onepassword::{ConnectServer, Field, error};
use support::output::{assert_failure, assert_output, stderr, stdout};
use support::run::Run;

const TOKEN: &str = "connect-token-s3cr3t";
/// A token that may read the vault `Prod` only.
const READER: &str = "reader-token-s3cr3t";
const VERBOSE: &str = "--verbose-sensitive-output";
/// Every value and token stored: none may reach stderr.
const LEAKS: &[&str] = &[
    TOKEN,
    READER,
    "wrong-s3cr3t",
    "db-pw-s3cr3t",
    "dev-pw-s3cr3t",
    "api-key-s3cr3t",
    "old-dup-s3cr3t",
    "new-dup-s3cr3t",
    "quoted-s3cr3t",
    "locked-s3cr3t",
];

/// The test server with its vaults and items, and the ids the tests name.
struct Connect {
    server: ConnectServer,
    prod: String,
    /// `Prod`'s item `db`.
    db: String,
    /// `Prod`'s item `team/api`.
    api: String,
    /// `Dev`'s item `db`.
    dev_db: String,
    locked: String,
    /// The item `say "hi" \ bye` of the vault `Q&A ?%`.
    quoted: String,
}

fn connect() -> Connect {
    let server = ConnectServer::start();
    let prod = server.vault("Prod");
    let db = server.item(
        &prod,
        "db",
        &[
            ("username", "app"),
            ("password", "db-pw-s3cr3t"),
            ("port", "5432"),
        ],
    );
    let api = server.item(&prod, "team/api", &[("key", "api-key-s3cr3t")]);
    server.item_with(
        &prod,
        "dup",
        vec![
            Field::new("password", "old-dup-s3cr3t"),
            Field::new("password", "new-dup-s3cr3t").in_section("rotated"),
            Field::empty("notes"),
        ],
    );
    server.item(&prod, "twin", &[("k", "a")]);
    server.item(&prod, "twin", &[("k", "b")]);
    let dev = server.vault("Dev");
    let dev_db = server.item(&dev, "db", &[("password", "dev-pw-s3cr3t")]);
    server.vault("Twins");
    server.vault("Twins");
    let locked = server.vault("Locked");
    server.item(&locked, "x", &[("k", "locked-s3cr3t")]);
    let vault = server.vault("Q&A ?%");
    let quoted = server.item(&vault, r#"say "hi" \ bye"#, &[("k", "quoted-s3cr3t")]);
    server.token_for_all(TOKEN);
    server.token(READER, &[&prod]);
    Connect {
        server,
        prod,
        db,
        api,
        dev_db,
        locked,
        quoted,
    }
}

impl Connect {
    /// `generate -` on `input` with `token`, verbose; no value or token in stderr.
    fn run_with(&self, token: &str, input: &str) -> Output {
        let out = Run::generate(input)
            .env("AVP_TYPE", "1passwordconnect")
            .env("OP_CONNECT_HOST", self.server.url())
            .env("OP_CONNECT_TOKEN", token)
            .arg(VERBOSE)
            .output();
        assert_no_leak(&stderr(&out));
        out
    }

    fn run(&self, input: &str) -> Output {
        self.run_with(TOKEN, input)
    }

    /// The API requests so far, sorted (reads run concurrently).
    fn requests(&self) -> Vec<String> {
        let mut requests = self.server.api_requests();
        requests.sort();
        requests
    }
}

fn assert_no_leak(text: &str) {
    for leak in LEAKS {
        assert!(!text.contains(leak), "leaks {leak:?}: {text}");
    }
}

/// A Secret whose `stringData` maps each name to its placeholder.
fn secret(entries: &[(&str, &str)]) -> String {
    let mut text = "kind: Secret\nmetadata:\n  name: s\nstringData:\n".to_owned();
    for (name, placeholder) in entries {
        text.push_str(&format!("  {name}: {placeholder}\n"));
    }
    text
}

fn errors(out: &Output) -> Vec<String> {
    support::output::error_lines(out, LEAKS)
}

/// The one error line of reading `placeholder` alone.
fn error_of(c: &Connect, token: &str, placeholder: &str) -> String {
    let out = c.run_with(token, &secret(&[("x", placeholder)]));
    let errors = errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].clone()
}

fn line(placeholder: &str, message: &str) -> String {
    format!(
        "error: <stdin>: doc 1 (Secret/s): stringData.x: {placeholder}: 1passwordconnect: {message}"
    )
}

#[test]
fn items_are_read_by_title_or_id_and_titles_may_hold_slashes() {
    let c = connect();
    let (prod, db) = (&c.prod, &c.db);
    let input = secret(&[
        ("a", "<path:vaults/Prod/items/db#password>"),
        ("b", &format!("<path:vaults/{prod}/items/{db}#username>")),
        ("c", "<path:vaults/Prod/items/team/api#key>"),
        ("d", &format!("<path:vaults/{prod}/items/db#port>")),
    ]);
    let out = c.run(&input);
    assert_output(
        &out,
        &secret(&[
            ("a", "db-pw-s3cr3t"),
            ("b", "app"),
            ("c", "api-key-s3cr3t"),
            ("d", "\"5432\""),
        ]),
    );
    // One look-up per title, shared by the paths that name the vault by title and by id; one
    // GET per unique path.
    let item = format!("/v1/vaults/{prod}/items/{db}");
    let api = c.requests();
    let api: Vec<&str> = api.iter().map(String::as_str).collect();
    let mut want = vec![
        "/v1/vaults?filter=name eq \"Prod\"".to_owned(),
        format!("/v1/vaults/{prod}/items?filter=title eq \"db\""),
        format!("/v1/vaults/{prod}/items?filter=title eq \"team/api\""),
        item.clone(),
        item.clone(),
        item,
        format!("/v1/vaults/{prod}/items/{}", c.api),
    ];
    want.sort();
    assert_eq!(api, want);
}

#[test]
fn keys_are_labels_the_later_duplicate_wins_and_a_field_without_value_is_missing() {
    let c = connect();
    let out = c.run(&secret(&[("x", "<path:vaults/Prod/items/dup#password>")]));
    assert_output(&out, &secret(&[("x", "new-dup-s3cr3t")]));
    assert!(
        stderr(&out).contains("1passwordconnect: vaults/Prod/items/dup: more than one field is labelled \"password\"; the later one wins"),
        "{}",
        stderr(&out)
    );
    let placeholder = "<path:vaults/Prod/items/dup#notes>";
    assert_eq!(
        error_of(&c, TOKEN, placeholder),
        format!(
            "error: <stdin>: doc 1 (Secret/s): stringData.x: {placeholder}: missing value: key \"notes\" not found in vaults/Prod/items/dup"
        )
    );
}

#[test]
fn versions_are_ignored() {
    let c = connect();
    let out = c.run(&secret(&[
        ("x", "<path:vaults/Prod/items/db#password#7>"),
        ("y", "<path:vaults/Prod/items/db#password>"),
    ]));
    assert_output(
        &out,
        &secret(&[("x", "db-pw-s3cr3t"), ("y", "db-pw-s3cr3t")]),
    );
    assert!(
        stderr(&out).contains("1passwordconnect: vaults/Prod/items/db: the version is ignored: Connect serves an item's current fields"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_vaults_and_items_are_not_found_naming_the_title_or_id() {
    let c = connect();
    let prod = &c.prod;
    let missing = "z".repeat(26);
    for (placeholder, message) in [
        (
            "<path:vaults/Nope/items/db#k>".to_owned(),
            "no vault named \"Nope\" is readable with the Connect token: vaults/Nope/items/db"
                .to_owned(),
        ),
        (
            "<path:vaults/Prod/items/nope#k>".to_owned(),
            "no item titled \"nope\" in vault \"Prod\": vaults/Prod/items/nope".to_owned(),
        ),
        (
            format!("<path:vaults/{prod}/items/{missing}#k>"),
            format!("404 item {missing} not found: vaults/{prod}/items/{missing}"),
        ),
        (
            format!("<path:vaults/{missing}/items/db#k>"),
            format!("404 vault {missing} not found: vaults/{missing}/items/db"),
        ),
    ] {
        assert_eq!(
            error_of(&c, TOKEN, &placeholder),
            line(&placeholder, &message)
        );
    }
    // `check` calls them not found.
    let out = Run::new(["check", "--format", "json", "-"])
        .stdin(secret(&[("x", "<path:vaults/Prod/items/nope#k>")]))
        .env("AVP_TYPE", "1passwordconnect")
        .env("OP_CONNECT_HOST", c.server.url())
        .env("OP_CONNECT_TOKEN", TOKEN)
        .output();
    assert_no_leak(&format!("{}{}", stdout(&out), stderr(&out)));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["status"], "not-found", "{rows}");
}

#[test]
fn a_title_matching_several_vaults_or_items_is_an_error_naming_the_count() {
    let c = connect();
    for (placeholder, message) in [
        (
            "<path:vaults/Twins/items/x#k>",
            "2 vaults are named \"Twins\"; name the vault by its id: vaults/Twins/items/x",
        ),
        (
            "<path:vaults/Prod/items/twin#k>",
            "2 items are titled \"twin\" in vault \"Prod\"; name the item by its id: vaults/Prod/items/twin",
        ),
    ] {
        assert_eq!(error_of(&c, TOKEN, placeholder), line(placeholder, message));
    }
    // Neither twin was read.
    let prod = &c.prod;
    assert_eq!(
        c.server
            .http()
            .count("GET", &format!("/v1/vaults/{prod}/items/")),
        0
    );
}

#[test]
fn titles_travel_escaped_in_the_filter_and_only_ids_in_paths() {
    let c = connect();
    let out = c.run(&secret(&[(
        "x",
        r#"<path:vaults/Q&A ?%/items/say "hi" \ bye#k>"#,
    )]));
    assert_output(&out, &secret(&[("x", "quoted-s3cr3t")]));
    let vault = c.server.vault_id("Q&A ?%");
    let api = c.server.api_requests();
    assert_eq!(
        api,
        [
            r#"/v1/vaults?filter=name eq "Q&A ?%""#.to_owned(),
            format!(r#"/v1/vaults/{vault}/items?filter=title eq "say \"hi\" \\ bye""#),
            format!("/v1/vaults/{vault}/items/{}", c.quoted),
        ]
    );
    for request in c.server.http().requests() {
        let query = request.query.unwrap_or_default();
        assert!(!query.contains(['"', ' ', '\\', '?']), "unencoded: {query}");
    }
}

#[test]
fn a_vault_outside_the_tokens_scope_is_denied_with_a_hint() {
    let c = connect();
    let locked = &c.locked;
    let placeholder = format!("<path:vaults/{locked}/items/x#k>");
    assert_eq!(
        error_of(&c, READER, &placeholder),
        line(
            &placeholder,
            &format!(
                "403 vault {locked} is not in scope: vaults/{locked}/items/x (check which vaults the Connect token may read)"
            )
        )
    );
    // By title, the vault is not among those the token sees.
    let placeholder = "<path:vaults/Locked/items/x#k>";
    assert_eq!(
        error_of(&c, READER, placeholder),
        line(
            placeholder,
            "no vault named \"Locked\" is readable with the Connect token: vaults/Locked/items/x"
        )
    );
    // Neither is retried.
    assert_eq!(c.server.http().count("GET", "/v1/"), 2);
}

#[test]
fn a_refused_token_is_not_retried_and_one_refused_look_up_serves_every_read() {
    let c = connect();
    let (prod, db) = (&c.prod, &c.db);
    let placeholder = format!("<path:vaults/{prod}/items/{db}#password>");
    assert_eq!(
        error_of(&c, "wrong-s3cr3t", &placeholder),
        line(
            &placeholder,
            &format!(
                "401 Invalid token signature: vaults/{prod}/items/{db} (check OP_CONNECT_TOKEN: a token this Connect server issued, not revoked)"
            )
        )
    );
    assert_eq!(c.server.http().count("GET", "/v1/"), 1);
    // Two items of one vault named by title: one vault look-up, refused, reported for each.
    let out = c.run_with(
        "wrong-s3cr3t",
        &secret(&[
            ("x", "<path:vaults/Prod/items/db#password>"),
            ("y", "<path:vaults/Prod/items/team/api#key>"),
        ]),
    );
    let errors = errors(&out);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[1].ends_with("1passwordconnect: 401 Invalid token signature: vaults/Prod/items/team/api (check OP_CONNECT_TOKEN: a token this Connect server issued, not revoked)"),
        "{errors:?}"
    );
    assert_eq!(c.server.http().count("GET", "/v1/"), 2);
}

#[test]
fn throttling_is_retried_after_the_retry_after_wait() {
    let c = connect();
    let (prod, db) = (&c.prod, &c.db);
    c.server.http().fail_next(
        "/v1/vaults/",
        1,
        error(429, "Too Many Requests").with_header("retry-after", "1"),
    );
    let started = Instant::now();
    let out = c.run(&secret(&[(
        "x",
        &format!("<path:vaults/{prod}/items/{db}#password>"),
    )]));
    assert_output(&out, &secret(&[("x", "db-pw-s3cr3t")]));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        c.server
            .http()
            .count("GET", &format!("/v1/vaults/{prod}/items/{db}")),
        2
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "429 Too Many Requests: vaults/{prod}/items/{db}; retrying in 1s"
        )),
        "{err}"
    );
    assert!(
        err.contains("unique secrets: 1, backend requests: 2"),
        "{err}"
    );
}

#[test]
fn server_errors_are_retried_then_succeed_and_look_ups_too() {
    let c = connect();
    let (prod, db) = (&c.prod, &c.db);
    c.server
        .http()
        .fail_next("/v1/vaults/", 1, error(500, "Internal Server Error"));
    c.server
        .http()
        .fail_next("/v1/vaults/", 1, error(503, "Service Unavailable"));
    let out = c.run(&secret(&[(
        "x",
        &format!("<path:vaults/{prod}/items/{db}#password>"),
    )]));
    assert_output(&out, &secret(&[("x", "db-pw-s3cr3t")]));
    assert_eq!(c.server.http().count("GET", "/v1/"), 3);
    // A failed look-up is not kept: the retry looks up again.
    let c = connect();
    c.server
        .http()
        .fail_next("/v1/vaults", 1, error(503, "Service Unavailable"));
    let out = c.run(&secret(&[("x", "<path:vaults/Prod/items/db#password>")]));
    assert_output(&out, &secret(&[("x", "db-pw-s3cr3t")]));
    let prod = &c.prod;
    let lookup = "/v1/vaults?filter=name eq \"Prod\"".to_owned();
    let mut want = [
        lookup.clone(),
        lookup,
        format!("/v1/vaults/{prod}/items/{}", c.db),
        format!("/v1/vaults/{prod}/items?filter=title eq \"db\""),
    ];
    want.sort();
    assert_eq!(c.requests(), want);
}

#[test]
fn a_bad_request_is_not_retried() {
    let c = connect();
    let (prod, db) = (&c.prod, &c.db);
    c.server
        .http()
        .fail_next("/v1/vaults/", 1, error(400, "Invalid request"));
    let placeholder = format!("<path:vaults/{prod}/items/{db}#password>");
    assert_eq!(
        error_of(&c, TOKEN, &placeholder),
        line(
            &placeholder,
            &format!("400 Invalid request: vaults/{prod}/items/{db}")
        )
    );
    assert_eq!(c.server.http().count("GET", "/v1/"), 1);
}

#[test]
fn a_path_of_another_form_is_an_error_naming_the_expected_one_and_sends_nothing() {
    let c = connect();
    for path in [
        "app",
        "vaults/Prod",
        "vaults/Prod/items/",
        "secrets/Prod/items/db",
    ] {
        let placeholder = format!("<path:{path}#k>");
        assert_eq!(
            error_of(&c, TOKEN, &placeholder),
            line(
                &placeholder,
                &format!("a 1Password path has the form vaults/VAULT/items/ITEM: {path}")
            )
        );
    }
    assert!(c.server.http().requests().is_empty());
}

#[test]
fn missing_or_unusable_settings_are_named_without_the_token() {
    let input = secret(&[("x", "<path:vaults/Prod/items/db#password>")]);
    let run = |env: &[(&str, &str)]| {
        let out = Run::generate(&input)
            .env("AVP_TYPE", "1passwordconnect")
            .envs(env)
            .arg(VERBOSE)
            .output();
        let err = assert_failure(&out, LEAKS);
        err.lines()
            .filter(|l| l.starts_with("error: "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(&[("OP_CONNECT_TOKEN", TOKEN)]),
        [
            "error: OP_CONNECT_HOST must be set when AVP_TYPE is 1passwordconnect (the URL of the Connect server, such as http://onepassword-connect:8080)"
        ]
    );
    assert_eq!(
        run(&[("OP_CONNECT_HOST", "http://127.0.0.1:9")]),
        ["error: OP_CONNECT_TOKEN must be set when AVP_TYPE is 1passwordconnect"]
    );
    assert_eq!(
        run(&[
            ("OP_CONNECT_HOST", "http://127.0.0.1:9"),
            ("OP_CONNECT_TOKEN", "connect-token-\ns3cr3t")
        ]),
        [
            "error: OP_CONNECT_TOKEN holds the character '\\n', which cannot be sent in an HTTP header"
        ]
    );
}

#[test]
fn only_the_api_is_asked_and_every_request_carries_the_token() {
    let c = connect();
    let out = c.run(&secret(&[
        ("x", "<path:vaults/Prod/items/db#password>"),
        ("y", "<path:vaults/Dev/items/db#password>"),
    ]));
    assert_output(
        &out,
        &secret(&[("x", "db-pw-s3cr3t"), ("y", "dev-pw-s3cr3t")]),
    );
    let requests = c.server.http().requests();
    // No token exchange: the Connect token is the bearer of every request, and nothing but the
    // API is asked.
    assert_eq!(requests.len(), 6);
    for request in &requests {
        assert!(request.path.starts_with("/v1/vaults"), "{}", request.path);
        assert_eq!(request.bearer(), Some(TOKEN));
    }
}

#[test]
fn each_unique_item_is_read_once_per_run() {
    let c = connect();
    let input = "kind: Secret\nmetadata:\n  name: a\n  annotations:\n    avp.kubernetes.io/path: vaults/Prod/items/db\nstringData:\n  user: <username>\n  pw: <password>\n  again: <path:vaults/Prod/items/db#password>\n---\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  dsn: <path:vaults/Prod/items/db#username>:<path:vaults/Prod/items/db#password>@db\n  dev: <path:vaults/Dev/items/db#password>\n---\nkind: Secret\nmetadata:\n  name: c\nstringData:\n  dev: <path:vaults/Dev/items/db#password>\n  pw: <path:vaults/Prod/items/db#password>\n";
    let out = c.run(input);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).matches("db-pw-s3cr3t").count(), 4);
    let dev = c.server.vault_id("Dev");
    let prod = &c.prod;
    let mut want = vec![
        "/v1/vaults?filter=name eq \"Prod\"".to_owned(),
        "/v1/vaults?filter=name eq \"Dev\"".to_owned(),
        format!("/v1/vaults/{prod}/items?filter=title eq \"db\""),
        format!("/v1/vaults/{dev}/items?filter=title eq \"db\""),
        format!("/v1/vaults/{prod}/items/{}", c.db),
        format!("/v1/vaults/{dev}/items/{}", c.dev_db),
    ];
    want.sort();
    assert_eq!(c.requests(), want);
    assert!(
        stderr(&out).contains("placeholders: 8, unique secrets: 2, backend requests: 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_connect_server_that_never_answers_ends_the_run_at_the_deadline() {
    let c = connect();
    c.server.http().stall();
    let out = Run::generate(&secret(&[("x", "<path:vaults/Prod/items/db#password>")]))
        .env("AVP_TYPE", "1passwordconnect")
        .env("OP_CONNECT_HOST", c.server.url())
        .env("OP_CONNECT_TOKEN", TOKEN)
        .env("ARGOCD_EXEC_TIMEOUT", "3s")
        .output();
    let err = assert_failure(&out, LEAKS);
    assert_eq!(
        err,
        "error: gave up waiting for 1passwordconnect: read of vaults/Prod/items/db: ARGOCD_EXEC_TIMEOUT (3s) is about to end the plugin\n"
    );
}

/// A vault `Bulk` of 100 items `item-0` … `item-99`, each with one field; returns the server,
/// the vault's id and the items' ids.
fn bulk() -> (ConnectServer, String, Vec<String>) {
    let server = ConnectServer::start();
    let vault = server.vault("Bulk");
    let items = (0..100)
        .map(|n| server.item(&vault, &format!("item-{n}"), &[("k", &format!("v{n}"))]))
        .collect();
    server.token_for_all(TOKEN);
    // Reads overlap, so look-ups shared by concurrent reads are shared for real.
    server.http().set_latency(Duration::from_millis(20));
    (server, vault, items)
}

/// Reads the 100 placeholders over 100 items; asserts every value arrived.
fn read_bulk(server: &ConnectServer, placeholders: &[String]) -> Output {
    let mut input = "kind: ConfigMap\nmetadata:\n  name: bulk\ndata:\n".to_owned();
    for (n, placeholder) in placeholders.iter().enumerate() {
        input.push_str(&format!("  k{n}: {placeholder}\n"));
    }
    let out = Run::generate(&input)
        .env("AVP_TYPE", "1passwordconnect")
        .env("OP_CONNECT_HOST", server.url())
        .env("OP_CONNECT_TOKEN", TOKEN)
        .arg(VERBOSE)
        .output();
    assert_no_leak(&stderr(&out));
    assert!(out.status.success(), "{}", stderr(&out));
    for n in 0..100 {
        assert!(stdout(&out).contains(&format!("  k{n}: v{n}\n")));
    }
    out
}

/// Requests to exactly `path` (any query).
fn count_path(server: &ConnectServer, path: &str) -> usize {
    let requests = server.http().requests();
    requests.iter().filter(|r| r.path == path).count()
}

#[test]
fn a_hundred_items_by_id_take_a_hundred_gets() {
    let (server, vault, items) = bulk();
    let placeholders: Vec<String> = items
        .iter()
        .map(|item| format!("<path:vaults/{vault}/items/{item}#k>"))
        .collect();
    let out = read_bulk(&server, &placeholders);
    assert_eq!(
        server
            .http()
            .count("GET", &format!("/v1/vaults/{vault}/items/")),
        100
    );
    assert_eq!(server.http().requests().len(), 100);
    assert!(stderr(&out).contains("unique secrets: 100, backend requests: 100"));
}

#[test]
fn a_hundred_items_by_title_take_one_vault_look_up_and_two_hundred_item_requests() {
    let (server, vault, _) = bulk();
    let placeholders: Vec<String> = (0..100)
        .map(|n| format!("<path:vaults/Bulk/items/item-{n}#k>"))
        .collect();
    read_bulk(&server, &placeholders);
    assert_eq!(count_path(&server, "/v1/vaults"), 1);
    assert_eq!(
        count_path(&server, &format!("/v1/vaults/{vault}/items")),
        100
    );
    assert_eq!(
        server
            .http()
            .count("GET", &format!("/v1/vaults/{vault}/items/")),
        100
    );
    assert_eq!(server.http().requests().len(), 201);
}

/// `doctor` against `host` with `token`, verbose; no token in either stream.
fn doctor(host: &str, token: &str) -> Output {
    let out = Run::new(["doctor", VERBOSE])
        .env("AVP_TYPE", "1passwordconnect")
        .env("OP_CONNECT_HOST", host)
        .env("OP_CONNECT_TOKEN", token)
        .output();
    assert_no_leak(&format!("{}{}", stdout(&out), stderr(&out)));
    out
}

#[test]
fn doctor_checks_the_server_and_the_token() {
    let c = connect();
    let url = c.server.url();
    let out = doctor(&url, READER);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Columns follow the address's length: compared with runs of spaces as one.
    let text = stdout(&out).replace(&url, "http://CONNECT");
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let profile = lines
        .iter()
        .position(|l| l.starts_with("profile "))
        .unwrap();
    assert_eq!(
        lines[profile..],
        [
            "profile default (1passwordconnect)",
            "AVP_MAX_CONCURRENCY 128 default",
            "AVP_MAX_RETRIES VAULT_MAX_RETRIES, else 2 default",
            "AVP_TYPE 1passwordconnect env",
            "OP_CONNECT_HOST http://CONNECT env",
            "OP_CONNECT_TOKEN [redacted] env",
            "connect ok http://CONNECT answers: 1Password Connect API 1.7.1 (sqlite ACTIVE, sync ACTIVE)",
            "token ok accepted; it can read 1 vault: \"Prod\"",
            "",
            "1 profile: 1 ok, 0 failed",
        ]
    );
    // Only the heartbeat, the health check and one vault listing: no item is read.
    let paths: Vec<String> = c
        .server
        .http()
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/heartbeat", "/health", "/v1/vaults"]);
}

#[test]
fn doctor_names_a_refused_token_an_empty_scope_and_an_unreachable_host() {
    let c = connect();
    let url = c.server.url();
    let out = doctor(&url, "wrong-s3cr3t");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("  token    FAILED  401 Invalid token signature: the vault listing\n                   hint: OP_CONNECT_TOKEN is not valid for this Connect server: revoked, expired, or issued for another server\n"),
        "{text}"
    );
    c.server.token("empty-s3cr3t", &[]);
    let out = doctor(&url, "empty-s3cr3t");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("  token    FAILED  the Connect token can read no vault\n                   hint: the token's access is set when it is issued: issue one with the vaults the manifests read (op connect token create NAME --server SERVER --vault VAULT)\n"),
        "{}",
        stdout(&out)
    );
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = doctor(&format!("http://127.0.0.1:{port}"), TOKEN);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("  connect  FAILED  cannot reach 1Password Connect for the heartbeat: client error (Connect): tcp connect error: Connection refused (os error 111)\n                   hint: nothing listens at OP_CONNECT_HOST: check its host and port (the Connect API listens on 8080 by default)\n"),
        "{text}"
    );
    assert!(!text.contains("  token "), "{text}");
}

#[test]
fn a_profile_reads_from_connect_with_its_own_settings() {
    let c = connect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("settings.yaml");
    std::fs::write(
        &config,
        format!(
            "backends:\n  op:\n    AVP_TYPE: 1passwordconnect\n    OP_CONNECT_HOST: {}\n    OP_CONNECT_TOKEN: {READER}\n",
            c.server.url()
        ),
    )
    .unwrap();
    let input = secret(&[
        ("x", "<path:op:vaults/Prod/items/db#password>"),
        ("y", "<path:op:vaults/Dev/items/db#password>"),
    ]);
    let out = Run::new(["generate", VERBOSE, "-c"])
        .arg(&config)
        .arg("-")
        .stdin(input)
        .output();
    assert_no_leak(&stderr(&out));
    let errors = errors(&out);
    assert_eq!(
        errors,
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.y: <path:op:vaults/Dev/items/db#password>: 1passwordconnect (op): no vault named \"Dev\" is readable with the Connect token: vaults/Dev/items/db"
        ]
    );
    assert!(
        stderr(&out).contains("1passwordconnect (op): unique secrets: 2, backend requests: 2"),
        "{}",
        stderr(&out)
    );
}
