//! The "page cache" of one file: the pages written since its last fsync, held in memory over
//! the durable content of the backing file.
//!
//! Reads see the pending pages over the backing file, as a process reads its own writes through
//! a real page cache. [`PendingFile::flush`] writes the pending pages to the backing file and
//! syncs it; until then nothing written is on the backing file, so a cut of the power (the
//! daemon dies with its memory) loses it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The page size of the overlay. Writes that cover part of a page read the rest from the
/// backing file first (read-modify-write), as a kernel page cache does.
pub const PAGE: u64 = 4096;

/// The unsynced writes of one file.
#[derive(Debug)]
pub struct PendingFile {
    /// Page number to its full content (the last page may extend past `len`).
    pages: BTreeMap<u64, Box<[u8]>>,
    /// The file's length as its users see it.
    len: u64,
    /// Backing bytes from here on are gone (a truncation not yet synced): they read as zeros.
    backing_valid: u64,
}

impl PendingFile {
    /// A file with no pending writes whose backing content is `backing_len` bytes long.
    pub fn new(backing_len: u64) -> Self {
        Self {
            pages: BTreeMap::new(),
            len: backing_len,
            backing_valid: backing_len,
        }
    }

    /// The length users see.
    pub fn visible_len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is pending.
    pub fn is_clean(&self, backing_len: u64) -> bool {
        self.pages.is_empty() && self.len == backing_len && self.backing_valid == backing_len
    }

    /// Records `data` written at `offset` (not durable).
    pub fn write(&mut self, backing: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        let readable = self.readable();
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let page_no = at / PAGE;
            let in_page = (at % PAGE) as usize;
            let take = (PAGE as usize - in_page).min(data.len() - done);
            let page = match self.pages.entry(page_no) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let mut fresh = vec![0u8; PAGE as usize].into_boxed_slice();
                    if in_page != 0 || take != PAGE as usize {
                        read_backing(backing, page_no * PAGE, &mut fresh, readable)?;
                    }
                    e.insert(fresh)
                }
            };
            page[in_page..in_page + take].copy_from_slice(&data[done..done + take]);
            done += take;
        }
        self.len = self.len.max(offset + data.len() as u64);
        Ok(())
    }

    /// Reads up to `size` bytes at `offset`: pending pages over the backing file.
    pub fn read(&self, backing: &File, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let end = self.len.min(offset.saturating_add(size as u64));
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let mut done = 0usize;
        while done < out.len() {
            let at = offset + done as u64;
            let page_no = at / PAGE;
            let in_page = (at % PAGE) as usize;
            let take = (PAGE as usize - in_page).min(out.len() - done);
            let dest = &mut out[done..done + take];
            match self.pages.get(&page_no) {
                Some(page) => dest.copy_from_slice(&page[in_page..in_page + take]),
                None => read_backing(backing, at, dest, self.readable())?,
            }
            done += take;
        }
        Ok(out)
    }

    /// How much of the backing file still counts.
    fn readable(&self) -> u64 {
        self.len.min(self.backing_valid)
    }

    /// Sets the length (a truncate or extension, not durable until a flush); pending bytes
    /// past it are forgotten.
    pub fn set_len(&mut self, len: u64) {
        self.backing_valid = self.backing_valid.min(len);
        self.pages.retain(|&no, _| no * PAGE < len);
        if let Some(page) = self.pages.get_mut(&(len / PAGE)) {
            page[(len % PAGE) as usize..].fill(0);
        }
        self.len = len;
    }

    /// Writes every pending page to `backing`, sets its length and syncs it (`fdatasync` when
    /// `data_only`). After this the file's content survives a cut.
    pub fn flush(&mut self, backing: &File, data_only: bool) -> io::Result<()> {
        if backing.metadata()?.len() > self.backing_valid {
            backing.set_len(self.backing_valid)?;
        }
        for (&no, page) in &self.pages {
            let at = no * PAGE;
            let upto = (self.len - at).min(PAGE) as usize;
            backing.write_all_at(&page[..upto], at)?;
        }
        if backing.metadata()?.len() != self.len {
            backing.set_len(self.len)?;
        }
        if data_only {
            backing.sync_data()?;
        } else {
            backing.sync_all()?;
        }
        self.pages.clear();
        self.backing_valid = self.len;
        Ok(())
    }
}

/// Fills `buf` from `backing` at `offset`; what lies past the backing file's end (or past
/// `len`) reads as zeros.
fn read_backing(backing: &File, offset: u64, buf: &mut [u8], len: u64) -> io::Result<()> {
    buf.fill(0);
    let want = (len.saturating_sub(offset) as usize).min(buf.len());
    let mut done = 0;
    while done < want {
        match backing.read_at(&mut buf[done..want], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn backing(content: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(content).expect("write");
        let handle = file.reopen().expect("reopen");
        (file, handle)
    }

    #[test]
    fn reads_see_pending_writes_over_the_backing_file_which_stays_untouched() {
        let original: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let (tmp, file) = backing(&original);
        let mut pending = PendingFile::new(original.len() as u64);
        pending.write(&file, 4000, &[0xAA; 200]).expect("write");
        pending
            .write(&file, 12_000, b"tail")
            .expect("write past the end");
        assert_eq!(pending.visible_len(), 12_004);
        let all = pending.read(&file, 0, 20_000).expect("read");
        assert_eq!(all.len(), 12_004);
        assert_eq!(&all[..4000], &original[..4000]);
        assert_eq!(&all[4000..4200], &[0xAA; 200][..]);
        assert_eq!(&all[4200..10_000], &original[4200..]);
        assert!(
            all[10_000..12_000].iter().all(|&b| b == 0),
            "a hole reads as zeros"
        );
        assert_eq!(&all[12_000..], b"tail");
        assert_eq!(
            std::fs::read(tmp.path()).expect("backing"),
            original,
            "nothing reaches the backing file before a flush"
        );
    }

    #[test]
    fn flush_makes_the_backing_file_what_readers_saw() {
        let (tmp, file) = backing(b"hello world");
        let mut pending = PendingFile::new(11);
        pending.write(&file, 6, b"raftix!").expect("write");
        let seen = pending.read(&file, 0, 100).expect("read");
        pending.flush(&file, true).expect("flush");
        assert_eq!(std::fs::read(tmp.path()).expect("backing"), seen);
        assert_eq!(seen, b"hello raftix!");
        assert!(pending.is_clean(13));
    }

    #[test]
    fn truncation_forgets_pending_bytes_past_the_new_end() {
        let (tmp, file) = backing(&[1u8; 5000]);
        let mut pending = PendingFile::new(5000);
        pending.write(&file, 4090, &[9u8; 20]).expect("write");
        pending.set_len(4095);
        pending.set_len(4100);
        let seen = pending.read(&file, 4088, 100).expect("read");
        assert_eq!(seen, [1, 1, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0]);
        pending.flush(&file, false).expect("flush");
        let on_disk = std::fs::read(tmp.path()).expect("backing");
        assert_eq!(on_disk.len(), 4100);
        assert_eq!(&on_disk[4088..], &seen[..]);
    }
}
