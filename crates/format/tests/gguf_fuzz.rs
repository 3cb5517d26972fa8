//! Mutation property test for the GGUF reader: mutated and truncated files never panic,
//! a successful parse never describes more than the file holds, and parsing never
//! allocates much more than the file's size. In a binary of its own so the allocation
//! counter sees only these tests, which take turns (`alone`): the counter is global, so
//! one test's allocations would show in the other's measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use modelrunner_format::gguf::GgufFile;
use modelrunner_testkit::LlamaSpec;
use proptest::prelude::*;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn bases() -> &'static [Vec<u8>] {
    static BASES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    BASES.get_or_init(|| {
        let small = modelrunner_testkit::small_gguf();
        let mut v = vec![small];
        v.extend((1..4).map(|s| LlamaSpec::tiny().build(s).to_bytes()));
        v
    })
}

/// Held while a test allocates or measures.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses and returns the peak extra bytes allocated while doing so.
fn parse_measured(bytes: &[u8]) -> (Result<GgufFile, String>, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = GgufFile::parse(bytes).map_err(|e| e.to_string());
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (r, peak)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn mutations_never_panic_or_overallocate(
        cut in 0usize..2000,
        flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8),
        which in 0usize..4,
    ) {
        let _alone = alone();
        let mut bytes = bases()[which].clone();
        // Mutate the header region (where counts and lengths live) most of the time.
        let head = bytes.len().min(6000);
        for (pos, val) in flips {
            let p = pos * head / 2000;
            if p < bytes.len() { bytes[p] = val; }
        }
        let len = bytes.len();
        bytes.truncate(len - (cut * len / 2000).min(len));
        let (result, peak) = parse_measured(&bytes);
        // The in-memory header may cost a few times its on-disk bytes (Strings, Vecs),
        // never more.
        prop_assert!(peak <= 8 * bytes.len() + (64 << 10), "allocated {peak} for {} bytes", bytes.len());
        if let Ok(f) = result {
            prop_assert!(f.data_offset <= bytes.len() as u64);
            for t in &f.tensors {
                prop_assert!(f.data_offset + t.offset + t.bytes <= bytes.len() as u64);
            }
        }
    }
}

#[test]
fn huge_claims_allocate_nothing_big() {
    let _alone = alone();
    // A header claiming 2^40 metadata entries and a 2^60-byte string.
    let mut b = b"GGUF\x03\0\0\0".to_vec();
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&(1u64 << 60).to_le_bytes());
    b.extend_from_slice(&[b'a'; 64]);
    let (r, peak) = parse_measured(&b);
    assert!(r.is_err());
    assert!(peak < 64 << 10, "allocated {peak}");
}
