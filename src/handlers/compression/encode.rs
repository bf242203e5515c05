//! The encoders, from async-compression: a body stream in, a compressed stream out.

use std::io;

use async_compression::Level;
use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZstdEncoder};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use tokio_util::io::{ReaderStream, StreamReader};

use super::Coding;

/// The size of the compressed blocks handed to the socket.
const BLOCK: usize = 16 * 1024;

/// Levels that favour speed, as a server compressing on the fly should: about
/// gzip's default size at a fraction of brotli's and zstd's slowest settings.
fn level(coding: Coding) -> Level {
    match coding {
        Coding::Zstd => Level::Precise(3),
        Coding::Brotli => Level::Precise(4),
        Coding::Gzip => Level::Precise(6),
    }
}

/// `body`, compressed with `coding` as it is pulled.
pub(super) fn stream(
    coding: Coding,
    body: BoxStream<'static, io::Result<Bytes>>,
) -> BoxStream<'static, io::Result<Bytes>> {
    let input = StreamReader::new(body);
    let level = level(coding);
    match coding {
        Coding::Zstd => {
            ReaderStream::with_capacity(ZstdEncoder::with_quality(input, level), BLOCK).boxed()
        }
        Coding::Brotli => {
            ReaderStream::with_capacity(BrotliEncoder::with_quality(input, level), BLOCK).boxed()
        }
        Coding::Gzip => {
            ReaderStream::with_capacity(GzipEncoder::with_quality(input, level), BLOCK).boxed()
        }
    }
}

/// `body` compressed whole.
pub(super) async fn bytes(coding: Coding, body: Bytes) -> io::Result<Bytes> {
    let input = futures_util::stream::once(std::future::ready(Ok(body))).boxed();
    let compressed = stream(coding, input)
        .try_fold(Vec::new(), |mut all, block| async move {
            all.extend_from_slice(&block);
            Ok(all)
        })
        .await?;
    Ok(Bytes::from(compressed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
    use tokio::io::AsyncReadExt;

    async fn decode(coding: Coding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Zstd => ZstdDecoder::new(data).read_to_end(&mut out).await,
            Coding::Brotli => BrotliDecoder::new(data).read_to_end(&mut out).await,
            Coding::Gzip => GzipDecoder::new(data).read_to_end(&mut out).await,
        }
        .unwrap();
        out
    }

    #[tokio::test]
    async fn every_coding_round_trips_and_shrinks_text() {
        let text = Bytes::from("the quick brown fox jumps over the lazy dog. ".repeat(200));
        for coding in [Coding::Zstd, Coding::Brotli, Coding::Gzip] {
            let compressed = bytes(coding, text.clone()).await.unwrap();
            assert!(
                compressed.len() < text.len() / 10,
                "{coding}: {}",
                compressed.len()
            );
            assert_eq!(decode(coding, &compressed).await, text, "{coding}");
        }
    }
}
