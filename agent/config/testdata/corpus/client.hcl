# A Consul client agent with DNS forwarding (/etc/consul.d/client.hcl).
datacenter = "dc1"
data_dir   = "/opt/consul"
node_name  = "app-07"
bind_addr  = "0.0.0.0"
advertise_addr = "10.0.2.7"
client_addr    = "127.0.0.1"
retry_join     = ["10.0.1.10", "10.0.1.11", "10.0.1.12"]
encrypt        = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
recursors      = ["10.0.0.2", "1.1.1.1"]

node_meta {
  rack = "r7"
  az   = "eu-west-1a"
}

ports {
  dns  = 8600
  http = 8500
  grpc = -1
}

enable_local_script_checks = true
leave_on_terminate         = true
rejoin_after_leave         = true
