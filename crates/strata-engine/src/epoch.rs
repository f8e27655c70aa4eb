//! SOURCE_DATE_EPOCH: which value a build uses, and its validation.
//!
//! BuildKit's rule: a `--build-arg SOURCE_DATE_EPOCH=...` wins over the
//! environment's SOURCE_DATE_EPOCH; an empty value counts as unset. The
//! engine never reads the process environment itself (a program calling
//! it decides whose environment counts), so the caller passes the
//! environment's value in [`crate::BuildRequest::source_date_epoch_env`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::request::BuildRequest;

/// A SOURCE_DATE_EPOCH that is not a whole number of seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SOURCE_DATE_EPOCH={0:?} is not a number of seconds since 1970")]
pub struct InvalidSourceDateEpoch(pub String);

/// The SOURCE_DATE_EPOCH of a build with `build_args` run in an
/// environment whose SOURCE_DATE_EPOCH is `env` (`None`: unset): the
/// build arg wins (even an empty one), and an empty value means none.
pub fn source_date_epoch(
    build_args: &BTreeMap<String, String>,
    env: Option<&str>,
) -> Result<Option<i64>, InvalidSourceDateEpoch> {
    let text = build_args
        .get("SOURCE_DATE_EPOCH")
        .map(String::as_str)
        .or(env)
        .filter(|v| !v.is_empty());
    match text {
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| InvalidSourceDateEpoch(v.to_string())),
        None => Ok(None),
    }
}

/// `req` with its SOURCE_DATE_EPOCH decided: an explicit
/// `req.source_date_epoch` is kept; otherwise [`source_date_epoch`] of its
/// build args and `source_date_epoch_env`. Borrowed when nothing changes.
pub(crate) fn resolve(req: &BuildRequest) -> Result<Cow<'_, BuildRequest>, InvalidSourceDateEpoch> {
    if req.source_date_epoch.is_some() {
        return Ok(Cow::Borrowed(req));
    }
    match source_date_epoch(&req.build_args, req.source_date_epoch_env.as_deref())? {
        None => Ok(Cow::Borrowed(req)),
        Some(t) => Ok(Cow::Owned(BuildRequest {
            source_date_epoch: Some(t),
            ..req.clone()
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("SOURCE_DATE_EPOCH".to_string(), v.to_string())])
    }

    #[test]
    fn build_arg_wins_over_environment() {
        assert_eq!(source_date_epoch(&args("5"), Some("7")), Ok(Some(5)));
        assert_eq!(source_date_epoch(&BTreeMap::new(), Some("7")), Ok(Some(7)));
        assert_eq!(source_date_epoch(&BTreeMap::new(), None), Ok(None));
        // An empty build arg unsets it: the environment does not count.
        assert_eq!(source_date_epoch(&args(""), Some("7")), Ok(None));
        assert_eq!(source_date_epoch(&BTreeMap::new(), Some("")), Ok(None));
    }

    #[test]
    fn rejects_non_numbers_with_the_value() {
        let e = source_date_epoch(&args("soon"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SOURCE_DATE_EPOCH=\"soon\" is not a number of seconds since 1970"
        );
    }

    #[test]
    fn explicit_value_is_kept_and_environment_resolved() {
        let req = BuildRequest {
            source_date_epoch: Some(1),
            source_date_epoch_env: Some("9".into()),
            ..Default::default()
        };
        assert_eq!(resolve(&req).unwrap().source_date_epoch, Some(1));
        let req = BuildRequest {
            source_date_epoch_env: Some("9".into()),
            ..Default::default()
        };
        assert_eq!(resolve(&req).unwrap().source_date_epoch, Some(9));
    }
}
