/work/main/target/release/hubbub bench sweep -s 1000 -p 100 --rates 100,200,400,700,1000 --keep-going --drain 2 --url ws://127.0.0.1:9221/ws --server-pid 25889
