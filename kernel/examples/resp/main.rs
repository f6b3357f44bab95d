//! A RESP (Redis protocol) key-value server as a Cloister guest
//! application: PING, ECHO, SET, GET, INCR, DEL, EXISTS, DBSIZE, QUIT and
//! `CONFIG GET` of `save`/`appendonly` (what `redis-benchmark` asks first),
//! enough for `redis-cli` and `redis-benchmark -t set,get,incr`.
//!
//! One thread per connection over the runtime's blocking TCP API; the keys
//! live in one `BTreeMap` on the heap (no persistence). Listens on port
//! 6379, or `app.port=N` on the kernel command line. Boot it with
//! `cloister run --app …/examples/resp -p 6379` (docs/RUNTIME.md).
#![no_std]
#![no_main]

extern crate alloc;

mod protocol;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

use kernel::runtime::net::{TcpListener, TcpStream};
use kernel::runtime::{Result, command_line_value, thread};
use protocol::{Parsed, Reply, parse};
use spin::Mutex;

kernel::entry!(main);

/// A key's value.
enum Value {
    /// A string (`SET`, `INCR`).
    Str(Vec<u8>),
    /// A list (`LPUSH`, `LPOP`); never empty (the key goes with the last
    /// element, as in Redis).
    List(VecDeque<Vec<u8>>),
}

type Store = Arc<Mutex<BTreeMap<Vec<u8>, Value>>>;

const WRONG_TYPE: Reply =
    Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value");

fn main() -> Result<()> {
    let port = command_line_value("app.port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(6379);
    let listener = TcpListener::bind(port)?;
    kernel::println!("resp: listening on port {port}");
    let store: Store = Arc::default();
    loop {
        let (stream, peer) = listener.accept()?;
        log::debug!("resp: connection from {peer}");
        let store = store.clone();
        if let Err(e) = thread::spawn(move || serve(&stream, &store)) {
            log::warn!("resp: cannot serve {peer}: {e}");
        }
    }
}

/// Serves one client until it closes (or sends QUIT).
fn serve(stream: &TcpStream, store: &Store) {
    let _ = stream.set_nodelay(true);
    let mut input = Vec::with_capacity(4096);
    let mut chunk = alloc::vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        input.extend_from_slice(&chunk[..n]);
        // Every complete command of the batch (pipelining), one write.
        let mut quit = false;
        let mut used = 0;
        while !quit {
            match parse(&input[used..]) {
                Parsed::Incomplete => break,
                Parsed::Invalid(why) => {
                    Reply::Error(why).encode(&mut out);
                    quit = true;
                }
                Parsed::Command(args, len) => {
                    used += len;
                    quit = execute(&args, store, &mut out);
                }
            }
        }
        input.drain(..used);
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        out.clear();
        if quit {
            return;
        }
    }
}

/// Runs one command, appending its reply; returns whether to close.
fn execute(args: &[&[u8]], store: &Store, out: &mut Vec<u8>) -> bool {
    let Some((name, rest)) = args.split_first() else {
        return false;
    };
    let name = name.to_ascii_uppercase();
    let reply = match (name.as_slice(), rest) {
        (b"PING", []) => Reply::Simple("PONG"),
        (b"PING", [msg]) | (b"ECHO", [msg]) => Reply::Bulk(Some(msg.to_vec())),
        (b"QUIT", []) => {
            Reply::Simple("OK").encode(out);
            return true;
        }
        // As Redis: no reply, the server goes (status 0, the audit log
        // sealed by the runtime). NOSAVE/SAVE: nothing is kept on disk.
        (b"SHUTDOWN", [] | [_]) => {
            let keys = store.lock().len();
            kernel::runtime::audit::record("resp: shutdown");
            kernel::println!("resp: shutting down with {keys} keys");
            kernel::runtime::exit(0)
        }
        (b"SET", [key, value]) => {
            store
                .lock()
                .insert(key.to_vec(), Value::Str(value.to_vec()));
            Reply::Simple("OK")
        }
        (b"GET", [key]) => match store.lock().get(*key) {
            None => Reply::Bulk(None),
            Some(Value::Str(v)) => Reply::Bulk(Some(v.clone())),
            Some(Value::List(_)) => WRONG_TYPE,
        },
        (b"LPUSH", [key, values @ ..]) if !values.is_empty() => {
            let mut map = store.lock();
            let entry = map
                .entry(key.to_vec())
                .or_insert_with(|| Value::List(VecDeque::new()));
            match entry {
                Value::List(list) => {
                    for v in values {
                        list.push_front(v.to_vec());
                    }
                    Reply::Integer(list.len() as i64)
                }
                Value::Str(_) => WRONG_TYPE,
            }
        }
        (b"LPOP", [key]) => {
            let mut map = store.lock();
            match map.get_mut(*key) {
                None => Reply::Bulk(None),
                Some(Value::Str(_)) => WRONG_TYPE,
                Some(Value::List(list)) => {
                    let first = list.pop_front();
                    if list.is_empty() {
                        map.remove(*key);
                    }
                    Reply::Bulk(first)
                }
            }
        }
        (b"INCR", [key]) => incr(store, key),
        (b"DEL", keys) if !keys.is_empty() => {
            let mut map = store.lock();
            Reply::Integer(keys.iter().filter(|k| map.remove(**k).is_some()).count() as i64)
        }
        (b"EXISTS", keys) if !keys.is_empty() => {
            let map = store.lock();
            Reply::Integer(keys.iter().filter(|k| map.contains_key(**k)).count() as i64)
        }
        (b"DBSIZE", []) => Reply::Integer(store.lock().len() as i64),
        (b"CONFIG", [sub, param]) if sub.eq_ignore_ascii_case(b"GET") => config_get(param),
        (
            b"PING" | b"ECHO" | b"QUIT" | b"SET" | b"GET" | b"INCR" | b"DEL" | b"EXISTS"
            | b"DBSIZE" | b"CONFIG" | b"SHUTDOWN" | b"LPUSH" | b"LPOP",
            _,
        ) => Reply::Error("ERR wrong number of arguments"),
        _ => Reply::Error("ERR unknown command"),
    };
    reply.encode(out);
    false
}

/// `INCR`: the value as a signed 64-bit decimal, plus one.
fn incr(store: &Store, key: &[u8]) -> Reply {
    let mut map = store.lock();
    let current = match map.get(key) {
        None => 0,
        Some(Value::List(_)) => return WRONG_TYPE,
        Some(Value::Str(v)) => match core::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            Some(n) => n,
            None => return Reply::Error("ERR value is not an integer or out of range"),
        },
    };
    let Some(next) = current.checked_add(1) else {
        return Reply::Error("ERR increment or decrement would overflow");
    };
    map.insert(
        key.to_vec(),
        Value::Str(alloc::format!("{next}").into_bytes()),
    );
    Reply::Integer(next)
}

/// `CONFIG GET`: this server keeps nothing on disk, so no save points and
/// no append-only file; other parameters do not exist here (an empty
/// list, as Redis answers for an unknown name).
fn config_get(param: &[u8]) -> Reply {
    let value: &[u8] = if param.eq_ignore_ascii_case(b"save") {
        b""
    } else if param.eq_ignore_ascii_case(b"appendonly") {
        b"no"
    } else {
        return Reply::Array(Vec::new());
    };
    Reply::Array(alloc::vec![param.to_ascii_lowercase(), value.to_vec()])
}
