//! Blobs in an S3-compatible bucket, for deployments with many stateless replicas (`s3`
//! feature).
//!
//! The SDK client is built once, on first use, and shared by every clone of the store
//! (`tokio::sync::OnceCell`: building it loads the AWS credential chain, which is async and
//! may read files or call the instance metadata service). The SDK's own retries are off:
//! the services retry with their policy, inside the request's budget, and count every attempt.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use stride_concurrency::Deadline;
use tokio::sync::OnceCell;

use crate::{BlobError, BlobKey, BlobResult, BlobStore};

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    pub bucket: String,
    /// An S3-compatible endpoint; `None` for AWS.
    pub endpoint: Option<String>,
    /// `None`: the AWS chain's region, else `us-east-1`.
    pub region: Option<String>,
    /// Bucket in the path rather than the host name (most self-hosted servers need it).
    pub path_style: bool,
    /// Static keys (tests); `None` uses the standard AWS credential chain.
    pub static_credentials: Option<(String, String)>,
}

#[derive(Clone)]
pub struct S3BlobStore {
    shared: Arc<Shared>,
}

struct Shared {
    config: S3Config,
    client: OnceCell<Client>,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.shared.config.bucket)
            .field("endpoint", &self.shared.config.endpoint)
            .finish()
    }
}

impl S3BlobStore {
    pub fn new(config: S3Config) -> Self {
        Self { shared: Arc::new(Shared { config, client: OnceCell::new() }) }
    }

    async fn client(&self) -> &Client {
        self.shared.client.get_or_init(|| build_client(&self.shared.config)).await
    }

    fn bucket(&self) -> &str {
        &self.shared.config.bucket
    }

    /// Checks that the bucket answers, for start-up: a typo in the bucket name or the keys
    /// fails the start instead of the first upload.
    pub async fn check(&self, deadline: Deadline) -> BlobResult<()> {
        let call = self.client().await.head_bucket().bucket(self.bucket()).send();
        bounded(deadline, call).await.map(drop)
    }
}

async fn build_client(config: &S3Config) -> Client {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    // The one TLS stack of the binary (rustls on ring), instead of the SDK's default aws-lc.
    let https = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https);
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((key, secret)) = &config.static_credentials {
        loader = loader.credentials_provider(Credentials::new(key, secret, None, None, "stride-static"));
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(config.path_style)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        // Checksums only where S3 requires them: not every S3-compatible server takes the
        // CRC32 headers newer SDKs send by default.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if shared.region().is_none() {
        builder = builder.region(Region::new("us-east-1"));
    }
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Client::from_conf(builder.build())
}

/// Runs one SDK call under the deadline and sorts its failure into retryable or not.
async fn bounded<T, E, R>(deadline: Deadline, call: impl Future<Output = Result<T, SdkError<E, R>>>) -> BlobResult<T>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match deadline.run(call).await {
        Err(_) => Err(BlobError::Timeout),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify(error)),
    }
}

/// The HTTP status of a raw response, when there is one.
trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

fn classify<E, R>(error: SdkError<E, R>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let status = error.raw_response().map(HasStatus::status);
    let code = error.code().unwrap_or_default().to_owned();
    let text = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::TimeoutError(_) => BlobError::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => BlobError::Unavailable(text),
        SdkError::ServiceError(_) => match status {
            Some(404) => BlobError::NotFound,
            Some(429 | 500..=599) => BlobError::Unavailable(text),
            _ if matches!(code.as_str(), "SlowDown" | "Throttling" | "RequestTimeout" | "InternalError") => {
                BlobError::Unavailable(text)
            }
            _ if code == "NoSuchKey" => BlobError::NotFound,
            _ => BlobError::Other(text),
        },
        _ => BlobError::Other(text),
    }
}

