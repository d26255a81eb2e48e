/work/main/target/release/hubbub bench fanout -s 1000 -r 50 -p 100 --url ws://127.0.0.1:9271/ws,ws://127.0.0.1:9272/ws --server-pid 18356,18364,17650,2998
