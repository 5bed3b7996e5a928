//! `-s [NS:]NAME`: settings from a Kubernetes Secret, read through the Kubernetes API with the
//! pod's service account (or a kubeconfig outside a cluster).

use crate::config::Layer;
use crate::deadline::Deadline;

/// AVP's default namespace for `-s NAME`.
const DEFAULT_NAMESPACE: &str = "argocd";

/// Splits AVP's `-s` value: `ns:name`, else namespace `argocd` and the text before any colon.
pub fn parse(spec: &str) -> (&str, &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [namespace, name] => (namespace, name),
        _ => (DEFAULT_NAMESPACE, parts[0]),
    }
}

/// The Secret's `data` as settings (keys upper-cased, as for a config file), read before the
/// deadline.
#[cfg(feature = "kubernetes")]
pub fn read(spec: &str, deadline: &Deadline) -> anyhow::Result<Layer> {
    use std::collections::BTreeMap;

    use anyhow::{Context as _, anyhow};

    use crate::wait;

    let (namespace, name) = parse(spec);
    let what = format!("Secret {namespace}/{name}");
    let waiting = format!("{what} from the Kubernetes API");
    let data = deadline.block_on(&waiting, true, async {
        let _waiting = wait::on(waiting.clone());
        let client = crate::kubernetes::client(true)
            .await
            .map_err(|e| anyhow!("cannot read {what}: {e}"))?;
        crate::kubernetes::read_secret(&client, namespace, name)
            .await
            .map_err(|e| anyhow!("cannot read {what}: {e}"))
    })??;
    let mut settings = BTreeMap::new();
    let mut backends = BTreeMap::new();
    for (key, value) in data {
        let value = String::from_utf8(value)
            .with_context(|| format!("{what}: key {key} is not UTF-8 text"))?;
        // The profiles, as YAML text: `backends: {aws-prod: {AVP_TYPE: …}}` without the key.
        if key.eq_ignore_ascii_case(crate::config::profiles::BACKENDS_KEY) {
            backends = crate::config::parse_backends(&what, &value)?;
        } else {
            settings.insert(key.to_uppercase(), value);
        }
    }
    Ok(Layer {
        origin: what,
        settings,
        backends,
    })
}

#[cfg(not(feature = "kubernetes"))]
pub fn read(_spec: &str, _deadline: &Deadline) -> anyhow::Result<Layer> {
    anyhow::bail!("-s: this build of secretsubst was made without Kubernetes support")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_splits_like_avp() {
        assert_eq!(parse("vault-config"), ("argocd", "vault-config"));
        assert_eq!(parse("team-a:vault-config"), ("team-a", "vault-config"));
        assert_eq!(parse("a:b:c"), ("argocd", "a"));
    }
}
