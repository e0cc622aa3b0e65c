//! Crash consistency of the real binary: several clients POST at once, the
//! server is killed with SIGKILL mid-stream, restarted on the same data
//! directory, and every POST ever sent is checked.
//!
//! Guarantee under test: an acknowledged POST is wholly there after any
//! crash, and a POST that was in flight is either wholly there or wholly
//! absent — never partly applied. Each POST writes its own ship-day with
//! values derived from its number, so "wholly there" is an exact check.
//! And the rollup index after each restart (a checkpoint's file plus log
//! replay) counts every surviving POST exactly once: fleet days and the
//! ranking must equal the sums of the POSTs found there.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::{timestamp, Client, Server};
use crate::util::TempDir;

const ROUNDS: usize = 20;
const CLIENTS: u64 = 4;
use crate::process::DAY_S;
/// 2020-01-01T00:00:00Z
const EPOCH_S: i64 = 1_577_836_800;

/// What a client knows about one of its POSTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Acknowledged,
    /// Sent, but the connection died before the answer: may or may not be there.
    InFlight,
}

/// POST number `n` of `ship`: its own day, 96 fifteen-minute kWh readings
/// whose values encode `n`, so a bucket tells which POST wrote it.
fn post_body(ship: u64, n: i64) -> Vec<u8> {
    let day_start = EPOCH_S + n * DAY_S;
    let readings: Vec<String> = (0..96)
        .map(|i| {
            format!(
                r#"{{"datetime":"{}","value":{}}}"#,
                timestamp(day_start + i * 900),
                expected_value(n, i)
            )
        })
        .collect();
    format!(
        r#"{{"spaceship_id":{ship},"units":"kWh","data":[{}]}}"#,
        readings.join(",")
    )
    .into_bytes()
}

fn expected_value(n: i64, i: i64) -> i64 {
    n * 1000 + i
}

/// The buckets of `ship` on day `n`, as (bucket index in the day, value, coverage).
fn read_day(client: &mut Client, ship: u64, n: i64) -> Option<Vec<(i64, f64, u64)>> {
    let path = format!(
        "/data?spaceship_id={ship}&start={}&end={}",
        timestamp(EPOCH_S + n * DAY_S),
        timestamp(EPOCH_S + (n + 1) * DAY_S)
    );
    let (status, body) = client
        .request("GET", &path, b"")
        .expect("GET after restart");
    if status == 404 {
        return None;
    }
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    let json: serde_json::Value = serde_json::from_slice(&body).expect("GET answers JSON");
    let data = json["data"].as_array().expect("data is an array");
    let index_of: HashMap<String, i64> = (0..96)
        .map(|i| (timestamp(EPOCH_S + n * DAY_S + i * 900), i))
        .collect();
    Some(
        data.iter()
            .map(|b| {
                let when = b["datetime"].as_str().expect("datetime");
                let index = index_of[when];
                (
                    index,
                    b["value"].as_f64().expect("value"),
                    // Complete buckets carry no coverage field: it is 900.
                    b["coverage"].as_u64().unwrap_or(900),
                )
            })
            .collect(),
    )
}