impl BlobStore for S3BlobStore {
    const BACKEND: &'static str = "s3";

    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &'static str, deadline: Deadline) -> BlobResult<()> {
        let call = self
            .client()
            .await
            .put_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send();
        bounded(deadline, call).await.map(drop)
    }

    async fn get(&self, key: &BlobKey, deadline: Deadline) -> BlobResult<Bytes> {
        let client = self.client().await;
        let read = async {
            let object = client.get_object().bucket(self.bucket()).key(key.as_str()).send().await.map_err(classify)?;
            let body =
                object.body.collect().await.map_err(|e| BlobError::Unavailable(format!("reading {key}: {e}")))?;
            Ok(body.into_bytes())
        };
        deadline.run(read).await.unwrap_or(Err(BlobError::Timeout))
    }

    async fn delete(&self, key: &BlobKey, deadline: Deadline) -> BlobResult<()> {
        let call = self.client().await.delete_object().bucket(self.bucket()).key(key.as_str()).send();
        match bounded(deadline, call).await {
            Ok(_) | Err(BlobError::NotFound) => Ok(()),
            Err(other) => Err(other),
        }
    }

    async fn list(&self, prefix: &str, deadline: Deadline) -> BlobResult<Vec<BlobKey>> {
        let client = self.client().await;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let call = client
                .list_objects_v2()
                .bucket(self.bucket())
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send();
            let page = bounded(deadline, call).await?;
            keys.extend(page.contents().iter().filter_map(|o| o.key()).filter_map(|k| BlobKey::parse(k).ok()));
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn put_file(
        &self,
        key: &BlobKey,
        path: std::path::PathBuf,
        content_type: &'static str,
        deadline: Deadline,
    ) -> BlobResult<()> {
        let body =
            ByteStream::from_path(&path).await.map_err(|e| BlobError::Other(format!("reading {path:?}: {e}")))?;
        let call = self
            .client()
            .await
            .put_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .content_type(content_type)
            .body(body)
            .send();
        bounded(deadline, call).await.map(drop)
    }

    async fn get_to_file(&self, key: &BlobKey, path: std::path::PathBuf, deadline: Deadline) -> BlobResult<()> {
        let client = self.client().await;
        let copy = async {
            let object = client.get_object().bucket(self.bucket()).key(key.as_str()).send().await.map_err(classify)?;
            let mut body = object.body.into_async_read();
            let mut file =
                tokio::fs::File::create(&path).await.map_err(|e| BlobError::Other(format!("{path:?}: {e}")))?;
            tokio::io::copy(&mut body, &mut file)
                .await
                .map_err(|e| BlobError::Unavailable(format!("reading {key}: {e}")))?;
            tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(|e| BlobError::Other(format!("{path:?}: {e}")))
        };
        deadline.run(copy).await.unwrap_or(Err(BlobError::Timeout))
    }

    async fn presigned_get(&self, key: &BlobKey, ttl: Duration) -> BlobResult<Option<String>> {
        let presigning = PresigningConfig::expires_in(ttl).map_err(|e| BlobError::Other(e.to_string()))?;
        let request = self
            .client()
            .await
            .get_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .presigned(presigning)
            .await
            .map_err(classify)?;
        Ok(Some(request.uri().to_owned()))
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::{S3TestServer, blob_contract};

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(30))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_s3_store_keeps_the_blob_contract() {
        let server = S3TestServer::start();
        let store = server.store();
        store.check(deadline()).await.expect("the bucket answers");
        blob_contract::check(&store, "photos").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_keys_are_permanent_and_a_dead_endpoint_is_transient() {
        let server = S3TestServer::start();
        let key = BlobKey::parse("photos/a/original.jpg").unwrap();
        let refused =
            server.store_with_wrong_keys().put(&key, Bytes::from_static(b"x"), "image/jpeg", deadline()).await;
        assert!(matches!(&refused, Err(e) if !e.is_transient()), "a bad signature is not worth a retry: {refused:?}");

        let endpoint = server.endpoint.clone();
        let config = S3Config { endpoint: Some(endpoint), ..server.config() };
        drop(server);
        let gone = S3BlobStore::new(config).get(&key, deadline()).await;
        assert!(matches!(&gone, Err(e) if e.is_transient()), "a refused connection is: {gone:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn presigned_urls_serve_the_bytes_without_credentials() {
        let server = S3TestServer::start();
        let store = server.store();
        let key = BlobKey::parse("photos/b/thumb-v1.jpg").unwrap();
        store.put(&key, Bytes::from_static(b"thumbnail bytes"), "image/jpeg", deadline()).await.unwrap();
        let url = store.presigned_get(&key, Duration::from_secs(60)).await.unwrap().expect("S3 presigns");
        assert!(url.starts_with(&server.endpoint), "{url}");
        assert!(url.contains("X-Amz-Signature"), "{url}");
    }
}
