use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args[1])
        .set("group.id", format!("zz-{}", std::process::id()))
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "5")
        .create()
        .unwrap();
    consumer.subscribe(&[&args[2]]).unwrap();
    let start = Instant::now();
    let mut lat = vec![];
    while start.elapsed() < Duration::from_secs(args[3].parse().unwrap()) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(1)) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            if let Some(ts) = m.timestamp().to_millis() {
                lat.push(now - ts);
            }
        }
    }
    lat.sort();
    if lat.is_empty() {
        println!("none");
        return;
    }
    println!(
        "n={} p50={} p90={} p99={} max={}",
        lat.len(),
        lat[lat.len() / 2],
        lat[lat.len() * 9 / 10],
        lat[lat.len() * 99 / 100],
        lat[lat.len() - 1]
    );
}
