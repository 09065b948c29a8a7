//! `omni::fs` on both drivers (io_uring operations, or the blocking pool on mio).

#[path = "common/drivers.rs"]
mod drivers;

use omni::fs::{self, File};
use omni::Driver;
use std::io;
use std::path::PathBuf;

matrix!(write_then_read_a_megabyte, cursor_and_explicit_offsets, errors_say_what_went_wrong,);

fn temp(name: &str, d: Driver) -> PathBuf {
    std::env::temp_dir().join(format!("omni-fs-{}-{d}-{name}", std::process::id()))
}

fn write_then_read_a_megabyte(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    let path = temp("mb", d);
    rt.block_on(async {
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
        fs::write(&path, data.clone()).await.unwrap();
        assert_eq!(fs::metadata(&path).await.unwrap().len(), data.len() as u64);
        assert!(fs::read(&path).await.unwrap() == data);
        fs::write(&path, "short").await.unwrap();
        assert_eq!(fs::read_to_string(&path).await.unwrap(), "short", "create truncates");
    });
    std::fs::remove_file(&path).unwrap();
}

fn cursor_and_explicit_offsets(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    let path = temp("cursor", d);
    rt.block_on(async {
        let mut f = File::create(&path).await.unwrap();
        let (r, back) = f.write_all(b"0123456789".to_vec()).await;
        r.unwrap();
        assert_eq!(back, b"0123456789", "the buffer comes back");
        f.write_all(b"abc".to_vec()).await.0.unwrap();
        let (r, _) = f.write_at(b"XY".to_vec(), 2).await;
        assert_eq!(r.unwrap(), 2);
        f.sync_all().await.unwrap();
        drop(f);

        let mut f = File::open(&path).await.unwrap();
        let (r, head) = f.read(Vec::with_capacity(4)).await;
        assert_eq!((r.unwrap(), &head[..]), (4, &b"01XY"[..]));
        let (r, at) = f.read_at(Vec::with_capacity(3), 10).await;
        assert_eq!((r.unwrap(), &at[..]), (3, &b"abc"[..]));
        // read_at left the cursor where read put it.
        let (r, rest) = f.read_to_end(b"<".to_vec()).await;
        assert_eq!(r.unwrap(), 9);
        assert_eq!(rest, b"<456789abc");
        let (r, none) = f.read(Vec::with_capacity(8)).await;
        assert_eq!((r.unwrap(), none.len()), (0, 0), "end of file");
        assert_eq!(f.metadata().await.unwrap().len(), 13);
    });
    std::fs::remove_file(&path).unwrap();
}

fn errors_say_what_went_wrong(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let e = File::open(temp("missing", d)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = File::open("bad\0path").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("NUL"));
        // Writing to a read-only file is refused by the kernel, reported as an error.
        let path = temp("ro", d);
        fs::write(&path, "x").await.unwrap();
        let f = File::open(&path).await.unwrap();
        let (r, buf) = f.write_at(b"y".to_vec(), 0).await;
        assert!(r.is_err());
        assert_eq!(buf, b"y", "the buffer comes back with the error");
        std::fs::remove_file(&path).unwrap();
    });
}
