//! Large files written and read past the page cache (`O_DIRECT`), in
//! aligned chunks from aligned buffers.
//!
//! Why: a buffered write copies every byte into the page cache on the
//! writing thread. On the bench VM that copy runs at about 440 MB/s (`dd
//! bs=4M` buffered), where the device takes the same bytes at 2 GB/s with
//! `O_DIRECT` and no CPU; the score COG of a full tile (480 MB) spent about
//! 1.1 CPU s in the copy, while both cores were busy. Where a file system
//! refuses `O_DIRECT` (at the open, or with EINVAL at the first write) the
//! file is written the plain way, with the same bytes.
//!
//! A file written so is not in the page cache: a buffered read of it would
//! fill the cache page by page, which costs about as much as the buffered
//! write did (0.8 CPU s per 512 MB read after a direct write, against 0.02
//! s read directly). [`DirectReader`] reads it directly too.

use std::fs::File;
#[cfg(target_os = "linux")]
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
#[cfg(target_os = "linux")]
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

/// File offsets and lengths of direct writes are multiples of this (the
/// largest logical block size of common devices), and so is the buffer's
/// address.
const ALIGN: usize = 4096;
/// Bytes written per call.
const CHUNK: usize = 8 << 20;

/// A file written front to back from some offset on.
pub struct DirectFile {
    /// The plain handle: fallback writes, the final length, and what the
    /// caller writes after [`DirectFile::finish`].
    plain: File,
    /// The `O_DIRECT` handle, while direct writes work.
    direct: Option<File>,
    /// `CHUNK + ALIGN` bytes; the chunk starts at `start` (aligned).
    mem: Vec<u8>,
    start: usize,
    /// Bytes of the chunk in use.
    len: usize,
    /// File offset of the chunk's first byte.
    at: u64,
}

impl DirectFile {
    /// Creates `path` (or truncates it); writes begin at offset `from`, and
    /// bytes before it are zeros until the caller writes them (through the
    /// file [`DirectFile::finish`] returns).
    pub fn create(path: &Path, from: u64) -> io::Result<DirectFile> {
        let plain = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        #[cfg(target_os = "linux")]
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        #[cfg(not(target_os = "linux"))]
        let direct: Option<File> = None;
        let mut mem = vec![0u8; CHUNK + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN);
        // A direct chunk starts on an aligned offset: the bytes from there
        // to `from` are zeros.
        let at = if direct.is_some() {
            from / ALIGN as u64 * ALIGN as u64
        } else {
            from
        };
        let len = (from - at) as usize;
        mem[start..start + len].fill(0);
        Ok(DirectFile {
            plain,
            direct,
            mem,
            start,
            len,
            at,
        })
    }

    /// Appends `data`.
    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (CHUNK - self.len).min(data.len());
            let s = self.start + self.len;
            self.mem[s..s + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == CHUNK {
                self.flush_chunk(CHUNK)?;
            }
        }
        Ok(())
    }

    /// Offset of the next byte written.
    pub fn position(&self) -> u64 {
        self.at + self.len as u64
    }

    /// Writes what is buffered and returns the plain handle, the file
    /// cut to the bytes written.
    pub fn finish(mut self) -> io::Result<File> {
        let end = self.position();
        if self.len > 0 {
            // A direct write's length is aligned: the last chunk is padded,
            // and the file cut back to its length after.
            let padded = if self.direct.is_some() {
                self.len.next_multiple_of(ALIGN)
            } else {
                self.len
            };
            let s = self.start;
            self.mem[s + self.len..s + padded].fill(0);
            self.flush_chunk(padded)?;
        }
        self.plain.set_len(end)?;
        Ok(self.plain)
    }

    /// Writes the chunk's first `n` bytes at `at`, directly when it can.
    fn flush_chunk(&mut self, n: usize) -> io::Result<()> {
        let bytes = &self.mem[self.start..self.start + n];
        if let Some(d) = &self.direct {
            match d.write_all_at(bytes, self.at) {
                Ok(()) => {
                    self.at += self.len as u64;
                    self.len = 0;
                    return Ok(());
                }
                // Refused by the file system: plain writes from here on.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.direct = None,
                Err(e) => return Err(e),
            }
        }
        self.plain.write_all_at(&bytes[..self.len], self.at)?;
        self.at += self.len as u64;
        self.len = 0;
        Ok(())
    }
}

/// Reads of a file at any offsets, directly where the file system allows
/// (several threads at once).
pub struct DirectReader {
    plain: File,
    #[cfg(target_os = "linux")]
    direct: Option<File>,
    /// Set when a direct read was refused (EINVAL): plain reads from then on.
    #[cfg(target_os = "linux")]
    refused: AtomicBool,
}

