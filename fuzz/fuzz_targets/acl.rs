//! The ACL file reader (`acl_file`) and its evaluator.
//!
//! Input: the ACL file, then optionally `\0` and query lines
//! `<r|w> <client id> <username or -> <topic>` (one per line, fields split
//! at the first spaces), each asked of the parsed file with `decide`, as
//! the broker asks for every PUBLISH and delivery. Without queries, a few
//! fixed ones are asked.
#![no_main]

use culex::auth::{Access, AclFile, delivery_allowed_always, publish_allowed_always};
use libfuzzer_sys::fuzz_target;

fn ask(acl: &AclFile, client: &str, user: Option<&str>, topic: &str) {
    for access in [Access::Read, Access::Write] {
        let d = acl.decide(client, user, topic, access);
        assert_eq!(d.is_allowed(), acl.check(client, user, topic, access));
        let _ = d.log_text(client, user);
    }
    let _ = publish_allowed_always(topic);
    let _ = delivery_allowed_always(topic);
    let _ = culex::auth::acl_file::topic_matches(topic, topic);
    let _ = culex::auth::acl_file::valid_acl_filter(topic);
}

fuzz_target!(|data: &[u8]| {
    let (file, queries) = match data.iter().position(|&b| b == 0) {
        Some(p) => (&data[..p], Some(&data[p + 1..])),
        None => (data, None),
    };
    let acl = match AclFile::parse(file, "fuzz.acl") {
        Ok((acl, logs)) => {
            for l in &logs {
                let _ = l.to_string();
            }
            acl
        }
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let Some(queries) = queries else {
        for (c, u, t) in [
            ("c", Some("u"), "a/b"),
            ("c", None, "a/b/c"),
            ("client", Some("user"), "user/client/x"),
            ("+", Some("#"), "$SYS/broker/uptime"),
        ] {
            ask(&acl, c, u, t);
        }
        return;
    };
    let queries = String::from_utf8_lossy(queries);
    for q in queries.lines().take(64) {
        let mut f = q.splitn(4, ' ');
        let (Some(_rw), Some(c), Some(u), Some(t)) = (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let user = (u != "-").then_some(u);
        ask(&acl, c, user, t);
    }
});
