//! Recognises, without building a tree, the documents the engine copies unchanged: nearly every
//! document of a `helm template` stream holds no placeholder, and building a tree for each is
//! most of the engine's time.
//!
//! It reads a block-style subset of YAML by libyaml's rules (the parser under `Tree::parse`) and
//! gives up on anything outside it, so that it never accepts a text the full parser would reject
//! or read differently: giving up only costs the full parse.

use super::scalar::{PlainType, yaml11_type};

/// Deeper documents are left to the full parser; manifests nest far less.
const MAX_LEVELS: usize = 64;
/// libyaml forgets a possible simple key whose `:` is more bytes than this after its start.
const MAX_KEY: usize = 1024;

/// True only when `body` is certainly one valid YAML document that is a Kubernetes manifest the
/// engine leaves untouched: a block mapping with one plain `kind` other than `Secret` (whose
/// base64 values may hide placeholders), holding no `<` (placeholders, merge keys) and no
/// `avp.kubernetes.io` annotation. False means "not sure": the full parse decides.
pub fn untouched_manifest(body: &str) -> bool {
    kind(body).is_some()
}

/// The kind of an untouched manifest.
fn kind(body: &str) -> Option<&str> {
    let text = body.as_bytes();
    if !plain_ascii(text) || body.contains("avp.kubernetes.io") {
        return None;
    }
    let scanner = Scanner {
        text,
        pos: 0,
        levels: [Level {
            col: 0,
            open: Open::Map,
        }; MAX_LEVELS],
        depth: 0,
        kind: None,
    };
    scanner.document()
}

/// Printable ASCII and line breaks only, without `<`: YAML's character rules then hold without
/// checking, and no placeholder can hide. Each 64-byte chunk is checked whole, which vectorises.
fn plain_ascii(text: &[u8]) -> bool {
    text.chunks(64).all(|chunk| {
        chunk.iter().fold(true, |ok, &b| {
            ok & ((b' '..=b'~').contains(&b) & (b != b'<') | (b == b'\n'))
        })
    })
}

/// An open block collection and the column of its keys or `-` indicators.
#[derive(Clone, Copy)]
struct Level {
    col: usize,
    open: Open,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Map,
    Seq,
    /// A sequence at its key's column (`containers:\n- name: a`): libyaml opens no indentation
    /// level for it, and a key at that column ends it.
    Indentless,
}

/// What a line leaves open for the lines after it.
#[derive(Clone, Copy)]
enum After {
    Done,
    /// `key:`, its value on later lines or null.
    Value,
    /// `-`, its item on later lines or null.
    Item,
    /// A block scalar's header, with its indentation indicator (0 when none).
    Block(usize),
}

/// Where a node starts, which decides what it may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A line in a block mapping: a key.
    Key,
    /// After `key: `: a scalar, flow collection or block scalar.
    Value,
    /// After `- `: anything, a compact mapping or sequence included.
    Item,
    /// The first line of a block collection below `key:` or `-`.
    Nested,
}

struct Scanner<'a> {
    text: &'a [u8],
    /// The start of the next line.
    pos: usize,
    levels: [Level; MAX_LEVELS],
    depth: usize,
    kind: Option<&'a str>,
}

