//! The `culex` binary: a drop-in for `/usr/sbin/mosquitto`.

fn main() {
    std::process::exit(culex::app::main());
}
