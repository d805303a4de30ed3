//! The config as an S3 object (`ROUTER_CONFIG_S3=s3://bucket/key`): Lambda allows 4 KB for all
//! its environment variables and a CloudFormation parameter is capped at 4 KB (about six
//! clusters), an object is not. Read at start; re-read on warm invocations with a conditional
//! GET (`If-None-Match`), so adding a cluster needs no redeploy. What is read is validated
//! exactly like a file by the caller, which keeps the previous config when a new one is bad.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::config::ConfigError;

/// Where the config object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    /// `s3://bucket/key`.
    pub fn parse(uri: &str) -> Result<S3Location, ConfigError> {
        let bad = |why: &str| ConfigError::Invalid {
            origin: crate::config::ENV_CONFIG_S3.into(),
            field: crate::config::ENV_CONFIG_S3.into(),
            message: format!(
                "{uri:?}: {why}: write s3://BUCKET/KEY, e.g. s3://my-bucket/router.json"
            ),
        };
        let rest = uri
            .trim()
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URI"))?;
        let (bucket, key) = rest.split_once('/').ok_or_else(|| bad("no key"))?;
        if bucket.is_empty() || key.is_empty() {
            return Err(bad("an empty bucket or key"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The object still has the ETag given.
    Unchanged,
    /// Its text, its ETag and (in a versioned bucket) its version.
    Changed {
        text: String,
        etag: Option<String>,
        version: Option<String>,
    },
}

/// The largest config accepted (10,000 clusters are about 6 MB of JSON).
const MAX_CONFIG_BYTES: i64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot read the config {location}: {message}")]
pub struct FetchError {
    pub location: String,
    pub message: String,
}

/// Read the object, or learn it is unchanged since `etag`.
pub async fn fetch(
    client: &Client,
    at: &S3Location,
    etag: Option<&str>,
) -> Result<Fetched, FetchError> {
    let fail = |message: String| FetchError {
        location: at.to_string(),
        message,
    };
    let sent = client
        .get_object()
        .bucket(&at.bucket)
        .key(&at.key)
        .set_if_none_match(etag.map(str::to_string))
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => {
            return Ok(Fetched::Unchanged);
        }
        Err(e) => {
            return Err(fail(hint(
                e.code(),
                e.message(),
                &crate::error_chain::one_line(&e),
            )));
        }
    };
    if out.content_length().is_some_and(|n| n > MAX_CONFIG_BYTES) {
        return Err(fail(format!(
            "larger than {MAX_CONFIG_BYTES} bytes: is it the config?"
        )));
    }
    let etag = out.e_tag().map(str::to_string);
    let version = out.version_id().map(str::to_string);
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| fail(format!("reading the body: {e}")))?
        .into_bytes();
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| fail("not UTF-8 text".into()))?;
    Ok(Fetched::Changed {
        text,
        etag,
        version,
    })
}

/// What S3 said, and what to do about it.
fn hint(code: Option<&str>, message: Option<&str>, chain: &str) -> String {
    let said = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => chain.to_string(),
    };
    let fix = match code {
        Some("NoSuchKey") => "upload the config there, or fix ROUTER_CONFIG_S3",
        Some("NoSuchBucket") => "fix the bucket in ROUTER_CONFIG_S3",
        Some("AccessDenied") => {
            "grant the function's role s3:GetObject on exactly this object (the template and the Terraform module do)"
        }
        _ => "check ROUTER_CONFIG_S3 and the function's network path to S3",
    };
    format!("{said} ({fix})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_or_say_how_to_write_them() {
        assert_eq!(
            S3Location::parse("s3://b/dir/router.json").expect("valid"),
            S3Location {
                bucket: "b".into(),
                key: "dir/router.json".into()
            }
        );
        for bad in [
            "b/router.json",
            "s3://b",
            "s3:///k",
            "s3://b/",
            "https://b/k",
        ] {
            let e = S3Location::parse(bad).expect_err(bad).to_string();
            assert!(e.contains("s3://BUCKET/KEY"), "{e}");
        }
    }
}
