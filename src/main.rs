//! The `netscript` command.

fn main() {
    eprintln!("netscript: not yet wired");
    std::process::exit(1);
}