impl<'a> Scanner<'a> {
    fn document(mut self) -> Option<&'a str> {
        let mut after = After::Done;
        let mut carried = None;
        while let Some((col, text)) = carried.take().or_else(|| self.line()) {
            if text.first().is_none_or(|&b| b == b'#') {
                continue;
            }
            // Document markers and directives.
            if col == 0 && (text.starts_with(b"---") || text.starts_with(b"...") || text[0] == b'%')
            {
                return None;
            }
            after = self.statement(col, text, after)?;
            if let After::Block(digit) = after {
                carried = self.block_scalar(digit)?;
                after = After::Done;
            }
        }
        self.kind
    }

    /// The next line's indentation and the text after it, without its line break.
    fn line(&mut self) -> Option<(usize, &'a [u8])> {
        let rest = self.text.get(self.pos..).filter(|r| !r.is_empty())?;
        let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        self.pos += len + 1;
        let line = &rest[..len];
        let col = line.iter().take_while(|&&b| b == b' ').count();
        Some((col, &line[col..]))
    }

    fn top(&self) -> Option<Level> {
        self.depth.checked_sub(1).map(|i| self.levels[i])
    }

    fn push(&mut self, col: usize, open: Open) -> Option<()> {
        *self.levels.get_mut(self.depth)? = Level { col, open };
        self.depth += 1;
        Some(())
    }

    /// A line that is not blank, a comment, or inside a block scalar, at column `col`.
    fn statement(&mut self, col: usize, text: &'a [u8], after: After) -> Option<After> {
        let Some(top) = self.top() else {
            if col != 0 {
                return None;
            }
            self.push(0, Open::Map)?;
            return self.node(0, text, Role::Key);
        };
        match after {
            After::Value | After::Item if col > top.col => {
                return self.node(col, text, Role::Nested);
            }
            After::Value if col == top.col && is_entry(text) => {
                self.push(col, Open::Indentless)?;
                return self.entry(col, text);
            }
            _ => {}
        }
        // Anything else continues an open collection (a pending value is null).
        while self.top()?.col > col {
            self.depth -= 1;
        }
        let top = self.top()?;
        if top.col != col {
            return None;
        }
        match (top.open, is_entry(text)) {
            (Open::Seq | Open::Indentless, true) => self.entry(col, text),
            (Open::Map, false) => self.node(col, text, Role::Key),
            (Open::Indentless, false) => {
                self.depth -= 1;
                self.node(col, text, Role::Key)
            }
            _ => None,
        }
    }

    /// A `-` line (or line part) of the sequence at `col`.
    fn entry(&mut self, col: usize, text: &'a [u8]) -> Option<After> {
        let item = skip_spaces(&text[1..]);
        if item.first().is_none_or(|&b| b == b'#') {
            return Some(After::Item);
        }
        self.node(col + text.len() - item.len(), item, Role::Item)
    }

    /// The node that `text` starts at column `col`, in `role`.
    fn node(&mut self, col: usize, text: &'a [u8], role: Role) -> Option<After> {
        let value = matches!(role, Role::Value | Role::Item);
        if is_entry(text) {
            if !matches!(role, Role::Item | Role::Nested) {
                return None;
            }
            self.push(col, Open::Seq)?;
            return self.entry(col, text);
        }
        let (colon, quoted) = match text[0] {
            b'"' | b'\'' => {
                let end = if text[0] == b'"' {
                    double_quoted(text)?
                } else {
                    single_quoted(text)?
                };
                if text.get(end) == Some(&b':') && text.get(end + 1).is_none_or(|&b| b == b' ') {
                    (Some(end), true)
                } else if ends_line(&text[end..]) {
                    (None, true)
                } else {
                    return None;
                }
            }
            b'[' | b'{' if value => {
                let end = flow(text)?;
                return ends_line(&text[end..]).then_some(After::Done);
            }
            b'|' | b'>' if value => return block_header(text).map(After::Block),
            _ if plain_start(text, false) => {
                let colon = plain_colon(text);
                // A key ending in spaces is valid, but rare enough to leave to the parser.
                if colon.is_some_and(|at| text[at - 1] == b' ') {
                    return None;
                }
                (colon, false)
            }
            _ => return None,
        };
        let Some(colon) = colon else {
            return value.then_some(After::Done);
        };
        if role == Role::Value || colon > MAX_KEY {
            return None;
        }
        if role != Role::Key {
            self.push(col, Open::Map)?;
        }
        let value = skip_spaces(&text[colon + 1..]);
        if self.depth == 1 {
            // Quoted keys could spell `kind` another way.
            if quoted {
                return None;
            }
            if &text[..colon] == b"kind" {
                return self.kind(value);
            }
        }
        if value.first().is_none_or(|&b| b == b'#') {
            return Some(After::Value);
        }
        self.node(0, value, Role::Value)
    }

    /// The root's `kind` value: a plain word that YAML 1.1 reads as a string.
    fn kind(&mut self, value: &'a [u8]) -> Option<After> {
        let len = value.iter().position(|&b| b == b' ').unwrap_or(value.len());
        let (word, rest) = value.split_at(len);
        let kind = std::str::from_utf8(word).ok()?;
        let valid = word.first().is_some_and(u8::is_ascii_alphabetic)
            && word.iter().all(u8::is_ascii_alphanumeric)
            && kind != "Secret"
            && yaml11_type(kind) == PlainType::String;
        if !valid || self.kind.is_some() || !ends_line(rest) {
            return None;
        }
        self.kind = Some(kind);
        Some(After::Done)
    }

    /// Skips a block scalar's content; returns the line after it, if any.
    fn block_scalar(&mut self, digit: usize) -> Option<Option<(usize, &'a [u8])>> {
        let parent = self.top()?.col;
        let mut indent = if digit > 0 { parent + digit } else { 0 };
        let mut blank = 0;
        while let Some((col, text)) = self.line() {
            if text.is_empty() {
                blank = blank.max(col);
            } else if indent == 0 && col > parent {
                // libyaml would take the deepest leading blank line's indentation instead.
                if blank > col {
                    return None;
                }
                indent = col;
            } else if col < indent.max(parent + 1) {
                return Some(Some((col, text)));
            }
        }
        Some(None)
    }
}

/// A block sequence entry: `-` followed by a space or the end of the line.
fn is_entry(text: &[u8]) -> bool {
    text[0] == b'-' && text.get(1).is_none_or(|&b| b == b' ')
}

fn skip_spaces(text: &[u8]) -> &[u8] {
    let n = text.iter().take_while(|&&b| b == b' ').count();
    &text[n..]
}

