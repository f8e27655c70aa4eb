//! What every platform's pass of one build reads and never changes: the
//! request, the build context, the named contexts, the runtime's init
//! layer and the RUN steps' network.

use std::collections::BTreeMap;
use std::path::Path;

use strata_frontend::StageScope;

use crate::context::BuildContext;
use crate::named::Named;
use crate::network::{BuildNetwork, NetworkError, NetworkMode};
use crate::request::BuildRequest;

/// See the module docs.
pub(crate) struct BuildInputs<'a> {
    pub(crate) req: &'a BuildRequest,
    pub(crate) context: &'a BuildContext,
    /// Named contexts resolved to image IDs or directories (lower-case names).
    pub(crate) named: &'a BTreeMap<String, Named>,
    /// The runtime's init layer (mount points, placeholder files).
    pub(crate) init_layer: &'a Path,
    /// The RUN steps' private network: one per build, whatever the number
    /// of platforms (created by the first RUN that executes).
    pub(crate) network: &'a BuildNetwork,
}

impl BuildInputs<'_> {
    /// The named context `name` stands for, if any.
    pub(crate) fn named(&self, name: &str) -> Option<&Named> {
        self.named.get(&name.to_ascii_lowercase())
    }

    /// SOURCE_DATE_EPOCH, when set.
    pub(crate) fn epoch(&self) -> Option<i64> {
        self.req.source_date_epoch
    }

    /// SOURCE_DATE_EPOCH or the current time, in seconds.
    pub(crate) fn now_secs(&self) -> i64 {
        self.epoch().unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        })
    }

    /// The `created` time of history entries: SOURCE_DATE_EPOCH or now.
    pub(crate) fn created(&self) -> String {
        match self.epoch() {
            Some(t) => strata_oci::rfc3339_unix(t),
            None => crate::events::format_rfc3339_nanos(time::OffsetDateTime::now_utc()),
        }
    }

    /// The network mode of a RUN with `--network=flag` in this build;
    /// host networking without `--allow network.host` is an error.
    pub(crate) fn run_network_mode(&self, flag: Option<&str>) -> Result<NetworkMode, NetworkError> {
        crate::network::resolve(flag, self.req.network, self.req.allow_network_host)
    }

    /// The build args a RUN records (its cache key and its history's
    /// `|N K=V` prefix): those in scope, without the proxy build args no
    /// ARG declares (BuildKit passes these to RUN only as environment).
    pub(crate) fn recorded_build_args(&self, scope: &StageScope) -> Vec<(String, String)> {
        scope
            .build_args_in_scope()
            .into_iter()
            .filter(|(k, _)| !strata_frontend::plan::is_proxy_arg(k) || scope.is_declared_arg(k))
            .collect()
    }

    /// The proxy build args (`--build-arg http_proxy=...`, any case of
    /// HTTP_PROXY, HTTPS_PROXY, FTP_PROXY, NO_PROXY, ALL_PROXY) as RUN's
    /// environment, in both cases as BuildKit sets them; a name `env`
    /// already sets (ENV, a declared ARG) is left alone.
    pub(crate) fn proxy_env(&self, env: &[String]) -> Vec<String> {
        let args = &self.req.build_args;
        let set = |name: &str| {
            env.iter()
                .any(|e| e.split_once('=').is_some_and(|(k, _)| k == name))
        };
        let mut out = Vec::new();
        for upper in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "FTP_PROXY",
            "NO_PROXY",
            "ALL_PROXY",
        ] {
            // An exact-case value first, then any other spelling.
            let lower = upper.to_ascii_lowercase();
            let value = args.get(upper).or_else(|| args.get(&lower)).or_else(|| {
                args.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(upper))
                    .map(|(_, v)| v)
            });
            let Some(v) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            for name in [upper, lower.as_str()] {
                if !set(name) {
                    out.push(format!("{name}={v}"));
                }
            }
        }
        out
    }
}
