/work/main/target/release/hubbub bench fanout -s 1000 -r 50 -p 100 --url ws://127.0.0.1:9261/ws,ws://127.0.0.1:9262/ws --server-pid 17825,17833,2998
