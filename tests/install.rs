//! Checks of the Argo CD install artifacts: the plugin definitions (`plugin.yaml`, `plugins/`), the
//! shell scripts inside them (run as Argo CD runs them, with stand-ins for `secretsubst`, `helm`
//! and `kustomize` on `PATH`), the sidecar image's Dockerfile, and the kustomize install
//! (`manifests/`), rendered offline with `kubectl kustomize`.
//!
//! None of this runs the real binary: what is tested is what Argo CD would do with these files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde::Deserialize as _;
use serde_yaml::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The plugins, by `metadata.name`, and the file that defines each.
const PLUGINS: [(&str, &str); 3] = [
    ("secretsubst", "plugin.yaml"),
    ("secretsubst-helm", "plugins/secretsubst-helm.yaml"),
    (
        "secretsubst-kustomize",
        "plugins/secretsubst-kustomize.yaml",
    ),
];

/// The keys Argo CD reads from a `parameters.static` entry (its `ParameterAnnouncement`).
const ANNOUNCEMENT_KEYS: [&str; 9] = [
    "name",
    "title",
    "tooltip",
    "required",
    "itemType",
    "collectionType",
    "string",
    "array",
    "map",
];

const SIDECAR_IMAGE: &str = "registry.example.com/secretsubst-cmp:test";

// ---------------------------------------------------------------------------------------------
// Reading the plugin definitions
// ---------------------------------------------------------------------------------------------

fn read(relative: &str) -> String {
    let path = Path::new(ROOT).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn plugin(name: &str) -> Value {
    let file = PLUGINS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no plugin {name}"))
        .1;
    serde_yaml::from_str(&read(file)).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"))
}

fn strings(value: &Value, what: &str) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .unwrap_or_else(|| panic!("{what}: {item:?} is not a string"))
                    .to_owned()
            })
            .collect(),
        other => panic!("{what}: {other:?} is not a list"),
    }
}

/// A command block (`command` plus `args`) as the argument vector Argo CD executes.
fn argv(block: &Value, what: &str) -> Vec<String> {
    let mut argv = strings(&block["command"], what);
    argv.extend(strings(&block["args"], what));
    argv
}

fn generate_argv(name: &str) -> Vec<String> {
    argv(&plugin(name)["spec"]["generate"], name)
}

// ---------------------------------------------------------------------------------------------
// Running plugin commands with stand-in tools
// ---------------------------------------------------------------------------------------------

