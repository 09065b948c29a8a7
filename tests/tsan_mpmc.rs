//! ThreadSanitizer target (`harness = false`; `.ci/run` runs it under `-Zsanitizer=thread`,
//! and `cargo test` runs it as a plain test): 10^6 messages through one bounded MPMC channel
//! between producers and consumers that are tasks on a 2-worker runtime and plain OS threads.
//!
//! Checks that every value arrives exactly once (count and sum) and that each consumer sees
//! each producer's values in the order sent.

const MESSAGES: u64 = 1_000_000;
const PRODUCERS: u64 = 4; // two tasks, two OS threads
const CONSUMERS: usize = 4; // three tasks, one OS thread

/// What one consumer saw: count, sum, and whether per-producer order held.
fn consume(next: impl FnMut() -> Option<u64>) -> (u64, u64) {
    let mut next = next;
    let mut last = [None::<u64>; PRODUCERS as usize];
    let (mut count, mut sum) = (0, 0);
    while let Some(v) = next() {
        let p = (v % PRODUCERS) as usize;
        assert!(last[p].is_none_or(|l| l < v), "producer {p}: {v} after {:?}", last[p]);
        last[p] = Some(v);
        count += 1;
        sum += v;
    }
    (count, sum)
}

fn main() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let (tx, rx) = omni::chan::bounded::<u64>(64);
    let values = move |p: u64| (0..MESSAGES).filter(move |v| v % PRODUCERS == p);

    let mut task_producers = Vec::new();
    let mut thread_producers = Vec::new();
    for p in 0..PRODUCERS {
        let tx = tx.clone();
        if p < 2 {
            task_producers.push(rt.spawn(async move {
                for v in values(p) {
                    tx.send(v).await.unwrap();
                }
            }));
        } else {
            thread_producers.push(std::thread::spawn(move || {
                for v in values(p) {
                    tx.send_blocking(v).unwrap();
                }
            }));
        }
    }
    drop(tx);
    let task_consumers: Vec<_> = (0..CONSUMERS - 1)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(async move {
                let mut got = Vec::new();
                while let Ok(v) = rx.recv().await {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    let thread_consumer = std::thread::spawn(move || consume(|| rx.recv_blocking().ok()));

    let (mut count, mut sum) = rt.block_on(async {
        for h in task_producers {
            h.await.unwrap();
        }
        let (mut count, mut sum) = (0, 0);
        for h in task_consumers {
            let got = h.await.unwrap();
            let mut it = got.into_iter();
            let (c, s) = consume(|| it.next());
            count += c;
            sum += s;
        }
        (count, sum)
    });
    for t in thread_producers {
        t.join().unwrap();
    }
    let (c, s) = thread_consumer.join().unwrap();
    count += c;
    sum += s;
    drop(rt);
    assert_eq!(count, MESSAGES, "every message arrives exactly once");
    assert_eq!(sum, MESSAGES * (MESSAGES - 1) / 2);
    println!("tsan_mpmc: ok ({MESSAGES} messages, {PRODUCERS} producers, {CONSUMERS} consumers)");
}