/// What follows a complete node: spaces, then nothing or a comment after at least one of them.
fn ends_line(rest: &[u8]) -> bool {
    let after = skip_spaces(rest);
    after.is_empty() || (after[0] == b'#' && after.len() < rest.len())
}

fn is_flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

/// Whether a plain scalar may start `text` (not empty, no leading space).
fn plain_start(text: &[u8], flow: bool) -> bool {
    match text[0] {
        // Plain when followed by a character a plain scalar may hold; `?` and `:` are
        // indicators anywhere in flow context.
        b'-' | b'?' | b':' => {
            (text[0] == b'-' || !flow)
                && text
                    .get(1)
                    .is_some_and(|&b| b != b' ' && !(flow && (is_flow_indicator(b) || b == b'#')))
        }
        b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => false,
        _ => true,
    }
}

/// Where the `:` of a one-line plain key is, when the plain scalar starting `text` is one;
/// `None` when it runs to a comment or the end of the line.
fn plain_colon(text: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].iter().position(|&b| b == b':' || b == b'#') {
        let at = from + at;
        if text[at] == b':' {
            if text.get(at + 1).is_none_or(|&b| b == b' ') {
                return Some(at);
            }
        } else if text[at - 1] == b' ' {
            return None;
        }
        from = at + 1;
    }
    None
}

/// The length of the one-line single-quoted scalar starting `text`.
fn single_quoted(text: &[u8]) -> Option<usize> {
    let mut from = 1;
    loop {
        let at = from + text[from..].iter().position(|&b| b == b'\'')?;
        if text.get(at + 1) != Some(&b'\'') {
            return Some(at + 1);
        }
        from = at + 2;
    }
}

/// The length of the one-line double-quoted scalar starting `text`, its escapes libyaml's.
fn double_quoted(text: &[u8]) -> Option<usize> {
    let mut at = 1;
    loop {
        match *text.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => {
                let digits = match *text.get(at + 1)? {
                    b'0' | b'a' | b'b' | b't' | b'n' | b'v' | b'f' | b'r' | b'e' | b' ' | b'"'
                    | b'/' | b'\\' | b'N' | b'_' | b'L' | b'P' => 0,
                    b'x' => 2,
                    b'u' => 4,
                    b'U' => 8,
                    _ => return None,
                };
                if digits > 0 {
                    let hex = text.get(at + 2..at + 2 + digits)?;
                    let code = hex.iter().try_fold(0u32, |code, &h| {
                        Some(code << 4 | char::from(h).to_digit(16)?)
                    })?;
                    // An escaped ASCII character could spell `<` or an annotation's name.
                    if code < 0x80 || char::from_u32(code).is_none() {
                        return None;
                    }
                }
                at += 2 + digits;
            }
            _ => at += 1,
        }
    }
}