/// A scratch directory holding an application tree and a `bin/` of stand-in tools.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let sandbox = Sandbox {
            dir: tempfile::tempdir().expect("cannot create a temporary directory"),
        };
        fs::create_dir(sandbox.bin()).unwrap();
        sandbox
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn bin(&self) -> PathBuf {
        self.path("bin")
    }

    fn write(&self, relative: &str, content: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
    }

    /// Puts an executable shell script named `name` on the sandbox's `PATH`.
    fn tool(&self, name: &str, script: &str) {
        let path = self.bin().join(name);
        fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs `argv` in `dir` (relative to the sandbox) with only `env` and a `PATH` that finds the
    /// stand-in tools first, as the cmp-server runs a plugin's commands in the app directory.
    fn run(&self, argv: &[String], dir: &str, env: &[(&str, &str)]) -> Output {
        let system_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(self.path(dir))
            .env_clear()
            .env("PATH", format!("{}:{system_path}", self.bin().display()))
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", argv[0]))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A stand-in `secretsubst` that prints its arguments, each followed by a NUL byte.
const ARGS_PRINTER: &str = "printf '%s\\0' \"$@\"\n";

fn printed_args(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "the command failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let args = stdout.strip_suffix('\0').unwrap_or_else(|| {
        panic!("secretsubst was not run, or printed something else: {stdout:?}")
    });
    args.split('\0').map(str::to_owned).collect()
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Plugin definitions
// ---------------------------------------------------------------------------------------------

#[test]
fn every_plugin_definition_has_what_argo_cd_validates_and_reads() {
    let variants: BTreeSet<String> = fs::read_dir(Path::new(ROOT).join("plugins"))
        .expect("cannot list plugins/")
        .map(|entry| format!("plugins/{}", entry.unwrap().file_name().to_string_lossy()))
        .collect();
    let defined: BTreeSet<String> = PLUGINS[1..].iter().map(|(_, f)| (*f).to_owned()).collect();
    assert_eq!(
        variants, defined,
        "plugins/ holds other files than expected"
    );

    for (name, file) in PLUGINS {
        let doc = plugin(name);
        assert_eq!(doc["apiVersion"], "argoproj.io/v1alpha1", "{file}");
        assert_eq!(doc["kind"], "ConfigManagementPlugin", "{file}");
        assert_eq!(doc["metadata"]["name"], name, "{file}");
        let spec = &doc["spec"];
        // With a version, Applications would have to name the plugin `<name>-<version>`.
        assert!(spec.get("version").is_none(), "{file}: spec.version is set");
        assert!(
            !generate_argv(name).is_empty(),
            "{file}: spec.generate.command is empty"
        );
        // Argo CD evaluates the first of fileName, find.glob and find.command that is set, so
        // the find command must be the only one.
        let discover = &spec["discover"];
        assert!(
            discover.get("fileName").is_none() && discover["find"].get("glob").is_none(),
            "{file}: discover.fileName or discover.find.glob would shadow discover.find.command"
        );
        assert!(
            !argv(&discover["find"], file).is_empty(),
            "{file}: spec.discover.find.command is empty"
        );
        assert_eq!(spec["allowConcurrency"], true, "{file}");
        assert_eq!(spec["lockRepo"], false, "{file}");
    }
}

#[test]
fn plain_plugin_runs_secretsubst_generate_on_the_app_directory_without_a_shell() {
    assert_eq!(
        generate_argv("secretsubst"),
        owned(&["secretsubst", "generate", "."])
    );
}

#[test]
fn kustomize_variant_runs_kustomize_build_in_pipeline_mode_without_a_shell() {
    assert_eq!(
        generate_argv("secretsubst-kustomize"),
        owned(&["secretsubst", "generate", "--", "kustomize", "build", "."])
    );
}

#[test]
fn helm_variant_runs_helm_template_in_pipeline_mode() {
    let argv = generate_argv("secretsubst-helm");
    assert_eq!(argv[..2], owned(&["sh", "-c"]), "{argv:?}");
    let script = &argv[2];
    let render = &script[script
        .find("exec secretsubst generate -- helm template ")
        .unwrap_or_else(|| panic!("helm template does not run in pipeline mode: {script}"))..];
    assert!(
        !render.contains('|'),
        "a pipe would hide helm's exit status: {render}"
    );
}

/// Argo CD's name for the environment variables of a parameter: `PARAM_` and the name upper-cased,
/// with every character but `A-Z`, `0-9` and `_` replaced by `_`.
fn parameter_variable(name: &str) -> String {
    let escaped: String = name
        .to_uppercase()
        .chars()
        .map(|c| {
            if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("PARAM_{escaped}")
}

#[test]
fn announced_parameters_follow_argo_cds_schema_and_are_read_by_the_generate_command() {
    let mut announced = BTreeMap::new();
    for (name, file) in PLUGINS {
        let doc = plugin(name);
        let parameters = &doc["spec"]["parameters"];
        assert!(
            parameters.get("dynamic").is_none(),
            "{file}: dynamic announcements are not expected"
        );
        let generate = generate_argv(name).join(" ");
        let entries = match &parameters["static"] {
            Value::Null => Vec::new(),
            Value::Sequence(entries) => entries.clone(),
            other => panic!("{file}: parameters.static is not a list: {other:?}"),
        };
        for entry in entries {
            let map = entry
                .as_mapping()
                .unwrap_or_else(|| panic!("{file}: {entry:?} is not a mapping"));
            for key in map.keys() {
                let key = key.as_str().unwrap_or_default();
                assert!(
                    ANNOUNCEMENT_KEYS.contains(&key),
                    "{file}: unknown announcement key {key}"
                );
            }
            let param = entry["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| panic!("{file}: an announcement without a name"));
            for key in ["title", "tooltip", "itemType", "collectionType"] {
                assert!(
                    matches!(entry[key], Value::Null | Value::String(_)),
                    "{file}: {param}.{key} is not a string"
                );
            }
            assert!(
                matches!(entry["required"], Value::Null | Value::Bool(_)),
                "{file}: {param}.required is not a boolean"
            );
            let collection = entry["collectionType"].as_str().unwrap_or("string");
            assert!(
                ["", "string", "array", "map"].contains(&collection),
                "{file}: {param}.collectionType is {collection}"
            );
            // Argo CD does not infer the collection type from a default.
            if entry.get("array").is_some() {
                assert_eq!(collection, "array", "{file}: {param}");
            }
            if entry.get("map").is_some() {
                assert_eq!(collection, "map", "{file}: {param}");
            }
            let variable = parameter_variable(param);
            assert!(
                generate.contains(&variable),
                "{file} announces {param}, but its generate command never reads {variable}"
            );
            announced.insert(param.to_owned(), (name, collection.to_owned()));
        }
    }
    assert_eq!(
        announced,
        BTreeMap::from([(
            "values-files".to_owned(),
            ("secretsubst-helm", "array".to_owned())
        )])
    );
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

/// Runs every plugin's discover command in `app` and returns the plugins that claim it. A command
/// that exits non-zero fails the test: Argo CD logs that as an error rather than a "no".
fn claimants(sandbox: &Sandbox, app: &str) -> Vec<&'static str> {
    let mut claimed = Vec::new();
    for (name, file) in PLUGINS {
        let find = argv(&plugin(name)["spec"]["discover"]["find"], file);
        let out = sandbox.run(&find, app, &[]);
        assert!(
            out.status.success(),
            "{name} discovery in {app} exited with {}: {}",
            out.status,
            text(&out.stderr)
        );
        if !out.stdout.is_empty() {
            claimed.push(name);
        }
    }
    claimed
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";
const SECRET_WITH_PLACEHOLDER: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: <path:secret/data/db#password>\n";

#[test]
fn discovery_claims_plain_manifest_directories_that_use_placeholders_for_the_plain_plugin() {
    let sandbox = Sandbox::new();
    sandbox.write("inline/deploy.yaml", DEPLOYMENT);
    sandbox.write("inline/nested/secret.yaml", SECRET_WITH_PLACEHOLDER);
    sandbox.write(
        "generic/config.yml",
        "kind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    avp.kubernetes.io/path: secret/data/app\ndata:\n  user: <username>\n",
    );
    sandbox.write(
        "json/secret.json",
        r#"{"kind": "Secret", "stringData": {"token": "<path:kv/app#token>"}}"#,
    );
    for app in ["inline", "generic", "json"] {
        assert_eq!(claimants(&sandbox, app), ["secretsubst"], "{app}");
    }
}

#[test]
fn discovery_leaves_apps_without_placeholders_to_argo_cd() {
    let sandbox = Sandbox::new();
    sandbox.write("plain/deploy.yaml", DEPLOYMENT);
    sandbox.write(
        "plain/README.md",
        "Use <path:secret/data/db#password> here.\n",
    );
    sandbox.write("plain/.github/secret.yaml", SECRET_WITH_PLACEHOLDER);
    sandbox.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    );
    sandbox.write("chart/templates/deploy.yaml", DEPLOYMENT);
    sandbox.write("kustomize/kustomization.yaml", "resources: [deploy.yaml]\n");
    sandbox.write("kustomize/deploy.yaml", DEPLOYMENT);
    sandbox.write("empty/.keep", "");
    for app in ["plain", "chart", "kustomize", "empty"] {
        assert!(claimants(&sandbox, app).is_empty(), "{app}");
    }
}

#[test]
fn discovery_claims_charts_that_use_placeholders_for_the_helm_variant_only() {
    let sandbox = Sandbox::new();
    let chart = "apiVersion: v2\nname: web\nversion: 1.0.0\n";
    sandbox.write("in-template/Chart.yaml", chart);
    sandbox.write("in-template/templates/secret.yaml", SECRET_WITH_PLACEHOLDER);
    sandbox.write("in-values/Chart.yaml", chart);
    sandbox.write(
        "in-values/values.yaml",
        "password: <path:secret/data/db#password>\n",
    );
    sandbox.write("in-helper/Chart.yaml", chart);
    sandbox.write(
        "in-helper/templates/_helpers.tpl",
        "{{- define \"web.password\" -}}<path:secret/data/db#password>{{- end }}\n",
    );
    for app in ["in-template", "in-values", "in-helper"] {
        assert_eq!(claimants(&sandbox, app), ["secretsubst-helm"], "{app}");
    }
}

#[test]
fn discovery_claims_kustomize_apps_that_use_placeholders_for_the_kustomize_variant_only() {
    let sandbox = Sandbox::new();
    sandbox.write("app/kustomization.yaml", "resources: [secret.yaml]\n");
    sandbox.write("app/secret.yaml", SECRET_WITH_PLACEHOLDER);
    // Argo CD treats a directory with both a Chart.yaml and a kustomization as Kustomize.
    sandbox.write(
        "both/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    );
    sandbox.write("both/Kustomization", "resources: [secret.yaml]\n");
    sandbox.write("both/secret.yaml", SECRET_WITH_PLACEHOLDER);
    for app in ["app", "both"] {
        assert_eq!(claimants(&sandbox, app), ["secretsubst-kustomize"], "{app}");
    }
}

#[test]
fn discovery_claims_kustomize_overlays_whose_base_elsewhere_uses_placeholders() {
    if !kubectl_available() {
        eprintln!("kubectl is not installed: skipping the overlay discovery test");
        return;
    }
    let sandbox = Sandbox::new();
    // `kustomize build` for the discover command, done by kubectl's built-in kustomize.
    sandbox.tool(
        "kustomize",
        "[ \"$1\" = build ] || exit 2\nshift\nexec kubectl kustomize \"$@\"\n",
    );
    sandbox.write(
        "base/kustomization.yaml",
        "resources: [secret.yaml, deploy.yaml]\n",
    );
    sandbox.write("base/secret.yaml", SECRET_WITH_PLACEHOLDER);
    sandbox.write("base/deploy.yaml", DEPLOYMENT);
    sandbox.write(
        "overlays/prod/kustomization.yaml",
        "resources:\n  - ../../base\nnamePrefix: prod-\n",
    );
    sandbox.write(
        "plain-base/kustomization.yaml",
        "resources: [deploy.yaml]\n",
    );
    sandbox.write("plain-base/deploy.yaml", DEPLOYMENT);
    sandbox.write(
        "overlays/plain/kustomization.yaml",
        "resources:\n  - ../../plain-base\n",
    );
    assert_eq!(
        claimants(&sandbox, "overlays/prod"),
        ["secretsubst-kustomize"]
    );
    assert!(claimants(&sandbox, "overlays/plain").is_empty());
}

// ---------------------------------------------------------------------------------------------
// The Helm variant's scripts
// ---------------------------------------------------------------------------------------------

const APP_ENV: [(&str, &str); 2] = [("ARGOCD_APP_NAME", "web"), ("ARGOCD_APP_NAMESPACE", "prod")];

fn helm_generate(sandbox: &Sandbox, env: &[(&str, &str)]) -> Output {
    sandbox.tool("secretsubst", ARGS_PRINTER);
    sandbox.write(
        "app/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    );
    let mut all = APP_ENV.to_vec();
    all.extend_from_slice(env);
    sandbox.run(&generate_argv("secretsubst-helm"), "app", &all)
}

#[test]
fn helm_variant_names_the_release_and_namespace_after_the_application() {
    let sandbox = Sandbox::new();
    assert_eq!(
        printed_args(&helm_generate(&sandbox, &[])),
        owned(&[
            "generate",
            "--",
            "helm",
            "template",
            "web",
            "--namespace",
            "prod",
            "--include-crds",
            "."
        ])
    );
}

#[test]
fn helm_variant_passes_the_clusters_versions_and_each_values_file_as_one_argument() {
    let sandbox = Sandbox::new();
    // Files a glob or a command substitution would touch, were the values expanded.
    sandbox.write("app/conf/a.yaml", "a: 1\n");
    let out = helm_generate(
        &sandbox,
        &[
            ("KUBE_VERSION", "1.31.2"),
            ("KUBE_API_VERSIONS", "apps/v1,batch/v1,,v1"),
            ("PARAM_VALUES_FILES_0", "values prod.yaml"),
            ("PARAM_VALUES_FILES_1", "conf/*.yaml"),
            ("PARAM_VALUES_FILES_2", "$(touch pwned).yaml"),
            ("PARAM_VALUES_FILES_3", "conf/a.yaml"),
            ("ARGOCD_APP_PARAMETERS", "[]"),
        ],
    );
    assert_eq!(
        printed_args(&out),
        owned(&[
            "generate",
            "--",
            "helm",
            "template",
            "web",
            "--namespace",
            "prod",
            "--include-crds",
            "--kube-version",
            "1.31.2",
            "--api-versions",
            "apps/v1",
            "--api-versions",
            "batch/v1",
            "--api-versions",
            "v1",
            "--values=values prod.yaml",
            "--values=conf/*.yaml",
            "--values=$(touch pwned).yaml",
            "--values=conf/a.yaml",
            "."
        ])
    );
    assert!(!sandbox.path("app/pwned").exists());
}

#[test]
fn helm_variant_refuses_values_files_outside_the_app_directory() {
    for bad in [
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "../other-app/values.yaml",
        "conf/../../values.yaml",
        "conf/..",
        "..",
        "https://example.com/values.yaml",
        "oci://registry.example.com/values",
        "file:values.yaml",
        "-",
        "--set-file=token=/etc/passwd",
    ] {
        let sandbox = Sandbox::new();
        let out = helm_generate(
            &sandbox,
            &[
                ("PARAM_VALUES_FILES_0", "values.yaml"),
                ("PARAM_VALUES_FILES_1", bad),
            ],
        );
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(out.stdout.is_empty(), "{bad}: secretsubst was run");
        assert!(
            stderr.contains("values-files item 1 must be a path inside the application directory"),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn helm_variant_refuses_values_files_given_as_a_string_or_with_empty_items() {
    // Argo CD drops empty values, so an empty item shows up as a gap in the numbering.
    for (env, message) in [
        (
            vec![("PARAM_VALUES_FILES_1", "values-prod.yaml")],
            "values-files item 0 is empty",
        ),
        (
            vec![("PARAM_VALUES_FILES", "values-prod.yaml")],
            "values-files takes a list (array:), not a string",
        ),
    ] {
        let sandbox = Sandbox::new();
        let out = helm_generate(&sandbox, &env);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{env:?} was accepted");
        assert!(out.stdout.is_empty(), "{env:?}: secretsubst was run");
        assert!(stderr.contains(message), "{env:?}: {stderr}");
    }
}

/// Files of a fixture: (path, content).
type Files<'a> = Vec<(&'a str, &'a str)>;

#[test]
fn helm_variant_fetches_dependencies_only_for_charts_that_declare_them_and_lack_them() {
    let chart = "apiVersion: v2\nname: web\nversion: 1.0.0\n";
    let with_dependencies = format!(
        "{chart}dependencies: # from Chart.lock\n  - name: redis\n    version: 19.0.0\n    repository: oci://registry-1.docker.io/bitnamicharts\n"
    );
    let empty_list = format!("{chart}dependencies: []\n");
    let cases: [(&str, Files, bool); 5] = [
        ("no dependencies", vec![("Chart.yaml", chart)], false),
        ("empty list", vec![("Chart.yaml", &empty_list)], false),
        (
            "dependencies to fetch",
            vec![("Chart.yaml", &with_dependencies)],
            true,
        ),
        (
            "vendored dependencies",
            vec![
                ("Chart.yaml", &with_dependencies),
                ("charts/redis-19.0.0.tgz", "not really a tarball"),
            ],
            false,
        ),
        (
            "apiVersion v1 requirements",
            vec![
                ("Chart.yaml", "apiVersion: v1\nname: web\nversion: 1.0.0\n"),
                ("requirements.yaml", "dependencies:\n  - name: redis\n"),
            ],
            true,
        ),
    ];
    let init = argv(&plugin("secretsubst-helm")["spec"]["init"], "init");
    for (case, files, expect_build) in cases {
        let sandbox = Sandbox::new();
        let log = sandbox.path("helm.log");
        sandbox.tool("helm", "printf '%s\\n' \"$*\" >> \"$HELM_LOG\"\n");
        for (file, content) in files {
            sandbox.write(&format!("app/{file}"), content);
        }
        let out = sandbox.run(&init, "app", &[("HELM_LOG", log.to_str().unwrap())]);
        assert!(
            out.status.success(),
            "{case}: init failed: {}",
            text(&out.stderr)
        );
        let calls = fs::read_to_string(&log).unwrap_or_default();
        let expected = if expect_build {
            "dependency build\n"
        } else {
            ""
        };
        assert_eq!(calls, expected, "{case}");
    }
}

// ---------------------------------------------------------------------------------------------
// Sidecar image
// ---------------------------------------------------------------------------------------------

#[test]
fn sidecar_image_runs_the_cmp_server_as_user_999_with_secretsubst_and_the_plain_plugin() {
    let dockerfile = read("docker/Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let version = lines
        .iter()
        .find_map(|l| l.strip_prefix("ARG ARGOCD_VERSION="))
        .expect("no ARG ARGOCD_VERSION");
    let numbers: Vec<&str> = version
        .strip_prefix('v')
        .unwrap_or_default()
        .split('.')
        .collect();
    assert!(
        numbers.len() == 3 && numbers.iter().all(|n| n.parse::<u32>().is_ok()),
        "the Argo CD base image is not pinned to a release: {version}"
    );
    let final_stage = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("no FROM");
    assert_eq!(
        lines[final_stage],
        "FROM quay.io/argoproj/argocd:${ARGOCD_VERSION}"
    );
    let stage = &lines[final_stage..];
    for expected in [
        "COPY --from=build /out/secretsubst /usr/local/bin/secretsubst",
        "COPY --chmod=0644 plugin.yaml /home/argocd/cmp-server/config/plugin.yaml",
        "USER 999",
        r#"ENTRYPOINT ["/var/run/argocd/argocd-cmp-server"]"#,
    ] {
        assert!(
            stage.contains(&expected),
            "the final stage lacks {expected}"
        );
    }
    // The stand-in repo-server of the test overlay uses the same Argo CD release.
    assert!(read("manifests/test/argocd-repo-server.yaml").contains(&format!("argocd:{version}")));
}

// ---------------------------------------------------------------------------------------------
// Kustomize install
// ---------------------------------------------------------------------------------------------

#[test]
fn install_manifests_carry_the_plugin_files_unchanged() {
    for (name, file) in PLUGINS {
        let copy = format!("manifests/cmp-sidecar/plugins/{name}.yaml");
        assert!(
            read(&copy) == read(file),
            "{copy} differs from {file}; from the repository root run: \
             cp plugin.yaml manifests/cmp-sidecar/plugins/secretsubst.yaml && \
             cp plugins/*.yaml manifests/cmp-sidecar/plugins/"
        );
    }
}

/// Whether kubectl runs here. Without it the tests that need it are skipped, except under CI
/// (`CI` set), where a skip would hide that they never ran: there its absence fails the test.
fn kubectl_available() -> bool {
    let available = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        available || std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "kubectl is not installed, and under CI the tests that need it must run"
    );
    available
}

/// The documents of `kubectl kustomize manifests/test`, or `None` (with a message) without kubectl.
fn rendered_install() -> Option<&'static [Value]> {
    static RENDERED: OnceLock<Option<Vec<Value>>> = OnceLock::new();
    RENDERED
        .get_or_init(|| {
            if !kubectl_available() {
                return None;
            }
            let out = Command::new("kubectl")
                .args(["kustomize", "manifests/test"])
                .current_dir(ROOT)
                .output()
                .expect("cannot run kubectl");
            assert!(
                out.status.success(),
                "kubectl kustomize manifests/test failed: {}",
                text(&out.stderr)
            );
            let docs = serde_yaml::Deserializer::from_slice(&out.stdout)
                .map(|doc| Value::deserialize(doc).expect("kubectl printed invalid YAML"))
                .collect();
            Some(docs)
        })
        .as_deref()
        .or_else(|| {
            eprintln!(
                "kubectl is not installed: skipping the test of `kubectl kustomize manifests/test`"
            );
            None
        })
}

fn find<'a>(docs: &'a [Value], kind: &str, name_prefix: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name_prefix))
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} {name_prefix}*");
    found[0]
}

fn items<'a>(value: &'a Value, what: &str) -> &'a [Value] {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("{what} is not a list"))
}

#[test]
fn install_renders_offline_into_three_sidecars_as_argo_cd_requires() {
    let Some(docs) = rendered_install() else {
        return;
    };
    let configmap = find(docs, "ConfigMap", "secretsubst-plugins");
    let pod = &find(docs, "Deployment", "argocd-repo-server")["spec"]["template"]["spec"];
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "the repo-server container must not get a token"
    );

    let volumes: BTreeMap<&str, &Value> = items(&pod["volumes"], "volumes")
        .iter()
        .map(|v| (v["name"].as_str().expect("a volume without a name"), v))
        .collect();
    assert_eq!(
        volumes.len(),
        items(&pod["volumes"], "volumes").len(),
        "duplicate volume names"
    );

    let containers = items(&pod["containers"], "containers");
    assert_eq!(
        containers[0]["name"], "argocd-repo-server",
        "the repo-server must stay the first (default) container"
    );
    let repo_server_tmp = containers[0]["volumeMounts"]
        .as_sequence()
        .and_then(|mounts| mounts.iter().find(|m| m["mountPath"] == "/tmp"))
        .and_then(|m| m["name"].as_str())
        .expect("the stand-in repo-server mounts /tmp");
    for container in containers
        .iter()
        .chain(items(&pod["initContainers"], "init"))
    {
        for mount in items(&container["volumeMounts"], "volumeMounts") {
            let volume = mount["name"].as_str().unwrap_or_default();
            assert!(
                volumes.contains_key(volume),
                "{}: no volume {volume}",
                container["name"].as_str().unwrap_or_default()
            );
        }
    }

    let mut tmp_volumes = BTreeSet::new();
    for (name, _) in PLUGINS {
        let container = containers
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no sidecar {name}"));
        assert_eq!(
            strings(&container["command"], name),
            ["/var/run/argocd/argocd-cmp-server"],
            "{name}"
        );
        assert_eq!(container["image"], SIDECAR_IMAGE, "{name}");
        let security = &container["securityContext"];
        assert_eq!(security["runAsNonRoot"], true, "{name}");
        assert_eq!(security["runAsUser"], 999, "{name}");

        let mounts: BTreeMap<&str, &Value> = items(&container["volumeMounts"], name)
            .iter()
            .map(|m| (m["mountPath"].as_str().unwrap_or_default(), m))
            .collect();
        let volume_at = |path: &str| {
            let mount = mounts
                .get(path)
                .unwrap_or_else(|| panic!("{name}: nothing mounted at {path}"));
            let volume = mount["name"].as_str().unwrap_or_default();
            (volume, *mount, volumes[volume])
        };
        assert_eq!(volume_at("/var/run/argocd").0, "var-files", "{name}");
        assert_eq!(
            volume_at("/home/argocd/cmp-server/plugins").0,
            "plugins",
            "{name}"
        );

        let (tmp, _, tmp_volume) = volume_at("/tmp");
        assert!(tmp_volume.get("emptyDir").is_some(), "{name}: /tmp");
        assert_ne!(tmp, repo_server_tmp, "{name} shares the repo-server's /tmp");
        assert!(
            tmp_volumes.insert(tmp),
            "{name} shares /tmp with another sidecar"
        );

        let (_, mount, volume) = volume_at("/home/argocd/cmp-server/config/plugin.yaml");
        assert_eq!(
            volume["configMap"]["name"], configmap["metadata"]["name"],
            "{name}: the plugin definition does not come from the generated ConfigMap"
        );
        let key = mount["subPath"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: plugin.yaml is not mounted by subPath"));
        let definition: Value = serde_yaml::from_str(
            configmap["data"][key]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: the ConfigMap has no {key}")),
        )
        .unwrap();
        assert_eq!(
            definition["metadata"]["name"], name,
            "{name} runs another plugin"
        );

        let (_, _, token) = volume_at("/var/run/secrets/kubernetes.io/serviceaccount");
        assert!(
            items(&token["projected"]["sources"], "token sources")
                .iter()
                .any(|s| s.get("serviceAccountToken").is_some()),
            "{name}: no service account token"
        );

        assert!(
            items(&container["envFrom"], "envFrom").iter().any(|e| {
                e["secretRef"]["name"] == "secretsubst-credentials"
                    && e["secretRef"]["optional"] == true
            }),
            "{name}: credentials are not read from the optional Secret secretsubst-credentials"
        );
    }
}

#[test]
fn installed_plugin_configmap_holds_the_plugin_files_byte_for_byte() {
    let Some(docs) = rendered_install() else {
        return;
    };
    let configmap = find(docs, "ConfigMap", "secretsubst-plugins");
    assert_eq!(configmap["metadata"]["namespace"], "argocd");
    let data = configmap["data"]
        .as_mapping()
        .expect("the ConfigMap has no data");
    let keys: BTreeSet<&str> = data.keys().filter_map(Value::as_str).collect();
    let expected: BTreeSet<String> = PLUGINS.iter().map(|(n, _)| format!("{n}.yaml")).collect();
    assert_eq!(
        keys,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for (name, file) in PLUGINS {
        assert!(
            configmap["data"][format!("{name}.yaml").as_str()] == read(file).as_str(),
            "the installed {name}.yaml differs from {file}"
        );
    }
}
