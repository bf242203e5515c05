//! The bodies of `206 Partial Content` answers: byte sections of a file, read as the
//! client takes them (bounded memory), each optionally preceded by a part head —
//! which makes a `multipart/byteranges` body (RFC 9110 §14.6).

use std::collections::VecDeque;
use std::io::{self, SeekFrom};
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::HeaderValue;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How much of a section is read at a time.
const BLOCK: u64 = 64 * 1024;

/// One byte range of the file and what goes on the wire before it.
#[derive(Debug)]
pub(super) struct Section {
    pub(super) head: Bytes,
    pub(super) range: Range<u64>,
}

/// A whole `206` body: its sections and what ends it.
#[derive(Debug)]
pub(super) struct Sections {
    pub(super) parts: Vec<Section>,
    pub(super) tail: Bytes,
}

impl Sections {
    /// One range, sent bare.
    pub(super) fn single(range: Range<u64>) -> Self {
        Self {
            parts: vec![Section {
                head: Bytes::new(),
                range,
            }],
            tail: Bytes::new(),
        }
    }

    /// Several ranges as `multipart/byteranges` parts separated by `boundary`, each
    /// with the file's content type (if known) and its `Content-Range`.
    pub(super) fn multipart(
        ranges: &[Range<u64>],
        size: u64,
        content_type: Option<&HeaderValue>,
        boundary: &str,
    ) -> Self {
        let content_type = content_type.and_then(|value| value.to_str().ok());
        let parts = ranges
            .iter()
            .enumerate()
            .map(|(index, range)| {
                let separator = if index == 0 { "" } else { "\r\n" };
                let mut head = format!("{separator}--{boundary}\r\n");
                if let Some(content_type) = content_type {
                    head.push_str(&format!("Content-Type: {content_type}\r\n"));
                }
                head.push_str(&format!(
                    "Content-Range: bytes {}-{}/{size}\r\n\r\n",
                    range.start,
                    range.end - 1
                ));
                Section {
                    head: Bytes::from(head),
                    range: range.clone(),
                }
            })
            .collect();
        Self {
            parts,
            tail: Bytes::from(format!("\r\n--{boundary}--\r\n")),
        }
    }

    /// The exact length of the body, for `Content-Length`.
    pub(super) fn len(&self) -> u64 {
        let parts: u64 = self
            .parts
            .iter()
            .map(|part| part.head.len() as u64 + (part.range.end - part.range.start))
            .sum();
        parts + self.tail.len() as u64
    }

    /// The body, reading each section from `file` only as fast as it is taken. A file
    /// that shrank meanwhile ends the body with an error (the response is cut).
    pub(super) fn into_stream(self, file: File) -> impl Stream<Item = io::Result<Bytes>> + Send {
        let reader = Reader {
            file,
            parts: self.parts.into(),
            left: 0,
            tail: Some(self.tail),
        };
        futures_util::stream::try_unfold(reader, |mut reader| async move {
            Ok(reader.next_block().await?.map(|block| (block, reader)))
        })
    }
}

struct Reader {
    file: File,
    parts: VecDeque<Section>,
    /// Bytes still to read of the current section.
    left: u64,
    tail: Option<Bytes>,
}

impl Reader {
    async fn next_block(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if self.left > 0 {
                return self.read().await.map(Some);
            }
            if let Some(part) = self.parts.pop_front() {
                self.file.seek(SeekFrom::Start(part.range.start)).await?;
                self.left = part.range.end - part.range.start;
                if !part.head.is_empty() {
                    return Ok(Some(part.head));
                }
                continue;
            }
            return Ok(self.tail.take().filter(|tail| !tail.is_empty()));
        }
    }

    async fn read(&mut self) -> io::Result<Bytes> {
        let want = self.left.min(BLOCK);
        let mut block = BytesMut::with_capacity(want as usize);
        let read = (&mut self.file).take(want).read_buf(&mut block).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while a range of it was being sent",
            ));
        }
        self.left -= read as u64;
        Ok(block.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    async fn collect(sections: Sections, content: &[u8]) -> Vec<u8> {
        let path = std::env::temp_dir().join(format!(
            "poco-httpd-sections-{}-{}",
            std::process::id(),
            content.len()
        ));
        std::fs::write(&path, content).unwrap();
        let file = File::open(&path).await.unwrap();
        let declared = sections.len();
        let blocks: Vec<Bytes> = sections.into_stream(file).try_collect().await.unwrap();
        std::fs::remove_file(&path).unwrap();
        let body = blocks.concat();
        assert_eq!(body.len() as u64, declared);
        body
    }

    #[tokio::test]
    async fn a_single_section_is_the_bare_bytes() {
        let body = collect(Sections::single(2..5), b"0123456789").await;
        assert_eq!(body, b"234");
    }

    #[tokio::test]
    async fn several_sections_make_a_multipart_body_of_the_declared_length() {
        let content_type = HeaderValue::from_static("text/plain");
        let sections = Sections::multipart(&[0..2, 7..10], 10, Some(&content_type), "XYZ");
        let body = collect(sections, b"0123456789").await;
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\
             \r\n--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 7-9/10\r\n\r\n789\
             \r\n--XYZ--\r\n"
        );
    }

    #[tokio::test]
    async fn sections_larger_than_a_block_are_read_whole() {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let body = collect(Sections::single(1..250_001), &content).await;
        assert_eq!(body, &content[1..250_001]);
    }
}
