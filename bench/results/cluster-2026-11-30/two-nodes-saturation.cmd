/work/main/target/release/hubbub bench sweep -s 1000 -p 100 --rates 100,200,400,700,1000 --keep-going --drain 2 --url ws://127.0.0.1:9231/ws,ws://127.0.0.1:9232/ws --server-pid 25945,25953,25879
