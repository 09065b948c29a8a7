//! Per-region counters, read by the debugger for its memory report.

/// A snapshot of how a region uses its memory, from [`Region::stats`](super::Region::stats).
///
/// # Examples
///
/// ```
/// use omni::region::{DefaultKey, Region};
///
/// let mut region: Region<DefaultKey, u64> = Region::new();
/// let key = region.insert(7);
/// region.remove(key);
/// let stats = region.stats();
/// assert_eq!(stats.live, 0);
/// assert_eq!(stats.slots, region.capacity());
/// assert_eq!(stats.retired, 0);
/// assert!(stats.bytes >= stats.slots * std::mem::size_of::<u64>());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegionStats {
    /// Values the region holds now.
    pub live: usize,
    /// Slots allocated, occupied or not (the region's capacity).
    pub slots: usize,
    /// Slots retired because their version reached `u32::MAX`; they are never reused.
    pub retired: usize,
    /// Bytes the region holds for its slots: the slot chunks plus the table of chunks. Heap memory
    /// owned by the values themselves is not counted.
    pub bytes: usize,
}