/// The length of the one-line flow collection starting `text`: `{}`, or a flow sequence of
/// scalars.
fn flow(text: &[u8]) -> Option<usize> {
    let mut at = 1 + text[1..].iter().take_while(|&&b| b == b' ').count();
    let close = if text[0] == b'{' { b'}' } else { b']' };
    if text.get(at) == Some(&close) {
        return Some(at + 1);
    }
    if close == b'}' {
        return None;
    }
    loop {
        let item = text.get(at..).filter(|t| !t.is_empty())?;
        at += match item[0] {
            b'"' => double_quoted(item)?,
            b'\'' => single_quoted(item)?,
            _ if plain_start(item, true) => item
                .iter()
                .position(|&b| matches!(b, b',' | b']' | b'[' | b'{' | b'}' | b':' | b'#'))
                .filter(|&end| matches!(item[end], b',' | b']'))?,
            _ => return None,
        };
        at += text[at..].iter().take_while(|&&b| b == b' ').count();
        match *text.get(at)? {
            b',' => at += 1 + text[at + 1..].iter().take_while(|&&b| b == b' ').count(),
            b']' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// A block scalar header's indentation indicator (0 when none), when the header is valid.
fn block_header(text: &[u8]) -> Option<usize> {
    let (mut at, mut chomping, mut digit) = (1, false, 0);
    while let Some(&b) = text.get(at) {
        match b {
            b'+' | b'-' if !chomping => chomping = true,
            b'1'..=b'9' if digit == 0 => digit = usize::from(b - b'0'),
            _ => break,
        }
        at += 1;
    }
    ends_line(&text[at..]).then_some(digit)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Instant;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;
    use crate::manifest::split;
    use crate::manifest::tree::{Node, Style, Tree};

    const DEPLOYMENT: &str = r#"# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
    app.kubernetes.io/instance: release-name
    helm.sh/chart: "web-1.2.3"
  annotations:
    checksum/config: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
spec:
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
    spec:
      serviceAccountName: web
      securityContext: {}
      containers:
        - name: web
          image: "nginx:1.25.3"
          imagePullPolicy: IfNotPresent
          args: ["--port", "8080", '--log-level', info]
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          env:
            - name: GREETING
              value: "hello\tworld \u00e9\\ \"quoted\""
            - name: EMPTY
              value: ''
            - name: IT_IS
              value: 'it''s'
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
          resources: {}
          command:
            - /bin/sh
            - -c
            - |
              echo starting
              exec nginx -g 'daemon off;'
      tolerations: []
"#;

    const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {}
spec:
  type: ClusterIP
  ports:
  - name: http
    port: 80
    targetPort: http
  - port: 443 # tls
    targetPort: 8443
  selector:
    app: web
";

    const CONFIG_MAP: &str = "---8<--- not part of it
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: default
data:
  nginx.conf: |
    server {
      listen 80;

      location / { return 200 'ok: #1'; }
    }
  script.sh: |-
    #!/bin/sh
    echo \"done\" # not a comment
  folded: >
    one
    two

  kept: |+
    kept

  indented: |2
      two extra spaces
  empty: |
  after: x
";

    const KUSTOMIZE: &str = "apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
  # a comment between keys
spec:
  schedule: \"0 3 * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: backup
            image: busybox:1.36
            args:
            - sh
            - -c
            - 'tar czf /backup/$(date +%F).tgz /data'
            volumeMounts:
            -   name: data
                mountPath: /data
          matrix:
          - - a
            - b
          - -
          -
            nested: true
          - ~
          volumes:
          - name: data
            persistentVolumeClaim:
              claimName: data
";

    /// The base documents, each a manifest the scanner must accept.
    fn bases() -> [&'static str; 4] {
        [DEPLOYMENT, SERVICE, &CONFIG_MAP[24..], KUSTOMIZE]
    }

    /// Panics unless the full parser reads `text` as the manifest the scanner saw: a mapping
    /// whose kind is the plain `kind`, with no `<`, annotation, alias or tag anywhere.
    fn assert_parser_agrees(text: &str, kind: &str) {
        let tree = Tree::parse(text)
            .unwrap_or_else(|e| panic!("accepted {text:?}, which the parser rejects: {e}"))
            .unwrap_or_else(|| panic!("accepted {text:?}, which holds no document"));
        assert!(matches!(tree.root, Node::Map(_)), "{text:?}");
        let found = tree
            .get(&tree.root, "kind")
            .and_then(Node::as_scalar)
            .unwrap_or_else(|| panic!("accepted {text:?}, whose kind is no scalar"));
        assert_eq!(found.style, Style::Plain, "{text:?}");
        assert_eq!(found.value, kind, "{text:?}");
        assert_ne!(kind, "Secret");
        fn walk(node: &Node, text: &str) {
            match node {
                Node::Scalar(s) => {
                    assert!(s.tag.is_none(), "{text:?}");
                    assert!(!s.value.contains('<'), "{text:?}");
                    assert!(!s.value.contains("avp.kubernetes.io"), "{text:?}");
                }
                Node::Seq(items) => items.iter().for_each(|n| walk(n, text)),
                Node::Map(map) => map.entries.iter().for_each(|(k, v)| {
                    walk(k, text);
                    walk(v, text);
                }),
                Node::Alias(_) => panic!("accepted {text:?}, which holds an alias"),
            }
        }
        walk(&tree.root, text);
    }

    /// The scanner's verdict, checked against the parser when it accepts.
    fn accepts(text: &str) -> bool {
        let found = kind(text);
        if let Some(kind) = found {
            assert_parser_agrees(text, kind);
        }
        assert_eq!(untouched_manifest(text), found.is_some());
        found.is_some()
    }

    fn rejects(text: &str) -> bool {
        !accepts(text)
    }

    #[test]
    fn a_helm_deployment_is_untouched() {
        assert_eq!(kind(DEPLOYMENT), Some("Deployment"));
        assert!(accepts(DEPLOYMENT));
    }

    #[test]
    fn every_base_document_is_untouched() {
        for base in bases() {
            assert!(accepts(base), "{base}");
        }
    }

    #[test]
    fn a_document_without_a_final_line_break_is_untouched() {
        assert!(accepts("kind: A\nx: 1"));
        assert!(accepts("kind: A\nx: |\n  text"));
        assert!(accepts("kind: A\nx:"));
    }

    #[test]
    fn kubectl_style_sequences_at_the_key_column_are_accepted() {
        assert!(accepts(SERVICE));
        assert!(accepts(
            "kind: A\nitems:\n- a\n- b: 1\n  c: 2\n-\nnext: 1\n"
        ));
        assert!(accepts("kind: A\nm:\n  l:\n  - x\n  k: 1\n"));
        assert!(accepts("kind: A\nl:\n- a:\n  - x\n  b: 1\n"));
    }

    #[test]
    fn block_scalars_of_every_header_are_accepted() {
        assert!(accepts(&CONFIG_MAP[24..]));
        for header in [
            "|", ">", "|-", "|+", ">-", "|2", "|2-", "|-2", ">+9", "|  # c",
        ] {
            let text = format!("kind: A\nx: {header}\n           text\n\n   \ny: 1\n");
            assert!(accepts(&text), "{text}");
        }
        assert!(accepts("kind: A\nl:\n- |\n  a\n- >\n   b\n"));
        assert!(accepts("kind: A\nx: |\n   \n\n   a\n  \n    b\ny: 1\n"));
    }

    #[test]
    fn compact_and_nested_sequences_are_accepted() {
        assert!(accepts(KUSTOMIZE));
        assert!(accepts(
            "kind: A\nl:\n  - - - x\n      - y\n    - z\n  -\n    - w\n"
        ));
    }

    #[test]
    fn comments_and_blank_lines_are_accepted_anywhere_outside_block_scalars() {
        assert!(accepts(
            "# head\n\nkind: A # the kind\n  # deeper\nm: # value below\n\n# col 0\n  a: 1 # c\n   \n  l:\n  # between\n  - # item below\n    x\n"
                .replace("    x", "    x: 1")
                .as_str()
        ));
    }

    #[test]
    fn flow_sequences_of_scalars_and_empty_collections_are_accepted() {
        for value in [
            "[]",
            "[ ]",
            "{}",
            "{ }",
            "[a]",
            "[a, b]",
            "[a,b]",
            "[ \"x\" , 'y''s' ,  z w ]",
            "[-1, -a, a-b, a?b, a'b, a\"b] # c",
        ] {
            let text = format!("kind: A\nx: {value}\nl:\n- {value}\n");
            assert!(accepts(&text), "{text}");
        }
    }

    #[test]
    fn plain_keys_and_values_with_inner_indicators_are_accepted() {
        assert!(accepts(
            "kind: A\na:b: c:d\n-a: -b\n?a: ?b\n:a: :b\na#b: b#c\nurl: http://x/y?q=1#f\na b: c d\nx: '#'\ny: a,[b]{c}\nz: ---\nw: ...\n"
        ));
    }

    #[test]
    fn a_root_key_that_starts_with_kind_and_a_colon_is_another_key() {
        let text = "kind:x:\n  a: 1\nkind:y: 2\nkind: A\n";
        assert_eq!(kind(text), Some("A"));
        assert!(accepts(text));
    }

    #[test]
    fn quoted_keys_are_accepted_below_the_root() {
        assert!(accepts(
            "kind: A\nm:\n  \"a: b\": 1\n  'c''d': 2\n  \"\\u00e9\": 3\nl:\n- \"k\": v\n  'j': w\n"
        ));
    }

    #[test]
    fn the_longest_simple_key_libyaml_allows_is_accepted_and_a_longer_one_falls_back() {
        let key = |len: usize| format!("kind: A\n{}: 1\n", "k".repeat(len));
        assert!(accepts(&key(MAX_KEY)));
        assert!(Tree::parse(&key(MAX_KEY + 1)).is_err());
        assert!(rejects(&key(MAX_KEY + 1)));
        let quoted = |len: usize| format!("kind: A\nm:\n  \"{}\": 1\n", "k".repeat(len - 2));
        assert!(accepts(&quoted(MAX_KEY)));
        assert!(Tree::parse(&quoted(MAX_KEY + 1)).is_err());
        assert!(rejects(&quoted(MAX_KEY + 1)));
    }

    #[test]
    fn sixty_four_levels_are_accepted_and_more_fall_back() {
        let nested = |levels: usize| {
            let mut text = String::from("kind: A\n");
            for level in 1..levels {
                text.push_str(&format!("{}k:\n", " ".repeat(level - 1)));
            }
            text.push_str(&format!("{}k: v\n", " ".repeat(levels - 1)));
            text
        };
        assert!(accepts(&nested(MAX_LEVELS)));
        assert!(rejects(&nested(MAX_LEVELS + 1)));
        assert!(rejects(&format!(
            "kind: A\nl: \n{}x\n",
            "- ".repeat(MAX_LEVELS)
        )));
    }

    #[test]
    fn a_secret_falls_back() {
        assert!(rejects("apiVersion: v1\nkind: Secret\ndata:\n  a: PHA+\n"));
    }

    #[test]
    fn a_placeholder_or_merge_key_falls_back() {
        assert!(rejects("kind: A\nx: <path:a#b>\n"));
        assert!(rejects("kind: A\nm: &m {a: 1}\nn:\n  <<: *m\n"));
        assert!(rejects("kind: A\nx: |\n  <b>\n"));
        assert!(rejects("kind: A\n# <comment>\n"));
    }

    #[test]
    fn avp_annotations_fall_back() {
        assert!(rejects(
            "kind: A\nmetadata:\n  annotations:\n    avp.kubernetes.io/ignore: \"true\"\n"
        ));
        assert!(rejects("kind: A\n# avp.kubernetes.io\n"));
    }

    #[test]
    fn escapes_that_spell_ascii_fall_back() {
        assert!(rejects("kind: A\nx: \"\\x3cpath:a#b>\"\n"));
        assert!(rejects("kind: A\nx: \"\\u003c\"\n"));
        assert!(rejects(
            "kind: A\nmetadata:\n  annotations:\n    \"avp\\x2ekubernetes.io/ignore\": \"true\"\n"
        ));
        assert!(rejects("kind: A\nx: \"\\U0000003C\"\n"));
    }

    #[test]
    fn every_libyaml_escape_is_accepted() {
        let text = "kind: A\nx: \"\\0\\a\\b\\t\\n\\v\\f\\r\\e\\ \\\"\\/\\\\\\N\\_\\L\\P\\x85\\u00e9\\U0001F600\"\n";
        assert!(accepts(text), "{text}");
    }

    #[test]
    fn invalid_escapes_fall_back() {
        for escape in [
            "\\q",
            "\\x4",
            "\\xZZ",
            "\\ud800",
            "\\uDFFF",
            "\\U00110000",
            "\\",
        ] {
            let text = format!("kind: A\nx: \"a{escape}\"\n");
            assert!(rejects(&text), "{text}");
        }
    }

    #[test]
    fn carriage_returns_tabs_control_and_non_ascii_characters_fall_back() {
        for text in [
            "kind: A\r\nx: 1\r\n",
            "kind: A\nx:\t1\n",
            "kind: A\nx: \"a\tb\"\n",
            "kind: A\nx: \u{7}\n",
            "kind: A\nx: \u{7f}\n",
            "kind: A\nx: é\n",
            "\u{feff}kind: A\n",
        ] {
            assert!(rejects(text), "{text:?}");
        }
    }

    #[test]
    fn a_root_that_is_no_block_mapping_at_the_first_column_falls_back() {
        for text in [
            "",
            "# only a comment\n",
            "- kind: A\n",
            "kind\n",
            "  kind: A\n",
            "{kind: A}\n",
            "\"x\"\n",
            "|\n  kind: A\n",
        ] {
            assert!(rejects(text), "{text:?}");
        }
    }

    #[test]
    fn a_missing_repeated_or_unusual_kind_falls_back() {
        for text in [
            "name: chart\n",
            "kind: A\nkind: B\n",
            "kind: A\n\"kind\": B\n",
            "kind: A\n'x': B\n",
            "kind: \"A\"\n",
            "kind: 'A'\n",
            "kind:\n",
            "kind: # none\n",
            "kind:\n  A\n",
            "kind: yes\n",
            "kind: Null\n",
            "kind: on\n",
            "kind: y\n",
            "kind: Config-Map\n",
            "kind: 1A\n",
            "kind: A B\n",
            "kind: A#b\n",
            "kind: [A]\n",
            "kind: |\n  A\n",
            "kind: A\n  B\n",
            "x:\n  kind: A\n",
        ] {
            assert!(rejects(text), "{text:?}");
        }
        assert!(accepts("kind: A # comment\n"));
        assert!(accepts("x:\n  kind: Secret\nkind: A1b\n"));
    }

    #[test]
    fn document_markers_and_directives_fall_back() {
        for line in [
            "---",
            "--- x",
            "---x",
            "...",
            "... # end",
            "%YAML 1.1",
            "%x",
        ] {
            let text = format!("kind: A\n{line}\nx: 1\n");
            assert!(rejects(&text), "{text:?}");
        }
    }

    #[test]
    fn explicit_keys_anchors_aliases_and_tags_fall_back() {
        for text in [
            "kind: A\n? x\n: y\n",
            "kind: A\nx: ? y\n",
            "kind: A\nx: &a y\n",
            "kind: A\n&a x: y\n",
            "kind: A\nx: *a\n",
            "kind: A\nx: !!str y\n",
            "kind: A\nl:\n- !t y\n",
            "kind: A\nx: [&a y]\n",
            "kind: A\nx: [*a]\n",
        ] {
            assert!(rejects(text), "{text:?}");
        }
    }

    #[test]
    fn keys_starting_with_an_indicator_fall_back() {
        for key in [
            "@x", "`x", "%x", "|x", ">x", "!x", "&x", "*x", "]x", "}x", ",x", ": x",
        ] {
            let text = format!("kind: A\n{key}: 1\n");
            assert!(rejects(&text), "{text:?}");
        }
    }

    #[test]
    fn a_key_holding_a_comment_or_ending_in_spaces_falls_back() {
        assert!(rejects("kind: A\na #b: c\n"));
        assert!(rejects("kind: A\na : c\n"));
        assert!(rejects("kind: A\n\"a\" : c\n"));
        assert!(rejects("kind: A\n\"a\":c\n"));
    }

    #[test]
    fn a_plain_scalar_holding_colon_space_falls_back() {
        assert!(rejects("kind: A\nx: a: b\n"));
        assert!(rejects("kind: A\nx: a:\n"));
        assert!(rejects("kind: A\nl:\n- a: b: c\n"));
    }

    #[test]
    fn values_starting_with_an_indicator_fall_back() {
        for value in [
            "- a", "-", "? a", ": a", "@a", "`a", "%a", "!a", "&a", "*a", "]", "}", ",a",
        ] {
            let text = format!("kind: A\nx: {value}\n");
            assert!(rejects(&text), "{text:?}");
        }
    }

    #[test]
    fn multi_line_scalars_fall_back() {
        for text in [
            "kind: A\nx: a\n  b\n",
            "kind: A\nx: a\n # c\n  b\n",
            "kind: A\nl:\n- a\n  b\n",
            "kind: A\nx: \"a\n  b\"\n",
            "kind: A\nx: \"a\\\n  b\"\n",
            "kind: A\nx: 'a\n  b'\n",
            "kind: A\nx:\n  a\n",
            "kind: A\nx:\n  \"a\"\n",
            "kind: A\nx: \"a\" b\n",
            "kind: A\nx: 'a'b\n",
            "kind: A\nx: \"a\"#c\n",
        ] {
            assert!(rejects(text), "{text:?}");
        }
    }

    #[test]
    fn invalid_block_scalar_headers_fall_back() {
        for header in ["|0", "|10", "|++", "|+-", "|22", "|x", "|#c", ">-2-"] {
            let text = format!("kind: A\nx: {header}\n  a\n");
            assert!(rejects(&text), "{text:?}");
        }
    }

    #[test]
    fn a_block_scalar_led_by_a_deeper_blank_line_falls_back() {
        assert!(rejects("kind: A\nx: |\n     \n  a\n"));
        assert!(accepts("kind: A\nx: |\n  \n  a\n"));
    }

    #[test]
    fn a_block_scalar_ends_at_the_first_line_indented_less_than_its_content() {
        assert!(rejects("kind: A\nm:\n  x: |\n      a\n    b: 1\n"));
        assert!(rejects("kind: A\nm:\n  x: |\n  not a key\n"));
        assert!(rejects("kind: A\nx: |4\n  a\n"));
        assert!(rejects("kind: A\nx: |\n  a\n# ends it\n  b: 1\n"));
        assert!(accepts("kind: A\nm:\n  x: |\n  y: 1\n"));
        assert!(accepts("kind: A\nx: |\n  a\n # between\ny: 1\n"));
    }

    #[test]
    fn flow_collections_beyond_one_line_of_scalars_fall_back() {
        for value in [
            "[[a]]",
            "[{}]",
            "[a, [b]]",
            "{a: b}",
            "{a}",
            "[a,",
            "[a, b",
            "[a,]",
            "[,]",
            "[a] b",
            "[a]#c",
            "[a:b]",
            "[a #b]",
            "[? a]",
            "[:a]",
            "[- a]",
            "[-]",
            "[\"a\": b]",
            "[\"a\" b]",
        ] {
            let text = format!("kind: A\nx: {value}\n");
            assert!(rejects(&text), "{text:?}");
        }
        assert!(rejects("kind: A\nx: [a,\n  b]\n"));
    }

    #[test]
    fn a_line_deeper_than_a_complete_value_falls_back() {
        assert!(rejects("kind: A\nx: 1\n  y: 2\n"));
        assert!(rejects("kind: A\nx: []\n  y: 2\n"));
        assert!(rejects("kind: A\nx: 'q'\n  y: 2\n"));
        assert!(rejects("kind: A\nl:\n- a: 1\n    b: 2\n"));
    }

    #[test]
    fn a_line_between_open_levels_falls_back() {
        assert!(rejects("kind: A\nm:\n    a: 1\n  b: 2\n"));
        assert!(rejects("kind: A\nm:\n    - a\n  - b\n"));
        assert!(rejects("kind: A\nl:\n- a:\n b: 1\n"));
    }

    #[test]
    fn entries_and_keys_where_the_collection_is_the_other_kind_fall_back() {
        assert!(rejects("kind: A\nx: 1\n- a\n"));
        assert!(rejects("kind: A\nl:\n- a: 1\n  - b\n"));
        assert!(rejects("kind: A\nm:\n  - a\n  b: 1\n"));
        assert!(rejects("kind: A\nm:\n  a: 1\n  - b\n"));
    }

    #[test]
    fn an_entry_as_a_mapping_value_falls_back() {
        assert!(rejects("kind: A\nx: - a\n"));
        assert!(rejects("kind: A\nl:\n- x: - a\n"));
    }

    /// Characters that matter to YAML, and some that do not.
    const MUTANTS: &[u8] = b" :-#'\"[]{},|>\n&*!%@?\\aZ09 ";

    /// A base document changed by a few random edits: a character inserted, deleted or
    /// replaced, a line repeated or deleted, a line's indentation shifted by one or two.
    fn mutated() -> impl Strategy<Value = String> {
        let edit = (
            0..7u8,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
        );
        (0..4usize, prop::collection::vec(edit, 1..6)).prop_map(|(base, edits)| {
            let mut text = bases()[base].as_bytes().to_vec();
            for (op, at, pick) in edits {
                let c = *pick.get(MUTANTS);
                let i = at.index(text.len() + 1);
                let start = text[..i]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |n| n + 1);
                let end = text[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(text.len(), |n| i + n + 1);
                let shift = 1 + pick.index(2);
                match op {
                    0 => text.insert(i, c),
                    1 if i < text.len() => {
                        text.remove(i);
                    }
                    2 if i < text.len() => text[i] = c,
                    3 => {
                        let line = text[start..end].to_vec();
                        text.splice(start..start, line);
                    }
                    4 => {
                        text.drain(start..end);
                    }
                    5 => {
                        text.splice(start..start, b"  "[..shift].iter().copied());
                    }
                    6 => {
                        let spaces = text[start..end].iter().take_while(|&&b| b == b' ').count();
                        text.drain(start..start + spaces.min(shift));
                    }
                    _ => {}
                }
            }
            String::from_utf8(text).expect("ASCII edits")
        })
    }

    #[test]
    fn whatever_the_scanner_accepts_the_parser_reads_alike() {
        let (cases, accepted) = (Cell::new(0), Cell::new(0));
        let mut runner = TestRunner::new(Config {
            cases: 20_000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&mutated(), |text| {
                cases.set(cases.get() + 1);
                if let Some(kind) = kind(&text) {
                    accepted.set(accepted.get() + 1);
                    assert_parser_agrees(&text, kind);
                }
                Ok(())
            })
            .unwrap();
        let share = accepted.get() as f64 / cases.get() as f64;
        println!(
            "{} of {} mutated documents accepted ({:.1} %)",
            accepted.get(),
            cases.get(),
            100.0 * share
        );
        assert!(share > 0.2, "{share}");
    }

    /// Lines of every shape the scanner reads, and some it does not, at random indentations:
    /// what block structure is valid is the parser's to say.
    fn random_lines() -> impl Strategy<Value = String> {
        const LINES: &[&str] = &[
            "k: v",
            "k:",
            "kind: A",
            "kind: B",
            "- v",
            "-",
            "- k: v",
            "- k:",
            "- - v",
            "k: |",
            "k: |2",
            "k: >-",
            "- |",
            "text",
            "text: more",
            "\"q\": v",
            "'q':",
            "k: \"a\\n\"",
            "# c",
            "",
            "   ",
            "k: [a, 'b']",
            "k: {}",
            "- []",
            "k: v # c",
            "k: a b",
            "- 'x'",
            "k: 'a' x",
            "-   k: v",
            "? k",
            "k: - v",
        ];
        let indent = prop_oneof![4 => (0..4usize).prop_map(|n| 2 * n), 1 => 0..9usize];
        prop::collection::vec((indent, prop::sample::select(LINES)), 1..10).prop_map(|lines| {
            let mut text = String::from("kind: A\n");
            for (indent, line) in lines {
                text.push_str(&" ".repeat(indent));
                text.push_str(line);
                text.push('\n');
            }
            text
        })
    }

    #[test]
    fn whatever_the_scanner_accepts_of_random_lines_the_parser_reads_alike() {
        let (cases, accepted) = (Cell::new(0), Cell::new(0));
        let mut runner = TestRunner::new(Config {
            cases: 20_000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&random_lines(), |text| {
                cases.set(cases.get() + 1);
                if let Some(kind) = kind(&text) {
                    accepted.set(accepted.get() + 1);
                    assert_parser_agrees(&text, kind);
                }
                Ok(())
            })
            .unwrap();
        println!(
            "{} of {} random texts accepted",
            accepted.get(),
            cases.get()
        );
        assert!(accepted.get() > cases.get() / 100);
    }

    #[test]
    #[ignore = "a measurement: run with --release -- --ignored --nocapture"]
    fn scanning_speed() {
        let mut stream = String::new();
        let mut i = 0;
        while stream.len() < 20 << 20 {
            let doc = bases()[i % 4];
            stream.push_str("---\n");
            stream.push_str(&doc.replace("web", &format!("web-{i}")));
            i += 1;
        }
        let split = split::split(&stream).unwrap();
        // The best of five runs: the machine may be busy with other work.
        let mut best = f64::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            let accepted = split
                .chunks
                .iter()
                .filter(|c| untouched_manifest(c.body))
                .count();
            best = best.min(started.elapsed().as_secs_f64());
            assert_eq!(accepted, split.chunks.len());
        }
        let mb = stream.len() as f64 / 1e6;
        println!(
            "scanned {} documents, {mb:.1} MB, at {:.0} MB/s",
            split.chunks.len(),
            mb / best
        );
        let started = Instant::now();
        for chunk in &split.chunks[..split.chunks.len() / 10] {
            Tree::parse(chunk.body).unwrap();
        }
        let parse = mb / 10.0 / started.elapsed().as_secs_f64();
        println!("Tree::parse: {parse:.0} MB/s");
    }
}