#[test]
fn acknowledged_posts_survive_kill_9_and_none_is_partly_applied() {
    let dir = TempDir::new("crash");
    let data_dir = dir.path().join("data");
    // Per ship: POST number → outcome. Ship = client.
    let outcomes: Arc<Mutex<HashMap<(u64, i64), Outcome>>> = Arc::default();
    let mut next_post: Vec<i64> = vec![0; CLIENTS as usize];
    let mut acknowledged_total = 0usize;
    let mut in_flight_total = 0usize;

    let mut verified_up_to: Vec<i64> = vec![0; CLIENTS as usize];
    for round in 0..ROUNDS {
        // Checkpoints every ~100 POSTs, so kills land during checkpoints
        // too and restarts load rollup files with log written after them.
        let server = Server::start_with(&data_dir, &["--checkpoint-log-bytes", "65536"]);
        // What the last round wrote, right after the crash that ended it.
        verify(
            server.address,
            &mut outcomes.lock().expect("outcomes lock"),
            &verified_up_to,
            &next_post,
        );
        verified_up_to.clone_from(&next_post);

        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..CLIENTS)
            .map(|ship| {
                let stop = Arc::clone(&stop);
                let outcomes = Arc::clone(&outcomes);
                let address = server.address;
                let first = next_post[ship as usize];
                std::thread::spawn(move || {
                    let mut n = first;
                    let Ok(mut client) = Client::connect(address) else {
                        return n;
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let body = post_body(ship, n);
                        outcomes
                            .lock()
                            .expect("outcomes lock")
                            .insert((ship, n), Outcome::InFlight);
                        match client.request("POST", "/data", &body) {
                            Ok((200, _)) => {
                                outcomes
                                    .lock()
                                    .expect("outcomes lock")
                                    .insert((ship, n), Outcome::Acknowledged);
                            }
                            Ok((status, body)) => panic!(
                                "POST {n} of ship {ship} got {status}: {}",
                                String::from_utf8_lossy(&body)
                            ),
                            Err(_) => return n + 1,
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        // Vary the moment of the kill so it lands in different phases.
        std::thread::sleep(Duration::from_millis(50 + (round as u64 * 37) % 150));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for (ship, writer) in writers.into_iter().enumerate() {
            next_post[ship] = writer.join().expect("writer thread");
        }
    }

    // Everything, once more, after all the crashes.
    let server = Server::start(&data_dir);
    verify(
        server.address,
        &mut outcomes.lock().expect("outcomes lock"),
        &vec![0; CLIENTS as usize],
        &next_post,
    );
    for outcome in outcomes.lock().expect("outcomes lock").values() {
        match outcome {
            Outcome::Acknowledged => acknowledged_total += 1,
            Outcome::InFlight => in_flight_total += 1,
        }
    }
    assert!(
        acknowledged_total > ROUNDS * CLIENTS as usize,
        "too few POSTs were acknowledged ({acknowledged_total}) for the test to mean anything"
    );
    eprintln!("crash test: {ROUNDS} kill -9 rounds, {acknowledged_total} acknowledged POSTs all intact, {in_flight_total} in flight at a kill, none partly applied");
    drop(server);
    let report = powerd::storage::check(&data_dir).expect("check runs");
    assert!(report.is_ok(), "{report}");
}

/// Every POST ever sent is wholly there (acknowledged ones must be) or,
/// if it was in flight at a kill, wholly absent. An in-flight POST found
/// whole is durable from then on, and later rounds hold it to that.
fn verify(
    address: SocketAddr,
    outcomes: &mut HashMap<(u64, i64), Outcome>,
    from_post: &[i64],
    next_post: &[i64],
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut client = loop {
        match Client::connect(address) {
            Ok(client) => break client,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the server: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("server did not come back: {e}"),
        }
    };
    for ship in 0..CLIENTS {
        for n in from_post[ship as usize]..next_post[ship as usize] {
            let outcome = outcomes.get(&(ship, n)).copied();
            let buckets = read_day(&mut client, ship, n).unwrap_or_default();
            let whole = buckets.len() == 96
                && buckets.iter().all(|&(i, value, coverage)| {
                    value == expected_value(n, i) as f64 && coverage == 900
                });
            match outcome {
                Some(Outcome::Acknowledged) => assert!(
                    whole,
                    "acknowledged POST {n} of ship {ship} is not wholly there: {buckets:?}"
                ),
                Some(Outcome::InFlight) => {
                    assert!(
                        whole || buckets.is_empty(),
                        "in-flight POST {n} of ship {ship} is partly applied: {} of 96 buckets",
                        buckets.len()
                    );
                    if whole {
                        outcomes.insert((ship, n), Outcome::Acknowledged);
                    }
                }
                None => assert!(
                    buckets.is_empty(),
                    "POST {n} of ship {ship} was never sent but has data"
                ),
            }
        }
    }
    verify_rollups(&mut client, outcomes);
}

/// Fleet days and the ranking equal the sums of the POSTs that are there:
/// nothing counted twice by log replay, nothing missing.
fn verify_rollups(client: &mut Client, outcomes: &HashMap<(u64, i64), Outcome>) {
    // POST n holds n*1000 + i kWh in its day's bucket i.
    let post_total = |n: i64| 96 * 1000 * n + (0..96).sum::<i64>();
    let mut ships: HashMap<u64, i64> = HashMap::new();
    let mut days: std::collections::BTreeMap<i64, (i64, u64)> = Default::default();
    for (&(ship, n), outcome) in outcomes {
        if *outcome == Outcome::Acknowledged {
            *ships.entry(ship).or_default() += post_total(n);
            let day = days.entry(n).or_default();
            day.0 += post_total(n);
            day.1 += 1;
        }
    }
    let get = |client: &mut Client, path: &str| -> serde_json::Value {
        let (status, body) = client.request("GET", path, b"").expect("GET");
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("JSON")
    };
    let ranking = get(client, &format!("/topusers?count={CLIENTS}"));
    let got: HashMap<u64, i64> = ranking["ships"]
        .as_array()
        .expect("ships")
        .iter()
        .map(|s| {
            let id = s["spaceship_id"].as_u64().expect("id");
            (id, s["consumption"].as_i64().expect("whole kWh"))
        })
        .collect();
    assert_eq!(
        got, ships,
        "the ranking disagrees with the POSTs that are there"
    );
    let fleet = get(client, "/data/fleet?step=1d");
    let day_of: HashMap<String, i64> = outcomes
        .keys()
        .map(|&(_, n)| (timestamp(EPOCH_S + n * DAY_S), n))
        .collect();
    let got: std::collections::BTreeMap<i64, (i64, u64)> = fleet["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| {
            let day = d["datetime"].as_str().expect("datetime");
            (
                *day_of
                    .get(day)
                    .unwrap_or_else(|| panic!("{day} is no POST's day")),
                (
                    d["sum"].as_i64().expect("whole kWh"),
                    d["ships"].as_u64().expect("ships"),
                ),
            )
        })
        .collect();
    assert_eq!(
        got, days,
        "fleet days disagree with the POSTs that are there"
    );
}
