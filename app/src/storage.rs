//! Object storage through `object_store`: local files by default
//! (`file://data/objects`), S3 in production (`s3://bucket/prefix`).
//!
//! Writes always go through a multipart upload ([`ObjectWriter`]): a large
//! file is never held in memory, and an upload that is not finished (bad
//! data, over the limit, client gone) is aborted, leaving no object behind.
//! On S3 the object only appears at `CompleteMultipartUpload`; on local
//! files it is staged beside its final name and renamed at the end.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

pub use object_store::Error as StorageError;

/// Multipart part size: S3's minimum is 5 MiB; parts in flight × this is the
/// memory an upload costs.
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploaded concurrently; the writer waits (backpressure) beyond this.
pub const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
}

impl Storage {
    /// Opens `file://DIR` (created if missing) or `s3://bucket[/prefix]`.
    ///
    /// S3 settings come from the usual AWS environment (`AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`…, web identity, the ECS container credentials
    /// endpoint, instance metadata); `endpoint` overrides the S3 endpoint
    /// (`AWS_ENDPOINT_URL`, for moto or MinIO).
    pub fn from_url(url: &str, endpoint: Option<&str>) -> Result<Self, StorageError> {
        let store: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Generic {
                store: "LocalFileSystem",
                source: format!("creating {dir}: {e}").into(),
            })?;
            Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true))
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                builder = builder.with_region("us-east-1");
            }
            if let Some(endpoint) = endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"));
            }
            let s3 = builder.build()?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else {
            return Err(StorageError::Generic {
                store: "storage",
                source: format!("unsupported storage URL {url:?}").into(),
            });
        };
        Ok(Storage { store })
    }

    /// Starts writing `key`; nothing is visible until [`ObjectWriter::finish`].
    pub async fn writer(&self, key: &str) -> Result<ObjectWriter, StorageError> {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        Ok(ObjectWriter {
            inner: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
            bytes: 0,
        })
    }

    /// Streams an object's bytes.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        Ok(self
            .store
            .get(&Path::from(key))
            .await?
            .into_stream()
            .boxed())
    }

    /// The whole object (tests and small files only).
    pub async fn read_all(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let chunks: Vec<Bytes> = self.read(key).await?.try_collect().await?;
        Ok(chunks.concat())
    }

    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(StorageError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every key under `prefix` (tests: nothing half-written stays).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix = Path::from(prefix);
        self.store
            .list(Some(&prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
    }

    /// Health: the store answers (a missing probe object is an answer).
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.exists("health/probe").await.map(|_| ())
    }
}

/// An object being written in parts.
#[derive(Debug)]
pub struct ObjectWriter {
    inner: WriteMultipart,
    bytes: u64,
}

impl ObjectWriter {
    /// Queues `bytes`, waiting while [`PARTS_IN_FLIGHT`] parts are uploading.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        self.inner.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.bytes += bytes.len() as u64;
        self.inner.put(bytes);
        Ok(())
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Makes the object visible.
    pub async fn finish(self) -> Result<(), StorageError> {
        self.inner.finish().await.map(|_| ())
    }

    /// Drops what was written; logs rather than fails, since it is cleanup.
    pub async fn abort(self) {
        if let Err(e) = self.inner.abort().await {
            tracing::warn!(error = %e, "aborting a multipart upload failed");
        }
    }
}

/// Key of an uploaded file.
pub fn upload_key(id: crate::domain::UploadId) -> String {
    format!("uploads/{id}.csv")
}

/// Key of a prediction's scored CSV: fixed per prediction, so a redelivered
/// job overwrites the same object.
pub fn result_key(id: crate::domain::PredictionId) -> String {
    format!("results/{id}.csv")
}