impl DirectReader {
    pub fn open(path: &Path) -> io::Result<DirectReader> {
        Ok(DirectReader {
            plain: File::open(path)?,
            #[cfg(target_os = "linux")]
            direct: OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .ok(),
            #[cfg(target_os = "linux")]
            refused: AtomicBool::new(false),
        })
    }

    /// Reads the `len` bytes at `offset` into `buf` (resized as needed) and
    /// returns where in `buf` they are. That range starts `offset % 4096`
    /// bytes after an address aligned to 4096, so values of any size that
    /// are aligned in the file are aligned in memory.
    pub fn read_at(
        &self,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> io::Result<std::ops::Range<usize>> {
        let head = (offset % ALIGN as u64) as usize;
        let span = (head + len).next_multiple_of(ALIGN);
        buf.resize(span + ALIGN, 0);
        let start = buf.as_ptr().align_offset(ALIGN);
        let at = offset - head as u64;
        #[cfg(target_os = "linux")]
        if let Some(d) = self
            .direct
            .as_ref()
            .filter(|_| !self.refused.load(Ordering::Relaxed))
        {
            // The aligned span may end past the end of the file: short reads
            // are fine once the wanted bytes are in.
            let mut got = 0;
            let result = loop {
                if got >= head + len {
                    break Ok(());
                }
                match d.read_at(&mut buf[start + got..start + span], at + got as u64) {
                    Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            match result {
                Ok(()) => return Ok(start + head..start + head + len),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.refused.store(true, Ordering::Relaxed)
                }
                Err(e) => return Err(e),
            }
        }
        self.plain
            .read_exact_at(&mut buf[start + head..start + head + len], offset)?;
        Ok(start + head..start + head + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `parts` from `from` on, then `head` at 0.
    fn write(path: &Path, from: u64, head: &[u8], parts: &[Vec<u8>]) -> Vec<u8> {
        let mut f = DirectFile::create(path, from).unwrap();
        for p in parts {
            f.write_all(p).unwrap();
        }
        f.finish().unwrap().write_all_at(head, 0).unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn the_file_holds_the_bytes_written_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        // Parts of odd sizes, one larger than a chunk, from an odd offset.
        let parts: Vec<Vec<u8>> = [3usize, 5000, CHUNK + 777, 1, 12_345]
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|i| (i * 7 + k * 13) as u8).collect())
            .collect();
        let head = vec![0xAB; 1234];
        let got = write(&p, 1234, &head, &parts);
        let mut want = head.clone();
        for part in &parts {
            want.extend_from_slice(part);
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want);
        // Rewritten shorter: truncated, not left with the old tail.
        let got = write(&p, 10, &[1; 10], &parts[..2]);
        assert_eq!(got.len(), 10 + 3 + 5000);
    }

    #[test]
    fn reads_at_any_offset_and_length_give_the_file_bytes_aligned_as_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.bin");
        let bytes: Vec<u8> = (0..3 * ALIGN + 1000)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&p, &bytes).unwrap();
        let r = DirectReader::open(&p).unwrap();
        let mut buf = Vec::new();
        let n = bytes.len();
        for (off, len) in [
            (0, n),
            (1, 1),
            (4095, 2),
            (4096, 4096),
            (5000, n - 5000),
            (n - 1, 1),
            (7, 0),
        ] {
            let got = r.read_at(off as u64, len, &mut buf).unwrap();
            assert_eq!(&buf[got.clone()], &bytes[off..off + len], "{off} + {len}");
            assert_eq!(buf[got].as_ptr() as usize % ALIGN, off % ALIGN);
        }
        assert!(
            r.read_at(n as u64 - 2, 3, &mut buf).is_err(),
            "past the end"
        );
        // Refused direct reads (as by file systems without O_DIRECT) fall
        // back to plain ones.
        #[cfg(target_os = "linux")]
        {
            r.refused.store(true, Ordering::Relaxed);
            let got = r.read_at(10, 5000, &mut buf).unwrap();
            assert_eq!(&buf[got], &bytes[10..5010]);
        }
    }

    #[test]
    fn where_direct_writes_are_refused_plain_ones_are_made() {
        // A buffer off its alignment: the kernel refuses the direct write
        // (EINVAL), as file systems without O_DIRECT do.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        let mut f = DirectFile::create(&p, 100).unwrap();
        if f.direct.is_none() {
            return; // no O_DIRECT here at all: nothing to fall back from
        }
        f.start += 1;
        let want: Vec<u8> = (0..CHUNK + 5000).map(|i| (i % 253) as u8).collect();
        f.write_all(&want).unwrap();
        assert!(f.direct.is_none(), "fell back");
        f.finish().unwrap().write_all_at(&[9; 100], 0).unwrap();
        let got = std::fs::read(&p).unwrap();
        assert_eq!(got.len(), 100 + want.len());
        assert!(got[..100].iter().all(|&b| b == 9) && got[100..] == want[..]);
    }
}
