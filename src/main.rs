fn main() {
    println!("powerd: placeholder");
}
