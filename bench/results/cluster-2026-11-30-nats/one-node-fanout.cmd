/work/main/target/release/hubbub bench fanout -s 1000 -r 50 -p 100 --url ws://127.0.0.1:9201/ws --server-pid 17660
